// `vrec bench model`: one training step of the paper-sized candidate tower
// (history 50 + search 50, dimension 256, tower 1024-512-256, 2048 shared
// negatives, batch 512) against this machine's single-core sgemm, measured
// in the same run.
//
// Timed per step: drawing the negatives, building the batch's index lists
// and output candidates, and CandidateModel::TrainStep (validation, embedding
// bags, tower forward/backward, sampled softmax, gradient scatter). Not
// timed: filling the unique rows with values (that is the parameter-server
// pull). The model reports the wall time of its dense part (tower GEMMs and
// the sampled softmax), whose FLOPs are counted explicitly.
#include <gflags/gflags.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench.h"
#include "common/random.h"
#include "common/run_info.h"
#include "model/batch_builder.h"
#include "model/candidate_model.h"
#include "model/negative_sampler.h"

DEFINE_int32(model_batch, 512, "examples per training step");
DEFINE_int32(model_negatives, 2048, "shared sampled negatives per step");
DEFINE_int32(model_dim, 256, "embedding and user-vector dimension");
DEFINE_string(model_tower, "1024,512,256", "hidden ReLU widths (the last is the user vector)");
DEFINE_int32(model_history, 50, "watched videos per example");
DEFINE_int32(model_tokens, 50, "search tokens per example");
DEFINE_int64(model_videos, 1000000, "corpus size (video ids)");
DEFINE_int32(model_steps, 10, "timed steps (after 2 warm-up steps); the median is reported");

namespace vrec::bench {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Single-core Eigen float GEMM, 1024^3, best of 5.
double SgemmGflops() {
  const int n = 1024;
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    const double t0 = Now();
    c.noalias() = a * b;
    best = std::min(best, Now() - t0);
  }
  volatile float sink = c(0, 0);  // keep the product observable
  (void)sink;
  return 2.0 * n * n * n / best / 1e9;
}

void FillRows(int rows, int cols, Rng* rng, model::RowMatrix<float>* m) {
  m->resize(rows, cols);
  float* p = m->data();
  for (int64_t k = 0; k < static_cast<int64_t>(rows) * cols; ++k) {
    p[k] = static_cast<float>(rng->Uniform() - 0.5) * 0.1f;
  }
}

}  // namespace

int RunModelBench(int argc, char** argv) {
  model::CandidateModelOptions options;
  options.embedding_dim = FLAGS_model_dim;
  options.output_dim = FLAGS_model_dim;
  options.max_history = FLAGS_model_history;
  options.max_tokens = FLAGS_model_tokens;
  options.tower.clear();
  for (absl::string_view w : absl::StrSplit(FLAGS_model_tower, ',', absl::SkipEmpty())) {
    int width = 0;
    if (!absl::SimpleAtoi(w, &width)) {
      std::cerr << "vrec bench model: bad --model_tower entry '" << w << "'\n";
      return 2;
    }
    options.tower.push_back(width);
  }
  if (!options.tower.empty()) options.output_dim = options.tower.back();
  auto model_or = model::CandidateModel<float>::Create(options);
  if (!model_or.ok()) {
    std::cerr << "vrec bench model: " << model_or.status() << "\n";
    return 2;
  }
  model::CandidateModel<float>& model = *model_or;
  std::vector<double> counts(FLAGS_model_videos);
  for (int64_t v = 0; v < FLAGS_model_videos; ++v) counts[v] = 1e6 / (v + 1);  // Zipf
  auto sampler_or = model::NegativeSampler::FromCounts(counts, 0.75);
  if (!sampler_or.ok()) {
    std::cerr << "vrec bench model: " << sampler_or.status() << "\n";
    return 2;
  }
  const model::NegativeSampler& sampler = *sampler_or;

  std::cerr << "sgemm ...\n";
  const double sgemm = SgemmGflops();

  std::vector<float> dense(model.layout().size());
  model.InitializeDense(1, absl::MakeSpan(dense));
  Rng rng(2024);
  const int n = FLAGS_model_batch;
  model::CandidateBatch<float> batch;
  model::CandidateGradients<float> grads;
  std::vector<double> step_s, dense_s;
  std::vector<int64_t> ids, labels(n), neg_ids;
  std::vector<float> neg_log_q;
  double unique_videos = 0;
  for (int step = 0; step < FLAGS_model_steps + 2; ++step) {
    // Untimed: ids as the data pipeline would deliver them (popular videos
    // drawn more often) and the pulled rows.
    std::vector<std::vector<int64_t>> hist(n), toks(n);
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < FLAGS_model_history; ++k) hist[i].push_back(sampler.Draw(&rng));
      for (int k = 0; k < FLAGS_model_tokens; ++k) toks[i].push_back(sampler.Draw(&rng));
      labels[i] = sampler.Draw(&rng);
    }
    const double t0 = Now();
    model::IdDeduplicator video_ids, token_ids, region_ids, device_ids;
    batch.batch_size = n;
    batch.history.Clear();
    batch.search.Clear();
    batch.region.Clear();
    batch.device.Clear();
    for (int i = 0; i < n; ++i) {
      video_ids.AddList(hist[i], &batch.history);
      token_ids.AddList(toks[i], &batch.search);
      const int64_t region = i % 50, device = i % 7;
      region_ids.AddList({&region, 1}, &batch.region);
      device_ids.AddList({&device, 1}, &batch.device);
    }
    sampler.Sample(FLAGS_model_negatives, &rng, &neg_ids, &neg_log_q);
    model::OutputCandidates cands = model::BuildOutputCandidates(labels, neg_ids);
    batch.labels = cands.label_rows;
    batch.negatives = cands.negative_rows;
    batch.negative_log_q = neg_log_q;
    batch.label_log_q.resize(n);
    for (int i = 0; i < n; ++i) batch.label_log_q[i] = sampler.LogQ(labels[i]);
    const double build_s = Now() - t0;

    // The pull (untimed).
    FillRows(video_ids.ids().size(), options.embedding_dim, &rng, &batch.video_rows);
    FillRows(token_ids.ids().size(), options.embedding_dim, &rng, &batch.token_rows);
    FillRows(region_ids.ids().size(), options.region_dim, &rng, &batch.region_rows);
    FillRows(device_ids.ids().size(), options.device_dim, &rng, &batch.device_rows);
    FillRows(cands.ids.size(), options.output_dim + 1, &rng, &batch.output_rows);
    batch.demographics.resize(n, 3);
    batch.demographics.setConstant(0.5f);
    batch.example_age.assign(n, 0.1f);

    auto loss = model.TrainStep(dense, batch, &grads);
    if (!loss.ok()) {
      std::cerr << "vrec bench model: " << loss.status() << "\n";
      return 1;
    }
    if (step >= 2) {
      step_s.push_back(build_s + model.last_step_timings().total_s);
      dense_s.push_back(model.last_step_timings().dense_s);
      unique_videos += video_ids.ids().size();
    }
    std::cerr << "step " << step << " loss " << *loss << " "
              << (build_s + model.last_step_timings().total_s) * 1e3 << " ms\n";
  }
  const double flops = static_cast<double>(model.DenseFlopsPerExample(FLAGS_model_negatives)) * n;
  const double med_step = Median(step_s), med_dense = Median(dense_s);
  const double dense_gflops = flops / med_dense / 1e9;
  nlohmann::json result = {
      {"batch", n},
      {"negatives", FLAGS_model_negatives},
      {"dim", FLAGS_model_dim},
      {"tower", FLAGS_model_tower},
      {"input_width", model.input_width()},
      {"steps", FLAGS_model_steps},
      {"unique_videos_per_batch", unique_videos / FLAGS_model_steps},
      {"step_ms", med_step * 1e3},
      {"dense_ms", med_dense * 1e3},
      {"dense_mflop_per_example", flops / n / 1e6},
      {"examples_per_s", n / med_step},
      {"dense_gflops", dense_gflops},
      {"sgemm_gflops", sgemm},
      {"dense_over_sgemm", dense_gflops / sgemm},
  };
  PrintBenchResult("model", result);
  return 0;
}

}  // namespace vrec::bench
