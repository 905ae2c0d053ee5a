// ServerStorage: every table's EmbeddingStore on one parameter-server
// process, sharing one RocksDB spill store and one memory budget.
//
// The process budget (a flag of the server binary, passed in Options) is
// split once, at creation: a table whose TableConfig.storage sets
// memory_budget_bytes keeps that amount; the rest of the process budget is
// shared by the other tables in proportion to their row width (weights plus
// optimizer state), the width that decides how many rows fit. Dense tables
// hold all their blocks in memory (their size is known and small next to
// the embeddings) and are charged first.
//
// Thread safety: construction is single-threaded; afterwards every method is
// thread-safe (the stores are; the table map is immutable).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proto/model.pb.h"
#include "ps/embedding_store.h"
#include "ps/spill_store.h"
#include "vrec/status.h"

namespace vrec::ps {

struct ServerStorageOptions {
  std::string spill_path;            // RocksDB folder of this server process
  bool fresh = true;                 // destroy what is at spill_path first
  uint64_t memory_budget_bytes = 0;  // whole process; 0 = unlimited
  uint32_t num_partitions = 16;
  uint32_t dense_block_floats = 4096;
  // (fan_in, fan_out) of each GLOROT_UNIFORM dense table, by table name.
  std::map<std::string, std::pair<uint64_t, uint64_t>> glorot_fans;
};

class ServerStorage {
 public:
  // kInvalidArgument for duplicate or invalid tables, or explicit table
  // budgets (plus dense tables) that exceed the process budget.
  static StatusOr<std::unique_ptr<ServerStorage>> Create(const ModelConfig& model,
                                                         const ServerStorageOptions& options);

  // nullptr if the model has no such table.
  EmbeddingStore* Find(const std::string& table) const;
  const std::vector<std::string>& table_names() const { return names_; }

  // Advances every table's step clock.
  void AdvanceStep(uint64_t n = 1);
  // FlushAll on every table (for checkpoints).
  Status FlushAll();
  std::vector<StoreStats> Stats() const;
  uint64_t MemoryBytes() const;

  SpillStore* spill() const { return spill_.get(); }

 private:
  ServerStorage() = default;
  std::unique_ptr<RocksSpillStore> spill_;
  std::map<std::string, std::unique_ptr<EmbeddingStore>> tables_;
  std::vector<std::string> names_;  // config order
};

}  // namespace vrec::ps
