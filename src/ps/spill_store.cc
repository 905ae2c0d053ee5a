#include "ps/spill_store.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"

namespace vrec::ps {
namespace {

void PutBigEndian(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xff);
}

uint64_t GetBigEndian(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string HexKey(const std::string& key) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// The one place RocksDB statuses become absl statuses.
Status FromRocks(const rocksdb::Status& s, const std::string& path, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat("rocksdb ", path, ": ", what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(msg);
  }
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}

}  // namespace

std::string SpillKey(uint64_t table_id, uint64_t key) {
  std::string out(kSpillKeyBytes, '\0');
  PutBigEndian(table_id, out.data());
  PutBigEndian(key, out.data() + 8);
  return out;
}

uint64_t SpillKeyRowKey(const std::string& spill_key) {
  return spill_key.size() == kSpillKeyBytes ? GetBigEndian(spill_key.data() + 8) : 0;
}

uint64_t SpillKeyTableId(const std::string& spill_key) {
  return spill_key.size() == kSpillKeyBytes ? GetBigEndian(spill_key.data()) : 0;
}

std::string SpillPrefix(uint64_t table_id) {
  std::string out(8, '\0');
  PutBigEndian(table_id, out.data());
  return out;
}

// ---- RocksSpillStore

RocksSpillStore::RocksSpillStore(std::string path, std::unique_ptr<rocksdb::DB> db,
                                 std::shared_ptr<rocksdb::Cache> block_cache)
    : path_(std::move(path)), db_(std::move(db)), block_cache_(std::move(block_cache)) {}

uint64_t RocksSpillStore::MemoryBytes() const {
  uint64_t total = block_cache_ ? block_cache_->GetUsage() : 0;
  for (const char* property :
       {"rocksdb.estimate-table-readers-mem", "rocksdb.cur-size-all-mem-tables"}) {
    uint64_t v = 0;
    if (db_->GetIntProperty(property, &v)) total += v;
  }
  return total;
}

RocksSpillStore::~RocksSpillStore() {
  if (db_) db_->Close().PermitUncheckedError();
}

StatusOr<std::unique_ptr<RocksSpillStore>> RocksSpillStore::Open(const RocksSpillOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("RocksSpillStore: empty path");
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.write_buffer_size = options.write_buffer_bytes;
  opts.compression = rocksdb::kNoCompression;  // float rows compress poorly
  opts.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  // Tuned for point reads of rows the memory tier misses (see
  // docs/parameter_server.md, "Disk tier"): a bloom filter per SST file
  // (10 bits a key, ~1% false positives) so a read touches one data block
  // instead of one per level, and one over the memtable so most reads skip
  // its skip list. Data blocks are not cached by RocksDB (reads pass
  // fill_cache = false): the memory tier is the cache, and the page cache
  // holds recently written files.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  opts.memtable_prefix_bloom_size_ratio = 0.1;
  opts.memtable_whole_key_filtering = true;
  // A hashed memtable: a point read that reaches the memtable finds its key
  // in one bucket instead of walking a skip list of up to a million recent
  // records (27% of the request thread in a profile of the budgeted pull at
  // steady state, docs/benchmarks.md). Hashing needs a prefix extractor; the
  // prefix is the whole 16-byte key, so Scan asks for total order. This
  // memtable takes one insert at a time (RocksDB queues concurrent writers),
  // which costs nothing here: the spill writer is the one writer.
  opts.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(kSpillKeyBytes));
  opts.memtable_factory.reset(rocksdb::NewHashLinkListRepFactory(options.memtable_buckets));
  opts.allow_concurrent_memtable_write = false;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // The folder first: DestroyDB fails on a path whose parent is missing.
  VREC_RETURN_IF_ERROR(MakeDirs(options.path));
  if (options.read_only) {
    if (!PathExists(JoinPath(options.path, "CURRENT"))) {
      return absl::NotFoundError(absl::StrCat("rocksdb ", options.path, ": no database there"));
    }
    rocksdb::DB* raw = nullptr;
    VREC_RETURN_IF_ERROR(FromRocks(rocksdb::DB::OpenForReadOnly(opts, options.path, &raw),
                                   options.path, "open read-only"));
    return std::unique_ptr<RocksSpillStore>(
        new RocksSpillStore(options.path, std::unique_ptr<rocksdb::DB>(raw), table.block_cache));
  }
  if (options.destroy_existing) {
    VREC_RETURN_IF_ERROR(
        FromRocks(rocksdb::DestroyDB(options.path, opts), options.path, "destroy"));
    VREC_RETURN_IF_ERROR(MakeDirs(options.path));
  }
  rocksdb::DB* raw = nullptr;
  VREC_RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::Open(opts, options.path, &raw), options.path, "open"));
  return std::unique_ptr<RocksSpillStore>(
      new RocksSpillStore(options.path, std::unique_ptr<rocksdb::DB>(raw), table.block_cache));
}

Status RocksSpillStore::Checkpoint(const std::string& dir) {
  if (const size_t slash = dir.find_last_of('/'); slash != std::string::npos && slash > 0) {
    VREC_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  }
  rocksdb::Checkpoint* raw = nullptr;
  VREC_RETURN_IF_ERROR(
      FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), path_, "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  // log_size_for_flush 0: always flush the memtable (rows written without a
  // WAL would otherwise be missing from the copy).
  return FromRocks(cp->CreateCheckpoint(dir, 0), path_, "checkpoint into " + dir);
}

Status RocksSpillStore::Write(const SpillBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  rocksdb::WriteBatch wb;
  // Messages are built only on error: these loops run once per spilled row.
  for (const auto& [k, v] : batch.puts) {
    if (rocksdb::Status s = wb.Put(k, v); !s.ok()) {
      return FromRocks(s, path_, "batch put " + HexKey(k));
    }
  }
  for (const auto& k : batch.deletes) {
    if (rocksdb::Status s = wb.Delete(k); !s.ok()) {
      return FromRocks(s, path_, "batch delete " + HexKey(k));
    }
  }
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  return FromRocks(
      db_->Write(wo, &wb), path_,
      absl::StrCat("write of ", batch.puts.size(), " puts, ", batch.deletes.size(), " deletes"));
}

Status RocksSpillStore::MultiGet(const std::vector<std::string>& keys,
                                 std::vector<std::optional<std::string>>* values) {
  values->assign(keys.size(), std::nullopt);
  if (keys.empty()) return absl::OkStatus();
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> out(keys.size());
  std::vector<rocksdb::Status> st(keys.size());
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // the memory tier above is the cache
  db_->MultiGet(ro, db_->DefaultColumnFamily(), keys.size(), slices.data(), out.data(), st.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (st[i].IsNotFound()) continue;
    // The message is built only on error: this loop runs once per missed row.
    if (!st[i].ok()) return FromRocks(st[i], path_, "get " + HexKey(keys[i]));
    (*values)[i].emplace(out[i].data(), out[i].size());
  }
  return absl::OkStatus();
}

Status RocksSpillStore::Scan(
    const std::string& prefix,
    const std::function<bool(const std::string&, const std::string&)>& fn) {
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;  // keys are hashed by their whole 16 bytes (see Open)
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!fn(it->key().ToString(), it->value().ToString())) break;
  }
  return FromRocks(it->status(), path_, "scan " + HexKey(prefix));
}

// ---- MemSpillStore

Status MemSpillStore::Write(const SpillBatch& batch) {
  MutexLock lock(&mu_);
  for (const auto& [k, v] : batch.puts) map_[k] = v;
  for (const auto& k : batch.deletes) map_.erase(k);
  return absl::OkStatus();
}

Status MemSpillStore::MultiGet(const std::vector<std::string>& keys,
                               std::vector<std::optional<std::string>>* values) {
  MutexLock lock(&mu_);
  values->assign(keys.size(), std::nullopt);
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = map_.find(keys[i]);
    if (it != map_.end()) (*values)[i] = it->second;
  }
  return absl::OkStatus();
}

Status MemSpillStore::Scan(const std::string& prefix,
                           const std::function<bool(const std::string&, const std::string&)>& fn) {
  // Copy the range first so fn may call back into this store.
  std::vector<std::pair<std::string, std::string>> range;
  {
    MutexLock lock(&mu_);
    for (auto it = map_.lower_bound(prefix);
         it != map_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      range.push_back(*it);
    }
  }
  for (const auto& [k, v] : range) {
    if (!fn(k, v)) break;
  }
  return absl::OkStatus();
}

size_t MemSpillStore::size() const {
  MutexLock lock(&mu_);
  return map_.size();
}

// ---- FaultySpillStore

Status FaultySpillStore::Write(const SpillBatch& batch) {
  if (fail_writes_.load()) return absl::UnavailableError("injected spill write failure");
  return base_->Write(batch);
}

Status FaultySpillStore::MultiGet(const std::vector<std::string>& keys,
                                  std::vector<std::optional<std::string>>* values) {
  if (fail_reads_.load()) return absl::UnavailableError("injected spill read failure");
  return base_->MultiGet(keys, values);
}

Status FaultySpillStore::Scan(
    const std::string& prefix,
    const std::function<bool(const std::string&, const std::string&)>& fn) {
  if (fail_reads_.load()) return absl::UnavailableError("injected spill read failure");
  return base_->Scan(prefix, fn);
}

}  // namespace vrec::ps
