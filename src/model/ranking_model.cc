#include "model/ranking_model.h"

#include <glog/logging.h>

#include <cmath>

#include "absl/strings/str_cat.h"

namespace vrec::model {

Status RankingModelOptions::Validate() const {
  if (categorical.empty() && continuous.empty()) {
    return absl::InvalidArgumentError("ranking model: no features");
  }
  for (size_t t = 0; t < tables.size(); ++t) {
    if (tables[t].dim <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking model: table '", tables[t].name, "' has dim ", tables[t].dim));
    }
    for (size_t u = 0; u < t; ++u) {
      if (tables[u].name == tables[t].name) {
        return absl::InvalidArgumentError(
            absl::StrCat("ranking model: table '", tables[t].name, "' declared twice"));
      }
    }
  }
  for (const Categorical& f : categorical) {
    bool found = false;
    for (const Table& t : tables) found |= t.name == f.table;
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking model: feature '", f.name, "' uses unknown table '", f.table, "'"));
    }
    if (f.max_ids < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking model: feature '", f.name, "' has max_ids ", f.max_ids));
    }
  }
  for (size_t k = 0; k < tower.size(); ++k) {
    if (tower[k] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking model: tower layer ", k, " has width ", tower[k]));
    }
  }
  return absl::OkStatus();
}

template <typename S>
RankingModel<S>::RankingModel(RankingModelOptions options) : options_(std::move(options)) {
  for (const auto& f : options_.categorical) {
    for (size_t t = 0; t < options_.tables.size(); ++t) {
      if (options_.tables[t].name == f.table) {
        feature_table_.push_back(static_cast<int>(t));
        input_width_ += options_.tables[t].dim;
      }
    }
  }
  input_width_ += 3 * static_cast<int>(options_.continuous.size());
  int in = input_width_;
  for (size_t k = 0; k < options_.tower.size(); ++k) {
    layers_.emplace_back(&layout_, absl::StrCat("tower/", k), in, options_.tower[k],
                         DenseLayer::Activation::kRelu);
    in = options_.tower[k];
  }
  layers_.emplace_back(&layout_, "logit", in, 1, DenseLayer::Activation::kLinear);
  acts_.resize(layers_.size() + 1);
  parts_.resize(options_.categorical.size() + 1);
  grad_parts_.resize(options_.categorical.size());
}

template <typename S>
StatusOr<RankingModel<S>> RankingModel<S>::Create(RankingModelOptions options) {
  VREC_RETURN_IF_ERROR(options.Validate());
  return RankingModel<S>(std::move(options));
}

template <typename S>
void RankingModel<S>::InitializeDense(uint64_t seed, absl::Span<S> params) const {
  CHECK_EQ(static_cast<int64_t>(params.size()), layout_.size());
  std::fill(params.begin(), params.end(), S(0));
  Rng rng(seed, 0x4a4b);
  for (const DenseLayer& layer : layers_) layer.Initialize(&rng, params.data());
}

template <typename S>
Status RankingModel<S>::ValidateBatch(const RankingBatch<S>& b, bool with_labels) const {
  const int n = b.batch_size;
  if (n <= 0) return absl::InvalidArgumentError(absl::StrCat("ranking batch: batch_size ", n));
  if (b.table_rows.size() != options_.tables.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ranking batch: ", b.table_rows.size(), " tables, the model has ", options_.tables.size()));
  }
  for (size_t t = 0; t < options_.tables.size(); ++t) {
    if (b.table_rows[t].cols() != options_.tables[t].dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking batch: rows of table '", options_.tables[t].name, "' have ",
                       b.table_rows[t].cols(), " columns, expected ", options_.tables[t].dim));
    }
  }
  if (b.categorical.size() != options_.categorical.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ranking batch: ", b.categorical.size(),
                                                   " categorical features, the model has ",
                                                   options_.categorical.size()));
  }
  for (size_t f = 0; f < options_.categorical.size(); ++f) {
    const auto& spec = options_.categorical[f];
    const int max = spec.multivalent ? (spec.max_ids > 0 ? spec.max_ids : -1) : 1;
    VREC_RETURN_IF_ERROR(
        b.categorical[f].Validate("ranking batch feature '" + spec.name + "'", n,
                                  static_cast<int>(b.table_rows[feature_table_[f]].rows()), max));
  }
  const int nc = static_cast<int>(options_.continuous.size());
  if (b.continuous.rows() != n || b.continuous.cols() != nc) {
    return absl::InvalidArgumentError(absl::StrCat("ranking batch: continuous is ",
                                                   b.continuous.rows(), " x ", b.continuous.cols(),
                                                   ", expected ", n, " x ", nc));
  }
  if (!with_labels) return absl::OkStatus();
  if (static_cast<int>(b.clicked.size()) != n || static_cast<int>(b.watch_time.size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat("ranking batch: ", b.clicked.size(),
                                                   " clicked and ", b.watch_time.size(),
                                                   " watch_time for ", n, " examples"));
  }
  double total = 0;
  for (int i = 0; i < n; ++i) {
    if (b.clicked[i] != S(0) && b.clicked[i] != S(1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking batch: clicked of example ", i, " is ", b.clicked[i]));
    }
    if (!std::isfinite(b.watch_time[i]) || b.watch_time[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking batch: watch_time of example ", i, " is ", b.watch_time[i]));
    }
    total += (options_.weighted && b.clicked[i] == S(1)) ? b.watch_time[i] : 1.0;
  }
  if (!(total > 0)) {
    return absl::InvalidArgumentError("ranking batch: the example weights sum to 0");
  }
  return absl::OkStatus();
}

template <typename S>
void RankingModel<S>::Forward(const S* dense, const RankingBatch<S>& b) {
  const int n = b.batch_size;
  std::vector<const RowMatrix<S>*> parts;
  for (size_t f = 0; f < options_.categorical.size(); ++f) {
    EmbeddingBagForward(b.table_rows[feature_table_[f]], b.categorical[f], &parts_[f]);
    parts.push_back(&parts_[f]);
  }
  RowMatrix<S>& cont = parts_.back();
  const int nc = static_cast<int>(options_.continuous.size());
  cont.resize(n, 3 * nc);
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < nc; ++c) {
      options_.continuous[c].normalizer.Features(static_cast<double>(b.continuous(i, c)),
                                                 &cont(i, 3 * c));
    }
  }
  parts.push_back(&cont);
  ConcatForward<S>(parts, &acts_[0]);
  for (size_t k = 0; k < layers_.size(); ++k) layers_[k].Forward(dense, acts_[k], &acts_[k + 1]);
}

template <typename S>
void RankingModel<S>::Weights(const RankingBatch<S>& b) {
  weights_.resize(b.batch_size);
  for (int i = 0; i < b.batch_size; ++i) {
    weights_[i] = (options_.weighted && b.clicked[i] == S(1)) ? b.watch_time[i] : S(1);
  }
}

template <typename S>
StatusOr<S> RankingModel<S>::TrainStep(absl::Span<const S> dense, const RankingBatch<S>& b,
                                       RankingGradients<S>* grads) {
  VREC_RETURN_IF_ERROR(
      layout_.CheckSize("ranking model dense weights", static_cast<int64_t>(dense.size())));
  VREC_RETURN_IF_ERROR(ValidateBatch(b, /*with_labels=*/true));
  Forward(dense.data(), b);
  Weights(b);
  const int n = b.batch_size;
  grad_z_.resize(n);
  const S loss = WeightedLogisticLoss(acts_.back().data(), b.clicked.data(), weights_.data(), n,
                                      grad_z_.data());
  grad_ = Eigen::Map<const RowMatrix<S>>(grad_z_.data(), n, 1);
  grads->dense.assign(layout_.size(), S(0));
  for (int k = static_cast<int>(layers_.size()) - 1; k >= 0; --k) {
    layers_[k].Backward(dense.data(), acts_[k], acts_[k + 1], &grad_, grads->dense.data(),
                        k > 0 || !options_.categorical.empty() ? &grad_in_ : nullptr);
    grad_.swap(grad_in_);
  }
  grads->table_rows.resize(b.table_rows.size());
  for (size_t t = 0; t < b.table_rows.size(); ++t) {
    grads->table_rows[t].setZero(b.table_rows[t].rows(), b.table_rows[t].cols());
  }
  if (!options_.categorical.empty()) {
    std::vector<int> widths;
    std::vector<RowMatrix<S>*> outs;
    for (size_t f = 0; f < options_.categorical.size(); ++f) {
      widths.push_back(options_.tables[feature_table_[f]].dim);
      outs.push_back(&grad_parts_[f]);
    }
    widths.push_back(3 * static_cast<int>(options_.continuous.size()));
    outs.push_back(nullptr);
    ConcatBackward<S>(grad_, widths, outs);
    for (size_t f = 0; f < options_.categorical.size(); ++f) {
      EmbeddingBagBackward(grad_parts_[f], b.categorical[f], &grads->table_rows[feature_table_[f]]);
    }
  }
  return loss;
}

template <typename S>
StatusOr<S> RankingModel<S>::Loss(absl::Span<const S> dense, const RankingBatch<S>& b) {
  VREC_RETURN_IF_ERROR(
      layout_.CheckSize("ranking model dense weights", static_cast<int64_t>(dense.size())));
  VREC_RETURN_IF_ERROR(ValidateBatch(b, /*with_labels=*/true));
  Forward(dense.data(), b);
  Weights(b);
  return WeightedLogisticLoss<S>(acts_.back().data(), b.clicked.data(), weights_.data(),
                                 b.batch_size, nullptr);
}

template <typename S>
Status RankingModel<S>::Logits(absl::Span<const S> dense, const RankingBatch<S>& b,
                               std::vector<S>* z) {
  VREC_RETURN_IF_ERROR(
      layout_.CheckSize("ranking model dense weights", static_cast<int64_t>(dense.size())));
  VREC_RETURN_IF_ERROR(ValidateBatch(b, /*with_labels=*/false));
  Forward(dense.data(), b);
  z->assign(acts_.back().data(), acts_.back().data() + b.batch_size);
  return absl::OkStatus();
}

template <typename S>
Status RankingModel<S>::ExpectedWatchTime(absl::Span<const S> dense, const RankingBatch<S>& b,
                                          std::vector<S>* scores) {
  VREC_RETURN_IF_ERROR(Logits(dense, b, scores));
  for (S& s : *scores) s = std::exp(s);
  return absl::OkStatus();
}

template class RankingModel<float>;
template class RankingModel<double>;

}  // namespace vrec::model
