// Arithmetic on rows of floats that two modules must do bit for bit alike.
//
// An embedding bag's row gradients are a sum, over the examples that used a
// row, of each example's pooled gradient times its weight. The model sums
// them on the worker (model/layers.h, EmbeddingBagBackward) and the
// parameter server sums them itself when a worker pushes the pooled
// gradients instead (ps/embedding_store.h, PushPooled); both call AddScaled,
// one fused multiply-add per element, so that the two paths train to the
// same numbers (a compiler may contract a separate multiply and add into a
// fused one in one place and not in another).
//
// Thread safety: pure functions.
#pragma once

#include <cmath>
#include <cstddef>

namespace vrec {

// acc[d] = fma(w, x[d], acc[d]) for d in [0, n).
template <typename S>
inline void AddScaled(S* acc, S w, const S* x, size_t n) {
  for (size_t d = 0; d < n; ++d) acc[d] = std::fma(w, x[d], acc[d]);
}

}  // namespace vrec
