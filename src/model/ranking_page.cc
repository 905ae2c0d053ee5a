#include "model/ranking_page.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace vrec::model {
namespace {

// Eigen's GEMM ran 2-2.5x slower on row counts that are not a multiple of
// its 16-float panels (300 x 258 x 1024: 2.6 ms, 304: 1.1 ms), so the
// impression rows are padded with zero rows up to a multiple of this.
constexpr int kRowMultiple = 16;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// out = the mean of rows[lists(i)] (left as is for an empty list: zeros).
template <typename S, typename Out>
void BagInto(const RowMatrix<S>& rows, const IndexLists& lists, int i, Out out) {
  const int n = lists.size(i);
  if (n == 0) return;
  for (int k = lists.offsets[i]; k < lists.offsets[i + 1]; ++k) out += rows.row(lists.indices[k]);
  out *= S(1) / S(n);
}

}  // namespace

template <typename S>
StatusOr<RankingPageForward<S>> RankingPageForward<S>::Create(const RankingModel<S>* model,
                                                              absl::Span<const S> dense,
                                                              std::vector<bool> shared_categorical,
                                                              std::vector<bool> shared_continuous) {
  const RankingModelOptions& o = model->options();
  VREC_RETURN_IF_ERROR(
      model->layout().CheckSize("ranking model dense weights", static_cast<int64_t>(dense.size())));
  if (shared_categorical.size() != o.categorical.size() ||
      shared_continuous.size() != o.continuous.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ranking page: masks for ", shared_categorical.size(), " categorical and ",
                     shared_continuous.size(), " continuous features, the model has ",
                     o.categorical.size(), " and ", o.continuous.size()));
  }
  RankingPageForward<S> p;
  p.model_ = model;
  p.dense_ = dense.data();
  // The full input's columns in order (RankingModel::Forward concatenates the
  // categorical features, then 3 columns per continuous feature), each sent
  // to its side.
  std::vector<int> shared_cols, item_cols;
  int col = 0;
  auto place = [&](bool shared, int width, Slot* slot) {
    std::vector<int>& side = shared ? shared_cols : item_cols;
    slot->shared = shared;
    slot->column = static_cast<int>(side.size());
    for (int k = 0; k < width; ++k) side.push_back(col++);
  };
  p.categorical_.resize(o.categorical.size());
  for (size_t f = 0; f < o.categorical.size(); ++f) {
    place(shared_categorical[f], o.tables[model->feature_table(static_cast<int>(f))].dim,
          &p.categorical_[f]);
  }
  p.continuous_.resize(o.continuous.size());
  for (size_t c = 0; c < o.continuous.size(); ++c) {
    place(shared_continuous[c], 3, &p.continuous_[c]);
  }
  CHECK_EQ(col, model->input_width());

  const DenseLayer& first = model->layers().front();
  Eigen::Map<const RowMatrix<S>> w1(dense.data() + first.w_offset(), first.in(), first.out());
  p.w_shared_.resize(static_cast<int64_t>(shared_cols.size()), first.out());
  for (size_t r = 0; r < shared_cols.size(); ++r) p.w_shared_.row(r) = w1.row(shared_cols[r]);
  p.w_item_.resize(static_cast<int64_t>(item_cols.size()), first.out());
  for (size_t r = 0; r < item_cols.size(); ++r) p.w_item_.row(r) = w1.row(item_cols[r]);
  p.b1_ = Eigen::Map<const RowVector<S>>(dense.data() + first.b_offset(), first.out());
  p.acts_.resize(model->layers().size());
  return p;
}

template <typename S>
int64_t RankingPageForward<S>::ForwardFlops(int n) const {
  const auto& layers = model_->layers();
  int64_t per_impression = 2LL * impression_width() * layers.front().out();
  for (size_t k = 1; k < layers.size(); ++k) per_impression += layers[k].ForwardFlopsPerExample();
  return 2LL * shared_width() * layers.front().out() + per_impression * n;
}

template <typename S>
Status RankingPageForward<S>::ValidatePage(const RankingPage<S>& page) const {
  const RankingModelOptions& o = model_->options();
  const int n = page.num_impressions;
  if (n <= 0) return absl::InvalidArgumentError(absl::StrCat("ranking page: ", n, " impressions"));
  if (page.table_rows.size() != o.tables.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ranking page: ", page.table_rows.size(),
                                                   " tables, the model has ", o.tables.size()));
  }
  for (size_t t = 0; t < o.tables.size(); ++t) {
    if (page.table_rows[t].cols() != o.tables[t].dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking page: rows of table '", o.tables[t].name, "' have ",
                       page.table_rows[t].cols(), " columns, expected ", o.tables[t].dim));
    }
  }
  if (page.categorical.size() != o.categorical.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ranking page: ", page.categorical.size(),
                                                   " categorical features, the model has ",
                                                   o.categorical.size()));
  }
  for (size_t f = 0; f < o.categorical.size(); ++f) {
    const auto& spec = o.categorical[f];
    const int max = spec.multivalent ? (spec.max_ids > 0 ? spec.max_ids : -1) : 1;
    const int lists = categorical_[f].shared ? 1 : n;
    VREC_RETURN_IF_ERROR(page.categorical[f].Validate(
        absl::StrCat("ranking page feature '", spec.name, categorical_[f].shared ? "' (shared)" : "'"),
        lists,
        static_cast<int>(page.table_rows[model_->feature_table(static_cast<int>(f))].rows()), max));
  }
  const int nc = static_cast<int>(o.continuous.size());
  if (page.continuous.rows() != n || page.continuous.cols() != nc) {
    return absl::InvalidArgumentError(absl::StrCat("ranking page: continuous is ",
                                                   page.continuous.rows(), " x ",
                                                   page.continuous.cols(), ", expected ", n, " x ",
                                                   nc));
  }
  return absl::OkStatus();
}

template <typename S>
void RankingPageForward<S>::Inputs(const RankingPage<S>& page, int rows) {
  const RankingModelOptions& o = model_->options();
  const int n = page.num_impressions;
  x_shared_.setZero(shared_width());
  x_item_.setZero(rows, impression_width());  // padding rows stay zero
  for (size_t f = 0; f < o.categorical.size(); ++f) {
    const Slot& slot = categorical_[f];
    const RowMatrix<S>& table = page.table_rows[model_->feature_table(static_cast<int>(f))];
    const int dim = static_cast<int>(table.cols());
    if (slot.shared) {
      BagInto(table, page.categorical[f], 0, x_shared_.segment(slot.column, dim));
    } else {
      for (int i = 0; i < n; ++i) {
        BagInto(table, page.categorical[f], i, x_item_.row(i).segment(slot.column, dim));
      }
    }
  }
  for (size_t c = 0; c < o.continuous.size(); ++c) {
    const Slot& slot = continuous_[c];
    const QuantileNormalizer& q = o.continuous[c].normalizer;
    if (slot.shared) {
      q.Features(static_cast<double>(page.continuous(0, c)), x_shared_.data() + slot.column);
    } else {
      for (int i = 0; i < n; ++i) {
        q.Features(static_cast<double>(page.continuous(i, c)), &x_item_(i, slot.column));
      }
    }
  }
}

template <typename S>
Status RankingPageForward<S>::Logits(const RankingPage<S>& page, std::vector<S>* z,
                                     RankingPageProfile* profile) {
  VREC_RETURN_IF_ERROR(ValidatePage(page));
  const Clock::time_point t0 = profile != nullptr ? Clock::now() : Clock::time_point();
  const int n = page.num_impressions;
  const int rows = (n + kRowMultiple - 1) / kRowMultiple * kRowMultiple;
  Inputs(page, rows);
  const Clock::time_point t1 = profile != nullptr ? Clock::now() : Clock::time_point();

  // Layer 1: the user's part once, then every impression's.
  const auto& layers = model_->layers();
  const DenseLayer& first = layers.front();
  h_shared_.noalias() = x_shared_ * w_shared_;
  h_shared_ += b1_;
  RowMatrix<S>& h1 = acts_[0];
  h1.resize(rows, first.out());
  if (impression_width() > 0) {
    h1.noalias() = x_item_ * w_item_;
    h1.rowwise() += h_shared_;
  } else {
    h1 = h_shared_.replicate(rows, 1);
  }
  if (first.activation() == DenseLayer::Activation::kRelu) h1 = h1.cwiseMax(S(0));
  const Clock::time_point t2 = profile != nullptr ? Clock::now() : Clock::time_point();

  for (size_t k = 1; k < layers.size(); ++k) {
    const DenseLayer& l = layers[k];
    Eigen::Map<const RowMatrix<S>> w(dense_ + l.w_offset(), l.in(), l.out());
    Eigen::Map<const RowVector<S>> b(dense_ + l.b_offset(), l.out());
    RowMatrix<S>& y = acts_[k];
    y.resize(rows, l.out());
    y.noalias() = acts_[k - 1] * w;
    if (l.activation() == DenseLayer::Activation::kRelu) {
      y = (y.rowwise() + b).cwiseMax(S(0));  // bias and ReLU in one pass
    } else {
      y.rowwise() += b;
    }
  }
  const RowMatrix<S>& out = acts_.back();
  z->resize(n);
  for (int i = 0; i < n; ++i) (*z)[i] = out(i, 0);
  if (profile != nullptr) {
    const Clock::time_point t3 = Clock::now();
    profile->inputs += Seconds(t0, t1);
    profile->first_layer += Seconds(t1, t2);
    profile->other_layers += Seconds(t2, t3);
  }
  return absl::OkStatus();
}

template class RankingPageForward<float>;
template class RankingPageForward<double>;

}  // namespace vrec::model
