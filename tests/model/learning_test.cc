// Fixed-seed tiny models learn planted functions: end-to-end checks that the
// layers, gradients and the local optimizer fit together.
#include <cmath>

#include "model/batch_builder.h"
#include "model/candidate_model.h"
#include "model/negative_sampler.h"
#include "model/optimizer.h"
#include "model/ranking_model.h"
#include "testutil/testutil.h"

namespace vrec::model {
namespace {

using M = RowMatrix<float>;

// A full in-memory embedding table with Adagrad, standing in for a parameter
// server: Gather pulls a batch's unique rows, Apply pushes their gradient.
struct Table {
  M rows;
  Adagrad<float> opt;
  Table(int n, int dim, float scale, Rng* rng, float lr)
      : rows(n, dim), opt(static_cast<int64_t>(n) * dim, lr) {
    for (int64_t k = 0; k < rows.size(); ++k) {
      rows.data()[k] = scale * static_cast<float>(2 * rng->Uniform() - 1);
    }
  }
  M Gather(const std::vector<int64_t>& ids) const {
    M out(ids.size(), rows.cols());
    for (size_t r = 0; r < ids.size(); ++r) out.row(r) = rows.row(ids[r]);
    return out;
  }
  void Apply(const std::vector<int64_t>& ids, const M& grad) {
    const int d = static_cast<int>(rows.cols());
    for (size_t r = 0; r < ids.size(); ++r) {
      opt.Update(ids[r] * d, absl::MakeConstSpan(grad.row(r).data(), d),
                 absl::MakeSpan(rows.row(ids[r]).data(), d));
    }
  }
};

// Candidate generation: 8 topics x 5 videos; a user watches videos of one
// topic and searches its tokens; the next watch is video (5 topic + region):
// it needs the interaction of history and region, so the tower must learn.
TEST(LearningTest, CandidateModelLearnsPlantedNextWatch) {
  const uint64_t seed = vrec::testing::TestSeed(61);
  constexpr int kVideos = 40, kTopics = 8, kTokens = 16, kRegions = 5, kDevices = 3;
  CandidateModelOptions o;
  o.embedding_dim = 8;
  o.region_dim = 4;
  o.device_dim = 4;
  o.tower = {32, 16};
  o.output_dim = 16;
  ASSERT_OK_AND_ASSIGN(auto model, CandidateModel<float>::Create(o));
  Rng rng(seed);
  const float lr = 0.1f;
  Table video(kVideos, 8, 0.1f, &rng, lr), token(kTokens, 8, 0.1f, &rng, lr),
      region(kRegions, 4, 0.1f, &rng, lr), device(kDevices, 4, 0.1f, &rng, lr),
      out(kVideos, 17, 0.1f, &rng, lr);
  std::vector<float> dense(model.layout().size()), dense_grad;
  model.InitializeDense(seed, absl::MakeSpan(dense));
  Adagrad<float> dense_opt(model.layout().size(), lr);
  ASSERT_OK_AND_ASSIGN(auto sampler, NegativeSampler::Uniform(kVideos));

  struct Ids {
    IdDeduplicator v, t, r, d;
    OutputCandidates c;
  };
  // Builds a batch of n examples; all_negatives: every class is a negative
  // (then the sampled loss is the full softmax loss).
  auto make_batch = [&](int n, int num_neg, bool all_negatives, Rng* r, Ids* ids) {
    CandidateBatch<float> b;
    b.batch_size = n;
    b.demographics.resize(n, 3);
    std::vector<int64_t> labels(n);
    for (int i = 0; i < n; ++i) {
      const int topic = static_cast<int>(r->UniformInt(kTopics));
      const int reg = static_cast<int>(r->UniformInt(kRegions));
      std::vector<int64_t> hist, toks;
      for (int k = 0; k < 4; ++k) hist.push_back(5 * topic + r->UniformInt(5));
      for (int k = 0; k < 2; ++k) toks.push_back(2 * topic + r->UniformInt(2));
      const int64_t dev = r->UniformInt(kDevices), rg = reg;
      ids->v.AddList(hist, &b.history);
      ids->t.AddList(toks, &b.search);
      ids->r.AddList({&rg, 1}, &b.region);
      ids->d.AddList({&dev, 1}, &b.device);
      for (int k = 0; k < 3; ++k) b.demographics(i, k) = static_cast<float>(r->Uniform());
      b.example_age.push_back(static_cast<float>(r->Uniform()));
      labels[i] = 5 * topic + reg;
    }
    std::vector<int64_t> negs;
    std::vector<float> neg_log_q;
    if (all_negatives) {
      for (int v = 0; v < kVideos; ++v) negs.push_back(v);
      neg_log_q.assign(kVideos, static_cast<float>(sampler.LogQ(0)));
    } else {
      sampler.Sample(num_neg, r, &negs, &neg_log_q);
    }
    ids->c = BuildOutputCandidates(labels, negs);
    b.labels = ids->c.label_rows;
    b.negatives = ids->c.negative_rows;
    b.negative_log_q = neg_log_q;
    for (int64_t y : labels) b.label_log_q.push_back(static_cast<float>(sampler.LogQ(y)));
    b.video_rows = video.Gather(ids->v.ids());
    b.token_rows = token.Gather(ids->t.ids());
    b.region_rows = region.Gather(ids->r.ids());
    b.device_rows = device.Gather(ids->d.ids());
    b.output_rows = out.Gather(ids->c.ids);
    return b;
  };

  Rng eval_rng(seed + 1);
  Ids eval_ids;
  CandidateBatch<float> eval = make_batch(256, 0, true, &eval_rng, &eval_ids);
  ASSERT_OK_AND_ASSIGN(float initial, model.Loss(dense, eval));
  EXPECT_NEAR(initial, std::log(40.0), 0.1);

  CandidateGradients<float> g;
  for (int step = 0; step < 1500; ++step) {
    Ids ids;
    CandidateBatch<float> b = make_batch(64, 16, false, &rng, &ids);
    ASSERT_OK(model.TrainStep(dense, b, &g));
    dense_opt.Update(0, g.dense, absl::MakeSpan(dense));
    video.Apply(ids.v.ids(), g.video_rows);
    token.Apply(ids.t.ids(), g.token_rows);
    region.Apply(ids.r.ids(), g.region_rows);
    device.Apply(ids.d.ids(), g.device_rows);
    out.Apply(ids.c.ids, g.output_rows);
  }
  Ids final_ids;
  Rng final_rng(seed + 1);
  CandidateBatch<float> final_eval = make_batch(256, 0, true, &final_rng, &final_ids);
  ASSERT_OK_AND_ASSIGN(float final_loss, model.Loss(dense, final_eval));
  // Full-softmax cross-entropy on held-out users: from log 40 = 3.69 to < 0.15
  // (the planted next watch is deterministic, so the floor is 0).
  RecordProperty("final_loss", std::to_string(final_loss));
  EXPECT_LT(final_loss, 0.15f) << "initial " << initial;
}

// Ranking: click probability sigmoid(a_v + 3 (x1 - 0.5)), watch time
// exp(b_v) (1 + x2). The weighted-LR optimum is z* = log(p T / (1 - p));
// the model must come within 0.02 of z*'s loss on held-out impressions.
TEST(LearningTest, RankingModelLearnsPlantedExpectedWatchTime) {
  const uint64_t seed = vrec::testing::TestSeed(62);
  constexpr int kVideos = 20;
  Rng rng(seed);
  std::vector<double> a(kVideos), bv(kVideos);
  for (int v = 0; v < kVideos; ++v) {
    a[v] = 2 * rng.Uniform() - 1.5;
    bv[v] = 2 * rng.Uniform();
  }
  struct Impression {
    int64_t video;
    double x1, x2;
    float clicked, watch;
    double optimal_z;
  };
  auto draw = [&](Rng* r) {
    Impression im;
    im.video = static_cast<int64_t>(r->UniformInt(kVideos));
    im.x1 = 10 * r->Uniform();  // raw scales: the quantile normaliser maps to [0, 1)
    im.x2 = r->Exponential(1.0);
    const double c1 = im.x1 / 10, c2 = 1 - std::exp(-im.x2);
    const double p = 1 / (1 + std::exp(-(a[im.video] + 3 * (c1 - 0.5))));
    const double t = std::exp(bv[im.video]) * (1 + c2);
    im.clicked = r->Bernoulli(p) ? 1.f : 0.f;
    im.watch = im.clicked == 1.f ? static_cast<float>(t) : 0.f;
    im.optimal_z = std::log(p * t / (1 - p));
    return im;
  };
  // Fit the normalisers in one pass over a training stream.
  QuantileNormalizer::Builder q1(100), q2(100);
  for (int i = 0; i < 20000; ++i) {
    Impression im = draw(&rng);
    ASSERT_OK(q1.Add(im.x1));
    ASSERT_OK(q2.Add(im.x2));
  }
  RankingModelOptions o;
  o.tables = {{"video", 8}};
  o.categorical = {{"impression_video", "video", false, 0}};
  ASSERT_OK_AND_ASSIGN(auto n1, q1.Build());
  ASSERT_OK_AND_ASSIGN(auto n2, q2.Build());
  o.continuous = {{"x1", n1}, {"x2", n2}};
  o.tower = {32, 16};
  ASSERT_OK_AND_ASSIGN(auto model, RankingModel<float>::Create(o));
  std::vector<float> dense(model.layout().size());
  model.InitializeDense(seed, absl::MakeSpan(dense));
  const float lr = 0.05f;
  Adagrad<float> dense_opt(model.layout().size(), lr);
  Table video(kVideos, 8, 0.1f, &rng, lr);

  auto make_batch = [&](int n, Rng* r, IdDeduplicator* ids, double* optimal_loss) {
    RankingBatch<float> b;
    b.batch_size = n;
    b.categorical.resize(1);
    b.continuous.resize(n, 2);
    std::vector<double> zs, ys, ws;
    for (int i = 0; i < n; ++i) {
      Impression im = draw(r);
      ids->AddList({&im.video, 1}, &b.categorical[0]);
      b.continuous(i, 0) = static_cast<float>(im.x1);
      b.continuous(i, 1) = static_cast<float>(im.x2);
      b.clicked.push_back(im.clicked);
      b.watch_time.push_back(im.watch);
      zs.push_back(im.optimal_z);
      ys.push_back(im.clicked);
      ws.push_back(im.clicked == 1.f ? im.watch : 1.0);
    }
    b.table_rows = {video.Gather(ids->ids())};
    if (optimal_loss != nullptr) {
      *optimal_loss = WeightedLogisticLoss<double>(zs.data(), ys.data(), ws.data(), n, nullptr);
    }
    return b;
  };

  RankingGradients<float> g;
  for (int step = 0; step < 800; ++step) {
    IdDeduplicator ids;
    RankingBatch<float> b = make_batch(128, &rng, &ids, nullptr);
    ASSERT_OK(model.TrainStep(dense, b, &g));
    dense_opt.Update(0, g.dense, absl::MakeSpan(dense));
    video.Apply(ids.ids(), g.table_rows[0]);
  }
  Rng eval_rng(seed + 1);
  IdDeduplicator eval_ids;
  double optimal = 0;
  RankingBatch<float> eval = make_batch(8000, &eval_rng, &eval_ids, &optimal);
  ASSERT_OK_AND_ASSIGN(float loss, model.Loss(dense, eval));
  RecordProperty("final_loss", std::to_string(loss));
  RecordProperty("optimal_loss", std::to_string(optimal));
  EXPECT_LT(loss, optimal + 0.02) << "optimal " << optimal;
  // A constant predictor is far worse: the features matter.
  std::vector<float> zero_dense(dense.size(), 0.f);
  ASSERT_OK_AND_ASSIGN(float constant, model.Loss(zero_dense, eval));
  EXPECT_GT(constant, optimal + 0.1) << "the planted function is too easy";
}

}  // namespace
}  // namespace vrec::model
