// `vrec bench serve --serve_bundle=DIR`: where one request's time goes, in
// process (no sockets), on an exported bundle (benchmarks/serve_bench.sh
// builds a 1M-video one; docs/benchmarks.md has the figures).
//
// The request is serve_bench.sh's: a user who watched the 10 videos the
// service recommends to nobody in particular, 3 search tokens, 20 items
// back. For --serve_requests requests, one after another on one thread:
//   - the whole POST /v1/recommend as the server answers it
//     (RecommendationService::Handle: JSON in, recommend, JSON out);
//   - the same request through Recommender::Recommend with its stage profile
//     (user tower, index search, ranking inputs, ranking layer 1, the other
//     layers, ordering);
//   - the ranking stage alone on the request's 300 candidates, two ways,
//     alternating: as a page (the user's columns of layer 1 once; serving's
//     path) and as 300 full examples through RankingScorer::Logits (the path
//     before the page), with the FLOPs of each.
// Prints one JSON line: medians in ms, GFLOP/s of the ranking layers, and a
// single-core 1024^3 sgemm measured in the same process.
#include <gflags/gflags.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <vector>

#include "Eigen/Core"
#include "bench.h"
#include "common/run_info.h"
#include "models/ranking_scorer.h"
#include "nlohmann/json.hpp"
#include "serve/http_server.h"

DEFINE_string(serve_bundle, "", "an exported bundle (vrec export) with a ranking model");
DEFINE_int32(serve_requests, 200, "timed requests (after 20 untimed)");

namespace vrec::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double MedianMs(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return 1e3 * v[v.size() / 2];
}

// Single-core Eigen float GEMM, 1024^3, best of 5 (as `vrec bench model`).
double SgemmGflops() {
  const int n = 1024;
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    c.noalias() = a * b;
    best = std::min(best, Since(t0));
  }
  volatile float sink = c(0, 0);
  (void)sink;
  return 2.0 * n * n * n / best / 1e9;
}

int Fail(const Status& s) {
  std::cerr << "vrec bench serve: " << s << "\n";
  return 1;
}

}  // namespace

int RunServeBench(int argc, char** argv) {
  (void)argc;
  (void)argv;
  if (FLAGS_serve_bundle.empty()) {
    std::cerr << "vrec bench serve: --serve_bundle=DIR is required\n";
    return 2;
  }
  serve::ServeOptions so;
  so.bundle_dir = FLAGS_serve_bundle;
  so.recommender.max_concurrent = 1;
  std::cerr << "loading " << so.bundle_dir << " ...\n";
  auto service_or = serve::RecommendationService::Create(so);
  if (!service_or.ok()) return Fail(service_or.status());
  serve::RecommendationService& service = **service_or;
  std::shared_ptr<const serve::Recommender> rec = service.recommender();
  const serve::LoadedBundle& bundle = rec->bundle();
  if (bundle.ranking() == nullptr) return Fail(absl::InvalidArgumentError("no ranking model"));

  // The request (serve_bench.sh's body).
  serve::RecommendRequest first;
  first.num = 10;
  auto seen = rec->Recommend(first);
  if (!seen.ok()) return Fail(seen.status());
  serve::RecommendRequest q;
  nlohmann::json body = {{"search_tokens", {3, 14, 15}}, {"region", 2}, {"device", 1},
                         {"age", 30}, {"gender", 0.5}, {"num", 20}};
  body["watch_history"] = nlohmann::json::array();
  for (const auto& it : *seen) {
    q.watch_history.push_back(it.video);
    body["watch_history"].push_back(static_cast<uint64_t>(it.video));
  }
  q.search_tokens = {3, 14, 15};
  q.region = 2;
  q.device = 1;
  q.age = (30.f - 13.f) / (80.f - 13.f);
  q.gender = 0.5f;
  q.num = 20;
  const std::string body_text = body.dump();
  // Its candidates, for the ranking stage alone.
  serve::RecommendRequest all = q;
  all.num = 300;
  auto ranked = rec->Recommend(all);
  if (!ranked.ok()) return Fail(ranked.status());
  std::vector<int32_t> candidates;
  for (const auto& it : *ranked) candidates.push_back(bundle.IndexOf(it.video));
  auto scorer_or = models::RankingScorer::Create(bundle.ranking()->spec(), bundle.ranking());
  if (!scorer_or.ok()) return Fail(scorer_or.status());
  models::RankingScorer& scorer = **scorer_or;

  std::cerr << "sgemm ...\n";
  const double sgemm = SgemmGflops();
  std::cerr << candidates.size() << " candidates; " << FLAGS_serve_requests << " requests ...\n";
  // The plain path's layer 1 as RankingModel runs it: DenseLayer::Forward
  // on 304 (300 padded) rows of every input column.
  auto mo = models::RankingOptionsFromSpec(bundle.ranking()->spec());
  if (!mo.ok()) return Fail(mo.status());
  auto model = model::RankingModel<float>::Create(*mo);
  if (!model.ok()) return Fail(model.status());
  std::vector<float> dense;
  if (Status s = models::GatherDense(bundle.ranking()->spec(), bundle.ranking(), &dense); !s.ok()) {
    return Fail(s);
  }
  const int padded = (static_cast<int>(candidates.size()) + 15) / 16 * 16;
  model::RowMatrix<float> x1 = model::RowMatrix<float>::Random(padded, model->input_width()), h1;
  std::vector<double> handle_s, total_s, plain_s, page_s, plain_examples_s, plain_layer1_s;
  std::vector<std::vector<double>> stage_s(6);
  std::vector<float> z;
  int64_t index_rows = 0;
  std::vector<models::RankingImpression> impressions;
  model::RankingPageProfile page_profile;
  for (int r = -20; r < FLAGS_serve_requests; ++r) {
    auto t0 = Clock::now();
    serve::HttpReply reply = service.Handle("POST", "/v1/recommend", body_text);
    const double handle = Since(t0);
    if (reply.status != 200) {
      return Fail(absl::InternalError("POST /v1/recommend: " + reply.body));
    }
    serve::RecommendProfile p;
    t0 = Clock::now();
    auto items = rec->Recommend(q, &p);
    const double total = Since(t0);
    if (!items.ok()) return Fail(items.status());
    double plain = 0, page = 0;
    for (int k = 0; k < 2; ++k) {
      t0 = Clock::now();
      if ((k + r) % 2 == 0) {
        const std::vector<RankingExample> examples = rec->Impressions(q, candidates);
        const double built = Since(t0);
        if (Status s = scorer.Logits(examples, &z); !s.ok()) return Fail(s);
        plain = Since(t0);
        t0 = Clock::now();
        model->layers().front().Forward(dense.data(), x1, &h1);
        if (r >= 0) {
          plain_examples_s.push_back(built);
          plain_layer1_s.push_back(Since(t0));
        }
      } else {
        rec->PageImpressions(q, candidates, &impressions);
        model::RankingPageProfile one;
        if (Status s = scorer.PageLogits(rec->RankingUser(q), impressions, &z, &one); !s.ok()) {
          return Fail(s);
        }
        page = Since(t0);
        if (r >= 0) {
          page_profile.first_layer += one.first_layer;
          page_profile.other_layers += one.other_layers;
        }
      }
    }
    if (r < 0) continue;
    index_rows = p.index_rows;
    handle_s.push_back(handle);
    total_s.push_back(total);
    plain_s.push_back(plain);
    page_s.push_back(page);
    const double stages[] = {p.user_tower,  p.search,       p.ranking_input,
                             p.first_layer, p.other_layers, p.order};
    for (int k = 0; k < 6; ++k) stage_s[k].push_back(stages[k]);
  }

  // FLOPs of the ranking tower on these candidates, both ways.
  int64_t weights = 0;
  for (const model::DenseLayer& l : model->layers()) weights += int64_t{l.in()} * l.out();
  const int64_t first_in = model->layers().front().in();
  const int64_t first_out = model->layers().front().out();
  auto forward = model::RankingPageForward<float>::Create(
      &*model, dense, models::RankingUserCategorical(), models::RankingUserContinuous());
  if (!forward.ok()) return Fail(forward.status());
  const int n = static_cast<int>(candidates.size());
  const double plain_flops = 2.0 * weights * n;
  const double page_flops = static_cast<double>(forward->ForwardFlops(n));
  const double first_flops = 2.0 * forward->impression_width() * first_out * n +
                             2.0 * forward->shared_width() * first_out;
  const double requests = static_cast<double>(FLAGS_serve_requests);

  nlohmann::json result = {
      {"bundle", FLAGS_serve_bundle},
      {"videos", bundle.videos().size()},
      {"candidates", n},
      {"requests", FLAGS_serve_requests},
      {"handle_ms", MedianMs(handle_s)},
      {"recommend_ms", MedianMs(total_s)},
      {"stages_ms",
       {{"user_tower", MedianMs(stage_s[0])},
        {"search", MedianMs(stage_s[1])},
        {"ranking_input", MedianMs(stage_s[2])},
        {"ranking_layer1", MedianMs(stage_s[3])},
        {"ranking_other_layers", MedianMs(stage_s[4])},
        {"order", MedianMs(stage_s[5])}}},
      {"json_and_routing_ms", MedianMs(handle_s) - MedianMs(total_s)},
      {"index_rows", index_rows},
      {"index_dim", bundle.manifest().index().dim()},
      {"ranking_plain_ms", MedianMs(plain_s)},
      {"ranking_plain_examples_ms", MedianMs(plain_examples_s)},
      {"ranking_plain_layer1_ms", MedianMs(plain_layer1_s)},
      {"ranking_page_ms", MedianMs(page_s)},
      {"ranking_page_over_plain", MedianMs(page_s) / MedianMs(plain_s)},
      {"ranking_input_width", first_in},
      {"ranking_user_width", forward->shared_width()},
      {"ranking_plain_mflop", plain_flops / 1e6},
      {"ranking_page_mflop", page_flops / 1e6},
      {"layer1_gflops", first_flops / (page_profile.first_layer / requests) / 1e9},
      {"other_layers_gflops",
       (page_flops - first_flops) / (page_profile.other_layers / requests) / 1e9},
      {"sgemm_gflops", sgemm},
  };
  PrintBenchResult("serve", result);
  return 0;
}

}  // namespace vrec::bench
