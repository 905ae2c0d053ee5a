#include "model/tensor.h"

#include "absl/strings/str_cat.h"

namespace vrec::model {

Status IndexLists::Validate(const std::string& what, int expected_lists, int num_rows,
                            int max_per_list) const {
  if (offsets.empty() || offsets[0] != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": offsets must start with 0"));
  }
  if (num_lists() != expected_lists) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", num_lists(), " lists for a batch of ", expected_lists));
  }
  if (offsets.back() != static_cast<int64_t>(indices.size())) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": last offset ", offsets.back(),
                                                   " != number of indices ", indices.size()));
  }
  for (int i = 0; i < expected_lists; ++i) {
    const int n = offsets[i + 1] - offsets[i];
    if (n < 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": offsets decrease at example ", i));
    }
    if (max_per_list >= 0 && n > max_per_list) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": example ", i, " has ", n,
                                                     " ids, at most ", max_per_list, " allowed"));
    }
    for (int k = offsets[i]; k < offsets[i + 1]; ++k) {
      if (indices[k] < 0 || indices[k] >= num_rows) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": example ", i, " position ",
                                                       k - offsets[i], " index ", indices[k],
                                                       " out of range [0, ", num_rows, ")"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace vrec::model
