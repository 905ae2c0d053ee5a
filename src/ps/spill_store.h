// The disk tier of a parameter server: where rows evicted from memory go.
//
// SpillStore is a small byte-oriented key-value interface with three
// implementations: RocksSpillStore (RocksDB on local disk, one per server
// process, shared by all its tables), MemSpillStore (an in-memory map, for
// tests) and FaultySpillStore (wraps another and fails chosen writes or
// reads, for fault tests). Keys are 16 bytes: big-endian table id then
// big-endian row key, so a table's rows are one contiguous prefix range.
//
// The spill tier is a cache extension, not the durable copy: RocksDB's WAL
// is disabled and durability comes from checkpoints (FlushAll + a RocksDB
// checkpoint, built later).
//
// Thread safety: all implementations are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ps/mutex.h"
#include "vrec/status.h"

namespace rocksdb {
class Cache;
class DB;
}  // namespace rocksdb

namespace vrec::ps {

// 16-byte spill key of (table_id, key) and back.
inline constexpr size_t kSpillKeyBytes = 16;
std::string SpillKey(uint64_t table_id, uint64_t key);
uint64_t SpillKeyRowKey(const std::string& spill_key);
uint64_t SpillKeyTableId(const std::string& spill_key);
std::string SpillPrefix(uint64_t table_id);

// Puts and deletes applied atomically by SpillStore::Write.
struct SpillBatch {
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<std::string> deletes;
  bool empty() const { return puts.empty() && deletes.empty(); }
  void clear() {
    puts.clear();
    deletes.clear();
  }
};

class SpillStore {
 public:
  virtual ~SpillStore() = default;

  // Applies all puts and deletes atomically.
  virtual Status Write(const SpillBatch& batch) = 0;

  // values->at(i) is the value of keys[i], or nullopt if absent.
  virtual Status MultiGet(const std::vector<std::string>& keys,
                          std::vector<std::optional<std::string>>* values) = 0;

  // Calls fn(key, value) for every key starting with `prefix`, in key order,
  // until fn returns false. Not a snapshot across concurrent writes.
  virtual Status Scan(const std::string& prefix,
                      const std::function<bool(const std::string&, const std::string&)>& fn) = 0;

  // Human-readable location, for error messages.
  virtual std::string Describe() const = 0;
};

struct RocksSpillOptions {
  std::string path;  // folder of the DB; created if missing
  // RocksDB's block cache: data blocks read by scans (index and filter
  // blocks are held by the table readers); point reads of rows bypass it
  // (the memory tier above is the row cache).
  uint64_t block_cache_bytes = 64 << 20;
  uint64_t write_buffer_bytes = 64 << 20;
  // Hash buckets of a memtable (8 bytes each): about one per record a full
  // memtable holds (~800k records of untouched rows in 64 MB).
  uint64_t memtable_buckets = 1 << 20;
  bool destroy_existing = false;  // start from an empty DB
  bool read_only = false;         // open an existing DB (e.g. a checkpoint) for reading only
};

class RocksSpillStore final : public SpillStore {
 public:
  // RocksDB errors come back as kUnavailable/kDataLoss/kInternal naming the path.
  static StatusOr<std::unique_ptr<RocksSpillStore>> Open(const RocksSpillOptions& options);
  ~RocksSpillStore() override;

  Status Write(const SpillBatch& batch) override;
  Status MultiGet(const std::vector<std::string>& keys,
                  std::vector<std::optional<std::string>>* values) override;
  Status Scan(const std::string& prefix,
              const std::function<bool(const std::string&, const std::string&)>& fn) override;
  std::string Describe() const override { return "rocksdb:" + path_; }

  // Bytes RocksDB holds in memory beside the memory tier's budget: table
  // readers (index and filter blocks of every SST file), memtables and the
  // block cache. Grows with the data spilled.
  uint64_t MemoryBytes() const;

  // Writes a consistent copy of the DB into `dir` (which must not exist; its
  // parent is created), flushing the memtable first (the WAL is off). The copy
  // hard-links the immutable files where the file system allows.
  Status Checkpoint(const std::string& dir);

 private:
  RocksSpillStore(std::string path, std::unique_ptr<rocksdb::DB> db,
                  std::shared_ptr<rocksdb::Cache> block_cache);
  const std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
  const std::shared_ptr<rocksdb::Cache> block_cache_;
};

class MemSpillStore final : public SpillStore {
 public:
  Status Write(const SpillBatch& batch) override;
  Status MultiGet(const std::vector<std::string>& keys,
                  std::vector<std::optional<std::string>>* values) override;
  Status Scan(const std::string& prefix,
              const std::function<bool(const std::string&, const std::string&)>& fn) override;
  std::string Describe() const override { return "memory"; }
  size_t size() const;

 private:
  mutable Mutex mu_;
  std::map<std::string, std::string> map_ ABSL_GUARDED_BY(mu_);
};

// Forwards to `base`, failing with kUnavailable: every write while
// fail_writes is set, and every read while fail_reads is set.
class FaultySpillStore final : public SpillStore {
 public:
  explicit FaultySpillStore(SpillStore* base) : base_(base) {}
  void set_fail_writes(bool fail) { fail_writes_.store(fail); }
  void set_fail_reads(bool fail) { fail_reads_.store(fail); }

  Status Write(const SpillBatch& batch) override;
  Status MultiGet(const std::vector<std::string>& keys,
                  std::vector<std::optional<std::string>>* values) override;
  Status Scan(const std::string& prefix,
              const std::function<bool(const std::string&, const std::string&)>& fn) override;
  std::string Describe() const override { return "faulty(" + base_->Describe() + ")"; }

 private:
  SpillStore* const base_;
  std::atomic<bool> fail_writes_{false};
  std::atomic<bool> fail_reads_{false};
};

}  // namespace vrec::ps
