// Minimal local optimizers for the dense buffer and embedding rows: enough
// for single-process training and the tests' "learns a planted function"
// checks. The production optimizers (SGD, Adagrad, Adam, FTRL with state kept
// beside each row) run on the parameter server.
//
// Thread safety: Adagrad holds its accumulators; one thread at a time.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace vrec::model {

// params -= learning_rate * grads. REQUIRES: equal sizes.
template <typename S>
void SgdUpdate(S learning_rate, absl::Span<const S> grads, absl::Span<S> params) {
  for (size_t k = 0; k < params.size(); ++k) params[k] -= learning_rate * grads[k];
}

// Adagrad (Duchi et al. 2011): a_k += g_k^2; p_k -= lr * g_k / (sqrt(a_k) + eps).
// Each slot of `size` parameters has its own accumulator, starting at
// `initial_accumulator`; embedding tables use one slot per (row, column).
template <typename S>
class Adagrad {
 public:
  Adagrad(int64_t size, S learning_rate, S initial_accumulator = S(0.1), S epsilon = S(1e-8))
      : lr_(learning_rate), eps_(epsilon), accum_(size, initial_accumulator) {}

  int64_t size() const { return static_cast<int64_t>(accum_.size()); }

  // Updates params[k] (k = 0..n-1) using accumulator slots offset + k.
  // REQUIRES: offset + grads.size() <= size(), params.size() == grads.size().
  void Update(int64_t offset, absl::Span<const S> grads, absl::Span<S> params) {
    for (size_t k = 0; k < grads.size(); ++k) {
      S& a = accum_[offset + k];
      a += grads[k] * grads[k];
      params[k] -= lr_ * grads[k] / (std::sqrt(a) + eps_);
    }
  }

 private:
  S lr_;
  S eps_;
  std::vector<S> accum_;
};

}  // namespace vrec::model
