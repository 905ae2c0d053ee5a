// RankingPageForward: the ranking tower's forward pass for serving a page,
// the impressions one request shows one user.
//
// Every impression of a page carries the same user-side features (watch
// history, search tokens, region, device, age, gender); only the impression
// side (the video, its topic, its age, ...) differs. The first layer's
// pre-activation splits by input columns,
//     x W1 + b1 = (x_user W1_user + b1) + x_item W1_item,
// so the user part is one vector-matrix product per page and the GEMM over
// the impressions has only the impression-side columns (108 of 258 in the
// paper-sized model: about 17% of the tower's FLOPs saved at 300
// impressions). The later layers are RankingModel's. The logits equal
// RankingModel::Logits on the same impressions up to float rounding (the
// sums are associated differently); the training path is untouched.
//
// Which features are the page's ("shared") is the caller's choice, made once
// at construction: a categorical feature's ids or a continuous feature's
// value must then be the same for every impression, which RankingPage
// enforces by carrying them once.
//
// Thread safety: const methods are thread-safe; Logits uses scratch buffers
// (one RankingPageForward per thread).
#pragma once

#include <vector>

#include "absl/types/span.h"
#include "model/ranking_model.h"
#include "model/tensor.h"
#include "vrec/status.h"

namespace vrec::model {

// A page's inputs: like RankingBatch, but a shared categorical feature has
// ONE index list (the user's) and a shared continuous feature is read from
// row 0 of `continuous` only.
template <typename S>
struct RankingPage {
  int num_impressions = 0;
  std::vector<RowMatrix<S>> table_rows;  // per options.tables: num_unique x dim
  std::vector<IndexLists> categorical;   // per options.categorical: 1 list if shared, else one per impression
  RowMatrix<S> continuous;               // num_impressions x options.continuous.size(), raw values
};

// Where one request's ranking time went (seconds), for profiles.
struct RankingPageProfile {
  double inputs = 0;        // embedding bags and quantile features into the layer-1 inputs
  double first_layer = 0;   // the user-side product, the impression-side GEMM, bias and ReLU
  double other_layers = 0;  // the hidden layers after the first and the logit
};

template <typename S>
class RankingPageForward {
 public:
  // shared_categorical[f] (per options.categorical) and shared_continuous[c]
  // (per options.continuous): whether that feature is the page's. Copies the
  // first layer's weights, split; keeps `model` and `dense` for the others.
  // REQUIRES: `model` and `dense` outlive this object and `dense` is not
  // written meanwhile. kInvalidArgument for masks or dense of the wrong size.
  static StatusOr<RankingPageForward> Create(const RankingModel<S>* model,
                                             absl::Span<const S> dense,
                                             std::vector<bool> shared_categorical,
                                             std::vector<bool> shared_continuous);

  // Input columns of the first layer computed once per page / per impression.
  int shared_width() const { return static_cast<int>(w_shared_.rows()); }
  int impression_width() const { return static_cast<int>(w_item_.rows()); }
  // Multiply-adds x 2 of a page of n impressions (the user-side product once,
  // every other layer per impression).
  int64_t ForwardFlops(int n) const;

  // kInvalidArgument (naming the feature) unless `page` fits the model and
  // the masks: lists per feature (1 if shared, num_impressions otherwise),
  // indices within the table's rows, no list over its max_ids.
  Status ValidatePage(const RankingPage<S>& page) const;

  // z[i] = the logit of impression i (z resized to num_impressions).
  // `profile`, when given, gets the time of each part added to it.
  Status Logits(const RankingPage<S>& page, std::vector<S>* z,
                RankingPageProfile* profile = nullptr);

 private:
  // A feature's slot: its columns in x_user or x_item.
  struct Slot {
    bool shared = false;
    int column = 0;  // first column within its side
  };
  RankingPageForward() = default;
  // Fills the user-side input row and the impression-side input rows.
  void Inputs(const RankingPage<S>& page, int rows);

  // Constant after construction.
  const RankingModel<S>* model_ = nullptr;
  const S* dense_ = nullptr;
  std::vector<Slot> categorical_, continuous_;
  RowMatrix<S> w_shared_;  // shared_width x out1: rows of W1 at the shared columns
  RowMatrix<S> w_item_;    // impression_width x out1
  RowVector<S> b1_;

  // Scratch.
  RowVector<S> x_shared_, h_shared_;
  RowMatrix<S> x_item_;
  std::vector<RowMatrix<S>> acts_;  // per layer, its output
};

extern template class RankingPageForward<float>;
extern template class RankingPageForward<double>;

}  // namespace vrec::model
