// Serving bundles: `vrec export` writes one, `vrec serve` loads it
// (proto/serving.proto has the layout; docs/serving.md the choices).
//
// Export: each model (a checkpoint folder or root, or a trained-model
// folder) becomes a trained-model folder in the bundle (weights only); the
// corpus is copied; a faiss inner-product index is built over the corpus's
// output rows [w | b] (queries are [u | 1]), chosen by size: exact ("flat")
// up to 20k videos, IVF beyond (HNSW on request), its search parameter raised
// until recall@100 against exact search reaches 0.95 on held-out users (or
// corpus vectors when the dataset has no test examples); the figure is
// recorded in the manifest. The bundle is written beside `out` and renamed
// into place, BUNDLE last: a reader sees the old bundle or the new one.
//
// Thread safety: LoadedBundle is immutable after Load, except that the
// models' ParameterSource lookups are thread-safe reads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "data/id_key.h"
#include "models/saved_model.h"
#include "proto/data.pb.h"
#include "proto/serving.pb.h"
#include "vrec/status.h"

namespace faiss {
struct Index;
}

namespace vrec::serve {

inline constexpr uint32_t kBundleFormatVersion = 1;

struct ExportOptions {
  std::string candidate;       // checkpoint (folder or root) or trained-model folder
  std::string ranking;         // the same for the ranking model; "" = none
  std::string data_dir;        // the corpus; "" = the candidate model's dataset
  std::string out;             // the bundle folder (replaced if it exists)
  std::string index = "auto";  // auto, flat, hnsw, ivf
  uint64_t recall_queries = 1000;
  double target_recall = 0.95;
  uint64_t seed = 1;
};

// Writes the bundle; returns its manifest. Progress lines go to stderr.
StatusOr<ServingBundle> ExportBundle(const ExportOptions& options);

// A trained-model folder at `out` holding the weights of `path`: a copy of
// a trained-model folder, or a checkpoint's rows gathered onto one server.
Status MaterializeModel(const std::string& path, const std::string& out);

struct Video {
  int64_t id = 0;
  uint32_t topic = 0;
  double upload_time = 0;
};

class LoadedBundle {
 public:
  // kNotFound without BUNDLE; kDataLoss for corrupt parts (naming them).
  static StatusOr<std::unique_ptr<LoadedBundle>> Load(const std::string& dir);
  ~LoadedBundle();

  const ServingBundle& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  models::SavedModel* candidate() const { return candidate_.get(); }
  models::SavedModel* ranking() const { return ranking_.get(); }  // nullptr = none
  const std::vector<Video>& videos() const { return videos_; }
  int32_t IndexOf(int64_t video) const {
    auto it = index_of_.find(video);
    return it == index_of_.end() ? -1 : it->second;
  }
  // The team's own id of a video (a bundle exported from a dataset of
  // string ids: docs/data_format.md); nullptr when it has none.
  const std::string* ItemId(int64_t video) const {
    return item_ids_ ? item_ids_->Find(static_cast<uint64_t>(video)) : nullptr;
  }
  // Top-k of n queries [u | 1] (n x dim row-major): class indices and scores.
  // `rows_scanned`, when given, gets the rows of dim floats read added to it
  // (IVF: every centroid and the probed lists' rows; other indexes: none
  // counted). Thread-safe.
  Status Search(const float* queries, int64_t n, int64_t k, std::vector<int64_t>* labels,
                std::vector<float>* scores, int64_t* rows_scanned = nullptr) const;

 private:
  LoadedBundle() = default;
  std::string dir_;
  ServingBundle manifest_;
  std::unique_ptr<models::SavedModel> candidate_, ranking_;
  std::vector<Video> videos_;
  absl::flat_hash_map<int64_t, int32_t> index_of_;
  std::optional<IdTable> item_ids_;
  std::unique_ptr<faiss::Index> index_;
};

}  // namespace vrec::serve
