// The worker's parameter traffic takes several paths (ps/ps_client.h): to a
// server in this process it names its matrices by address (the server writes
// pulled rows into the batch and applies Adagrad reading the gradients where
// they are), to a remote one it copies rows out of replies and sends
// gradients in frames; and the embedding bags' row gradients are either
// formed by the servers from the bags' own (pooled pushes, the default) or
// scattered into rows by the worker and pushed as rows (the earlier way).
// Seeded steps through every path must leave the servers holding the same
// numbers, bit for bit: every row's weights and optimizer state, every dense
// block.
#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/random.h"
#include "data/example_source.h"
#include "ps/embedding_store.h"
#include "ps/server_storage.h"
#include "ps/slot_router.h"
#include "testutil/testutil.h"
#include "train/candidate_worker.h"
#include "train/job_roles.h"
#include "train/model_kind.h"

namespace vrec::train {
namespace {

constexpr int kBatch = 64;
constexpr int64_t kVideos = 400;

std::vector<CandidateExample> Examples(uint64_t seed, int count) {
  Rng rng(seed, 3);
  std::vector<CandidateExample> out(count);
  for (int i = 0; i < count; ++i) {
    CandidateExample& e = out[i];
    e.set_example_id(i);
    const int history = 1 + static_cast<int>(rng.UniformInt(12));
    for (int h = 0; h < history; ++h) e.add_watch_history(1 + rng.UniformInt(kVideos));
    for (int h = 0; h < 1 + static_cast<int>(rng.UniformInt(6)); ++h) {
      e.add_search_tokens(1 + rng.UniformInt(300));
    }
    e.set_region(rng.UniformInt(6));  // 0: unknown
    e.set_device(1 + rng.UniformInt(3));
    e.set_age(static_cast<float>(rng.Uniform()));
    e.set_gender(rng.Uniform() < 0.5 ? 0.f : 1.f);
    e.set_logged_in(1.f);
    e.set_example_age(static_cast<float>(30 * rng.Uniform()));
    e.set_label_video(1 + rng.UniformInt(kVideos));
  }
  return out;
}

TrainOptions Options(const std::string& spill) {
  TrainOptions o;
  o.server.spill_dir = spill;
  // One request thread: requests are served in the order they were sent,
  // so the second step's pulls (sent before the first step computes) never
  // see the first step's pushes, whatever the timing. (With two, a push
  // could overtake a pull queued before it: asynchronous training allows
  // that, a bit-for-bit comparison does not.)
  o.server.threads = 1;
  models::CandidateSpecOptions& c = o.candidate;
  c.model.embedding_dim = 16;
  c.model.region_dim = 4;
  c.model.device_dim = 4;
  c.model.tower = {32, 16};
  c.model.output_dim = 16;
  c.optimizer.set_kind(OptimizerConfig::ADAGRAD);
  c.optimizer.set_learning_rate(0.05f);
  c.sampler.set_kind(SamplerConfig::UNIGRAM);
  c.sampler.set_power(0.75f);
  c.sampler.set_num_negatives(48);
  c.seed = 11;
  return o;
}

// Every live row of every table on every server: (table, key) -> weights
// and optimizer state.
using Rows = std::map<std::pair<std::string, uint64_t>, std::vector<float>>;

// Trains `steps` seeded steps of one worker against `servers` servers
// reached over `transport` ("inproc" or "tcp"), and returns what the
// servers hold then.
Rows TrainSteps(const std::string& transport, bool pooled, int servers, int steps,
               uint64_t seed) {
  testing::ScratchDir scratch;
  TrainOptions options = Options(scratch.path());
  options.server.bind_host = transport == "inproc" ? "inproc" : "127.0.0.1";
  options.server.insecure_data_plane = transport != "inproc";
  auto spec = CandidateKind().Spec(options);
  EXPECT_OK(spec.status());
  const std::vector<CandidateExample> examples = Examples(seed, kBatch * steps);
  JobData data;
  for (int64_t v = 0; v < kVideos; ++v) {
    data.corpus.ids.push_back(v + 1);
    data.corpus.index.emplace(v + 1, static_cast<int32_t>(v));
  }
  data.corpus.label_counts.assign(kVideos, 0.0);
  for (const auto& e : examples) data.corpus.label_counts[e.label_video() - 1] += 1;
  EXPECT_OK(CandidateKind().PrepareWorkers(*spec, &data));

  std::vector<ServerProcess> procs;
  net::ServerSet at;
  for (int s = 0; s < servers; ++s) {
    auto p = StartServer(*spec, options.server, at.keys, SpillRoot(options), s,
                         /*num_workers=*/1, nullptr, servers);
    EXPECT_OK(p.status());
    at.endpoints.push_back(p->endpoint);
    procs.push_back(std::move(*p));
  }
  EXPECT_EQ(net::IsInproc(at.endpoints[0]), transport == "inproc");
  {
    auto client_transport = net::Client::Connect(at);
    EXPECT_OK(client_transport.status());
    ps::PsClient client(client_transport->get(), ps::SlotRouter::Contiguous(servers).value(), 0);
    CandidateWorkerOptions wo;
    wo.batch_size = kBatch;
    wo.seed = seed;
    wo.pooled_pushes = pooled;
    wo.max_examples = static_cast<uint64_t>(kBatch) * steps;
    auto worker = CandidateWorker::Create(&*spec, &data.corpus, data.sampler.get(), &client, wo);
    EXPECT_OK(worker.status());
    MemoryExamples<CandidateExample> source(&examples, 0, 1);
    uint64_t trained = 0;
    EXPECT_OK((*worker)->Run(&source, nullptr,
                             [&](const WorkerProgress& p) { trained = p.examples(); }));
    EXPECT_EQ(trained, examples.size());
  }
  Rows rows;
  for (ServerProcess& p : procs) {
    for (const std::string& name : p.storage->table_names()) {
      ps::EmbeddingStore* t = p.storage->Find(name);
      const uint32_t n = t->RowFloats();
      EXPECT_OK(t->ForEachRow([&](uint64_t key, const float* row, const ps::RowMeta&) {
        rows[{name, key}].assign(row, row + n);
      }));
    }
    p.server->Stop();
  }
  return rows;
}

// Compares bit for bit; names the first difference.
void ExpectSameRows(const Rows& a, const Rows& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [id, row] : a) {
    auto it = b.find(id);
    ASSERT_TRUE(it != b.end()) << id.first << " key " << id.second;
    ASSERT_EQ(row.size(), it->second.size());
    for (size_t i = 0; i < row.size(); ++i) {
      ASSERT_EQ(row[i], it->second[i])
          << id.first << " key " << id.second << " float " << i << " (of weights and state)";
    }
  }
}

// Rows the steps pushed to: Adagrad's accumulators (the second half of a
// row) moved from their initial 0.1.
size_t Pushed(const Rows& rows) {
  size_t n = 0;
  for (const auto& [id, row] : rows) {
    const size_t dim = row.size() / 2;
    for (size_t i = dim; i < row.size(); ++i) {
      if (row[i] != 0.1f) {
        ++n;
        break;
      }
    }
  }
  return n;
}

TEST(WorkerStepTest, EveryPathTrainsToTheSameNumbers) {
  const uint64_t seed = testing::TestSeed(5);
  for (int servers : {1, 2}) {
    SCOPED_TRACE(::testing::Message() << servers << " servers");
    // Two steps: the second is pulled before the first is pushed and trains
    // while the first's pushes are applied (worker_loop.h), as in a job.
    // The reference: rows copied out of replies, gradient rows scattered by
    // the worker and sent in frames.
    const Rows reference = TrainSteps("tcp", /*pooled=*/false, servers, 2, seed);
    // The steps did train: most rows they touched were pushed to.
    EXPECT_GT(Pushed(reference), reference.size() / 2);
    for (auto [transport, pooled] :
         {std::pair{"inproc", false}, {"inproc", true}, {"tcp", true}}) {
      SCOPED_TRACE(::testing::Message() << transport << (pooled ? ", pooled pushes" : ", rows"));
      ExpectSameRows(TrainSteps(transport, pooled, servers, 2, seed), reference);
    }
  }
}

}  // namespace
}  // namespace vrec::train
