#include "train/dense_exchange.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "models/parameters.h"

namespace vrec::train {

DenseExchange::DenseExchange(const models::ModelSpec& spec) {
  for (const DenseTableInfo& d : spec.dense) {
    const int index = spec.TableIndex(d.table());
    CHECK_GE(index, 0) << d.table();
    Table t;
    t.ps = models::PsTableOf(spec, index);
    t.offset = d.offset();
    t.size = d.size();
    t.keys.resize(models::DenseBlocks(d.size()));
    for (size_t k = 0; k < t.keys.size(); ++k) t.keys[k] = k;
    t.scratch.resize(t.keys.size() * t.ps.dim);
    tables_.push_back(std::move(t));
  }
}

void DenseExchange::StartPull(ps::PsClient* client) {
  for (Table& t : tables_) t.pending = client->Pull(t.ps, t.keys, t.scratch.data());
}

Status DenseExchange::FinishPull(absl::Span<float> dense) {
  Status first;
  for (Table& t : tables_) {
    Status s = t.pending.Wait();
    if (!s.ok() && first.ok()) first = s;
    if (s.ok()) std::memcpy(dense.data() + t.offset, t.scratch.data(), t.size * sizeof(float));
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
