#include "models/ranking_spec.h"

#include <glog/logging.h>

#include <limits>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "data/record_reader.h"
#include "data/weighted_loss.h"
#include "model/quantile_normalizer.h"

namespace vrec::models {
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

// FeatureIds for the features of a page's impressions (not the user's).
template <typename Add>
void ImpressionFeatureIds(const RankingImpression& i, int f, const Add& add) {
  switch (f) {
    case 0:
      add(i.video);
      break;
    case 3:
      if (i.topic != 0) add(i.topic);
      break;
    default:
      LOG(FATAL) << "feature " << f << " is the user's";
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
  spec.kind = kRankingKind;
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
  VREC_RETURN_IF_ERROR(spec.ExpectKind(kRankingKind));
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
      return absl::FailedPreconditionError(
          "the dataset has no ranking training examples to fit the quantiles on (a generated "
          "world whose --test_users holds out every user has none: regenerate it with fewer)");
    }
    QuantileInfo q;
    q.set_feature(names[i]);
    for (double v : n->quantiles()) q.add_quantiles(v);
    q.set_count(static_cast<uint64_t>(builders[i].count()));
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

const std::vector<bool>& RankingUserCategorical() {
  // impression_video, watched_videos, search_tokens, video_topic, region, device
  static const std::vector<bool> kUser = {false, true, true, false, true, true};
  return kUser;
}

const std::vector<bool>& RankingUserContinuous() {
  // time_since_last_watch, previous_impressions, video_age, topic_watch_share, age, gender
  static const std::vector<bool> kUser = {false, false, false, false, true, true};
  return kUser;
}

RankingExample ImpressionExample(const RankingExample& user, const RankingImpression& i) {
  RankingExample e;
  e.set_impression_video(i.video);
  e.set_video_topic(i.topic);
  e.set_region(user.region());
  e.set_device(user.device());
  *e.mutable_watch_history() = user.watch_history();
  *e.mutable_search_tokens() = user.search_tokens();
  e.set_time_since_last_watch(i.time_since_last_watch);
  e.set_previous_impressions(i.previous_impressions);
  e.set_video_age(i.video_age);
  e.set_topic_watch_share(i.topic_watch_share);
  e.set_age(user.age());
  e.set_gender(user.gender());
  return e;
}

void RankingInputs::BuildPage(const RankingExample& user,
                              absl::Span<const RankingImpression> impressions,
                              const model::RankingModelOptions& options,
                              model::RankingPage<float>* page) {
  model::RankingPage<float>& p = *page;
  const int n = static_cast<int>(impressions.size());
  const int max_history = options.categorical[1].max_ids;
  const std::vector<bool>& user_features = RankingUserCategorical();
  tables.resize(options.tables.size());
  for (auto& t : tables) t.Clear();
  p.num_impressions = n;
  p.categorical.resize(options.categorical.size());
  for (auto& lists : p.categorical) lists.Clear();
  // Feature f uses table kFeatureTable[f] (see BaseOptions).
  static constexpr int kFeatureTable[] = {0, 0, 1, 2, 3, 4};
  for (int f = 0; f < static_cast<int>(options.categorical.size()); ++f) {
    model::IdDeduplicator& d = tables[kFeatureTable[f]];
    model::IndexLists& lists = p.categorical[f];
    auto add = [&](uint64_t id) { lists.indices.push_back(d.Add(static_cast<int64_t>(id))); };
    if (user_features[f]) {
      FeatureIds(user, f, max_history, add);
      lists.offsets.push_back(static_cast<int32_t>(lists.indices.size()));
      continue;
    }
    for (const RankingImpression& i : impressions) {
      ImpressionFeatureIds(i, f, add);
      lists.offsets.push_back(static_cast<int32_t>(lists.indices.size()));
    }
  }
  p.continuous.resize(n, static_cast<int64_t>(options.continuous.size()));
  for (int j = 0; j < n; ++j) {
    const RankingImpression& i = impressions[j];
    p.continuous(j, 0) = i.time_since_last_watch;
    p.continuous(j, 1) = i.previous_impressions;
    p.continuous(j, 2) = i.video_age;
    p.continuous(j, 3) = i.topic_watch_share;
    p.continuous(j, 4) = user.age();
    p.continuous(j, 5) = user.gender();
  }
  p.table_rows.resize(options.tables.size());
  for (size_t t = 0; t < options.tables.size(); ++t) {
    p.table_rows[t].resize(static_cast<int64_t>(tables[t].ids().size()), options.tables[t].dim);
  }
}

StatusOr<std::vector<int>> RankingTableIndices(const ModelSpec& spec,
                                               const model::RankingModelOptions& options) {
  std::vector<int> out;
  for (const auto& t : options.tables) {
    const int index = spec.TableIndex(absl::StrCat(kPrefix, t.name));
    if (index < 0) return absl::InvalidArgumentError(absl::StrCat("no PS table for ", t.name));
    out.push_back(index);
  }
  return out;
}

}  // namespace vrec::models
