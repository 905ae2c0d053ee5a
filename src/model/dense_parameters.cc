#include "model/dense_parameters.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"

namespace vrec::model {

int DenseParameters::AddBlock(const std::string& name, int rows, int cols) {
  CHECK(!Find(name).ok()) << "duplicate dense block " << name;
  CHECK_GE(rows, 0);
  CHECK_GE(cols, 0);
  const int64_t offset = (size_ + kAlignment - 1) / kAlignment * kAlignment;
  blocks_.push_back(Block{name, offset, rows, cols});
  size_ = offset + static_cast<int64_t>(rows) * cols;
  return static_cast<int>(blocks_.size()) - 1;
}

StatusOr<int> DenseParameters::Find(const std::string& name) const {
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (blocks_[i].name == name) return static_cast<int>(i);
  }
  return absl::NotFoundError(absl::StrCat("no dense block named '", name, "'"));
}

Status DenseParameters::CheckSize(const std::string& what, int64_t buffer_size) const {
  if (buffer_size != size_) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": buffer holds ", buffer_size, " scalars, the layout needs ", size_));
  }
  return absl::OkStatus();
}

}  // namespace vrec::model
