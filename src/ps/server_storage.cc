#include "ps/server_storage.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "ps/optimizer.h"

namespace vrec::ps {
namespace {

// Dense tables have few blocks; more partitions than blocks only cost memory.
uint32_t DensePartitions(const ServerStorageOptions& options, uint64_t blocks) {
  return static_cast<uint32_t>(
      std::max<uint64_t>(1, std::min<uint64_t>(options.num_partitions, blocks)));
}

}  // namespace

StatusOr<std::unique_ptr<ServerStorage>> ServerStorage::Create(
    const ModelConfig& model, const ServerStorageOptions& options) {
  std::unique_ptr<ServerStorage> server(new ServerStorage());
  RocksSpillOptions ro;
  ro.path = options.spill_path;
  ro.destroy_existing = options.fresh;
  VREC_ASSIGN_OR_RETURN(server->spill_, RocksSpillStore::Open(ro));

  // Budget split: explicit table budgets and dense tables first, the rest by
  // row width.
  const uint64_t process = options.memory_budget_bytes;
  std::vector<uint64_t> budgets(model.tables_size(), 0);
  uint64_t reserved = 0, shared_width = 0;
  std::vector<uint64_t> width(model.tables_size(), 0);
  for (int i = 0; i < model.tables_size(); ++i) {
    const TableConfig& t = model.tables(i);
    for (int j = 0; j < i; ++j) {
      if (model.tables(j).name() == t.name()) {
        return absl::InvalidArgumentError(absl::StrCat("duplicate table name '", t.name(), "'"));
      }
    }
    VREC_ASSIGN_OR_RETURN(auto opt, Optimizer::Create(t.optimizer()));
    if (t.dense()) {
      // All blocks resident: the rows, one partially used 16 KB arena chunk
      // and ~2 KB of fixed structures per partition (an upper bound).
      const uint64_t block = std::min<uint64_t>(options.dense_block_floats, t.dense_size());
      const uint64_t blocks = (t.dense_size() + block - 1) / block;
      const uint64_t row_bytes = 4 * (block + opt->StateFloats(block));
      reserved += blocks * (row_bytes + 64) + DensePartitions(options, blocks) * (18 << 10);
    } else if (t.storage().memory_budget_bytes() > 0) {
      budgets[i] = t.storage().memory_budget_bytes();
      reserved += budgets[i];
    } else {
      width[i] = t.dim() + opt->StateFloats(t.dim());
      shared_width += width[i];
    }
  }
  if (process > 0 && reserved > process) {
    return absl::InvalidArgumentError(
        absl::StrCat("server memory budget ", process, " bytes is less than the ", reserved,
                     " bytes claimed by dense tables and explicit table budgets"));
  }
  for (int i = 0; i < model.tables_size(); ++i) {
    if (process > 0 && width[i] > 0) {
      budgets[i] = (process - reserved) * width[i] / shared_width;
    }
  }
  for (int i = 0; i < model.tables_size(); ++i) {
    const TableConfig& t = model.tables(i);
    TableStoreOptions o;
    o.seed = model.seed();
    o.spill = server->spill_.get();
    o.memory_budget_bytes = t.dense() ? 0 : budgets[i];
    o.num_partitions = options.num_partitions;
    if (t.dense()) {
      const uint64_t block = std::min<uint64_t>(options.dense_block_floats, t.dense_size());
      o.num_partitions = DensePartitions(options, (t.dense_size() + block - 1) / block);
    }
    o.dense_block_floats = options.dense_block_floats;
    if (auto f = options.glorot_fans.find(t.name()); f != options.glorot_fans.end()) {
      o.glorot_fan_in = f->second.first;
      o.glorot_fan_out = f->second.second;
    }
    TableConfig copy = t;
    if (t.dense()) copy.mutable_storage()->set_memory_budget_bytes(0);
    auto store = EmbeddingStore::FromConfig(copy, o);
    if (!store.ok()) {
      return Status(store.status().code(),
                    absl::StrCat("table '", t.name(), "': ", store.status().message()));
    }
    server->names_.push_back(t.name());
    server->tables_[t.name()] = std::move(store).value();
  }
  return server;
}

EmbeddingStore* ServerStorage::Find(const std::string& table) const {
  auto it = tables_.find(table);
  return it == tables_.end() ? nullptr : it->second.get();
}

void ServerStorage::AdvanceStep(uint64_t n) {
  for (auto& [name, store] : tables_) store->AdvanceStep(n);
}

Status ServerStorage::FlushAll() {
  for (auto& [name, store] : tables_) VREC_RETURN_IF_ERROR(store->FlushAll());
  return absl::OkStatus();
}

std::vector<StoreStats> ServerStorage::Stats() const {
  std::vector<StoreStats> out;
  for (const auto& name : names_) out.push_back(tables_.at(name)->Stats());
  return out;
}

uint64_t ServerStorage::MemoryBytes() const {
  uint64_t total = 0;
  for (const auto& [name, store] : tables_) total += store->MemoryBytes();
  return total;
}

}  // namespace vrec::ps
