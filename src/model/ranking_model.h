// RankingModel: the ranking tower of Covington et al. (2016).
//
//   x = [ embedding of each categorical feature (univalent: its one id;
//         multivalent: the mean of its ids) | for each continuous feature,
//         c, c^2, sqrt(c) with c = its quantile-normalised CDF in [0, 1) ]
//   hidden ReLU layers (paper's best: 1024-512-256), then a linear logit z
//   loss = weighted logistic regression: clicked impressions weighted by
//          their watch time, unclicked by 1 (or all by 1 when !weighted)
//   serving score = exp(z), the expected watch time
//
// Categorical features name an embedding table; features of the same ID
// space (impression video and watched videos) share one table, so the batch
// carries one matrix of unique rows per TABLE and one index list per
// FEATURE. As in CandidateModel, embedding rows and dense weights are
// external (see candidate_model.h); row gradients accumulate over every
// feature that uses the table.
//
// Thread safety: one RankingModel per thread (it holds scratch buffers).
#pragma once

#include <string>
#include <vector>

#include "absl/types/span.h"
#include "model/dense_parameters.h"
#include "model/layers.h"
#include "model/quantile_normalizer.h"
#include "model/tensor.h"
#include "vrec/status.h"

namespace vrec::model {

struct RankingModelOptions {
  struct Table {
    std::string name;  // e.g. "video"
    int dim = 32;
  };
  struct Categorical {
    std::string name;   // e.g. "impression_video", "watched_videos"
    std::string table;  // a Table name
    bool multivalent = false;
    int max_ids = 0;  // multivalent lists longer than this are rejected; 0 = no limit
  };
  struct Continuous {
    std::string name;  // e.g. "time_since_last_watch"
    QuantileNormalizer normalizer;
  };
  std::vector<Table> tables;
  std::vector<Categorical> categorical;
  std::vector<Continuous> continuous;
  std::vector<int> tower = {1024, 512, 256};
  bool weighted = true;  // weighted LR; false = every impression weighs 1

  Status Validate() const;
};

template <typename S>
struct RankingBatch {
  int batch_size = 0;
  std::vector<RowMatrix<S>> table_rows;  // per options.tables: num_unique x dim
  std::vector<IndexLists> categorical;   // per options.categorical; univalent: 0 or 1 id
  RowMatrix<S> continuous;               // batch x options.continuous.size(), raw values
  // Labels (training and Loss only).
  std::vector<S> clicked;     // 0 or 1
  std::vector<S> watch_time;  // >= 0; the weight of a clicked impression
};

template <typename S>
struct RankingGradients {
  std::vector<RowMatrix<S>> table_rows;  // shaped like the batch's
  AlignedVector<S> dense;                // layout().size()
};

template <typename S>
class RankingModel {
 public:
  static StatusOr<RankingModel> Create(RankingModelOptions options);

  const RankingModelOptions& options() const { return options_; }
  const DenseParameters& layout() const { return layout_; }
  int input_width() const { return input_width_; }
  // The hidden ReLU layers, then the logit.
  const std::vector<DenseLayer>& layers() const { return layers_; }
  // The table (options().tables index) of categorical feature f.
  int feature_table(int f) const { return feature_table_[f]; }

  // Glorot-uniform weights and zero biases. REQUIRES: size == layout().size().
  void InitializeDense(uint64_t seed, absl::Span<S> params) const;
  Status ValidateBatch(const RankingBatch<S>& batch, bool with_labels) const;

  // Forward and backward; returns the weighted LR loss and fills *grads.
  StatusOr<S> TrainStep(absl::Span<const S> dense, const RankingBatch<S>& batch,
                        RankingGradients<S>* grads);
  StatusOr<S> Loss(absl::Span<const S> dense, const RankingBatch<S>& batch);
  // Logits z (labels ignored).
  Status Logits(absl::Span<const S> dense, const RankingBatch<S>& batch, std::vector<S>* z);
  // Serving scores exp(z): the expected watch time of each impression.
  Status ExpectedWatchTime(absl::Span<const S> dense, const RankingBatch<S>& batch,
                           std::vector<S>* scores);

 private:
  explicit RankingModel(RankingModelOptions options);
  void Forward(const S* dense, const RankingBatch<S>& batch);
  void Weights(const RankingBatch<S>& batch);

  RankingModelOptions options_;
  std::vector<int> feature_table_;  // categorical feature -> table index
  DenseParameters layout_;
  std::vector<DenseLayer> layers_;  // hidden ReLU layers, then the logit
  int input_width_ = 0;

  std::vector<RowMatrix<S>> parts_;  // per categorical feature, then the continuous block
  std::vector<RowMatrix<S>> acts_;
  RowMatrix<S> grad_, grad_in_;
  std::vector<RowMatrix<S>> grad_parts_;
  std::vector<S> weights_, grad_z_;
};

extern template class RankingModel<float>;
extern template class RankingModel<double>;

}  // namespace vrec::model
