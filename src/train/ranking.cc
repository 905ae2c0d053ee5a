#include "train/ranking.h"

#include <limits>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "data/record_reader.h"
#include "data/weighted_loss.h"
#include "model/quantile_normalizer.h"
#include "train/evaluate.h"
#include "train/metrics.h"

namespace vrec::train {
namespace {

constexpr char kPrefix[] = "rank/";

// Model tables and categorical features, in order (see the header).
struct TableDef {
  const char* name;
  int dim_kind;  // 0: embedding_dim, 1: embedding_dim / 2, 2: 8
};
constexpr TableDef kTables[] = {
    {"video", 0}, {"token", 0}, {"topic", 1}, {"region", 2}, {"device", 2}};

int TableDim(const TableDef& t, int embedding_dim) {
  return t.dim_kind == 0 ? embedding_dim : t.dim_kind == 1 ? std::max(1, embedding_dim / 2) : 8;
}

void RawContinuous(const RankingExample& e, float* out) {
  out[0] = e.time_since_last_watch();
  out[1] = e.previous_impressions();
  out[2] = e.video_age();
  out[3] = e.topic_watch_share();
  out[4] = e.age();
  out[5] = e.gender();
}

model::RankingModelOptions BaseOptions(int embedding_dim, int max_history,
                                       const std::vector<int>& tower, bool weighted) {
  model::RankingModelOptions o;
  for (const TableDef& t : kTables) o.tables.push_back({t.name, TableDim(t, embedding_dim)});
  o.categorical = {{"impression_video", "video", false, 0},
                   {"watched_videos", "video", true, max_history},
                   {"search_tokens", "token", true, max_history},
                   {"video_topic", "topic", false, 0},
                   {"region", "region", false, 0},
                   {"device", "device", false, 0}};
  o.tower = tower;
  o.weighted = weighted;
  return o;
}

// Appends the ids of categorical feature `f` of `e` (in feature order).
template <typename Add>
void FeatureIds(const RankingExample& e, int f, int max_history, const Add& add) {
  switch (f) {
    case 0:
      add(e.impression_video());
      break;
    case 1:
      for (int i = std::max(0, e.watch_history_size() - max_history); i < e.watch_history_size();
           ++i) {
        add(e.watch_history(i));
      }
      break;
    case 2:
      for (int i = std::max(0, e.search_tokens_size() - max_history); i < e.search_tokens_size();
           ++i) {
        add(e.search_tokens(i));
      }
      break;
    case 3:
      if (e.video_topic() != 0) add(e.video_topic());
      break;
    case 4:
      if (e.region() != 0) add(e.region());
      break;
    case 5:
      if (e.device() != 0) add(e.device());
      break;
  }
}

}  // namespace

const std::vector<std::string>& RankingContinuousFeatures() {
  static const std::vector<std::string> kNames = {"time_since_last_watch",
                                                  "previous_impressions",
                                                  "video_age",
                                                  "topic_watch_share",
                                                  "age",
                                                  "gender"};
  return kNames;
}

StatusOr<ModelSpec> RankingSpec(const RankingSpecOptions& options) {
  if (options.embedding_dim < 1 || options.max_history < 1 || options.num_quantiles < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ranking model: embedding_dim (", options.embedding_dim, "), max_history (",
        options.max_history, ") and num_quantiles (", options.num_quantiles, ") must be positive"));
  }
  model::RankingModelOptions mo =
      BaseOptions(options.embedding_dim, options.max_history, options.tower, options.weighted);
  // The layout does not depend on the quantiles: placeholders to build it.
  for (const std::string& name : RankingContinuousFeatures()) {
    mo.continuous.push_back({name, model::QuantileNormalizer::FromQuantiles({0, 1}).value()});
  }
  VREC_ASSIGN_OR_RETURN(auto probe, model::RankingModel<float>::Create(mo));
  ModelSpec spec;
  spec.kind = "ranking";
  spec.config.set_seed(options.seed);
  RankingModelConfig* r = spec.config.mutable_ranking();
  r->set_max_history(options.max_history);
  r->set_embedding_dim(options.embedding_dim);
  for (int w : options.tower) r->add_tower(w);
  r->set_weighted(options.weighted);
  r->set_num_quantiles(options.num_quantiles);
  for (const auto& t : mo.tables) {
    AddSparseTable(&spec.config, absl::StrCat(kPrefix, t.name), static_cast<uint32_t>(t.dim),
                   options.embedding_init_scale, options.optimizer);
  }
  AddDenseTables(probe.layout(), "rank", options.optimizer, &spec);
  return spec;
}

StatusOr<model::RankingModelOptions> RankingOptionsFromSpec(const ModelSpec& spec) {
  if (spec.kind != "ranking") {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a ranking model, got kind '", spec.kind, "'"));
  }
  const RankingModelConfig& r = spec.config.ranking();
  model::RankingModelOptions mo =
      BaseOptions(static_cast<int>(r.embedding_dim()), static_cast<int>(r.max_history()),
                  std::vector<int>(r.tower().begin(), r.tower().end()), r.weighted());
  const auto& names = RankingContinuousFeatures();
  if (spec.quantiles.size() != names.size()) {
    return absl::FailedPreconditionError(absl::StrCat("ranking model: ", spec.quantiles.size(),
                                                      " fitted quantile lists, need ", names.size(),
                                                      " (fit them on the training data first)"));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (spec.quantiles[i].feature() != names[i]) {
      return absl::FailedPreconditionError(absl::StrCat("ranking model: quantiles of '",
                                                        spec.quantiles[i].feature(), "' where '",
                                                        names[i], "' belongs"));
    }
    VREC_ASSIGN_OR_RETURN(
        auto n, model::QuantileNormalizer::FromQuantiles(std::vector<double>(
                    spec.quantiles[i].quantiles().begin(), spec.quantiles[i].quantiles().end())));
    mo.continuous.push_back({names[i], std::move(n)});
  }
  return mo;
}

StatusOr<std::vector<QuantileInfo>> FitRankingQuantiles(const std::vector<std::string>& files,
                                                        int num_quantiles, uint64_t seed) {
  const auto& names = RankingContinuousFeatures();
  std::vector<model::QuantileNormalizer::Builder> builders;
  for (size_t i = 0; i < names.size(); ++i) {
    builders.emplace_back(num_quantiles, 1 << 16, HashCombine(seed, i));
  }
  VREC_ASSIGN_OR_RETURN(auto reader, ShardedReader::Open(files));
  RankingExample e;
  float raw[6];
  while (true) {
    VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&e));
    if (!more) break;
    RawContinuous(e, raw);
    for (size_t i = 0; i < names.size(); ++i) {
      Status s = builders[i].Add(raw[i]);
      if (!s.ok()) {
        return Status(s.code(), absl::StrCat("feature ", names[i], " of example ", e.example_id(),
                                             ": ", s.message()));
      }
    }
  }
  std::vector<QuantileInfo> out;
  for (size_t i = 0; i < names.size(); ++i) {
    auto n = builders[i].Build();
    if (!n.ok()) {
      return absl::FailedPreconditionError("no ranking training examples to fit quantiles on");
    }
    QuantileInfo q;
    q.set_feature(names[i]);
    for (double v : n->quantiles()) q.add_quantiles(v);
    out.push_back(std::move(q));
  }
  return out;
}

void RankingInputs::Build(absl::Span<const RankingExample> examples,
                          const model::RankingModelOptions& options,
                          model::RankingBatch<float>* batch) {
  model::RankingBatch<float>& b = *batch;
  const int n = static_cast<int>(examples.size());
  const int max_history = options.categorical[1].max_ids;
  tables.resize(options.tables.size());
  for (auto& t : tables) t.Clear();
  b.batch_size = n;
  b.categorical.assign(options.categorical.size(), model::IndexLists());
  b.continuous.resize(n, static_cast<int64_t>(options.continuous.size()));
  b.clicked.resize(n);
  b.watch_time.resize(n);
  // Feature f uses table kFeatureTable[f] (see BaseOptions).
  static constexpr int kFeatureTable[] = {0, 0, 1, 2, 3, 4};
  float raw[6];
  for (int j = 0; j < n; ++j) {
    const RankingExample& e = examples[j];
    for (int f = 0; f < static_cast<int>(options.categorical.size()); ++f) {
      model::IdDeduplicator& d = tables[kFeatureTable[f]];
      model::IndexLists& lists = b.categorical[f];
      FeatureIds(e, f, max_history,
                 [&](uint64_t id) { lists.indices.push_back(d.Add(static_cast<int64_t>(id))); });
      lists.offsets.push_back(static_cast<int32_t>(lists.indices.size()));
    }
    RawContinuous(e, raw);
    for (int c = 0; c < 6; ++c) b.continuous(j, c) = raw[c];
    b.clicked[j] = e.clicked() ? 1.f : 0.f;
    b.watch_time[j] = e.watch_time();
  }
  b.table_rows.resize(options.tables.size());
  for (size_t t = 0; t < options.tables.size(); ++t) {
    b.table_rows[t].resize(static_cast<int64_t>(tables[t].ids().size()), options.tables[t].dim);
  }
}

struct RankingWorker::Step {
  explicit Step(const ModelSpec& spec) : dense_exchange(spec) {}
  std::vector<RankingExample> examples;
  RankingInputs inputs;
  model::RankingBatch<float> batch;
  std::vector<std::vector<uint64_t>> keys;
  std::vector<ps::PsRequest> pulls;
  DenseExchange dense_exchange;
  std::vector<float> dense;
};

RankingWorker::~RankingWorker() = default;

StatusOr<std::unique_ptr<RankingWorker>> RankingWorker::Create(
    const ModelSpec* spec, ps::PsClient* client, const RankingWorkerOptions& options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", options.batch_size));
  }
  VREC_ASSIGN_OR_RETURN(auto mo, RankingOptionsFromSpec(*spec));
  VREC_ASSIGN_OR_RETURN(auto model, model::RankingModel<float>::Create(mo));
  std::unique_ptr<RankingWorker> w(new RankingWorker());
  w->spec_ = spec;
  w->client_ = client;
  w->options_ = options;
  w->model_ = std::make_unique<model::RankingModel<float>>(std::move(model));
  for (const auto& t : w->model_->options().tables) {
    const int index = spec->TableIndex(absl::StrCat(kPrefix, t.name));
    if (index < 0) return absl::InvalidArgumentError(absl::StrCat("no PS table for ", t.name));
    w->table_index_.push_back(index);
  }
  w->progress_.set_worker(options.worker);
  for (auto& step : w->steps_) step = std::make_unique<Step>(*spec);
  return w;
}

Status RankingWorker::Run(ExampleSource<RankingExample>* stream, const std::atomic<bool>* stop,
                          const std::function<void(const WorkerProgress&)>& report) {
  stream_ = stream;
  return RunLoop(options_.loop, client_, stop, report);
}

StatusOr<bool> RankingWorker::PrepareSlot(int slot) {
  Step& step = *steps_[slot];
  int want = options_.batch_size;
  if (options_.max_examples > 0) {
    if (examples_read_ >= options_.max_examples) return false;
    want = static_cast<int>(std::min<uint64_t>(want, options_.max_examples - examples_read_));
  }
  step.examples.resize(static_cast<size_t>(want));
  int n = 0;
  while (n < want) {
    VREC_ASSIGN_OR_RETURN(bool more, stream_->Next(&step.examples[n]));
    if (!more) break;
    ++examples_read_;
    ++n;
  }
  if (n == 0) return false;
  const model::RankingModelOptions& mo = model_->options();
  step.inputs.Build(absl::MakeConstSpan(step.examples.data(), static_cast<size_t>(n)), mo,
                    &step.batch);
  step.keys.resize(mo.tables.size());
  step.pulls.clear();
  for (size_t t = 0; t < mo.tables.size(); ++t) {
    const auto& ids = step.inputs.tables[t].ids();
    step.keys[t].assign(ids.begin(), ids.end());
    step.pulls.push_back(client_->Pull(PsTableOf(*spec_, table_index_[t]), step.keys[t],
                                       step.batch.table_rows[t].data()));
  }
  step.dense.resize(spec_->DenseSize());
  step.dense_exchange.StartPull(client_);
  return true;
}

Status RankingWorker::ComputeSlot(int slot, double* loss, int* examples) {
  Step& step = *steps_[slot];
  Status pulled;
  for (ps::PsRequest& r : step.pulls) {
    Status s = r.Wait();
    if (!s.ok() && pulled.ok()) pulled = s;
  }
  Status dense = step.dense_exchange.FinishPull(&step.dense);
  VREC_RETURN_IF_ERROR(pulled);
  VREC_RETURN_IF_ERROR(dense);
  VREC_RETURN_IF_ERROR(WaitPushes());
  VREC_ASSIGN_OR_RETURN(float l, model_->TrainStep(step.dense, step.batch, &grads_));
  *loss = l;
  *examples = step.batch.batch_size;
  for (size_t t = 0; t < step.keys.size(); ++t) {
    if (step.keys[t].empty()) continue;
    const auto& g = grads_.table_rows[t];
    pushes_.push_back(client_->Push(PsTableOf(*spec_, table_index_[t]), step.keys[t],
                                    absl::MakeConstSpan(g.data(), static_cast<size_t>(g.size()))));
  }
  for (ps::PsRequest& r : step.dense_exchange.Push(client_, grads_.dense)) {
    pushes_.push_back(std::move(r));
  }
  return absl::OkStatus();
}

void RankingWorker::ExampleIds(int slot, std::vector<uint64_t>* ids) const {
  const Step& step = *steps_[slot];
  ids->clear();
  for (int i = 0; i < step.batch.batch_size; ++i) ids->push_back(step.examples[i].example_id());
}

StatusOr<std::unique_ptr<RankingScorer>> RankingScorer::Create(const ModelSpec& spec,
                                                               ParameterSource* params) {
  VREC_ASSIGN_OR_RETURN(auto mo, RankingOptionsFromSpec(spec));
  VREC_ASSIGN_OR_RETURN(auto model, model::RankingModel<float>::Create(mo));
  std::unique_ptr<RankingScorer> r(new RankingScorer());
  r->params_ = params;
  r->model_ = std::make_unique<model::RankingModel<float>>(std::move(model));
  for (const auto& t : mo.tables) {
    const int index = spec.TableIndex(absl::StrCat(kPrefix, t.name));
    if (index < 0) return absl::InvalidArgumentError(absl::StrCat("no table for ", t.name));
    r->table_index_.push_back(index);
  }
  VREC_RETURN_IF_ERROR(GatherDense(spec, params, &r->dense_));
  return r;
}

Status RankingScorer::Logits(absl::Span<const RankingExample> examples, std::vector<float>* z) {
  const model::RankingModelOptions& mo = model_->options();
  // Eigen's GEMM runs 2-2.5x slower when the rows are not a multiple of its
  // 16-float panels (300 x 258 x 1024: 2.6 ms, 304 x 258 x 1024: 1.1 ms
  // here), so a batch is padded with copies of its last example.
  const size_t n = examples.size();
  if (n % 16 != 0) {
    padded_.assign(examples.begin(), examples.end());
    padded_.resize((n + 15) / 16 * 16, examples.back());
    examples = padded_;
  }
  inputs_.Build(examples, mo, &batch_);
  for (size_t t = 0; t < mo.tables.size(); ++t) {
    keys_.assign(inputs_.tables[t].ids().begin(), inputs_.tables[t].ids().end());
    VREC_RETURN_IF_ERROR(params_->Pull(table_index_[t], keys_, batch_.table_rows[t].data()));
  }
  VREC_RETURN_IF_ERROR(model_->Logits(dense_, batch_, z));
  z->resize(n);
  return absl::OkStatus();
}

StatusOr<nlohmann::json> EvaluateRanking(const ModelSpec& spec, ParameterSource* params,
                                         const std::string& data_dir,
                                         const DatasetManifest& manifest,
                                         const RankingEvalOptions& options) {
  VREC_ASSIGN_OR_RETURN(auto scorer, RankingScorer::Create(spec, params));
  // Clickbait videos (generated worlds), to see what each ranker puts first.
  absl::flat_hash_set<uint64_t> clickbait;
  if (!manifest.videos().empty()) {
    VREC_ASSIGN_OR_RETURN(auto videos, RecordReader::Open(JoinPath(data_dir, manifest.videos())));
    VideoInfo v;
    while (true) {
      VREC_ASSIGN_OR_RETURN(bool more, videos->NextMessage(&v));
      if (!more) break;
      if (v.clickbait()) clickbait.insert(v.video_id());
    }
  }
  struct Top {
    float score = -std::numeric_limits<float>::infinity();
    bool clickbait = false;
    float truth = -1;
    bool truth_clickbait = false;
  };
  std::map<uint64_t, Top> tops;
  uint64_t clickbait_impressions = 0;
  VREC_ASSIGN_OR_RETURN(auto reader,
                        ShardedReader::Open(ShardPaths(data_dir, manifest.ranking_test())));
  std::map<uint64_t, std::vector<ScoredImpression>> pages;
  std::vector<double> scores;
  std::vector<uint8_t> clicks;
  std::vector<RankingExample> batch;
  std::vector<float> logits;
  uint64_t seen = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return absl::OkStatus();
    VREC_RETURN_IF_ERROR(scorer->Logits(batch, &logits));
    for (size_t j = 0; j < batch.size(); ++j) {
      const RankingExample& e = batch[j];
      pages[e.page_id()].push_back({logits[j], e.clicked(), e.watch_time()});
      const bool cb = clickbait.contains(e.impression_video());
      clickbait_impressions += cb;
      Top& top = tops[e.page_id()];
      if (logits[j] > top.score) {
        top.score = logits[j];
        top.clickbait = cb;
      }
      if (e.true_expected_watch_time() > top.truth) {
        top.truth = e.true_expected_watch_time();
        top.truth_clickbait = cb;
      }
      scores.push_back(logits[j]);
      clicks.push_back(e.clicked() ? 1 : 0);
    }
    batch.clear();
    return absl::OkStatus();
  };
  RankingExample e;
  while (options.max_examples == 0 || seen < options.max_examples) {
    VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&e));
    if (!more) break;
    ++seen;
    batch.push_back(std::move(e));
    if (static_cast<int>(batch.size()) >= options.batch_size) VREC_RETURN_IF_ERROR(flush());
  }
  VREC_RETURN_IF_ERROR(flush());
  if (seen == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset ", data_dir, " has no ranking test examples"));
  }
  WeightedLoss loss;
  for (const auto& [page, impressions] : pages) loss.AddPage(impressions);
  nlohmann::json out = {{"impressions", seen},
                        {"pages", pages.size()},
                        {"pages_with_pairs", loss.pages},
                        {"weighted_per_user_loss", loss.Loss()},
                        {"auc", Auc(scores, clicks)}};
  if (!clickbait.empty()) {
    uint64_t top_cb = 0, truth_cb = 0;
    for (const auto& [page, top] : tops) {
      top_cb += top.clickbait;
      truth_cb += top.truth_clickbait;
    }
    out["clickbait"] = {{"top1_share", static_cast<double>(top_cb) / tops.size()},
                        {"impressions_share", static_cast<double>(clickbait_impressions) / seen},
                        {"oracle_top1_share", static_cast<double>(truth_cb) / tops.size()}};
  }
  nlohmann::json oracle = OracleFigures(data_dir, manifest);
  if (!oracle.is_null() && oracle.contains("weighted_per_user_loss")) {
    out["oracle"] = {{"weighted_per_user_loss", oracle["weighted_per_user_loss"]}};
  }
  return out;
}

}  // namespace vrec::train
