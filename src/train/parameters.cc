#include "train/parameters.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "ps/slot_router.h"

namespace vrec::train {

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

DenseExchange::DenseExchange(const ModelSpec& spec) {
  for (const DenseTableInfo& d : spec.dense) {
    const int index = spec.TableIndex(d.table());
    CHECK_GE(index, 0) << d.table();
    Table t;
    t.ps = PsTableOf(spec, index);
    t.offset = d.offset();
    t.size = d.size();
    t.keys.resize(DenseBlocks(d.size()));
    for (size_t k = 0; k < t.keys.size(); ++k) t.keys[k] = k;
    t.scratch.resize(t.keys.size() * t.ps.dim);
    tables_.push_back(std::move(t));
  }
}

void DenseExchange::StartPull(ps::PsClient* client) {
  for (Table& t : tables_) t.pending = client->Pull(t.ps, t.keys, t.scratch.data());
}

Status DenseExchange::FinishPull(std::vector<float>* dense) {
  Status first;
  for (Table& t : tables_) {
    Status s = t.pending.Wait();
    if (!s.ok() && first.ok()) first = s;
    if (s.ok()) std::memcpy(dense->data() + t.offset, t.scratch.data(), t.size * sizeof(float));
  }
  return first;
}

std::vector<ps::PsRequest> DenseExchange::Push(ps::PsClient* client, absl::Span<const float> grad) {
  std::vector<ps::PsRequest> out;
  for (Table& t : tables_) {
    grad_scratch_.assign(t.keys.size() * t.ps.dim, 0.f);
    std::memcpy(grad_scratch_.data(), grad.data() + t.offset, t.size * sizeof(float));
    out.push_back(client->Push(t.ps, t.keys, grad_scratch_));  // Push copies its input
  }
  return out;
}

}  // namespace vrec::train
