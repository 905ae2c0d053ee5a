#include "train/dense_exchange.h"

#include <algorithm>
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
    const uint64_t blocks = models::DenseBlocks(d.size());
    const uint64_t whole = d.size() / t.ps.dim;
    for (uint64_t k = 0; k < whole; ++k) t.keys.push_back(k);
    if (whole < blocks) {
      t.tail_key.push_back(whole);
      t.pull_tail.resize(t.ps.dim);
      t.push_tail.resize(t.ps.dim);
    }
    tables_.push_back(std::move(t));
  }
}

void DenseExchange::StartPull(ps::PsClient* client, absl::Span<float> dense) {
  for (Table& t : tables_) {
    if (!t.keys.empty()) t.pending = client->Pull(t.ps, t.keys, dense.data() + t.offset);
    if (!t.tail_key.empty()) t.pending_tail = client->Pull(t.ps, t.tail_key, t.pull_tail.data());
  }
}

Status DenseExchange::FinishPull(absl::Span<float> dense) {
  Status first;
  for (Table& t : tables_) {
    Status s = t.pending.Wait();
    if (!s.ok() && first.ok()) first = s;
    if (t.tail_key.empty()) continue;
    s = t.pending_tail.Wait();
    if (!s.ok() && first.ok()) first = s;
    const uint64_t head = t.keys.size() * t.ps.dim;
    if (s.ok()) {
      std::memcpy(dense.data() + t.offset + head, t.pull_tail.data(),
                  (t.size - head) * sizeof(float));
    }
  }
  return first;
}

std::vector<ps::PsRequest> DenseExchange::Push(ps::PsClient* client, absl::Span<const float> grad) {
  std::vector<ps::PsRequest> out;
  for (Table& t : tables_) {
    const uint64_t head = t.keys.size() * t.ps.dim;
    if (!t.keys.empty()) {
      out.push_back(client->PushRows(t.ps, t.keys, grad.subspan(t.offset, head)));
    }
    if (!t.tail_key.empty()) {
      std::fill(t.push_tail.begin(), t.push_tail.end(), 0.f);
      std::memcpy(t.push_tail.data(), grad.data() + t.offset + head,
                  (t.size - head) * sizeof(float));
      out.push_back(client->PushRows(t.ps, t.tail_key, t.push_tail));
    }
  }
  return out;
}

}  // namespace vrec::train
