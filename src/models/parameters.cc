#include "models/parameters.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "ps/slot_router.h"

namespace vrec::models {

ps::PsTable PsTableOf(const ModelSpec& spec, int index) {
  const TableConfig& t = spec.Table(index);
  return ps::PsTable{static_cast<uint32_t>(index), ps::TableId(t.name()), t.dim()};
}

Status PsParameters::Pull(int table, absl::Span<const uint64_t> keys, float* out) {
  if (keys.empty()) return absl::OkStatus();
  return client_->Pull(PsTableOf(*spec_, table), keys, out).Wait();
}

Status GatherDense(const ModelSpec& spec, ParameterSource* source, std::vector<float>* dense) {
  dense->assign(spec.DenseSize(), 0.f);
  std::vector<uint64_t> keys;
  std::vector<float> scratch;
  for (const DenseTableInfo& d : spec.dense) {
    const int index = spec.TableIndex(d.table());
    if (index < 0) return absl::InternalError(absl::StrCat("no dense table ", d.table()));
    const uint32_t dim = spec.Table(index).dim();
    keys.resize(DenseBlocks(d.size()));
    for (size_t k = 0; k < keys.size(); ++k) keys[k] = k;
    scratch.resize(keys.size() * dim);
    VREC_RETURN_IF_ERROR(source->Pull(index, keys, scratch.data()));
    std::memcpy(dense->data() + d.offset(), scratch.data(), d.size() * sizeof(float));
  }
  return absl::OkStatus();
}

}  // namespace vrec::models
