// CandidateModel: the candidate-generation tower of Covington et al. (2016).
//
//   x = [ mean(history video embeddings) | mean(search token embeddings) |
//         region embedding | device embedding | age, gender, logged_in |
//         example_age (if enabled) ]
//   hidden ReLU layers (paper widths by depth: 256; 512-256; 1024-512-256;
//   2048-1024-512-256; any by config)
//   u = the last ReLU layer's output (its width must be output_dim); with no
//       hidden layer u = a linear projection of x to output_dim
//   loss = sampled softmax of u against the output video rows [w_v | b_v]
//
// The model owns no parameters. Embedding rows arrive with the batch (the
// batch's unique rows per table, gathered from a parameter server, plus CSR
// index lists into them) and their gradients leave in CandidateGradients with
// the same shapes (sums over all uses, ready to push). Dense weights live in
// one flat buffer laid out by layout(); their gradient goes to a parallel
// buffer.
//
// Scalar is float for training and double for gradient checks.
//
// Thread safety: TrainStep/Loss/UserVectors use scratch buffers held by the
// object: one CandidateModel per thread (they are cheap: the weights are
// external).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "model/dense_parameters.h"
#include "model/layers.h"
#include "model/quantile_normalizer.h"
#include "model/tensor.h"
#include "proto/model.pb.h"
#include "vrec/status.h"

namespace vrec::model {

struct CandidateModelOptions {
  int embedding_dim = 256;  // watch-history video and search-token embeddings
  int region_dim = 32;
  int device_dim = 32;
  std::vector<int> tower = {1024, 512, 256};  // hidden ReLU widths; empty = depth 0
  int output_dim = 256;                       // user vector = output video embedding dim
  bool use_example_age = true;
  // The example age's quantiles on the training data: the tower is fed its
  // empirical CDF in [0, 1) (QuantileNormalizer), so a log spanning 20 years
  // or 2 days trains alike; at serving the age is 0, the CDF's bottom.
  // Empty: raw days (models saved before the normalisation).
  std::vector<double> example_age_quantiles;
  int max_history = 50;  // longer lists are rejected
  int max_tokens = 50;

  // The paper's tower of depth 0..4 for a 256-wide user vector.
  // REQUIRES: 0 <= depth <= 4.
  static std::vector<int> PaperTower(int depth);
  // Maps the proto; a zero field takes the default above (output_dim 0 means
  // the last tower width, or 256 with no tower).
  static StatusOr<CandidateModelOptions> FromConfig(const CandidateModelConfig& config);
  Status Validate() const;
};

// One batch of candidate-generation examples. Row matrices hold the batch's
// distinct rows of each table; index lists point into them.
template <typename S>
struct CandidateBatch {
  int batch_size = 0;
  RowMatrix<S> video_rows;  // num_unique x embedding_dim
  IndexLists history;       // watched videos, <= max_history each
  RowMatrix<S> token_rows;  // num_unique x embedding_dim
  IndexLists search;        // search tokens, <= max_tokens each
  RowMatrix<S> region_rows;
  IndexLists region;  // 0 (unknown: zeros) or 1 id per example
  RowMatrix<S> device_rows;
  IndexLists device;           // 0 or 1 id per example
  RowMatrix<S> demographics;   // batch x 3: age, gender, logged_in, each in [0, 1]
  std::vector<S> example_age;  // batch; ignored when disabled; 0 at serving

  // Sampled softmax (training and Loss only).
  RowMatrix<S> output_rows;        // num_candidates x (output_dim + 1): [w_v | b_v]
  std::vector<int32_t> labels;     // batch: the next watch, a row of output_rows
  std::vector<int32_t> negatives;  // S shared negatives, rows of output_rows
  std::vector<S> label_log_q;      // batch: log Q(label)
  std::vector<S> negative_log_q;   // S: log Q(negative)
  // Per example, negative slots (indices into `negatives`) left out of its
  // softmax: its watched videos when the task is to recommend unwatched
  // ones. No lists (the default) = nothing masked.
  IndexLists masked;
};

// Gradients of the mean batch loss, shaped like the batch's row matrices.
template <typename S>
struct CandidateGradients {
  RowMatrix<S> video_rows;
  RowMatrix<S> token_rows;
  RowMatrix<S> region_rows;
  RowMatrix<S> device_rows;
  RowMatrix<S> output_rows;
  AlignedVector<S> dense;  // layout().size()
  // The gradients of the bags themselves (batch x width): per example, of
  // its mean history, search, region and device embedding. The row
  // gradients above are these scattered through the batch's index lists
  // (EmbeddingBagBackward), which a parameter server can do itself while it
  // applies its optimizer (ps::PsClient::PushPooled).
  RowMatrix<S> history_bags;
  RowMatrix<S> search_bags;
  RowMatrix<S> region_bags;
  RowMatrix<S> device_bags;
};

// What TrainStep leaves in CandidateGradients for the four embedding-bag
// tables.
enum class BagGradients {
  kRows,    // the row gradients (video_rows ... device_rows) and the bags'
  kPooled,  // the bags' only; video_rows ... device_rows are left empty
};

// Wall time of the last TrainStep, split into the dense part (tower forward
// and backward and the sampled softmax) and the rest (embedding bags,
// concatenation, validation, gradient scatter).
struct StepTimings {
  double dense_s = 0;
  double total_s = 0;
};

template <typename S>
class CandidateModel {
 public:
  static StatusOr<CandidateModel> Create(const CandidateModelOptions& options);

  const CandidateModelOptions& options() const { return options_; }
  const DenseParameters& layout() const { return layout_; }
  int input_width() const { return input_width_; }
  const std::vector<DenseLayer>& layers() const { return layers_; }

  // Glorot-uniform weights and zero biases from `seed`.
  // REQUIRES: params.size() == layout().size().
  void InitializeDense(uint64_t seed, absl::Span<S> params) const;

  // kInvalidArgument naming the field and example for any inconsistency.
  // `with_softmax`: also check the output-table fields.
  Status ValidateBatch(const CandidateBatch<S>& batch, bool with_softmax) const;

  // Forward and backward; returns the mean sampled-softmax loss and fills
  // *grads (resized; previous contents discarded) as `bags` says.
  StatusOr<S> TrainStep(absl::Span<const S> dense, const CandidateBatch<S>& batch,
                        CandidateGradients<S>* grads, BagGradients bags = BagGradients::kRows);
  // Forward only: the mean sampled-softmax loss.
  StatusOr<S> Loss(absl::Span<const S> dense, const CandidateBatch<S>& batch);
  // User vectors (batch x output_dim). `serving`: the example age is set to
  // 0 (the end of the training window, as at serving); otherwise the batch's
  // example ages are used (scoring held-out examples at their own time).
  // The output-table fields of the batch are ignored.
  Status UserVectors(absl::Span<const S> dense, const CandidateBatch<S>& batch,
                     RowMatrix<S>* user_vectors, bool serving = true);

  // FLOPs per example of the dense part of a training step: every tower
  // layer's three GEMMs (forward, dL/dW, dL/dx) and the sampled softmax's
  // three (6 S d / example).
  int64_t DenseFlopsPerExample(int num_negatives) const;
  const StepTimings& last_step_timings() const { return timings_; }

 private:
  explicit CandidateModel(const CandidateModelOptions& options);
  Status CheckDense(absl::Span<const S> dense) const;
  void Forward(const S* dense, const CandidateBatch<S>& batch, bool serving);

  CandidateModelOptions options_;
  DenseParameters layout_;
  std::vector<DenseLayer> layers_;
  int input_width_ = 0;
  int num_reals_ = 0;
  std::optional<QuantileNormalizer> example_age_;  // from options_.example_age_quantiles

  // Scratch, reused across steps.
  RowMatrix<S> history_, search_, region_, device_, reals_;
  std::vector<RowMatrix<S>> acts_;  // acts_[0] = x, acts_[k + 1] = layer k output
  RowMatrix<S> grad_, grad_in_;
  SampledSoftmax<S> softmax_;
  StepTimings timings_;
};

extern template class CandidateModel<float>;
extern template class CandidateModel<double>;

}  // namespace vrec::model
