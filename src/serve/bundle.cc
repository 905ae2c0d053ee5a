#include "serve/bundle.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <numeric>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "common/random.h"
#include "common/run_info.h"
#include "data/dataset.h"
#include "data/example_source.h"
#include "data/record_reader.h"
#include "google/protobuf/util/json_util.h"
#include "models/candidate_tower.h"
#include "models/checkpoint.h"
#include "nlohmann/json.hpp"

namespace vrec::serve {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

Status CopyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("copying ", from, " to ", to, ": ", ec.message()));
  return absl::OkStatus();
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// faiss reports errors by throwing; this is the one place they become statuses.
template <typename F>
Status FaissCall(const std::string& what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("faiss: ", what, ": ", e.what()));
  }
  return absl::OkStatus();
}

// Top-k class indices of each query by exact inner product.
std::vector<int64_t> ExactTopK(const float* rows, int64_t n, int dim, const float* queries,
                               int64_t nq, int64_t k) {
  faiss::IndexFlatIP exact(dim);
  exact.add(n, rows);
  std::vector<float> d(nq * k);
  std::vector<faiss::Index::idx_t> l(nq * k);
  exact.search(nq, queries, k, d.data(), l.data());
  return std::vector<int64_t>(l.begin(), l.end());
}

double RecallAtK(const std::vector<int64_t>& exact, const std::vector<int64_t>& got, int64_t nq,
                 int64_t k) {
  uint64_t hit = 0;
  for (int64_t q = 0; q < nq; ++q) {
    std::vector<int64_t> want(exact.begin() + q * k, exact.begin() + (q + 1) * k);
    std::sort(want.begin(), want.end());
    for (int64_t j = 0; j < k; ++j) {
      hit += std::binary_search(want.begin(), want.end(), got[q * k + j]);
    }
  }
  return nq * k == 0 ? 1.0 : static_cast<double>(hit) / (nq * k);
}

// The serving clock: the end of the generated world's window, else the
// newest upload.
double NowDays(const std::string& data_dir, const DatasetManifest& manifest,
               const std::vector<Video>& videos) {
  if (!manifest.truth().empty()) {
    auto text = ReadFileToString(JoinPath(data_dir, manifest.truth()));
    if (text.ok()) {
      nlohmann::json t = nlohmann::json::parse(*text, nullptr, false);
      if (!t.is_discarded() && t.contains("world") && t["world"].contains("num_days")) {
        return t["world"]["num_days"].get<double>();
      }
    }
  }
  double now = 0;
  for (const Video& v : videos) now = std::max(now, v.upload_time);
  return now;
}

StatusOr<std::vector<Video>> ReadVideos(const std::string& path) {
  VREC_ASSIGN_OR_RETURN(auto reader, RecordReader::Open(path));
  std::vector<Video> videos;
  VideoInfo v;
  while (true) {
    VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&v));
    if (!more) break;
    videos.push_back({static_cast<int64_t>(v.video_id()), v.topic(), v.upload_time()});
  }
  return videos;
}

// Top-k of n queries by inner product: what serving and export's recall
// measurement both run.
Status SearchIndex(const faiss::Index& index, const float* queries, int64_t n, int64_t k,
                   std::vector<int64_t>* labels, std::vector<float>* scores,
                   int64_t* rows_scanned = nullptr) {
  k = std::min<int64_t>(k, index.ntotal);
  std::vector<faiss::Index::idx_t> l(n * k);
  scores->resize(n * k);
  auto* ivf = dynamic_cast<const faiss::IndexIVF*>(&index);
  auto* coarse = ivf != nullptr && dynamic_cast<const faiss::IndexIVFFlat*>(ivf) != nullptr
                     ? dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer)
                     : nullptr;
  if (coarse == nullptr) {
    VREC_RETURN_IF_ERROR(
        FaissCall("search", [&] { index.search(n, queries, k, scores->data(), l.data()); }));
    labels->assign(l.begin(), l.end());
    return absl::OkStatus();
  }
  // IVF over raw floats: the coarse step (every centroid against the query)
  // and the scan of the chosen lists as Eigen GEMVs. Debian's faiss is built
  // without SIMD; its scalar inner products were a third of a request.
  const int64_t nlist = static_cast<int64_t>(ivf->nlist);
  const int64_t d = index.d;
  const int64_t nprobe = std::min<int64_t>(static_cast<int64_t>(ivf->nprobe), nlist);
  Eigen::Map<const model::RowMatrix<float>> centroids(coarse->get_xb(), nlist, d);
  std::vector<faiss::Index::idx_t> assign(nprobe);
  Eigen::VectorXf dots(nlist);
  std::vector<int64_t> order(nlist);
  std::vector<std::pair<float, int64_t>> hits;
  Eigen::VectorXf list_scores;
  for (int64_t q = 0; q < n; ++q) {
    dots.noalias() = centroids * Eigen::Map<const Eigen::VectorXf>(queries + q * d, d);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + nprobe, order.end(),
                      [&](int64_t a, int64_t b) { return dots[a] > dots[b]; });
    for (int64_t j = 0; j < nprobe; ++j) {
      assign[j] = order[j];
    }
    // The lists' rows are the raw floats (IVF...,Flat): scored with Eigen too.
    size_t rows = 0;
    for (int64_t j = 0; j < nprobe; ++j) rows += ivf->invlists->list_size(assign[j]);
    if (rows_scanned != nullptr) *rows_scanned += nlist + static_cast<int64_t>(rows);
    hits.clear();
    hits.reserve(rows);
    const Eigen::Map<const Eigen::VectorXf> query(queries + q * d, d);
    for (int64_t j = 0; j < nprobe; ++j) {
      const size_t size = ivf->invlists->list_size(assign[j]);
      if (size == 0) continue;
      const auto* codes = reinterpret_cast<const float*>(ivf->invlists->get_codes(assign[j]));
      const faiss::Index::idx_t* list_ids = ivf->invlists->get_ids(assign[j]);
      Eigen::Map<const model::RowMatrix<float>> vectors(codes, static_cast<int64_t>(size), d);
      list_scores.resize(static_cast<int64_t>(size));
      list_scores.noalias() = vectors * query;
      for (size_t r = 0; r < size; ++r) hits.emplace_back(list_scores[r], list_ids[r]);
    }
    // The best k, best first (ties: the lower id first). A selection, then a
    // sort of the k: a heap over every hit (partial_sort) was 1-2% of a
    // request when the probed lists are long.
    const int64_t found = std::min<int64_t>(k, static_cast<int64_t>(hits.size()));
    auto better = [](const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    if (found > 0 && found < static_cast<int64_t>(hits.size())) {
      std::nth_element(hits.begin(), hits.begin() + (found - 1), hits.end(), better);
    }
    std::sort(hits.begin(), hits.begin() + found, better);
    for (int64_t j = 0; j < k; ++j) {
      (*scores)[q * k + j] = j < found ? hits[j].first : -std::numeric_limits<float>::infinity();
      l[q * k + j] = j < found ? hits[j].second : -1;
    }
  }
  labels->assign(l.begin(), l.end());
  return absl::OkStatus();
}

// efSearch (HNSW) or nprobe (IVF); other indexes have none.
void SetSearchParam(faiss::Index* index, uint32_t param) {
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index))
    hnsw->hnsw.efSearch = static_cast<int>(param);
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index)) ivf->nprobe = param;
}

}  // namespace

Status MaterializeModel(const std::string& path, const std::string& out) {
  VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(out, "tables")));
  if (PathExists(JoinPath(path, "model.pb"))) {  // a trained-model folder: copy it
    VREC_ASSIGN_OR_RETURN(TrainedModel m, models::ReadTrainedModel(path));
    for (const std::string& f : m.table_files()) {
      VREC_RETURN_IF_ERROR(CopyFile(JoinPath(path, f), JoinPath(out, f)));
    }
    return models::WriteTrainedModel(out, m);
  }
  StatusOr<models::FoundCheckpoint> found = models::FindCheckpoint(path);
  if (!found.ok()) {
    return Status(found.status().code(),
                  absl::StrCat(path,
                               " is neither a trained-model folder (no model.pb) nor a "
                               "checkpoint: ",
                               found.status().message()));
  }
  VREC_ASSIGN_OR_RETURN(models::ModelSpec spec, models::SpecOf(found->manifest.model()));
  ps::ServerStorageOptions so;
  so.spill_path = JoinPath(out, ".restore");
  so.dense_block_floats = models::kDenseBlockFloats;
  so.glorot_fans = spec.glorot_fans;
  {
    VREC_ASSIGN_OR_RETURN(auto storage,
                          models::RestoreServerStorage(spec.config, so, *found, 0, 1));
    VREC_RETURN_IF_ERROR(models::SaveServerTables(*storage, out, 0).status());
  }
  RemoveAll(so.spill_path);
  TrainedModel m = found->manifest.model();
  m.clear_table_files();
  m.add_table_files(models::ServerTablesFile(0));
  return models::WriteTrainedModel(out, m);
}

StatusOr<ServingBundle> ExportBundle(const ExportOptions& options) {
  if (options.candidate.empty() || options.out.empty()) {
    return absl::InvalidArgumentError("export needs the candidate model and an output folder");
  }
  const auto start = Clock::now();
  const std::string out = options.out;
  const std::string tmp = absl::StrCat(out, ".tmp-", getpid());
  RemoveAll(tmp);
  VREC_RETURN_IF_ERROR(MakeDirs(tmp));
  auto fail = [&](Status s) {
    RemoveAll(tmp);
    return s;
  };
  ServingBundle b;
  b.set_format_version(kBundleFormatVersion);

  // The models.
  std::cerr << "[export] candidate model from " << options.candidate << std::endl;
  if (Status s = MaterializeModel(options.candidate, JoinPath(tmp, "candidate")); !s.ok()) {
    return fail(s);
  }
  auto candidate = models::SavedModel::Open(JoinPath(tmp, "candidate"));
  if (!candidate.ok()) return fail(candidate.status());
  if ((*candidate)->info().kind() != models::kCandidateKind) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        options.candidate, " holds a ", (*candidate)->info().kind(),
        " model; --checkpoint takes the candidate-generation model (--ranking the ranking one)")));
  }
  b.set_candidate_source(options.candidate);
  b.set_candidate_examples_trained((*candidate)->info().examples_trained());
  if (!options.ranking.empty()) {
    std::cerr << "[export] ranking model from " << options.ranking << std::endl;
    if (Status s = MaterializeModel(options.ranking, JoinPath(tmp, "ranking")); !s.ok()) {
      return fail(s);
    }
    auto ranking = models::SavedModel::Open(JoinPath(tmp, "ranking"));
    if (!ranking.ok()) return fail(ranking.status());
    if ((*ranking)->info().kind() != models::kRankingKind) {
      return fail(absl::InvalidArgumentError(absl::StrCat(options.ranking, " holds a ",
                                                          (*ranking)->info().kind(),
                                                          " model, not the ranking model")));
    }
    b.set_ranking_source(options.ranking);
    b.set_ranking_examples_trained((*ranking)->info().examples_trained());
  }

  // The corpus.
  const std::string data_dir =
      options.data_dir.empty() ? (*candidate)->info().dataset() : options.data_dir;
  auto manifest = ReadManifest(data_dir);
  if (!manifest.ok()) {
    return fail(Status(manifest.status().code(),
                       absl::StrCat("the corpus (--data, default the dataset the model was "
                                    "trained on): ",
                                    manifest.status().message())));
  }
  auto corpus = LoadCorpus(data_dir, *manifest, false);
  if (!corpus.ok()) return fail(corpus.status());
  if (Status s = CopyFile(JoinPath(data_dir, manifest->videos()), JoinPath(tmp, "videos.rec"));
      !s.ok()) {
    return fail(s);
  }
  auto videos = ReadVideos(JoinPath(tmp, "videos.rec"));
  if (!videos.ok()) return fail(videos.status());
  // A dataset of string ids keeps them: replies name items by them.
  if (const std::string ids = JoinPath(data_dir, "ids/items.tsv"); PathExists(ids)) {
    if (Status s = MakeDirs(JoinPath(tmp, "ids")); !s.ok()) return fail(s);
    if (Status s = CopyFile(ids, JoinPath(tmp, "ids/items.tsv")); !s.ok()) return fail(s);
  }
  b.set_dataset(data_dir);
  b.set_num_videos(corpus->ids.size());
  b.set_now_days(NowDays(data_dir, *manifest, *videos));

  // The output rows and the queries that measure the index.
  auto tower = models::UserTower::Create((*candidate)->spec(), candidate->get());
  if (!tower.ok()) return fail(tower.status());
  auto rows = models::CorpusRows(**tower, corpus->ids);
  if (!rows.ok()) return fail(rows.status());
  const int64_t n = rows->rows();
  const int dim = static_cast<int>(rows->cols());
  std::vector<float> queries;
  std::string query_source = "corpus vectors";
  if (manifest->candidate_test_size() > 0 && options.recall_queries > 0) {
    auto reader = ShardedReader::Open(ShardPaths(data_dir, manifest->candidate_test()));
    if (!reader.ok()) return fail(reader.status());
    std::vector<CandidateExample> examples;
    CandidateExample e;
    while (examples.size() < options.recall_queries) {
      auto more = (*reader)->NextMessage(&e);
      if (!more.ok()) return fail(more.status());
      if (!*more) break;
      examples.push_back(e);
    }
    model::RowMatrix<float> users;
    if (Status s = (*tower)->UserVectors(examples, /*serving=*/true, &users); !s.ok()) {
      return fail(s);
    }
    for (int64_t i = 0; i < users.rows(); ++i) {
      for (int j = 0; j < dim - 1; ++j) queries.push_back(users(i, j));
      queries.push_back(1.0f);
    }
    if (!examples.empty()) query_source = "test examples";
  }
  if (queries.empty()) {
    Rng rng(options.seed, 77);
    for (uint64_t q = 0; q < std::min<uint64_t>(options.recall_queries, n); ++q) {
      const int64_t i = static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(n));
      for (int j = 0; j < dim - 1; ++j) queries.push_back((*rows)(i, j));
      queries.push_back(1.0f);
    }
  }
  const int64_t nq = static_cast<int64_t>(queries.size()) / dim;

  // The index.
  std::string kind = options.index;
  // HNSW is not the default: over inner products of [w | b] rows its recall
  // plateaued near 0.91 on generated corpora even at efSearch 2048, where
  // IVF reaches 0.95 by raising nprobe (docs/serving.md).
  if (kind == "auto") kind = n <= 20000 ? "flat" : "ivf";
  std::string factory;
  if (kind == "flat") {
    factory = "Flat";
  } else if (kind == "hnsw") {
    factory = "HNSW32,Flat";
  } else if (kind == "ivf") {
    const int64_t nlist = std::max<int64_t>(1, std::min<int64_t>(n / 39, 4 * std::sqrt(n)));
    factory = absl::StrCat("IVF", nlist, ",Flat");
  } else {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("--index=", options.index, ": use auto, flat, hnsw or ivf")));
  }
  std::cerr << absl::StrFormat("[export] %d videos x %d floats: building a %s index (%s)", n, dim,
                               kind, factory)
            << std::endl;
  const auto build_start = Clock::now();
  std::unique_ptr<faiss::Index> index;
  Status built = FaissCall("build " + factory, [&] {
    index.reset(faiss::index_factory(dim, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get())) hnsw->hnsw.efConstruction = 80;
    if (!index->is_trained) {
      // faiss asks for at least 39 training points per list.
      auto* ivf_index = dynamic_cast<faiss::IndexIVF*>(index.get());
      const int64_t lists = ivf_index != nullptr ? static_cast<int64_t>(ivf_index->nlist) : 1;
      const int64_t sample = std::min<int64_t>(n, std::max<int64_t>(100000, 40 * lists));
      index->train(sample, rows->data());  // rows are in corpus order, not sorted: a fair sample
    }
    index->add(n, rows->data());
  });
  if (!built.ok()) return fail(built);
  IndexInfo* info = b.mutable_index();
  info->set_kind(kind);
  info->set_factory(factory);
  info->set_dim(static_cast<uint32_t>(dim));
  info->set_count(static_cast<uint64_t>(n));
  info->set_build_seconds(Since(build_start));
  info->set_queries(static_cast<uint64_t>(nq));
  info->set_query_source(query_source);

  // Recall@100 against exact search; raise the search parameter until it
  // reaches the target.
  const int64_t k = std::min<int64_t>(100, n);
  const std::vector<int64_t> exact = ExactTopK(rows->data(), n, dim, queries.data(), nq, k);
  auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get());
  auto* ivf = dynamic_cast<faiss::IndexIVF*>(index.get());
  uint32_t param = hnsw != nullptr ? 64 : ivf != nullptr ? 8 : 0;
  const uint32_t max_param = hnsw != nullptr  ? 2048
                             : ivf != nullptr ? static_cast<uint32_t>(ivf->nlist)
                                              : 0;
  std::vector<int64_t> found(nq * k), one;
  std::vector<float> scores;
  while (true) {
    SetSearchParam(index.get(), param);
    const auto t = Clock::now();
    Status searched;
    for (int64_t q = 0; q < nq && searched.ok(); ++q) {  // one at a time, as a server does
      searched = SearchIndex(*index, queries.data() + q * dim, 1, k, &one, &scores);
      std::copy(one.begin(), one.end(), found.begin() + q * k);
    }
    if (!searched.ok()) return fail(searched);
    info->set_search_us(nq > 0 ? 1e6 * Since(t) / nq : 0);
    info->set_recall_at_100(RecallAtK(exact, found, nq, k));
    info->set_search_param(param);
    std::cerr << absl::StrFormat("[export] %s %d: recall@%d %.4f vs exact, %.0f us/query", kind,
                                 param, k, info->recall_at_100(), info->search_us())
              << std::endl;
    if (info->recall_at_100() >= options.target_recall || param == 0 || param >= max_param) break;
    param = std::min(max_param, param * 2);
  }
  if (Status s = FaissCall(
          "write", [&] { faiss::write_index(index.get(), JoinPath(tmp, "index.faiss").c_str()); });
      !s.ok()) {
    return fail(s);
  }

  // The manifest, last; then into place.
  // The version: when (to the millisecond) and after how many examples,
  // every day's of a warm-started model counted, so that two exports of one
  // second (a daily loop on small data) still differ.
  const absl::Time now = absl::Now();
  b.set_created_unix_ms(absl::ToUnixMillis(now));
  b.set_version(absl::StrCat(absl::FormatTime("%Y%m%d-%H%M%E3S", now, absl::UTCTimeZone()), "-",
                             (*candidate)->info().examples_before() +
                                 (*candidate)->info().examples_trained()));
  b.set_commit(RunInfo().value("commit", ""));
  std::string json;
  google::protobuf::util::JsonPrintOptions jo;
  jo.add_whitespace = true;
  jo.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(b, &json, jo);
  if (Status s = WriteFileAtomic(JoinPath(tmp, "bundle.json"), json); !s.ok()) return fail(s);
  if (Status s = WriteFileAtomic(JoinPath(tmp, "BUNDLE"), b.SerializeAsString()); !s.ok()) {
    return fail(s);
  }
  const std::string old = absl::StrCat(out, ".old-", getpid());
  std::error_code ec;
  if (PathExists(out)) {
    fs::rename(out, old, ec);
    if (ec)
      return fail(absl::UnavailableError(
          absl::StrCat("moving the old bundle ", out, " aside: ", ec.message())));
  }
  fs::rename(tmp, out, ec);
  if (ec)
    return fail(
        absl::UnavailableError(absl::StrCat("renaming ", tmp, " to ", out, ": ", ec.message())));
  RemoveAll(old);
  std::cerr << absl::StrFormat("[export] %s written in %.1fs", out, Since(start)) << std::endl;
  return b;
}

LoadedBundle::~LoadedBundle() = default;

StatusOr<std::unique_ptr<LoadedBundle>> LoadedBundle::Load(const std::string& dir) {
  const std::string path = JoinPath(dir, "BUNDLE");
  if (!PathExists(path)) {
    return absl::NotFoundError(
        absl::StrCat(dir, " is not a serving bundle (no BUNDLE; write one with vrec export)"));
  }
  std::unique_ptr<LoadedBundle> b(new LoadedBundle());
  b->dir_ = dir;
  VREC_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  if (!b->manifest_.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat(path, ": does not parse"));
  }
  if (b->manifest_.format_version() != kBundleFormatVersion) {
    return absl::DataLossError(
        absl::StrCat(path, ": unknown format version ", b->manifest_.format_version()));
  }
  VREC_ASSIGN_OR_RETURN(b->candidate_, models::SavedModel::Open(JoinPath(dir, "candidate")));
  if (!b->manifest_.ranking_source().empty()) {
    VREC_ASSIGN_OR_RETURN(b->ranking_, models::SavedModel::Open(JoinPath(dir, "ranking")));
  }
  VREC_ASSIGN_OR_RETURN(b->videos_, ReadVideos(JoinPath(dir, "videos.rec")));
  for (size_t i = 0; i < b->videos_.size(); ++i) {
    b->index_of_[b->videos_[i].id] = static_cast<int32_t>(i);
  }
  if (const std::string ids = JoinPath(dir, "ids/items.tsv"); PathExists(ids)) {
    VREC_ASSIGN_OR_RETURN(IdTable t, IdTable::Read(ids, "item"));
    b->item_ids_.emplace(std::move(t));
  }
  const std::string index_path = JoinPath(dir, "index.faiss");
  VREC_RETURN_IF_ERROR(FaissCall("read " + index_path,
                                 [&] { b->index_.reset(faiss::read_index(index_path.c_str())); }));
  if (b->index_->ntotal != static_cast<int64_t>(b->videos_.size()) ||
      b->index_->d != static_cast<int>(b->manifest_.index().dim())) {
    return absl::DataLossError(absl::StrCat(index_path, ": ", b->index_->ntotal, " vectors of ",
                                            b->index_->d, " floats for ", b->videos_.size(),
                                            " videos"));
  }
  SetSearchParam(b->index_.get(), b->manifest_.index().search_param());
  return b;
}

Status LoadedBundle::Search(const float* queries, int64_t n, int64_t k,
                            std::vector<int64_t>* labels, std::vector<float>* scores,
                            int64_t* rows_scanned) const {
  return SearchIndex(*index_, queries, n, k, labels, scores, rows_scanned);
}

}  // namespace vrec::serve
