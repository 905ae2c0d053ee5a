#include "model/batch_builder.h"

namespace vrec::model {

void IdDeduplicator::Grow() {
  const size_t size = std::max<size_t>(64, 2 * stamps_.size());
  stamps_.assign(size, 0);
  keys_.resize(size);
  rows_.resize(size);
  generation_ = 1;
  const size_t mask = size - 1;
  for (size_t r = 0; r < ids_.size(); ++r) {
    size_t i = Mix64(static_cast<uint64_t>(ids_[r])) & mask;
    while (stamps_[i] == generation_) i = (i + 1) & mask;
    stamps_[i] = generation_;
    keys_[i] = ids_[r];
    rows_[i] = static_cast<int32_t>(r);
  }
}

OutputCandidates BuildOutputCandidates(absl::Span<const int64_t> labels,
                                       absl::Span<const int64_t> negatives) {
  IdDeduplicator dedup;
  OutputCandidates out;
  out.label_rows.reserve(labels.size());
  out.negative_rows.reserve(negatives.size());
  for (int64_t id : labels) out.label_rows.push_back(dedup.Add(id));
  for (int64_t id : negatives) out.negative_rows.push_back(dedup.Add(id));
  out.ids = dedup.ids();
  return out;
}

}  // namespace vrec::model
