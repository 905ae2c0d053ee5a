// DenseParameters: the layout of a model's dense weights (tower layers,
// logistic-regression weights) inside one flat buffer of scalars.
//
// Dense weights are not owned by the model: a parameter server can hold the
// flat buffer in blocks, a worker pulls it into a local copy, and the model
// reads it through Eigen::Map views. Gradients go to a parallel buffer of the
// same layout. Every block starts at a multiple of kAlignment scalars (so a
// 64-byte aligned buffer gives 64-byte aligned blocks); the views do not
// require any alignment.
//
// Matrices are row-major: block (rows x cols) element (r, c) lives at
// offset + r * cols + c.
//
// Thread safety: const methods may be called concurrently; AddBlock may not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "model/tensor.h"
#include "vrec/status.h"

namespace vrec::model {

class DenseParameters {
 public:
  static constexpr int64_t kAlignment = 16;

  struct Block {
    std::string name;
    int64_t offset;  // in scalars from the start of the buffer
    int rows;
    int cols;
    int64_t size() const { return static_cast<int64_t>(rows) * cols; }
  };

  // Appends a rows x cols block and returns its index.
  // REQUIRES: `name` is not taken yet; rows, cols >= 0.
  int AddBlock(const std::string& name, int rows, int cols);

  const Block& block(int index) const { return blocks_[index]; }
  const std::vector<Block>& blocks() const { return blocks_; }
  // Index of the block called `name`, or kNotFound.
  StatusOr<int> Find(const std::string& name) const;
  // Total buffer length in scalars, padding included.
  int64_t size() const { return size_; }

  // kInvalidArgument unless `buffer_size` == size(); `what` names the buffer.
  Status CheckSize(const std::string& what, int64_t buffer_size) const;

  template <typename Scalar>
  Eigen::Map<const RowMatrix<Scalar>> Matrix(const Scalar* buffer, int index) const {
    const Block& b = blocks_[index];
    return Eigen::Map<const RowMatrix<Scalar>>(buffer + b.offset, b.rows, b.cols);
  }
  template <typename Scalar>
  Eigen::Map<RowMatrix<Scalar>> Matrix(Scalar* buffer, int index) const {
    const Block& b = blocks_[index];
    return Eigen::Map<RowMatrix<Scalar>>(buffer + b.offset, b.rows, b.cols);
  }

 private:
  std::vector<Block> blocks_;
  int64_t size_ = 0;
};

}  // namespace vrec::model
