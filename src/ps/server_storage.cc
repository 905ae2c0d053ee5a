#include "ps/server_storage.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
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

StatusOr<ServerState> ServerStorage::Checkpoint(const std::string& db_dir) {
  // Expired rows are gone already (any access sees a fresh row): a
  // checkpoint holds the live rows only, so tables with expiry stay bounded
  // on disk too.
  for (const auto& name : names_) {
    VREC_RETURN_IF_ERROR(tables_.at(name)->ExpireStale().status());
  }
  VREC_RETURN_IF_ERROR(FlushAll());
  VREC_RETURN_IF_ERROR(spill_->Checkpoint(db_dir));
  ServerState state;
  for (const auto& name : names_) {
    const EmbeddingStore& store = *tables_.at(name);
    TableState* t = state.add_tables();
    t->set_table(name);
    t->set_step(store.step());
    for (const auto& [key, count] : store.AdmissionCounts()) {
      t->add_admission_keys(key);
      t->add_admission_counts(count);
    }
    const StoreStats st = store.Stats();
    t->set_rows(st.rows_on_disk);
    state.set_rows(state.rows() + st.rows_on_disk);
  }
  return state;
}

namespace {

// Copies the checkpoint folder `from` into the (empty) folder `to`: SST files
// are immutable and hard-linked when possible, the rest is copied.
Status CopyCheckpointFiles(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    if (!entry.is_regular_file()) continue;
    const fs::path target = fs::path(to) / entry.path().filename();
    bool linked = false;
    if (entry.path().extension() == ".sst") {
      std::error_code link_ec;
      fs::create_hard_link(entry.path(), target, link_ec);
      linked = !link_ec;
    }
    if (!linked) {
      fs::copy_file(entry.path(), target, fs::copy_options::overwrite_existing, ec);
      if (ec) {
        return absl::UnavailableError(absl::StrCat("copying ", entry.path().string(), " to ",
                                                   target.string(), ": ", ec.message()));
      }
    }
  }
  if (ec) return absl::UnavailableError(absl::StrCat("reading ", from, ": ", ec.message()));
  return absl::OkStatus();
}

// Copies the rows of `shard` that `router` gives to `server` into `out`.
Status CopyRoutedRows(const std::string& shard_dir, const SlotRouter& router, uint32_t server,
                      RocksSpillStore* out) {
  RocksSpillOptions ro;
  ro.path = shard_dir;
  ro.read_only = true;
  VREC_ASSIGN_OR_RETURN(auto in, RocksSpillStore::Open(ro));
  SpillBatch batch;
  size_t batch_bytes = 0;
  Status write_status;
  VREC_RETURN_IF_ERROR(in->Scan("", [&](const std::string& k, const std::string& v) {
    if (k.size() != 16) return true;  // not a row
    if (router.Server(SpillKeyTableId(k), SpillKeyRowKey(k)) != server) return true;
    batch.puts.emplace_back(k, v);
    batch_bytes += k.size() + v.size();
    if (batch_bytes >= (4u << 20)) {
      write_status = out->Write(batch);
      batch.clear();
      batch_bytes = 0;
      if (!write_status.ok()) return false;
    }
    return true;
  }));
  VREC_RETURN_IF_ERROR(write_status);
  return out->Write(batch);
}

}  // namespace

StatusOr<std::unique_ptr<ServerStorage>> ServerStorage::Restore(
    const ModelConfig& model, ServerStorageOptions options,
    const std::vector<CheckpointShard>& shards, const SlotRouter& old_router,
    const SlotRouter& router, uint32_t server) {
  if (shards.size() != old_router.num_servers()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint has ", shards.size(),
                                                   " server folders but its router names ",
                                                   old_router.num_servers(), " servers"));
  }
  if (server >= router.num_servers()) {
    return absl::InvalidArgumentError(
        absl::StrCat("server ", server, " of ", router.num_servers()));
  }
  std::error_code ec;
  std::filesystem::remove_all(options.spill_path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("emptying ", options.spill_path, ": ", ec.message()));
  }
  VREC_RETURN_IF_ERROR(MakeDirs(options.spill_path));
  if (old_router.Serialize() == router.Serialize()) {  // the same layout: take the files
    VREC_RETURN_IF_ERROR(CopyCheckpointFiles(shards[server].db_dir, options.spill_path));
  } else {  // the virtual slots move: pick this server's rows from every shard
    RocksSpillOptions ro;
    ro.path = options.spill_path;
    VREC_ASSIGN_OR_RETURN(auto fresh, RocksSpillStore::Open(ro));
    for (const CheckpointShard& shard : shards) {
      VREC_RETURN_IF_ERROR(CopyRoutedRows(shard.db_dir, router, server, fresh.get()));
    }
  }
  options.fresh = false;
  VREC_ASSIGN_OR_RETURN(auto storage, Create(model, options));
  for (const auto& name : storage->names_) {
    EmbeddingStore* store = storage->tables_.at(name).get();
    uint64_t step = 0;
    std::vector<std::pair<uint64_t, uint32_t>> admission;
    for (const CheckpointShard& shard : shards) {
      for (const TableState& t : shard.state.tables()) {
        if (t.table() != name) continue;
        if (t.admission_keys_size() != t.admission_counts_size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("checkpoint state of table ", name, " in ", shard.db_dir, ": ",
                           t.admission_keys_size(), " admission keys but ",
                           t.admission_counts_size(), " counts"));
        }
        step = std::max(step, t.step());
        for (int i = 0; i < t.admission_keys_size(); ++i) {
          if (router.Server(store->table_id(), t.admission_keys(i)) == server) {
            admission.emplace_back(t.admission_keys(i), t.admission_counts(i));
          }
        }
      }
    }
    store->RestoreState(step, admission);
  }
  return storage;
}

}  // namespace vrec::ps
