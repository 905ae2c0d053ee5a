#include "model/batch_builder.h"

namespace vrec::model {

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
