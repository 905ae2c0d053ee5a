// The layers of both towers, with explicit forward and backward passes over a
// batch: embedding bag, concatenation, dense (+ReLU), sampled softmax with
// shared negatives, full softmax and weighted logistic regression.
//
// Everything is templated on the scalar: float for training, double for the
// finite-difference gradient checks (tests/model/). Inputs and outputs are
// row-major batch x width matrices so each dense step is one Eigen GEMM.
//
// Gradient conventions: a backward pass OVERWRITES the gradient of a dense
// block it owns (each block is used once per step) and ACCUMULATES (+=) into
// the gradient of embedding rows (a row can be used by many examples and, for
// tables shared by several features, by several layers). Callers zero the
// row gradients once per step.
//
// Output-table rows (sampled and full softmax) are laid out as [w_v | b_v]:
// a row of dim + 1 scalars whose last entry is the output bias b_v, so a
// parameter server keeps one table for the softmax and the bias travels with
// its row.
//
// Thread safety: free functions are reentrant; a SampledSoftmax object holds
// scratch buffers and must be used by one thread at a time.
#pragma once

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/random.h"
#include "common/row_math.h"
#include "model/dense_parameters.h"
#include "model/tensor.h"

namespace vrec::model {

// ---------------------------------------------------------------------------
// Embedding bag: out.row(i) = mean of rows[lists(i)]; an empty list gives a
// zero row. Repeated ids count as often as they appear.

template <typename S>
void EmbeddingBagForward(const RowMatrix<S>& rows, const IndexLists& lists, RowMatrix<S>* out) {
  const int batch = lists.num_lists();
  out->setZero(batch, rows.cols());
  for (int i = 0; i < batch; ++i) {
    const int n = lists.size(i);
    if (n == 0) continue;
    auto o = out->row(i);
    for (int k = lists.offsets[i]; k < lists.offsets[i + 1]; ++k) o += rows.row(lists.indices[k]);
    o *= S(1) / S(n);
  }
}

// The weight of each use of a row in the mean bag of a list of n ids.
template <typename S>
S EmbeddingBagWeight(int n) {
  return S(1) / S(n);
}

// grad_rows (num_unique x dim, pre-sized) += d loss / d rows: for each
// example in order, each of its list's rows gains weight x grad_out.row(i)
// (AddScaled: the parameter server's PushPooled sums in the same order with
// the same arithmetic, common/row_math.h).
template <typename S>
void EmbeddingBagBackward(const RowMatrix<S>& grad_out, const IndexLists& lists,
                          RowMatrix<S>* grad_rows) {
  const int batch = lists.num_lists();
  const size_t dim = static_cast<size_t>(grad_out.cols());
  for (int i = 0; i < batch; ++i) {
    const int n = lists.size(i);
    if (n == 0) continue;
    const S inv = EmbeddingBagWeight<S>(n);
    for (int k = lists.offsets[i]; k < lists.offsets[i + 1]; ++k) {
      AddScaled(grad_rows->row(lists.indices[k]).data(), inv, grad_out.row(i).data(), dim);
    }
  }
}

// The transpose of a bag's lists, for a parameter server that scatters the
// bag gradients itself (ps/pooled_gradients.h): for each of `num_rows` rows,
// the examples whose lists use it and the weight of each use, in the order
// EmbeddingBagBackward adds them (example by example, a repeated id once
// per appearance). Row r's uses are (*examples)[offsets[r] .. offsets[r+1]).
void EmbeddingBagUses(const IndexLists& lists, int num_rows, std::vector<uint32_t>* offsets,
                      std::vector<uint32_t>* examples, std::vector<float>* weights);

// ---------------------------------------------------------------------------
// Concatenation along the feature axis. REQUIRES: all parts have the same
// number of rows.

template <typename S>
void ConcatForward(const std::vector<const RowMatrix<S>*>& parts, RowMatrix<S>* out) {
  int width = 0;
  for (const auto* p : parts) width += static_cast<int>(p->cols());
  const int rows = parts.empty() ? 0 : static_cast<int>(parts[0]->rows());
  out->resize(rows, width);
  int col = 0;
  for (const auto* p : parts) {
    CHECK_EQ(p->rows(), rows);
    out->middleCols(col, p->cols()) = *p;
    col += static_cast<int>(p->cols());
  }
}

// Splits grad_out back into the parts. `widths` are the parts' widths; each
// grad_parts[k] is resized and overwritten (nullptr: that part's gradient is
// not needed).
template <typename S>
void ConcatBackward(const RowMatrix<S>& grad_out, const std::vector<int>& widths,
                    const std::vector<RowMatrix<S>*>& grad_parts) {
  CHECK_EQ(widths.size(), grad_parts.size());
  int col = 0;
  for (size_t k = 0; k < widths.size(); ++k) {
    if (grad_parts[k] != nullptr) *grad_parts[k] = grad_out.middleCols(col, widths[k]);
    col += widths[k];
  }
  CHECK_EQ(col, grad_out.cols());
}

// ---------------------------------------------------------------------------
// Dense layer y = act(x W + b), W (in x out) and b (1 x out) being blocks of
// the flat DenseParameters buffer.

class DenseLayer {
 public:
  enum class Activation { kLinear, kRelu };

  DenseLayer() = default;
  // Adds blocks NAME/w (in x out) and NAME/b (1 x out) to `layout`.
  DenseLayer(DenseParameters* layout, const std::string& name, int in, int out,
             Activation activation)
      : in_(in), out_(out), activation_(activation) {
    w_ = layout->AddBlock(name + "/w", in, out);
    b_ = layout->AddBlock(name + "/b", 1, out);
    w_offset_ = layout->block(w_).offset;
    b_offset_ = layout->block(b_).offset;
  }

  int in() const { return in_; }
  int out() const { return out_; }
  Activation activation() const { return activation_; }
  // Where W (in x out, row-major) and b (out) start in the flat parameters.
  int64_t w_offset() const { return w_offset_; }
  int64_t b_offset() const { return b_offset_; }
  // 2 * in * out: multiply-adds of the forward GEMM per example, counted as 2 FLOPs.
  int64_t ForwardFlopsPerExample() const { return 2LL * in_ * out_; }

  // Glorot-uniform weights, zero bias.
  template <typename S>
  void Initialize(Rng* rng, S* params) const {
    const double limit = std::sqrt(6.0 / (in_ + out_));
    S* w = params + w_offset_;
    for (int64_t k = 0; k < static_cast<int64_t>(in_) * out_; ++k) {
      w[k] = static_cast<S>((2.0 * rng->Uniform() - 1.0) * limit);
    }
    std::fill(params + b_offset_, params + b_offset_ + out_, S(0));
  }

  template <typename S>
  void Forward(const S* params, const RowMatrix<S>& x, RowMatrix<S>* y) const {
    DCHECK_EQ(x.cols(), in_);
    y->resize(x.rows(), out_);
    y->noalias() = x * W(params);
    y->rowwise() += B(params);
    if (activation_ == Activation::kRelu) *y = y->cwiseMax(S(0));
  }

  // Given x, y = Forward(x) and grad_y = dL/dy: writes dL/dW and dL/db into
  // this layer's blocks of `grads` (overwriting), dL/dx into *grad_x unless it
  // is nullptr. grad_y is clobbered (it becomes dL/d pre-activation).
  template <typename S>
  void Backward(const S* params, const RowMatrix<S>& x, const RowMatrix<S>& y, RowMatrix<S>* grad_y,
                S* grads, RowMatrix<S>* grad_x) const {
    if (activation_ == Activation::kRelu) {
      *grad_y = (y.array() > S(0)).select(grad_y->array(), S(0));
    }
    W(grads).noalias() = x.transpose() * (*grad_y);
    B(grads) = grad_y->colwise().sum();
    if (grad_x != nullptr) {
      grad_x->resize(x.rows(), in_);
      grad_x->noalias() = (*grad_y) * W(params).transpose();
    }
  }

 private:
  template <typename S>
  Eigen::Map<const RowMatrix<S>> W(const S* p) const {
    return Eigen::Map<const RowMatrix<S>>(p + w_offset_, in_, out_);
  }
  template <typename S>
  Eigen::Map<RowMatrix<S>> W(S* p) const {
    return Eigen::Map<RowMatrix<S>>(p + w_offset_, in_, out_);
  }
  template <typename S>
  Eigen::Map<const RowVector<S>> B(const S* p) const {
    return Eigen::Map<const RowVector<S>>(p + b_offset_, out_);
  }
  template <typename S>
  Eigen::Map<RowVector<S>> B(S* p) const {
    return Eigen::Map<RowVector<S>>(p + b_offset_, out_);
  }

  int in_ = 0;
  int out_ = 0;
  Activation activation_ = Activation::kLinear;
  int w_ = -1;
  int b_ = -1;
  int64_t w_offset_ = 0;
  int64_t b_offset_ = 0;
};

// ---------------------------------------------------------------------------
// Sampled softmax with S negatives shared by the whole batch.
//
// For example i with user vector u_i and label row y_i, the candidates are
// the label and the S shared negatives v_1..v_S (rows of `out_rows`, which
// hold [w | b] for the union of labels and negatives, one row per distinct
// id). The logits are
//     o_i0 = u_i . w_{y_i} + b_{y_i} - log Q(y_i)
//     o_ij = u_i . w_{v_j} + b_{v_j} - log Q(v_j)        (j = 1..S)
// i.e. the logQ correction of Bengio & Senecal / Jean et al. (as in
// TensorFlow's sampled_softmax_loss with subtract_log_q) is applied to every
// candidate, the true class included; Q is the per-draw sampling probability
// (using the expected count S * Q instead shifts every logit by log S and
// changes nothing). A negative that is the example's own label (same row)
// gets o_ij = -inf (accidental hit removal). Loss = mean_i [logsumexp_j o_ij -
// o_i0].
//
// With all classes as negatives and Q uniform this is exactly the full
// softmax cross-entropy (tested).
template <typename S>
class SampledSoftmax {
 public:
  // u: B x d. out_rows: R x (d + 1). labels: B row indices, negatives: S row
  // indices, label_log_q: B values, negative_log_q: S values. `masked`: none
  // (nullptr or no lists), or B lists of negative slots (indices into
  // `negatives`) left out of that example's softmax, as accidental hits are
  // (e.g. the example's watched videos when the task excludes them).
  // REQUIRES (checked by the models' batch validation): indices in [0, R),
  // masked slots in [0, S).
  // Returns the mean loss. If grad_u is not nullptr, writes dL/du into it
  // and ADDS dL/d out_rows into *grad_rows (R x (d + 1), pre-sized).
  S Compute(const RowMatrix<S>& u, const RowMatrix<S>& out_rows, const std::vector<int32_t>& labels,
            const std::vector<int32_t>& negatives, const S* label_log_q, const S* negative_log_q,
            RowMatrix<S>* grad_u, RowMatrix<S>* grad_rows, const IndexLists* masked = nullptr) {
    const bool masking = masked != nullptr && masked->num_lists() > 0;
    const int batch = static_cast<int>(u.rows());
    const int d = static_cast<int>(u.cols());
    const int num_neg = static_cast<int>(negatives.size());
    const int num_rows = static_cast<int>(out_rows.rows());
    DCHECK_EQ(out_rows.cols(), d + 1);

    // Gather the negatives' weights once: one contiguous S x d matrix.
    neg_w_.resize(num_neg, d);
    neg_bias_.resize(num_neg);
    for (int j = 0; j < num_neg; ++j) {
      neg_w_.row(j) = out_rows.row(negatives[j]).head(d);
      neg_bias_(j) = out_rows(negatives[j], d) - negative_log_q[j];
    }
    logits_.resize(batch, num_neg);
    logits_.noalias() = u * neg_w_.transpose();
    logits_.rowwise() += neg_bias_;

    // Accidental hits: negatives_at_row_ lists, per output row, the negative
    // slots holding it.
    row_start_.assign(num_rows + 1, 0);
    for (int j = 0; j < num_neg; ++j) ++row_start_[negatives[j] + 1];
    for (int r = 0; r < num_rows; ++r) row_start_[r + 1] += row_start_[r];
    slots_.resize(num_neg);
    fill_.assign(row_start_.begin(), row_start_.end() - 1);
    for (int j = 0; j < num_neg; ++j) slots_[fill_[negatives[j]]++] = j;

    const S neg_inf = -std::numeric_limits<S>::infinity();
    true_logit_.resize(batch);
    grad_true_.resize(batch);
    double loss = 0;
    for (int i = 0; i < batch; ++i) {
      const int y = labels[i];
      for (int k = row_start_[y]; k < row_start_[y + 1]; ++k) logits_(i, slots_[k]) = neg_inf;
      if (masking) {
        for (int k = masked->offsets[i]; k < masked->offsets[i + 1]; ++k) {
          logits_(i, masked->indices[k]) = neg_inf;
        }
      }
      const S t = u.row(i).dot(out_rows.row(y).head(d)) + out_rows(y, d) - label_log_q[i];
      auto row = logits_.row(i);
      const S m = num_neg > 0 ? std::max(t, row.maxCoeff()) : t;
      row = (row.array() - m).exp();
      const S e_true = std::exp(t - m);
      const S sum = row.sum() + e_true;
      loss += static_cast<double>(std::log(sum) + m - t);
      row *= S(1) / (sum * batch);                    // dL/do_ij
      grad_true_[i] = (e_true / sum - S(1)) / batch;  // dL/do_i0
    }
    if (grad_u == nullptr) return static_cast<S>(loss / batch);

    // logits_ now holds G = dL/do (B x S).
    grad_u->resize(batch, d);
    grad_u->noalias() = logits_ * neg_w_;
    grad_neg_w_.resize(num_neg, d);
    grad_neg_w_.noalias() = logits_.transpose() * u;
    grad_neg_b_ = logits_.colwise().sum();
    for (int j = 0; j < num_neg; ++j) {
      grad_rows->row(negatives[j]).head(d) += grad_neg_w_.row(j);
      (*grad_rows)(negatives[j], d) += grad_neg_b_(j);
    }
    for (int i = 0; i < batch; ++i) {
      const int y = labels[i];
      grad_u->row(i) += grad_true_[i] * out_rows.row(y).head(d);
      grad_rows->row(y).head(d) += grad_true_[i] * u.row(i);
      (*grad_rows)(y, d) += grad_true_[i];
    }
    return static_cast<S>(loss / batch);
  }

  // FLOPs of the three GEMMs (logits, dL/du, dL/dW) for a batch: 6 B S d.
  static int64_t GemmFlops(int64_t batch, int64_t num_negatives, int64_t dim) {
    return 6 * batch * num_negatives * dim;
  }

 private:
  RowMatrix<S> neg_w_;
  RowVector<S> neg_bias_;
  RowMatrix<S> logits_;
  RowMatrix<S> grad_neg_w_;
  RowVector<S> grad_neg_b_;
  std::vector<S> true_logit_;
  std::vector<S> grad_true_;
  std::vector<int> row_start_;
  std::vector<int> fill_;
  std::vector<int> slots_;
};

// ---------------------------------------------------------------------------
// Full softmax over every row of `table` (V x (d + 1), rows [w | b]): for
// small corpora, evaluation and tests. Returns mean cross-entropy of labels
// (row indices). If grad_u is not nullptr, writes dL/du and ADDS dL/dtable
// into *grad_table (pre-sized V x (d + 1)).
template <typename S>
S FullSoftmax(const RowMatrix<S>& u, const RowMatrix<S>& table, const std::vector<int32_t>& labels,
              RowMatrix<S>* grad_u, RowMatrix<S>* grad_table) {
  const int batch = static_cast<int>(u.rows());
  const int d = static_cast<int>(u.cols());
  DCHECK_EQ(table.cols(), d + 1);
  RowMatrix<S> logits = u * table.leftCols(d).transpose();
  logits.rowwise() += table.col(d).transpose();
  double loss = 0;
  for (int i = 0; i < batch; ++i) {
    auto row = logits.row(i);
    const S m = row.maxCoeff();
    const S t = row(labels[i]);
    row = (row.array() - m).exp();
    const S sum = row.sum();
    loss += static_cast<double>(std::log(sum) + m - t);
    row *= S(1) / (sum * batch);
    row(labels[i]) -= S(1) / batch;
  }
  if (grad_u != nullptr) {
    *grad_u = logits * table.leftCols(d);
    grad_table->leftCols(d) += logits.transpose() * u;
    grad_table->col(d) += logits.colwise().sum().transpose();
  }
  return static_cast<S>(loss / batch);
}

// ---------------------------------------------------------------------------
// Weighted logistic regression: loss = sum_i w_i BCE(y_i, sigmoid(z_i)) /
// sum_i w_i. In the ranking model w_i is the watch time of a clicked
// impression (y = 1) and 1 for an unclicked one (y = 0), so that the odds
// exp(z) estimate the expected watch time. If grad_z is not nullptr it
// receives dL/dz (n values). REQUIRES: w_i >= 0, sum w > 0.
template <typename S>
S WeightedLogisticLoss(const S* z, const S* y, const S* w, int n, S* grad_z) {
  double total_w = 0;
  for (int i = 0; i < n; ++i) total_w += w[i];
  double loss = 0;
  for (int i = 0; i < n; ++i) {
    // BCE = softplus(z) - y z, computed without overflow.
    const S softplus = std::max(z[i], S(0)) + std::log1p(std::exp(-std::abs(z[i])));
    loss += w[i] * static_cast<double>(softplus - y[i] * z[i]);
    if (grad_z != nullptr) {
      const S sigmoid =
          z[i] >= 0 ? S(1) / (S(1) + std::exp(-z[i])) : std::exp(z[i]) / (S(1) + std::exp(z[i]));
      grad_z[i] = static_cast<S>(w[i] * (sigmoid - y[i]) / total_w);
    }
  }
  return static_cast<S>(loss / total_w);
}

}  // namespace vrec::model
