#include "model/candidate_model.h"

#include <glog/logging.h>

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vrec::model {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename S>
Status CheckRows(const char* what, const RowMatrix<S>& rows, int dim) {
  if (rows.cols() != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": rows have ", rows.cols(), " columns, expected ", dim));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int> CandidateModelOptions::PaperTower(int depth) {
  CHECK(depth >= 0 && depth <= 4) << "paper tower depth " << depth;
  static const std::vector<int> kTowers[] = {
      {}, {256}, {512, 256}, {1024, 512, 256}, {2048, 1024, 512, 256}};
  return kTowers[depth];
}

StatusOr<CandidateModelOptions> CandidateModelOptions::FromConfig(
    const CandidateModelConfig& config) {
  CandidateModelOptions o;
  if (config.embedding_dim() != 0) o.embedding_dim = static_cast<int>(config.embedding_dim());
  if (config.region_dim() != 0) o.region_dim = static_cast<int>(config.region_dim());
  if (config.device_dim() != 0) o.device_dim = static_cast<int>(config.device_dim());
  if (config.max_history() != 0) o.max_history = static_cast<int>(config.max_history());
  if (config.max_tokens() != 0) o.max_tokens = static_cast<int>(config.max_tokens());
  o.tower.assign(config.tower().begin(), config.tower().end());
  if (config.output_dim() != 0) {
    o.output_dim = static_cast<int>(config.output_dim());
  } else {
    o.output_dim = o.tower.empty() ? 256 : o.tower.back();
  }
  o.use_example_age = config.use_example_age();
  VREC_RETURN_IF_ERROR(o.Validate());
  return o;
}

Status CandidateModelOptions::Validate() const {
  if (embedding_dim <= 0 || region_dim <= 0 || device_dim <= 0 || output_dim <= 0 ||
      max_history <= 0 || max_tokens <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "candidate model: dimensions and list limits must be positive (embedding_dim ",
        embedding_dim, ", region_dim ", region_dim, ", device_dim ", device_dim, ", output_dim ",
        output_dim, ", max_history ", max_history, ", max_tokens ", max_tokens, ")"));
  }
  for (size_t k = 0; k < tower.size(); ++k) {
    if (tower[k] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("candidate model: tower layer ", k, " has width ", tower[k]));
    }
  }
  if (!tower.empty() && tower.back() != output_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("candidate model: the last tower layer (", tower.back(),
                     ") is the user vector and must have output_dim (", output_dim,
                     ") units; tower ", absl::StrJoin(tower, "-")));
  }
  return absl::OkStatus();
}

template <typename S>
CandidateModel<S>::CandidateModel(const CandidateModelOptions& options) : options_(options) {
  num_reals_ = 3 + (options.use_example_age ? 1 : 0);
  input_width_ = 2 * options.embedding_dim + options.region_dim + options.device_dim + num_reals_;
  int in = input_width_;
  for (size_t k = 0; k < options.tower.size(); ++k) {
    layers_.emplace_back(&layout_, absl::StrCat("tower/", k), in, options.tower[k],
                         DenseLayer::Activation::kRelu);
    in = options.tower[k];
  }
  if (options.tower.empty()) {
    layers_.emplace_back(&layout_, "projection", in, options.output_dim,
                         DenseLayer::Activation::kLinear);
  }
  acts_.resize(layers_.size() + 1);
}

template <typename S>
StatusOr<CandidateModel<S>> CandidateModel<S>::Create(const CandidateModelOptions& options) {
  VREC_RETURN_IF_ERROR(options.Validate());
  CandidateModel<S> model(options);
  if (!options.example_age_quantiles.empty()) {
    VREC_ASSIGN_OR_RETURN(model.example_age_,
                          QuantileNormalizer::FromQuantiles(options.example_age_quantiles));
  }
  return model;
}

template <typename S>
void CandidateModel<S>::InitializeDense(uint64_t seed, absl::Span<S> params) const {
  CHECK_EQ(static_cast<int64_t>(params.size()), layout_.size());
  std::fill(params.begin(), params.end(), S(0));
  Rng rng(seed, 0xc4d1);
  for (const DenseLayer& layer : layers_) layer.Initialize(&rng, params.data());
}

template <typename S>
Status CandidateModel<S>::CheckDense(absl::Span<const S> dense) const {
  return layout_.CheckSize("candidate model dense weights", static_cast<int64_t>(dense.size()));
}

template <typename S>
Status CandidateModel<S>::ValidateBatch(const CandidateBatch<S>& b, bool with_softmax) const {
  const int n = b.batch_size;
  if (n <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("candidate batch: batch_size ", n));
  }
  const int e = options_.embedding_dim;
  VREC_RETURN_IF_ERROR(CheckRows("candidate batch video_rows", b.video_rows, e));
  VREC_RETURN_IF_ERROR(CheckRows("candidate batch token_rows", b.token_rows, e));
  VREC_RETURN_IF_ERROR(
      CheckRows("candidate batch region_rows", b.region_rows, options_.region_dim));
  VREC_RETURN_IF_ERROR(
      CheckRows("candidate batch device_rows", b.device_rows, options_.device_dim));
  VREC_RETURN_IF_ERROR(b.history.Validate(
      "candidate batch history", n, static_cast<int>(b.video_rows.rows()), options_.max_history));
  VREC_RETURN_IF_ERROR(b.search.Validate(
      "candidate batch search", n, static_cast<int>(b.token_rows.rows()), options_.max_tokens));
  VREC_RETURN_IF_ERROR(
      b.region.Validate("candidate batch region", n, static_cast<int>(b.region_rows.rows()), 1));
  VREC_RETURN_IF_ERROR(
      b.device.Validate("candidate batch device", n, static_cast<int>(b.device_rows.rows()), 1));
  if (b.demographics.rows() != n || b.demographics.cols() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("candidate batch demographics: ", b.demographics.rows(), " x ",
                     b.demographics.cols(), ", expected ", n, " x 3"));
  }
  if (options_.use_example_age && static_cast<int>(b.example_age.size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "candidate batch example_age: ", b.example_age.size(), " values for ", n, " examples"));
  }
  if (!with_softmax) return absl::OkStatus();
  VREC_RETURN_IF_ERROR(
      CheckRows("candidate batch output_rows", b.output_rows, options_.output_dim + 1));
  const int r = static_cast<int>(b.output_rows.rows());
  if (static_cast<int>(b.labels.size()) != n || static_cast<int>(b.label_log_q.size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat("candidate batch: ", b.labels.size(),
                                                   " labels and ", b.label_log_q.size(),
                                                   " label_log_q for ", n, " examples"));
  }
  if (b.negatives.size() != b.negative_log_q.size()) {
    return absl::InvalidArgumentError(absl::StrCat("candidate batch: ", b.negatives.size(),
                                                   " negatives but ", b.negative_log_q.size(),
                                                   " negative_log_q"));
  }
  for (int i = 0; i < n; ++i) {
    if (b.labels[i] < 0 || b.labels[i] >= r) {
      return absl::InvalidArgumentError(absl::StrCat("candidate batch: label of example ", i,
                                                     " is row ", b.labels[i], ", not in [0, ", r,
                                                     ")"));
    }
    if (!std::isfinite(b.label_log_q[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("candidate batch: label_log_q of example ", i, " is ", b.label_log_q[i]));
    }
  }
  for (size_t j = 0; j < b.negatives.size(); ++j) {
    if (b.negatives[j] < 0 || b.negatives[j] >= r) {
      return absl::InvalidArgumentError(absl::StrCat("candidate batch: negative ", j, " is row ",
                                                     b.negatives[j], ", not in [0, ", r, ")"));
    }
    if (!std::isfinite(b.negative_log_q[j])) {
      return absl::InvalidArgumentError(
          absl::StrCat("candidate batch: negative_log_q ", j, " is ", b.negative_log_q[j]));
    }
  }
  if (b.masked.num_lists() > 0) {
    VREC_RETURN_IF_ERROR(b.masked.Validate("candidate batch masked negatives", n,
                                           static_cast<int>(b.negatives.size())));
  }
  return absl::OkStatus();
}

template <typename S>
void CandidateModel<S>::Forward(const S* dense, const CandidateBatch<S>& b, bool serving) {
  const int n = b.batch_size;
  EmbeddingBagForward(b.video_rows, b.history, &history_);
  EmbeddingBagForward(b.token_rows, b.search, &search_);
  EmbeddingBagForward(b.region_rows, b.region, &region_);
  EmbeddingBagForward(b.device_rows, b.device, &device_);
  reals_.resize(n, num_reals_);
  reals_.leftCols(3) = b.demographics;
  if (options_.use_example_age) {
    for (int i = 0; i < n; ++i) {
      const double age = serving ? 0.0 : static_cast<double>(b.example_age[i]);
      reals_(i, 3) = static_cast<S>(example_age_ ? example_age_->Cdf(age) : age);
    }
  }
  ConcatForward<S>({&history_, &search_, &region_, &device_, &reals_}, &acts_[0]);
  const double t0 = Now();
  for (size_t k = 0; k < layers_.size(); ++k) layers_[k].Forward(dense, acts_[k], &acts_[k + 1]);
  timings_.dense_s += Now() - t0;
}

template <typename S>
StatusOr<S> CandidateModel<S>::TrainStep(absl::Span<const S> dense, const CandidateBatch<S>& b,
                                         CandidateGradients<S>* grads, BagGradients bags) {
  const double start = Now();
  timings_ = StepTimings();
  VREC_RETURN_IF_ERROR(CheckDense(dense));
  VREC_RETURN_IF_ERROR(ValidateBatch(b, /*with_softmax=*/true));
  Forward(dense.data(), b, /*serving=*/false);

  grads->dense.assign(layout_.size(), S(0));
  grads->output_rows.setZero(b.output_rows.rows(), b.output_rows.cols());
  double t0 = Now();
  const S loss =
      softmax_.Compute(acts_.back(), b.output_rows, b.labels, b.negatives, b.label_log_q.data(),
                       b.negative_log_q.data(), &grad_, &grads->output_rows, &b.masked);
  for (int k = static_cast<int>(layers_.size()) - 1; k >= 0; --k) {
    layers_[k].Backward(dense.data(), acts_[k], acts_[k + 1], &grad_, grads->dense.data(),
                        &grad_in_);
    grad_.swap(grad_in_);
  }
  timings_.dense_s += Now() - t0;

  // grad_ is now dL/dx.
  const int e = options_.embedding_dim;
  ConcatBackward<S>(grad_, {e, e, options_.region_dim, options_.device_dim, num_reals_},
                    {&grads->history_bags, &grads->search_bags, &grads->region_bags,
                     &grads->device_bags, nullptr});
  if (bags == BagGradients::kPooled) {
    grads->video_rows.resize(0, 0);
    grads->token_rows.resize(0, 0);
    grads->region_rows.resize(0, 0);
    grads->device_rows.resize(0, 0);
    timings_.total_s = Now() - start;
    return loss;
  }
  grads->video_rows.setZero(b.video_rows.rows(), b.video_rows.cols());
  grads->token_rows.setZero(b.token_rows.rows(), b.token_rows.cols());
  grads->region_rows.setZero(b.region_rows.rows(), b.region_rows.cols());
  grads->device_rows.setZero(b.device_rows.rows(), b.device_rows.cols());
  EmbeddingBagBackward(grads->history_bags, b.history, &grads->video_rows);
  EmbeddingBagBackward(grads->search_bags, b.search, &grads->token_rows);
  EmbeddingBagBackward(grads->region_bags, b.region, &grads->region_rows);
  EmbeddingBagBackward(grads->device_bags, b.device, &grads->device_rows);
  timings_.total_s = Now() - start;
  return loss;
}

template <typename S>
StatusOr<S> CandidateModel<S>::Loss(absl::Span<const S> dense, const CandidateBatch<S>& b) {
  VREC_RETURN_IF_ERROR(CheckDense(dense));
  VREC_RETURN_IF_ERROR(ValidateBatch(b, /*with_softmax=*/true));
  Forward(dense.data(), b, /*serving=*/false);
  return softmax_.Compute(acts_.back(), b.output_rows, b.labels, b.negatives, b.label_log_q.data(),
                          b.negative_log_q.data(), nullptr, nullptr, &b.masked);
}

template <typename S>
Status CandidateModel<S>::UserVectors(absl::Span<const S> dense, const CandidateBatch<S>& b,
                                      RowMatrix<S>* user_vectors, bool serving) {
  VREC_RETURN_IF_ERROR(CheckDense(dense));
  VREC_RETURN_IF_ERROR(ValidateBatch(b, /*with_softmax=*/false));
  Forward(dense.data(), b, serving);
  *user_vectors = acts_.back();
  return absl::OkStatus();
}

template <typename S>
int64_t CandidateModel<S>::DenseFlopsPerExample(int num_negatives) const {
  int64_t flops = 0;
  for (const DenseLayer& layer : layers_) flops += 3 * layer.ForwardFlopsPerExample();
  return flops + SampledSoftmax<S>::GemmFlops(1, num_negatives, options_.output_dim);
}

template class CandidateModel<float>;
template class CandidateModel<double>;

}  // namespace vrec::model
