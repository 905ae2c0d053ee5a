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
// Checkpoints (docs/checkpoints.md): Checkpoint() flushes every row still
// in memory to the spill store and takes a RocksDB checkpoint of it (rows
// carry their optimizer state and expiry step), returning what lives beside
// the rows (step clocks, admission counts). Restore() builds a server's
// storage from a checkpoint written by any number of servers: the rows whose
// virtual slot the new router gives this server are copied into its fresh
// spill store (the checkpoint's files are hard-linked when the layout is
// unchanged) and load into memory on first access.
//
// Thread safety: construction is single-threaded; afterwards every method is
// thread-safe (the stores are; the table map is immutable), except that
// Checkpoint() must not run while requests are in flight.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proto/checkpoint.pb.h"
#include "proto/model.pb.h"
#include "ps/embedding_store.h"
#include "ps/slot_router.h"
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

// One server's part of a checkpoint.
struct CheckpointShard {
  std::string db_dir;  // its RocksDB checkpoint
  ServerState state;
};

class ServerStorage {
 public:
  // kInvalidArgument for duplicate or invalid tables, or explicit table
  // budgets (plus dense tables) that exceed the process budget.
  static StatusOr<std::unique_ptr<ServerStorage>> Create(const ModelConfig& model,
                                                         const ServerStorageOptions& options);

  // The storage of server `server` under `router`, holding the rows of the
  // checkpoint `shards` (written by servers 0..n-1 under `old_router`).
  // options.spill_path is emptied first. kInvalidArgument if the shards do
  // not match old_router; RocksDB errors name the folder.
  static StatusOr<std::unique_ptr<ServerStorage>> Restore(
      const ModelConfig& model, ServerStorageOptions options,
      const std::vector<CheckpointShard>& shards, const SlotRouter& old_router,
      const SlotRouter& router, uint32_t server);

  // Removes expired rows (EmbeddingStore::ExpireStale), writes every row to
  // the spill store, then a RocksDB checkpoint of it into `db_dir` (which
  // must not exist). The state counts each table's rows. REQUIRES: no
  // requests in flight.
  StatusOr<ServerState> Checkpoint(const std::string& db_dir);

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
