// Pooled gradients: the gradients of an embedding bag's rows carried as the
// bags' own (one row per example) plus, for each key, the examples that
// used it and with what weight.
//
// A mean embedding bag over a batch's distinct rows has row gradients
// g_key = sum over the key's uses u of weight_u x pooled[row_u]. A worker
// can send those (a row of dim floats per key: ~50k keys, tens of MB a
// step) or the pooled matrix (batch x dim, half a MB) and the uses (8 bytes
// a use), and let the server form each key's gradient as it applies its
// optimizer: the gradient rows are then never written, zeroed or read
// anywhere (ps_client.h PushPooled, embedding_store.h PushPooled). The sum
// runs over a key's uses in order with one fused multiply-add per element
// (common/row_math.h), exactly as the model's EmbeddingBagBackward, so both
// give the same numbers bit for bit.
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "vrec/status.h"

namespace vrec::ps {

// The uses of each of n keys: key i's are [offsets[i], offsets[i + 1]) of
// `rows` (rows of the pooled matrix) and `weights`.
struct PooledUses {
  absl::Span<const uint32_t> offsets;  // n + 1, from 0, non-decreasing
  absl::Span<const uint32_t> rows;     // offsets[n]
  absl::Span<const float> weights;     // offsets[n]
};

// kInvalidArgument (saying what) unless `uses` is well formed for
// `num_keys` keys and a pooled matrix of `num_pooled` rows, `pooled`
// (num_pooled x dim) and the weights are finite, and no key's gradient can
// overflow a float (max |pooled| x the largest sum of |weight| over a key's
// uses stays below 1e38), so that the gradients are finite before any is
// formed.
Status CheckPooled(size_t num_keys, const PooledUses& uses, const float* pooled,
                   uint64_t num_pooled, uint32_t dim);

// Key i's gradient into out[0 .. dim). REQUIRES: CheckPooled passed.
void PooledGradient(const PooledUses& uses, size_t i, const float* pooled, uint32_t dim,
                    float* out);

}  // namespace vrec::ps
