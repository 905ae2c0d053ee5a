#include "ps/pooled_gradients.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/row_math.h"

namespace vrec::ps {

Status CheckPooled(size_t num_keys, const PooledUses& uses, const float* pooled,
                   uint64_t num_pooled, uint32_t dim) {
  if (uses.offsets.size() != num_keys + 1 || uses.offsets[0] != 0) {
    return absl::InvalidArgumentError(absl::StrCat(uses.offsets.size(), " use offsets for ",
                                                   num_keys, " keys (need keys + 1, from 0)"));
  }
  const size_t m = uses.offsets[num_keys];
  if (uses.rows.size() != m || uses.weights.size() != m) {
    return absl::InvalidArgumentError(absl::StrCat(m, " uses, but ", uses.rows.size(),
                                                   " rows and ", uses.weights.size(), " weights"));
  }
  for (size_t i = 0; i < num_keys; ++i) {
    if (uses.offsets[i + 1] < uses.offsets[i]) {
      return absl::InvalidArgumentError(absl::StrCat("use offsets decrease at key index ", i));
    }
  }
  float max_sum = 0;
  for (size_t i = 0; i < num_keys; ++i) {
    float sum = 0;
    for (uint32_t u = uses.offsets[i]; u < uses.offsets[i + 1]; ++u) {
      if (uses.rows[u] >= num_pooled) {
        return absl::InvalidArgumentError(absl::StrCat("use ", u, " names pooled row ",
                                                       uses.rows[u], " of ", num_pooled));
      }
      if (!std::isfinite(uses.weights[u])) {
        return absl::InvalidArgumentError(
            absl::StrCat("non-finite weight ", uses.weights[u], " at use ", u));
      }
      sum += std::fabs(uses.weights[u]);
    }
    max_sum = std::max(max_sum, sum);
  }
  float max_abs = 0;
  const size_t n = static_cast<size_t>(num_pooled) * dim;
  for (size_t j = 0; j < n; ++j) {
    if (!std::isfinite(pooled[j])) {
      return absl::InvalidArgumentError(absl::StrCat("non-finite pooled gradient ", pooled[j],
                                                     " at row ", j / dim, ", element ", j % dim));
    }
    max_abs = std::max(max_abs, std::fabs(pooled[j]));
  }
  if (!std::isfinite(max_sum) ||
      static_cast<double>(max_abs) * static_cast<double>(max_sum) >= 1e38) {
    return absl::InvalidArgumentError(absl::StrCat("pooled gradients up to ", max_abs,
                                                   " with weights summing to ", max_sum,
                                                   " could overflow"));
  }
  return absl::OkStatus();
}

void PooledGradient(const PooledUses& uses, size_t i, const float* pooled, uint32_t dim,
                    float* out) {
  std::memset(out, 0, sizeof(float) * dim);
  for (uint32_t u = uses.offsets[i]; u < uses.offsets[i + 1]; ++u) {
    AddScaled(out, uses.weights[u], pooled + static_cast<size_t>(uses.rows[u]) * dim, dim);
  }
}

}  // namespace vrec::ps
