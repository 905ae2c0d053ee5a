// Matrix types and the CSR index lists that carry variable-length id lists
// (watch history, search tokens) from a batch into the model.
//
// Batches use row-major matrices, one row per example (batch x width), so a
// layer is a single GEMM over contiguous memory.
//
// Thread safety: value types; no shared state.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "vrec/status.h"

namespace vrec::model {

template <typename Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
template <typename Scalar>
using RowVector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

// A vector whose data is aligned as Eigen's own matrices are (to
// EIGEN_MAX_ALIGN_BYTES). Flat dense-parameter and gradient buffers use it:
// Eigen vectorizes an expression over a Map differently by the Map's
// alignment (a reduction's summation order with it), so a buffer wherever
// malloc put it made the same step's floats differ in the last bits from
// run to run.
template <typename Scalar>
using AlignedVector = std::vector<Scalar, Eigen::aligned_allocator<Scalar>>;

// Per-example lists of row indices in compressed sparse row form: example i
// uses indices[offsets[i] .. offsets[i+1]). The indices point into the matrix
// of a table's UNIQUE rows for the batch (see DESIGN: a worker pulls each
// distinct id once).
struct IndexLists {
  std::vector<int32_t> offsets{0};  // size num_lists() + 1, offsets[0] == 0
  std::vector<int32_t> indices;

  int num_lists() const { return static_cast<int>(offsets.size()) - 1; }
  int size(int i) const { return offsets[i + 1] - offsets[i]; }

  void Clear() {
    offsets.assign(1, 0);
    indices.clear();
  }
  // Appends one example's list.
  template <typename It>
  void Append(It begin, It end) {
    indices.insert(indices.end(), begin, end);
    offsets.push_back(static_cast<int32_t>(indices.size()));
  }
  void Append(std::initializer_list<int32_t> list) { Append(list.begin(), list.end()); }

  // OK iff there are `num_lists` lists, offsets are non-decreasing from 0 to
  // indices.size(), every index is in [0, num_rows) and no list is longer
  // than `max_per_list` (< 0: unbounded). Errors name `what`, the example
  // and the position.
  Status Validate(const std::string& what, int num_lists, int num_rows,
                  int max_per_list = -1) const;
};

}  // namespace vrec::model
