#include "models/candidate_eval.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

#include "absl/container/flat_hash_set.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "data/id_key.h"
#include "data/record_reader.h"
#include "model/candidate_model.h"
#include "models/candidate_tower.h"
#include "models/item_knn.h"
#include "models/metrics.h"

namespace vrec::models {

nlohmann::json OracleFigures(const std::string& data_dir, const DatasetManifest& manifest) {
  if (manifest.truth().empty()) return nullptr;
  auto text = ReadFileToString(JoinPath(data_dir, manifest.truth()));
  if (!text.ok()) return nullptr;
  nlohmann::json truth = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (truth.is_discarded() || !truth.contains("oracle")) return nullptr;
  return truth["oracle"];
}

namespace {

// The item-kNN baseline on the given test examples, fitted on the dataset's
// training files. kFailedPrecondition without them, kResourceExhausted when
// too large (ItemKnn::Fit).
StatusOr<RetrievalMetrics> ItemKnnMetrics(const std::string& data_dir,
                                          const DatasetManifest& manifest, const Corpus& corpus,
                                          const std::vector<std::vector<int64_t>>& histories,
                                          const std::vector<int64_t>& labels,
                                          const std::vector<std::vector<int64_t>>* exclude) {
  if (manifest.candidate_train_size() == 0) {
    return absl::FailedPreconditionError("item-kNN skipped: the dataset has no training files");
  }
  VREC_ASSIGN_OR_RETURN(auto train, ExampleStream<CandidateExample>::Open(
                                        ShardPaths(data_dir, manifest.candidate_train()), 0, 1, 1));
  VREC_ASSIGN_OR_RETURN(ItemKnn knn, ItemKnn::Fit(train.get(), corpus.ids, ItemKnn::Options()));
  return knn.Evaluate(histories, labels, exclude);
}

}  // namespace

namespace {

// The model's figures on the examples `next` yields (false at the end).
struct Scored {
  RetrievalMetrics metrics;
  uint64_t examples = 0;
  std::vector<int64_t> labels;
  // The examples' watch histories, kept only with `keep_histories`.
  std::vector<std::vector<int64_t>> histories;
};

StatusOr<Scored> ScoreExamples(const ModelSpec& spec, ParameterSource* params, const Corpus& corpus,
                               const EvalOptions& options, bool keep_histories,
                               const std::function<StatusOr<bool>(CandidateExample*)>& next) {
  VREC_ASSIGN_OR_RETURN(auto tower, UserTower::Create(spec, params));
  VREC_ASSIGN_OR_RETURN(RowMatrix<float> rows, CorpusRows(*tower, corpus.ids));
  VREC_ASSIGN_OR_RETURN(RetrievalEvaluator evaluator,
                        RetrievalEvaluator::Create(corpus.ids, std::move(rows)));
  keep_histories = keep_histories || options.exclude_watched;
  Scored out;
  std::vector<CandidateExample> batch;
  std::vector<int64_t> labels;
  std::vector<std::vector<int64_t>> histories;
  RowMatrix<float> users;
  auto flush = [&]() -> Status {
    if (batch.empty()) return absl::OkStatus();
    VREC_RETURN_IF_ERROR(tower->UserVectors(batch, /*serving=*/!options.own_example_age, &users));
    VREC_RETURN_IF_ERROR(
        evaluator.Add(users, labels, options.exclude_watched ? &histories : nullptr));
    out.labels.insert(out.labels.end(), labels.begin(), labels.end());
    for (auto& h : histories) out.histories.push_back(std::move(h));
    batch.clear();
    labels.clear();
    histories.clear();
    return absl::OkStatus();
  };
  CandidateExample e;
  while (options.max_examples == 0 || out.examples < options.max_examples) {
    VREC_ASSIGN_OR_RETURN(bool more, next(&e));
    if (!more) break;
    ++out.examples;
    labels.push_back(static_cast<int64_t>(e.label_video()));
    if (keep_histories) histories.emplace_back(e.watch_history().begin(), e.watch_history().end());
    batch.push_back(std::move(e));
    if (static_cast<int>(batch.size()) >= options.batch_size) VREC_RETURN_IF_ERROR(flush());
  }
  VREC_RETURN_IF_ERROR(flush());
  out.metrics = evaluator.Metrics();
  return out;
}

nlohmann::json ModelFigures(const Scored& scored, const EvalOptions& options) {
  nlohmann::json out = scored.metrics.ToJson();
  out["exclude_watched"] = options.exclude_watched;
  out["example_age"] = options.own_example_age ? "own" : "zero";
  return out;
}

// out["popularity"]: the popularity baseline on the scored examples, when
// the corpus has label counts.
Status AddPopularity(const Corpus& corpus, const Scored& scored, const EvalOptions& options,
                     nlohmann::json* out) {
  if (corpus.label_counts.empty()) return absl::OkStatus();
  absl::flat_hash_map<int64_t, int64_t> counts;
  for (size_t i = 0; i < corpus.ids.size(); ++i) {
    if (corpus.label_counts[i] > 0) {
      counts[corpus.ids[i]] = static_cast<int64_t>(corpus.label_counts[i]);
    }
  }
  VREC_ASSIGN_OR_RETURN(RetrievalMetrics pop,
                        PopularityMetrics(counts, corpus.ids, scored.labels,
                                          options.exclude_watched ? &scored.histories : nullptr));
  (*out)["popularity"] = pop.ToJson();
  return absl::OkStatus();
}

}  // namespace

StatusOr<nlohmann::json> EvaluateCandidateExamples(const ModelSpec& spec, ParameterSource* params,
                                                   const Corpus& corpus,
                                                   const std::vector<CandidateExample>& examples,
                                                   const EvalOptions& options) {
  if (examples.empty()) return absl::FailedPreconditionError("no examples to evaluate on");
  size_t i = 0;
  VREC_ASSIGN_OR_RETURN(Scored scored,
                        ScoreExamples(spec, params, corpus, options, /*keep_histories=*/false,
                                      [&](CandidateExample* e) -> StatusOr<bool> {
                                        if (i >= examples.size()) return false;
                                        *e = examples[i++];
                                        return true;
                                      }));
  nlohmann::json out = ModelFigures(scored, options);
  VREC_RETURN_IF_ERROR(AddPopularity(corpus, scored, options, &out));
  return out;
}

StatusOr<nlohmann::json> EvaluateCandidate(const ModelSpec& spec, ParameterSource* params,
                                           const std::string& data_dir,
                                           const DatasetManifest& manifest, const Corpus& corpus,
                                           const EvalOptions& options) {
  VREC_ASSIGN_OR_RETURN(auto reader,
                        ShardedReader::Open(ShardPaths(data_dir, manifest.candidate_test())));
  // The examples' watch histories: exclusions and item-kNN's input.
  VREC_ASSIGN_OR_RETURN(
      Scored scored,
      ScoreExamples(spec, params, corpus, options, /*keep_histories=*/options.item_knn,
                    [&](CandidateExample* e) { return reader->NextMessage(e); }));
  if (scored.examples == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset ", data_dir, " has no candidate-generation test examples"));
  }
  const std::vector<int64_t>& all_labels = scored.labels;
  const std::vector<std::vector<int64_t>>& all_histories = scored.histories;
  nlohmann::json out = ModelFigures(scored, options);
  VREC_RETURN_IF_ERROR(AddPopularity(corpus, scored, options, &out));
  if (options.item_knn) {
    StatusOr<RetrievalMetrics> knn =
        ItemKnnMetrics(data_dir, manifest, corpus, all_histories, all_labels,
                       options.exclude_watched ? &all_histories : nullptr);
    if (knn.ok()) {
      out["item_knn"] = knn->ToJson();
    } else if (absl::IsResourceExhausted(knn.status()) ||
               absl::IsFailedPrecondition(knn.status())) {
      out["item_knn"] = {{"skipped", std::string(knn.status().message())}};
    } else {
      return knn.status();
    }
  }
  nlohmann::json oracle = OracleFigures(data_dir, manifest);
  if (!oracle.is_null()) out["oracle"] = oracle;
  return out;
}

StatusOr<uint64_t> DumpRecommendations(const ModelSpec& spec, ParameterSource* params,
                                       const std::string& data_dir,
                                       const DatasetManifest& manifest, const Corpus& corpus,
                                       const EvalOptions& options, int top,
                                       const std::string& path) {
  if (top < 1) return absl::InvalidArgumentError(absl::StrCat("top must be >= 1, got ", top));
  // The team's names, when the dataset kept them.
  std::optional<IdTable> user_names, item_names;
  if (PathExists(JoinPath(data_dir, "ids/items.tsv"))) {
    VREC_ASSIGN_OR_RETURN(item_names, IdTable::Read(JoinPath(data_dir, "ids/items.tsv"), "item"));
  }
  if (PathExists(JoinPath(data_dir, "ids/users.tsv"))) {
    VREC_ASSIGN_OR_RETURN(user_names, IdTable::Read(JoinPath(data_dir, "ids/users.tsv"), "user"));
  }
  auto name = [](const std::optional<IdTable>& table, uint64_t id) -> nlohmann::json {
    const std::string* n = table ? table->Find(id) : nullptr;
    if (n != nullptr) return *n;
    return id;
  };
  VREC_ASSIGN_OR_RETURN(auto tower, UserTower::Create(spec, params));
  VREC_ASSIGN_OR_RETURN(RowMatrix<float> rows, CorpusRows(*tower, corpus.ids));
  const int64_t n = rows.rows(), d = rows.cols() - 1;
  const Eigen::MatrixXf w = rows.leftCols(d);
  const Eigen::VectorXf b = rows.col(d);
  VREC_ASSIGN_OR_RETURN(RetrievalEvaluator evaluator,
                        RetrievalEvaluator::Create(corpus.ids, std::move(rows)));
  VREC_ASSIGN_OR_RETURN(auto reader,
                        ShardedReader::Open(ShardPaths(data_dir, manifest.candidate_test())));
  constexpr size_t kBatch = 32;  // the score block is n x kBatch floats
  const int64_t k = std::min<int64_t>(top, n);
  std::string out;
  uint64_t written = 0;
  std::vector<CandidateExample> batch;
  std::vector<int64_t> labels;
  std::vector<std::vector<int64_t>> watched;
  std::vector<double> ranks;
  std::vector<int32_t> order(n);
  RowMatrix<float> users;
  auto flush = [&]() -> Status {
    if (batch.empty()) return absl::OkStatus();
    VREC_RETURN_IF_ERROR(tower->UserVectors(batch, !options.own_example_age, &users));
    VREC_RETURN_IF_ERROR(
        evaluator.Ranks(users, labels, options.exclude_watched ? &watched : nullptr, &ranks));
    Eigen::MatrixXf scores = w * users.transpose();  // n x batch
    scores.colwise() += b;
    for (size_t j = 0; j < batch.size(); ++j) {
      const auto col = scores.col(static_cast<int64_t>(j));
      absl::flat_hash_set<int64_t> skip;
      if (options.exclude_watched) {
        for (int64_t id : watched[j]) {
          if (id != labels[j]) skip.insert(id);
        }
      }
      for (int64_t i = 0; i < n; ++i) order[i] = static_cast<int32_t>(i);
      const int64_t want = std::min<int64_t>(n, k + static_cast<int64_t>(skip.size()));
      std::partial_sort(order.begin(), order.begin() + want, order.end(), [&](int32_t x, int32_t y) {
        return col(x) != col(y) ? col(x) > col(y) : corpus.ids[x] < corpus.ids[y];
      });
      nlohmann::json best = nlohmann::json::array();
      for (int64_t i = 0; i < want && static_cast<int64_t>(best.size()) < k; ++i) {
        const int64_t id = corpus.ids[order[i]];
        if (!skip.contains(id)) best.push_back(name(item_names, static_cast<uint64_t>(id)));
      }
      nlohmann::ordered_json line;
      line["user"] = name(user_names, batch[j].user_id());
      line["label"] = name(item_names, batch[j].label_video());
      if (std::isfinite(ranks[j])) {
        line["rank"] = ranks[j];
      } else {
        line["rank"] = nullptr;  // the label is not in the corpus
      }
      line["top"] = std::move(best);
      absl::StrAppend(&out, line.dump(), "\n");
      ++written;
    }
    batch.clear();
    labels.clear();
    watched.clear();
    return absl::OkStatus();
  };
  CandidateExample e;
  while (options.max_examples == 0 || written + batch.size() < options.max_examples) {
    VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&e));
    if (!more) break;
    labels.push_back(static_cast<int64_t>(e.label_video()));
    watched.emplace_back(e.watch_history().begin(), e.watch_history().end());
    batch.push_back(std::move(e));
    if (batch.size() >= kBatch) VREC_RETURN_IF_ERROR(flush());
  }
  VREC_RETURN_IF_ERROR(flush());
  VREC_RETURN_IF_ERROR(WriteFileAtomic(path, out));
  return written;
}

StatusOr<nlohmann::json> VideoAgeShares(const ModelSpec& spec, ParameterSource* params,
                                        const std::string& data_dir,
                                        const DatasetManifest& manifest, const Corpus& corpus,
                                        const EvalOptions& options, int max_days) {
  if (max_days < 1) return absl::InvalidArgumentError("max_days must be >= 1");
  // Upload times, in corpus order.
  std::vector<double> upload(corpus.ids.size(), 0);
  {
    const std::string path = JoinPath(data_dir, manifest.videos());
    VREC_ASSIGN_OR_RETURN(auto reader, RecordReader::Open(path));
    VideoInfo v;
    while (true) {
      VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&v));
      if (!more) break;
      const int32_t k = corpus.IndexOf(static_cast<int64_t>(v.video_id()));
      if (k >= 0) upload[k] = v.upload_time();
    }
  }
  VREC_ASSIGN_OR_RETURN(auto tower, UserTower::Create(spec, params));
  VREC_ASSIGN_OR_RETURN(RowMatrix<float> rows, CorpusRows(*tower, corpus.ids));
  const int64_t n = rows.rows(), d = rows.cols() - 1;
  VREC_ASSIGN_OR_RETURN(auto reader,
                        ShardedReader::Open(ShardPaths(data_dir, manifest.candidate_test())));
  std::vector<double> predicted(max_days, 0), empirical(max_days, 0);
  double not_yet = 0, empirical_not_yet = 0;
  uint64_t examples = 0;
  std::vector<CandidateExample> batch;
  RowMatrix<float> users;
  auto bucket = [&](double age) {
    return static_cast<int>(std::min<double>(max_days - 1, std::floor(std::max(0.0, age))));
  };
  auto flush = [&]() -> Status {
    if (batch.empty()) return absl::OkStatus();
    VREC_RETURN_IF_ERROR(tower->UserVectors(batch, !options.own_example_age, &users));
    Eigen::MatrixXf scores = rows.leftCols(d) * users.transpose();  // n x batch
    scores.colwise() += rows.col(d);
    for (size_t j = 0; j < batch.size(); ++j) {
      const double t = batch[j].time();
      const float top = scores.col(static_cast<int64_t>(j)).maxCoeff();
      double z = 0;
      std::vector<double> share(max_days, 0);
      double early = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double p = std::exp(static_cast<double>(scores(i, static_cast<int64_t>(j)) - top));
        z += p;
        if (upload[i] > t) {
          early += p;
        } else {
          share[bucket(t - upload[i])] += p;
        }
      }
      for (int b = 0; b < max_days; ++b) predicted[b] += share[b] / z;
      not_yet += early / z;
      const int32_t label = corpus.IndexOf(static_cast<int64_t>(batch[j].label_video()));
      if (label >= 0) {
        if (upload[label] > t) {
          empirical_not_yet += 1;
        } else {
          empirical[bucket(t - upload[label])] += 1;
        }
      }
      ++examples;
    }
    batch.clear();
    return absl::OkStatus();
  };
  CandidateExample e;
  while (options.max_examples == 0 || examples + batch.size() < options.max_examples) {
    VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&e));
    if (!more) break;
    batch.push_back(std::move(e));
    if (static_cast<int>(batch.size()) >= 256) VREC_RETURN_IF_ERROR(flush());
  }
  VREC_RETURN_IF_ERROR(flush());
  if (examples == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset ", data_dir, " has no candidate-generation test examples"));
  }
  nlohmann::json out = {{"examples", examples},
                        {"example_age", options.own_example_age ? "own" : "zero"}};
  nlohmann::json days = nlohmann::json::array(), pred = nlohmann::json::array(),
                 emp = nlohmann::json::array();
  for (int b = 0; b < max_days; ++b) {
    days.push_back(b);
    pred.push_back(predicted[b] / examples);
    emp.push_back(empirical[b] / examples);
  }
  out["days"] = days;
  out["predicted"] = pred;
  out["empirical"] = emp;
  out["not_yet_uploaded"] = not_yet / examples;
  out["empirical_not_yet_uploaded"] = empirical_not_yet / examples;
  return out;
}

}  // namespace vrec::models
