// Fuzzes what `vrec serve` does with a request, serve::RecommendationService
// ::Handle (cpp-httplib parses the bytes; this is everything after): the
// routes, the JSON body's parsing and validation, the limits, and the
// recommender behind them, on a bundle made once at start from untrained
// models over a small generated world (the arithmetic is the same for any
// weights, and training would spend the fuzzer's time).
//
// Input: "METHOD PATH" (as cpp-httplib decodes it), a line feed, the body.
//
// Checked beyond the sanitizers: no request is a 500 (bad input is a 4xx);
// every JSON reply parses; a recommendation holds at most 1000 items.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "data/generator.h"
#include "data/world.h"
#include "fuzz_util.h"
#include "glog/logging.h"
#include "models/candidate_spec.h"
#include "models/ranking_spec.h"
#include "models/saved_model.h"
#include "nlohmann/json.hpp"
#include "ps/server_storage.h"
#include "serve/bundle.h"
#include "serve/http_server.h"

namespace vrec::fuzz {
namespace {

// Setting up cannot fail but for the machine: die loudly if it does.
template <typename T>
T OrDie(StatusOr<T> s) {
  CHECK(s.ok()) << s.status();
  return std::move(s).value();
}
void OrDie(const Status& s) { CHECK(s.ok()) << s; }

// A trained-model folder holding the initial weights of `spec`.
void SaveUntrained(const models::ModelSpec& spec, const std::string& data_dir,
                   const std::string& dir) {
  ps::ServerStorageOptions so;
  so.spill_path = dir + "/.spill";
  so.dense_block_floats = models::kDenseBlockFloats;
  so.glorot_fans = spec.glorot_fans;
  auto storage = OrDie(ps::ServerStorage::Create(spec.config, so));
  // Dense blocks are made at their first pull (the sparse rows need none:
  // a saved model reads a missing key as its initial value).
  for (const TableConfig& t : spec.config.tables()) {
    if (!t.dense()) continue;
    ps::EmbeddingStore* store = storage->Find(t.name());
    std::vector<uint64_t> keys(models::DenseBlocks(t.dense_size()));
    for (size_t k = 0; k < keys.size(); ++k) keys[k] = k;
    std::vector<float> out(keys.size() * store->dim());
    OrDie(store->Pull(keys, absl::MakeSpan(out)));
  }
  OrDie(models::SaveServerTables(*storage, dir, 0));
  OrDie(models::WriteTrainedModel(dir, models::MakeTrainedModel(spec, data_dir, 1, 0, 0, 0)));
}

std::string MakeBundle(const std::string& dir) {
  WorldOptions wo;
  wo.seed = 5;
  wo.num_videos = 200;
  wo.num_users = 150;
  wo.num_tokens = 100;
  wo.num_topics = 5;
  wo.num_days = 10;
  auto world = OrDie(World::Build(wo, 1));
  GeneratorOptions g;
  g.out_dir = dir + "/data";
  g.shards = 1;
  g.test_users = 30;
  g.max_examples_per_user = 5;
  g.threads = 1;
  g.sync = false;
  g.progress_interval_s = 0;
  OrDie(GenerateDataset(*world, g));
  OptimizerConfig optimizer;
  optimizer.set_kind(OptimizerConfig::ADAGRAD);
  optimizer.set_learning_rate(0.1f);

  models::CandidateSpecOptions c;
  c.model.embedding_dim = 8;
  c.model.region_dim = 4;
  c.model.device_dim = 4;
  c.model.tower = {16};
  c.model.output_dim = 16;
  c.optimizer = optimizer;
  SaveUntrained(OrDie(models::CandidateSpec(c)), g.out_dir, dir + "/candidate");

  models::RankingSpecOptions r;
  r.embedding_dim = 8;
  r.tower = {16};
  r.num_quantiles = 10;
  r.optimizer = optimizer;
  models::ModelSpec ranking = OrDie(models::RankingSpec(r));
  const DatasetManifest manifest = OrDie(ReadManifest(g.out_dir));
  ranking.quantiles =
      OrDie(models::FitRankingQuantiles(ShardPaths(g.out_dir, manifest.ranking_train()), 10, 1));
  SaveUntrained(ranking, g.out_dir, dir + "/ranking");

  serve::ExportOptions e;
  e.candidate = dir + "/candidate";
  e.ranking = dir + "/ranking";
  e.out = dir + "/bundle";
  e.recall_queries = 20;
  OrDie(serve::ExportBundle(e));
  return e.out;
}

serve::RecommendationService* service = nullptr;

}  // namespace
}  // namespace vrec::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace vrec;
  FLAGS_minloglevel = 2;
  static const std::string dir = fuzz::ScratchPath("serve");
  std::filesystem::remove_all(dir);
  serve::ServeOptions o;
  o.bundle_dir = fuzz::MakeBundle(dir);
  o.max_body_bytes = 1024;  // below libFuzzer's longest inputs (4096): the limit is reached
  o.recommender.num_candidates = 30;
  o.recommender.max_concurrent = 1;
  fuzz::service = fuzz::OrDie(serve::RecommendationService::Create(o)).release();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vrec;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t eol = input.find('\n');
  const std::string line = input.substr(0, eol);
  const std::string body = eol == std::string::npos ? "" : input.substr(eol + 1);
  const size_t space = line.find(' ');
  const std::string method = line.substr(0, space);
  const std::string path = space == std::string::npos ? "" : line.substr(space + 1);

  const serve::HttpReply reply = fuzz::service->Handle(method, path, body);
  VREC_FUZZ_CHECK(
      reply.status == 200 || reply.status == 400 || reply.status == 404 || reply.status == 413,
      std::to_string(reply.status) + " " + reply.body);
  if (reply.content_type == "application/json") {
    nlohmann::json j = nlohmann::json::parse(reply.body, nullptr, false);
    VREC_FUZZ_CHECK(!j.is_discarded() && j.is_object(), reply.body);
    if (reply.status == 200 && path == "/v1/recommend") {
      VREC_FUZZ_CHECK(j["items"].is_array() && j["items"].size() <= 1000, reply.body);
    }
  } else {
    VREC_FUZZ_CHECK(reply.status == 200 && path == "/metrics", reply.content_type);
  }
  return 0;
}
