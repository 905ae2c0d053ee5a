// Export and serving: a bundle from a checkpoint holds exactly the trained
// weights, the recommender's scores equal offline scoring of the same model,
// and the HTTP server answers, refuses bad requests and reloads bundles.
#include <algorithm>
#include <cmath>

#include "common/file_util.h"
#include "data/world.h"
#include "glog/logging.h"
#include "models/candidate_tower.h"
#include "models/ranking_scorer.h"
#include "serve/bundle.h"
#include "serve/http_server.h"
#include "serve/recommender.h"
#include "testutil/testutil.h"
#include "testutil/tiny_world.h"
#include "train/job.h"

// Last: <resolv.h>, which it includes, defines _res, a name Eigen uses.
#include <httplib.h>

namespace vrec::serve {
namespace {

struct Trained {
  testing::ScratchDir dir;
  std::string data, candidate_model, candidate_ckpt, ranking_model, ranking_ckpt;
};

// A small world, both models trained once (model folders and checkpoints).
const Trained& Models() {
  static const Trained* t = [] {
    auto* t = new Trained();
    testing::TinyWorldOptions wo;
    wo.seed = 11;
    wo.videos = 500;
    wo.users = 500;
    wo.tokens = 200;
    wo.topics = 6;
    wo.shards = 2;
    wo.test_users = 100;
    t->data = testing::TinyDataset(wo);
    for (const std::string kind : {"candidate", "ranking"}) {
      train::TrainOptions o;
      o.data_dir = t->data;
      o.model = kind;
      o.model_dir = t->dir.File(kind + "-model");
      o.checkpoint.dir = t->dir.File(kind + "-ckpt");
      o.server.servers = 2;
      o.worker.workers = 1;
      o.worker.batch_size = 64;
      o.worker.epochs = 2;
      o.coordinator.progress_seconds = 60;
      o.coordinator.ps_stats_seconds = 0;
      o.coordinator.final_eval = false;
      o.candidate.model.embedding_dim = 16;
      o.candidate.model.tower = {32, 16};
      o.candidate.model.output_dim = 16;
      o.candidate.sampler.set_kind(SamplerConfig::UNIFORM);
      o.candidate.sampler.set_num_negatives(32);
      o.candidate.optimizer.set_kind(OptimizerConfig::ADAM);
      o.candidate.optimizer.set_learning_rate(0.01f);
      o.ranking.embedding_dim = 8;
      o.ranking.tower = {16};
      o.ranking.num_quantiles = 10;
      o.ranking.optimizer = o.candidate.optimizer;
      auto summary = train::TrainLocal(o, nullptr);
      CHECK(summary.ok()) << summary.status();
      (kind == "candidate" ? t->candidate_model : t->ranking_model) = o.model_dir;
      (kind == "candidate" ? t->candidate_ckpt : t->ranking_ckpt) = o.checkpoint.dir;
    }
    return t;
  }();
  return *t;
}

StatusOr<ServingBundle> Export(const std::string& out, bool ranking = true) {
  ExportOptions o;
  o.candidate = Models().candidate_ckpt;
  if (ranking) o.ranking = Models().ranking_ckpt;
  o.out = out;
  return ExportBundle(o);
}

TEST(ExportTest, TheBundleHoldsExactlyTheTrainedWeights) {
  testing::ScratchDir dir;
  ASSERT_OK_AND_ASSIGN(ServingBundle b, Export(dir.File("bundle")));
  EXPECT_EQ(b.num_videos(), 500u);
  EXPECT_EQ(b.index().kind(), "flat");
  EXPECT_EQ(b.index().recall_at_100(), 1.0);
  EXPECT_EQ(b.index().query_source(), "test examples");
  ASSERT_OK_AND_ASSIGN(auto bundle, LoadedBundle::Load(dir.File("bundle")));
  // Every row of the checkpoint-exported model equals the model folder the
  // same run saved from its live servers, bit for bit.
  for (const auto& [exported, saved_dir] :
       {std::make_pair(bundle->candidate(), Models().candidate_model),
        std::make_pair(bundle->ranking(), Models().ranking_model)}) {
    ASSERT_OK_AND_ASSIGN(auto saved, models::SavedModel::Open(saved_dir));
    ASSERT_EQ(exported->spec().config.tables_size(), saved->spec().config.tables_size());
    for (int t = 0; t < saved->spec().config.tables_size(); ++t) {
      EXPECT_EQ(exported->rows(t), saved->rows(t)) << saved->spec().config.tables(t).name();
    }
    // Sparse rows: every video id (and the ids around them) in every table.
    for (int t = 0; t < saved->spec().config.tables_size(); ++t) {
      const TableConfig& tc = saved->spec().config.tables(t);
      if (tc.dense()) continue;
      std::vector<uint64_t> keys;
      for (const Video& v : bundle->videos()) keys.push_back(static_cast<uint64_t>(v.id));
      for (uint64_t k = 0; k < 300; ++k) keys.push_back(k);
      std::vector<float> a(keys.size() * tc.dim()), c(keys.size() * tc.dim());
      ASSERT_OK(saved->Pull(t, keys, a.data()));
      ASSERT_OK(exported->Pull(t, keys, c.data()));
      EXPECT_EQ(a, c) << tc.name();
    }
    std::vector<float> a, c;
    ASSERT_OK(models::GatherDense(saved->spec(), saved.get(), &a));
    ASSERT_OK(models::GatherDense(exported->spec(), exported, &c));
    EXPECT_EQ(a, c);
  }
  // Bad inputs.
  ExportOptions o;
  o.candidate = Models().ranking_ckpt;  // the wrong model
  o.out = dir.File("wrong");
  EXPECT_THAT(ExportBundle(o), StatusIs(absl::StatusCode::kInvalidArgument, "holds a ranking"));
  EXPECT_FALSE(PathExists(dir.File("wrong")));
  o.candidate = dir.File("nothing");
  EXPECT_THAT(ExportBundle(o), StatusIs(absl::StatusCode::kNotFound, "neither a trained-model"));
  EXPECT_THAT(LoadedBundle::Load(dir.path()), StatusIs(absl::StatusCode::kNotFound, "BUNDLE"));
}

// An IVF bundle: serving's search (Eigen coarse step, faiss list scans) finds
// what exact search finds, as the recorded recall says.
TEST(ExportTest, IvfSearchAgreesWithExactSearch) {
  testing::ScratchDir dir;
  ExportOptions o;
  o.candidate = Models().candidate_model;  // a model folder works too
  o.out = dir.File("bundle");
  o.index = "ivf";
  ASSERT_OK_AND_ASSIGN(ServingBundle b, ExportBundle(o));
  EXPECT_EQ(b.index().kind(), "ivf");
  EXPECT_GE(b.index().recall_at_100(), 0.95);
  ASSERT_OK_AND_ASSIGN(auto bundle, LoadedBundle::Load(o.out));
  ASSERT_OK_AND_ASSIGN(auto tower,
                       models::UserTower::Create(bundle->candidate()->spec(), bundle->candidate()));
  std::vector<int64_t> ids;
  for (const Video& v : bundle->videos()) ids.push_back(v.id);
  ASSERT_OK_AND_ASSIGN(model::RowMatrix<float> rows, models::CorpusRows(*tower, ids));
  // Queries: corpus rows as user vectors.
  uint64_t hits = 0, total = 0;
  for (int64_t qi = 0; qi < rows.rows(); qi += 25) {
    std::vector<float> q(rows.row(qi).data(), rows.row(qi).data() + rows.cols());
    q.back() = 1.f;
    std::vector<int64_t> labels;
    std::vector<float> scores;
    ASSERT_OK(bundle->Search(q.data(), 1, 20, &labels, &scores));
    std::vector<std::pair<float, int64_t>> exact;
    for (int64_t i = 0; i < rows.rows(); ++i) {
      float s = 0;
      for (int64_t j = 0; j < rows.cols(); ++j) s += q[j] * rows(i, j);
      exact.emplace_back(s, i);
    }
    std::partial_sort(exact.begin(), exact.begin() + 20, exact.end(), std::greater<>());
    for (int j = 0; j < 20; ++j) {
      hits += std::count(labels.begin(), labels.end(), exact[j].second);
      ++total;
    }
    for (size_t j = 1; j < scores.size(); ++j) EXPECT_GE(scores[j - 1], scores[j]);
  }
  EXPECT_GE(static_cast<double>(hits) / total, 0.9);
}

// The recommender's retrieval scores and ranking scores equal offline scoring
// of the trained model folders (exact dot products; RankingScorer).
TEST(RecommenderTest, ScoresEqualOfflineScoringOfTheSameModel) {
  testing::ScratchDir dir;
  ASSERT_OK(Export(dir.File("bundle")).status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<LoadedBundle> loaded,
                       LoadedBundle::Load(dir.File("bundle")));
  std::shared_ptr<const LoadedBundle> bundle = std::move(loaded);
  RecommenderOptions ro;
  ro.num_candidates = 50;
  ASSERT_OK_AND_ASSIGN(auto rec, Recommender::Create(bundle, ro));

  RecommendRequest q;
  for (int i = 0; i < 5; ++i) q.watch_history.push_back(bundle->videos()[i * 7].id);
  q.age = 0.3f;
  q.num = 50;
  ASSERT_OK_AND_ASSIGN(std::vector<RecommendItem> items, rec->Recommend(q));
  ASSERT_EQ(items.size(), 50u);
  for (size_t i = 1; i < items.size(); ++i) EXPECT_GE(items[i - 1].score, items[i].score);
  for (const auto& it : items) {
    EXPECT_EQ(std::count(q.watch_history.begin(), q.watch_history.end(), it.video), 0);
    EXPECT_NEAR(it.expected_watch_time, std::exp(it.score), 1e-3 * std::exp(it.score));
  }

  // Offline: the user vector and exact scores from the saved candidate model.
  ASSERT_OK_AND_ASSIGN(auto cand, models::SavedModel::Open(Models().candidate_model));
  ASSERT_OK_AND_ASSIGN(auto tower, models::UserTower::Create(cand->spec(), cand.get()));
  std::vector<int64_t> ids;
  for (const Video& v : bundle->videos()) ids.push_back(v.id);
  ASSERT_OK_AND_ASSIGN(model::RowMatrix<float> rows, models::CorpusRows(*tower, ids));
  const CandidateExample user = rec->UserExample(q);
  model::RowMatrix<float> u;
  ASSERT_OK(tower->UserVectors(absl::MakeConstSpan(&user, 1), true, &u));
  std::vector<std::pair<float, int32_t>> exact;
  for (int64_t i = 0; i < rows.rows(); ++i) {
    if (std::count(q.watch_history.begin(), q.watch_history.end(), ids[i]) > 0) continue;
    double s = rows(i, u.cols());
    for (int64_t j = 0; j < u.cols(); ++j) s += double{u(0, j)} * rows(i, j);
    exact.emplace_back(static_cast<float>(s), static_cast<int32_t>(i));
  }
  std::sort(exact.rbegin(), exact.rend());
  exact.resize(50);
  std::vector<int32_t> top;
  for (const auto& [score, i] : exact) top.push_back(i);
  // Same candidate set, same retrieval scores.
  std::vector<int64_t> got, want;
  for (const auto& it : items) got.push_back(it.video);
  for (int32_t i : top) want.push_back(ids[i]);
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  for (const auto& it : items) {
    const int32_t i = bundle->IndexOf(it.video);
    auto e = std::find_if(exact.begin(), exact.end(), [&](const auto& p) { return p.second == i; });
    ASSERT_NE(e, exact.end());
    EXPECT_NEAR(it.retrieval_score, e->first, 1e-4 * (1 + std::abs(e->first)));
  }
  // Ranking: the saved ranking model's logits on the same impressions.
  ASSERT_OK_AND_ASSIGN(auto rank, models::SavedModel::Open(Models().ranking_model));
  ASSERT_OK_AND_ASSIGN(auto scorer, models::RankingScorer::Create(rank->spec(), rank.get()));
  std::vector<int32_t> cands;
  for (const auto& it : items) cands.push_back(bundle->IndexOf(it.video));
  std::vector<float> z;
  ASSERT_OK(scorer->Logits(rec->Impressions(q, cands), &z));
  // The page forward associates the first layer's sums differently: float rounding.
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_NEAR(items[i].score, z[i], 1e-5 * (1 + std::abs(z[i]))) << i;
  }

  // Bad requests.
  q.num = 0;
  EXPECT_THAT(rec->Recommend(q), StatusIs(absl::StatusCode::kInvalidArgument, "num"));
}

// The requests' handling without a socket (what the server routes to, and
// what tests/fuzz/http_fuzz.cc drives).
TEST(RecommendationServiceTest, AnswersRoutesAndLimitsWithoutASocket) {
  testing::ScratchDir dir;
  ASSERT_OK(Export(dir.File("bundle")).status());
  ServeOptions so;
  so.bundle_dir = dir.File("bundle");
  so.max_body_bytes = 100;
  ASSERT_OK_AND_ASSIGN(auto service, RecommendationService::Create(so));
  HttpReply ok = service->Handle("POST", "/v1/recommend", R"({"num": 3})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(ok.body)["items"].size(), 3u);
  EXPECT_EQ(service->Handle("HEAD", "/healthz", "").status, 200);  // as cpp-httplib routes it
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", "/v1/recommend"}, {"POST", "/healthz"}, {"GET", "/v1/recommend/"}}) {
    HttpReply missing = service->Handle(method, path, "");
    EXPECT_EQ(missing.status, 404) << method << " " << path;
    EXPECT_THAT(missing.body, ::testing::HasSubstr("no such endpoint: " + method + " " + path));
  }
  HttpReply huge = service->Handle("POST", "/v1/recommend", std::string(101, ' '));
  EXPECT_EQ(huge.status, 413);
  EXPECT_THAT(huge.body, ::testing::HasSubstr("over 100 bytes"));
  HttpReply metrics = service->Handle("GET", "/metrics", "");
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4");
  EXPECT_THAT(metrics.body,
              ::testing::HasSubstr("vrec_requests_total{path=\"other\",code=\"404\"} 3"));
  EXPECT_THAT(metrics.body,
              ::testing::HasSubstr("vrec_requests_total{path=\"other\",code=\"413\"} 1"));
  EXPECT_THAT(metrics.body, ::testing::HasSubstr("vrec_recommend_latency_seconds_count 1"));
}

TEST(HttpServerTest, AnswersRefusesBadRequestsAndReloadsBundles) {
  testing::ScratchDir dir;
  ASSERT_OK_AND_ASSIGN(ServingBundle first, Export(dir.File("bundle")));
  ServeOptions so;
  so.bundle_dir = dir.File("bundle");
  so.port = 0;
  so.threads = 2;
  so.reload_seconds = 0;
  ASSERT_OK_AND_ASSIGN(auto server, RecommendationServer::Start(so));
  httplib::Client client("127.0.0.1", server->port());
  auto ok = client.Post("/v1/recommend", R"({"watch_history": [1, 2], "age": 30, "num": 7})",
                        "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  nlohmann::json body = nlohmann::json::parse(ok->body);
  ASSERT_EQ(body["items"].size(), 7u);
  EXPECT_EQ(body["version"], first.version());
  EXPECT_TRUE(body["items"][0].contains("expected_watch_time"));
  for (const auto& [request, message] : std::vector<std::pair<std::string, std::string>>{
           {"not json", "not JSON"},
           {"[1]", "JSON object"},
           {R"({"watch_history": "1,2"})", "watch_history must be an array"},
           {R"({"watch_history": [1, 2.5]})", "watch_history[1]"},
           {R"({"age": 7})", "age = 7 is outside"},
           {R"({"num": 0})", "num = 0"},
           {R"({"histroy": []})", "unknown field 'histroy'"}}) {
    auto bad = client.Post("/v1/recommend", request, "application/json");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400) << request;
    EXPECT_THAT(bad->body, ::testing::HasSubstr(message)) << request;
  }
  auto missing = client.Get("/v2/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  // A path that is not UTF-8 is quoted in the reply, not thrown about.
  auto binary = client.Get("/%FF%FE");
  ASSERT_TRUE(binary);
  EXPECT_EQ(binary->status, 404);
  EXPECT_FALSE(nlohmann::json::parse(binary->body, nullptr, false).is_discarded());
  // Bodies and id lists are bounded.
  std::string ids = "[1";
  for (size_t i = 1; i <= kMaxRequestIds; ++i) ids += ",1";
  auto long_list =
      client.Post("/v1/recommend", "{\"watch_history\": " + ids + "]}", "application/json");
  ASSERT_TRUE(long_list);
  EXPECT_EQ(long_list->status, 400);
  EXPECT_THAT(long_list->body, ::testing::HasSubstr("at most 10000"));
  auto huge =
      client.Post("/v1/recommend", std::string(so.max_body_bytes + 1, ' '), "application/json");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  EXPECT_THAT(huge->body, ::testing::HasSubstr("over 1048576 bytes"));
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body,
              ::testing::HasSubstr("vrec_requests_total{path=\"/v1/recommend\",code=\"400\"} 8"));
  EXPECT_THAT(metrics->body, ::testing::HasSubstr("vrec_recommend_latency_seconds_count 9"));

  // A new bundle (without the ranking model) replaces the old one in place.
  absl::SleepFor(absl::Seconds(1));  // the version names the second
  ASSERT_OK_AND_ASSIGN(ServingBundle second, Export(dir.File("bundle"), /*ranking=*/false));
  ASSERT_NE(second.version(), first.version());
  auto reload = client.Post("/v1/reload", "", "application/json");
  ASSERT_TRUE(reload);
  EXPECT_EQ(reload->status, 200);
  auto after = client.Post("/v1/recommend", R"({"num": 3})", "application/json");
  ASSERT_TRUE(after);
  body = nlohmann::json::parse(after->body);
  EXPECT_EQ(body["version"], second.version());
  EXPECT_EQ(body["items"][0]["expected_watch_time"].get<double>(), 0.0);  // no ranking model
  server->Stop();
}

}  // namespace
}  // namespace vrec::serve
