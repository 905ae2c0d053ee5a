#include "ps/embedding_store.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/random.h"
#include "common/serial_worker.h"
#include "ps/frequency_sketch.h"
#include "ps/initializer.h"
#include "ps/partition.h"
#include "ps/slot_router.h"

namespace vrec::ps {
namespace {

// Copies a pulled row to the requester's matrix with non-temporal stores
// where it can (a 64-byte aligned destination, whole cache lines): the
// destination is not read first (a plain store reads each line before
// writing it) and the rows, tens of MB a request, do not push the worker's
// working set out of the cache; the worker reads them a step later, from
// memory either way. ServePartition fences the stores before the request
// is answered.
void CopyRowOut(float* out, const float* row, uint32_t dim) {
#if defined(__AVX512F__)
  if (reinterpret_cast<uintptr_t>(out) % 64 == 0 && dim % 16 == 0) {
    for (uint32_t d = 0; d < dim; d += 16) _mm512_stream_ps(out + d, _mm512_loadu_ps(row + d));
    return;
  }
#elif defined(__AVX__)
  if (reinterpret_cast<uintptr_t>(out) % 32 == 0 && dim % 8 == 0) {
    for (uint32_t d = 0; d < dim; d += 8) _mm256_stream_ps(out + d, _mm256_loadu_ps(row + d));
    return;
  }
#endif
  std::memcpy(out, row, sizeof(float) * dim);
}

constexpr uint8_t kUsed = Partition::kUsed;
constexpr uint8_t kRef = Partition::kRef;
constexpr uint8_t kDirty = Partition::kDirty;
constexpr uint8_t kOnDisk = Partition::kOnDisk;

// What LocateOrAdmit and its helpers return besides a slot.
constexpr int64_t kServed = -1;    // nothing left to apply (see LocateOrAdmit)
constexpr int64_t kNoRecord = -2;  // Reload: no live record of the key

}  // namespace

EmbeddingStore::EmbeddingStore(EmbeddingStoreOptions options)
    : options_(std::move(options)),
      dim_(options_.dim),
      row_floats_(options_.dim +
                  (options_.optimizer ? options_.optimizer->StateFloats(options_.dim) : 0)) {}

EmbeddingStore::~EmbeddingStore() = default;

StatusOr<std::unique_ptr<EmbeddingStore>> EmbeddingStore::Create(EmbeddingStoreOptions options) {
  const std::string& name = options.table_name;
  if (options.dim == 0) {
    return absl::InvalidArgumentError(absl::StrCat("table ", name, ": dim must be > 0"));
  }
  if (!options.optimizer || !options.init) {
    return absl::InvalidArgumentError(
        absl::StrCat("table ", name, ": an optimizer and an initializer are required"));
  }
  if ((options.memory_budget_bytes > 0 || options.expiry_steps > 0) && options.spill == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "table ", name, ": a memory budget or expiry needs a spill store (disk tier)"));
  }
  if (options.num_partitions == 0) options.num_partitions = 1;
  if (options.max_spill_jobs_in_flight == 0) options.max_spill_jobs_in_flight = 1;
  if (options.hot_key_sample == 0) options.hot_key_sample = 1;
  if (options.table_id == 0) options.table_id = TableId(name);
  std::unique_ptr<EmbeddingStore> store(new EmbeddingStore(std::move(options)));
  VREC_RETURN_IF_ERROR(store->Init());
  return store;
}

Status EmbeddingStore::Init() {
  // The initializer's fingerprint: a hash of the rows it gives three keys.
  {
    std::vector<float> row(row_floats_);
    uint64_t h = 0;
    for (uint64_t key : {uint64_t{0}, uint64_t{1}, uint64_t{0x9e3779b97f4a7c15}}) {
      InitialRow(key, row.data());
      for (float x : row) {
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        h = HashCombine(h, bits);
      }
    }
    codec_ = RowRecordCodec(row_floats_, static_cast<uint32_t>(h >> 40));  // 24 bits
  }
  const uint32_t num_parts = options_.num_partitions;
  const bool admission = options_.admission_min_count > 1;
  const uint64_t admission_per_part =
      std::max<uint64_t>(1, options_.admission_tracker_capacity / num_parts);
  const uint64_t budget = options_.memory_budget_bytes;
  if (budget > 0) {
    const uint64_t fixed =
        PartitionFixedBytes(options_.hot_key_capacity, admission ? admission_per_part : 0);
    const uint32_t m = RowsPerPartition(budget, num_parts, row_floats_, fixed);
    if (m == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "table ", options_.table_name, ": memory budget ", budget, " bytes is too small for ",
          num_parts, " partitions of rows of ", row_floats_, " floats; need at least ",
          num_parts * (fixed + PartitionRowBytes(row_floats_) + 256), " bytes"));
    }
    max_rows_per_partition_ = m;
  }
  PartitionOptions po;
  po.layout = PartitionLayout::For(row_floats_, max_rows_per_partition_, options_.expiry_steps);
  po.codec = codec_;
  po.spill = options_.spill;
  po.table_id = options_.table_id;
  po.table_name = options_.table_name;
  po.max_spill_jobs_in_flight = options_.max_spill_jobs_in_flight;
  po.hot_key_capacity = options_.hot_key_capacity;
  po.admission_capacity = admission_per_part;
  po.admission = admission;
  for (uint32_t i = 0; i < num_parts; ++i) partitions_.push_back(std::make_unique<Partition>(po));
  if (options_.spill != nullptr && options_.background_spill_writes) {
    writer_ = std::make_unique<SerialWorker>("vrec-spill");
  }
  // Rows already in the spill store (a reopened DB) count as on disk.
  if (options_.spill != nullptr) {
    std::vector<uint64_t> counts(num_parts, 0);
    VREC_RETURN_IF_ERROR(options_.spill->Scan(SpillPrefix(options_.table_id),
                                              [&](const std::string& k, const std::string&) {
                                                ++counts[PartitionOf(SpillKeyRowKey(k))];
                                                return true;
                                              }));
    for (uint32_t i = 0; i < num_parts; ++i) {
      MutexLock lock(&partitions_[i]->mu);
      partitions_[i]->disk_rows = counts[i];
    }
  }
  return absl::OkStatus();
}

StatusOr<std::unique_ptr<EmbeddingStore>> EmbeddingStore::FromConfig(
    const TableConfig& table, const TableStoreOptions& options) {
  VREC_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> opt, Optimizer::Create(table.optimizer()));
  const uint64_t table_id = TableId(table.name());
  EmbeddingStoreOptions o;
  o.table_name = table.name();
  o.table_id = table_id;
  o.optimizer = std::move(opt);
  o.memory_budget_bytes = options.memory_budget_bytes > 0 ? options.memory_budget_bytes
                                                          : table.storage().memory_budget_bytes();
  o.admission_min_count = table.storage().admission_min_count();
  o.expiry_steps = table.storage().expiry_steps();
  o.spill = options.spill;
  o.num_partitions = options.num_partitions;
  o.max_spill_jobs_in_flight = options.max_spill_jobs_in_flight;
  if (table.dense()) {
    if (table.dense_size() == 0 || options.dense_block_floats == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("dense table ", table.name(), ": dense_size and block size must be > 0"));
    }
    VREC_ASSIGN_OR_RETURN(
        auto blocks, DenseBlocks::Create(table.dense_size(),
                                         static_cast<uint32_t>(std::min<uint64_t>(
                                             options.dense_block_floats, table.dense_size()))));
    VREC_ASSIGN_OR_RETURN(Initializer init,
                          Initializer::Create(table.initializer(), options.seed, table_id,
                                              options.glorot_fan_in, options.glorot_fan_out));
    o.dim = blocks.block_floats();
    o.init = [init, blocks](uint64_t block, float* w) {
      if (block >= blocks.num_blocks()) {
        std::fill(w, w + blocks.block_floats(), 0.0f);
        return;
      }
      const uint32_t len = blocks.BlockLength(block);
      init.InitDense(blocks.BlockBegin(block), len, w);
      std::fill(w + len, w + blocks.block_floats(), 0.0f);
    };
  } else {
    if (table.dim() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("table ", table.name(), ": dim must be > 0"));
    }
    VREC_ASSIGN_OR_RETURN(Initializer init,
                          Initializer::Create(table.initializer(), options.seed, table_id));
    o.dim = table.dim();
    const uint32_t dim = table.dim();
    o.init = [init, dim](uint64_t key, float* w) { init.InitRow(key, dim, w); };
  }
  return Create(std::move(o));
}

uint32_t EmbeddingStore::PartitionOf(uint64_t key) const {
  // High bits of the slot hash: independent of the low bits that pick slots.
  return static_cast<uint32_t>((SlotRouter::SlotHash(options_.table_id, key) >> 40) %
                               options_.num_partitions);
}

void EmbeddingStore::ExpandRecord(uint64_t key, std::string* record) const {
  if (!RowRecordCodec::IsCompact(*record)) return;  // already whole
  // Only records this store compacted reach here (disk records are checked
  // by DecodeRow when read): the row is the initializer's.
  RowMeta meta;
  ParseRowMeta(*record, &meta);
  *record = InitialRecord(key, meta);
}

void EmbeddingStore::FillRow(uint64_t key, const std::string& record, float* row) const {
  if (RowRecordCodec::IsCompact(record)) {
    InitialRow(key, row);  // a compact initial-value record
  } else {
    codec_.CopyRow(record, row);
  }
}

void EmbeddingStore::InitialRow(uint64_t key, float* row) const {
  options_.init(key, row);
  options_.optimizer->InitState(row, dim_, row + dim_);
}

std::string EmbeddingStore::InitialRecord(uint64_t key, const RowMeta& meta) const {
  std::vector<float> row(row_floats_);
  InitialRow(key, row.data());
  return codec_.Encode(row.data(), meta);
}

Status EmbeddingStore::DecodeRow(uint64_t key, const std::string& value, float* row,
                                 RowMeta* meta) const {
  // Built only on error: this runs once per row read from the disk tier.
  auto where = [&] {
    return absl::StrCat("table ", options_.table_name, " key ", key, ": spill record in ",
                        options_.spill ? options_.spill->Describe() : "?");
  };
  VREC_RETURN_IF_ERROR(codec_.Check(value, meta, where));
  if (row != nullptr) FillRow(key, value, row);
  return absl::OkStatus();
}

bool EmbeddingStore::ServeRecord(Op op, float* out_row, const float* grad, uint64_t now,
                                 std::string* record) const {
  float* row = RowRecordCodec::MutableRow(record);
  RowMeta meta;
  ParseRowMeta(*record, &meta);
  bool changed = false;
  if (op == Op::kPull) {
    CopyRowOut(out_row, row, dim_);
  } else {
    options_.optimizer->Apply(row, row + dim_, grad, dim_);
    if (meta.updates != UINT32_MAX) ++meta.updates;
    changed = true;
  }
  if (options_.expiry_steps > 0) {  // last_seen_step is kept only where expiry reads it
    meta.last_seen_step = now;
    changed = true;
  }
  if (changed) RowRecordCodec::SetMeta(meta, record);
  return changed;
}

Status EmbeddingStore::Pull(absl::Span<const uint64_t> keys, absl::Span<float> out) {
  if (out.size() != keys.size() * dim_) {
    return absl::InvalidArgumentError(absl::StrCat("table ", options_.table_name, ": pull of ",
                                                   keys.size(), " keys needs ", keys.size() * dim_,
                                                   " output floats, got ", out.size()));
  }
  return PullRows(keys, {}, out.data());
}

Status EmbeddingStore::Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads) {
  if (grads.size() != keys.size() * dim_) {
    return absl::InvalidArgumentError(absl::StrCat("table ", options_.table_name, ": push of ",
                                                   keys.size(), " keys needs ", keys.size() * dim_,
                                                   " gradient floats, got ", grads.size()));
  }
  return PushRows(keys, {}, grads.data());
}

Status EmbeddingStore::PullRows(absl::Span<const uint64_t> keys,
                                absl::Span<const uint32_t> positions, float* rows) {
  if (!positions.empty() && positions.size() != keys.size()) {
    return absl::InvalidArgumentError(absl::StrCat("table ", options_.table_name, ": ",
                                                   positions.size(), " positions for ",
                                                   keys.size(), " keys"));
  }
  pull_requests_.fetch_add(1, std::memory_order_relaxed);
  Rows r;
  r.out = rows;
  r.positions = positions.empty() ? nullptr : positions.data();
  return Serve(Op::kPull, keys, r);
}

namespace {
// Whether all n floats at p are finite: exponent bits not all ones, tested
// branch-free a block at a time (the compiler vectorises it), so that the
// check reads the gradient at memory speed.
bool AllFinite(const float* p, size_t n) {
  constexpr uint32_t kExponent = 0x7f800000u;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint32_t bad = 0;
    for (size_t j = 0; j < 64; ++j) {
      uint32_t bits;
      std::memcpy(&bits, p + i + j, sizeof(bits));
      bad |= static_cast<uint32_t>((bits & kExponent) == kExponent);
    }
    if (bad != 0) return false;
  }
  for (; i < n; ++i) {
    if (!std::isfinite(p[i])) return false;
  }
  return true;
}
}  // namespace

Status EmbeddingStore::PushRows(absl::Span<const uint64_t> keys,
                                absl::Span<const uint32_t> positions, const float* rows) {
  if (!positions.empty() && positions.size() != keys.size()) {
    return absl::InvalidArgumentError(absl::StrCat("table ", options_.table_name, ": ",
                                                   positions.size(), " positions for ",
                                                   keys.size(), " keys"));
  }
  Rows r;
  r.grads = rows;
  r.positions = positions.empty() ? nullptr : positions.data();
  for (size_t i = 0; i < keys.size(); ++i) {
    const float* g = rows + r.Offset(i, dim_);
    if (AllFinite(g, dim_)) continue;
    for (uint32_t d = 0; d < dim_; ++d) {
      if (std::isfinite(g[d])) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "table ", options_.table_name, ": non-finite gradient ", g[d], " at key index ", i,
          " (key ", keys[i], "), element ", d));
    }
  }
  push_requests_.fetch_add(1, std::memory_order_relaxed);
  return Serve(Op::kPush, keys, r);
}

Status EmbeddingStore::PushPooled(absl::Span<const uint64_t> keys, const PooledUses& uses,
                                  const float* pooled, uint64_t num_pooled) {
  if (Status s = CheckPooled(keys.size(), uses, pooled, num_pooled, dim_); !s.ok()) {
    return Status(s.code(), absl::StrCat("table ", options_.table_name, ": pooled push of ",
                                         keys.size(), " keys: ", s.message()));
  }
  push_requests_.fetch_add(1, std::memory_order_relaxed);
  Rows r;
  r.uses = &uses;
  r.pooled = pooled;
  return Serve(Op::kPush, keys, r);
}

Status EmbeddingStore::Serve(Op op, absl::Span<const uint64_t> keys, const Rows& rows) {
  const uint64_t now = step();
  const uint32_t num_parts = options_.num_partitions;
  std::vector<Partition*> served;
  if (num_parts == 1) {
    std::vector<uint32_t> idx(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) idx[i] = static_cast<uint32_t>(i);
    Status s = ServePartition(*partitions_[0], op, keys, idx, rows, now);
    served.push_back(partitions_[0].get());
    SubmitSpillJobs(served);
    return s;
  }
  // The request's key indices grouped by partition (a counting sort into
  // one array: per-partition vectors grown key by key cost an allocation
  // each doubling).
  std::vector<uint32_t> part_of(keys.size());
  std::vector<uint32_t> start(num_parts + 1, 0);
  for (size_t i = 0; i < keys.size(); ++i) {
    part_of[i] = PartitionOf(keys[i]);
    ++start[part_of[i] + 1];
  }
  for (uint32_t p = 0; p < num_parts; ++p) start[p + 1] += start[p];
  std::vector<uint32_t> grouped(keys.size());
  {
    std::vector<uint32_t> next(start.begin(), start.end() - 1);
    for (size_t i = 0; i < keys.size(); ++i) grouped[next[part_of[i]]++] = static_cast<uint32_t>(i);
  }
  // Concurrent requests start at different partitions, so that they do not
  // queue behind each other on the same lock (a convoy).
  const uint32_t first = next_start_.fetch_add(1, std::memory_order_relaxed) % num_parts;
  for (uint32_t j = 0; j < num_parts; ++j) {
    const uint32_t p = first + j < num_parts ? first + j : first + j - num_parts;
    if (start[p] == start[p + 1]) continue;
    const absl::Span<const uint32_t> group(grouped.data() + start[p], start[p + 1] - start[p]);
    Status s = ServePartition(*partitions_[p], op, keys, group, rows, now);
    served.push_back(partitions_[p].get());
    if (!s.ok()) {
      SubmitSpillJobs(served);  // what the partitions served so far evicted
      return s;
    }
  }
  SubmitSpillJobs(served);
  return absl::OkStatus();
}

void EmbeddingStore::SubmitSpillJobs(const std::vector<Partition*>& parts) {
  if (writer_ == nullptr) return;  // ServePartition wrote them itself
  std::vector<std::pair<Partition*, std::shared_ptr<SpillJob>>> jobs;
  {
    MutexLock submit(&submit_mu_);
    for (Partition* p : parts) {
      MutexLock lock(&p->mu);
      if (p->write_failed) continue;
      if (std::shared_ptr<SpillJob> job = p->TakeJob()) jobs.emplace_back(p, std::move(job));
    }
    if (jobs.empty()) return;
    writer_->Submit([jobs] {
      for (const auto& [p, job] : jobs) p->WriteInBackground(job);
    });
  }
  for (const auto& [p, job] : jobs) {
    MutexLock lock(&p->mu);
    p->WaitForJobRoom();
  }
}

Status EmbeddingStore::PinAndFetch(Partition& p, absl::Span<const uint64_t> keys,
                                   absl::Span<const uint32_t> idx, Fetched* fetched) {
  p.BeginRequest();
  const bool read_disk = options_.spill != nullptr && p.disk_rows > 0;
  if (!read_disk && max_rows_per_partition_ == 0) return absl::OkStatus();
  std::vector<uint64_t> missing;
  absl::flat_hash_set<uint64_t> seen;
  constexpr size_t kAhead = 16;  // index slots prefetched this many keys ahead
  for (size_t pos = 0; pos < std::min(kAhead, idx.size()); ++pos) {
    p.index.prefetch(keys[idx[pos]]);
  }
  for (size_t pos = 0; pos < idx.size(); ++pos) {
    if (pos + kAhead < idx.size()) p.index.prefetch(keys[idx[pos + kAhead]]);
    const uint64_t k = keys[idx[pos]];
    if (auto it = p.index.find(k); it != p.index.end()) {
      p.Pin(it->second);
      continue;
    }
    if (!read_disk || p.InSpillQueue(k)) continue;
    if (seen.insert(k).second) missing.push_back(k);
  }
  if (missing.empty()) return absl::OkStatus();
  std::vector<std::string> spill_keys;
  spill_keys.reserve(missing.size());
  for (uint64_t k : missing) spill_keys.push_back(SpillKey(options_.table_id, k));
  std::vector<std::optional<std::string>> values;
  Status s = options_.spill->MultiGet(spill_keys, &values);
  if (!s.ok()) {
    return Status(s.code(),
                  absl::StrCat("table ", options_.table_name, ": reading ", missing.size(),
                               " rows from ", options_.spill->Describe(), ": ", s.message()));
  }
  p.c.spill_keys_read += missing.size();
  // Validate every record before touching any row, so that a corrupt
  // record fails the request with nothing applied. Initial-value
  // records stay compact until a row is made of them (FillRow).
  for (size_t j = 0; j < missing.size(); ++j) {
    if (!values[j].has_value()) continue;
    RowMeta meta;
    VREC_RETURN_IF_ERROR(DecodeRow(missing[j], *values[j], /*row=*/nullptr, &meta));
    fetched->emplace(missing[j], std::move(*values[j]));
  }
  return absl::OkStatus();
}

inline int64_t EmbeddingStore::LocateOrAdmit(Partition& p, Op op, uint64_t k, float* out_row,
                                             const float* grad, uint64_t now, Fetched* fetched,
                                             int64_t seen) {
  // The prefetch's lookup still holds if the slot still holds the key (a
  // slot in use holds the key the index maps to it); rows are pinned or
  // never evicted mid-request, but a key seen absent may have been created
  // since (a repeated key), so only a hit is taken.
  auto found = p.index.end();
  const bool hit = seen >= 0 && (p.slot_flags[seen] & kUsed) != 0 && p.slot_key[seen] == k;
  if (!hit) found = p.index.find(k);
  if (hit || found != p.index.end()) {
    const uint32_t s = hit ? static_cast<uint32_t>(seen) : found->second;
    // (slot_last_seen is read only under expiry: it is a cache miss a key.)
    if (options_.expiry_steps == 0 || !Expired(p.slot_last_seen[s], now)) {
      ++p.c.memory_hits;
      return s;
    }
    // Expired: gone for good, and so is any older record of it.
    p.Remove(s);
    p.FreeSlot(s);
  } else if (const int64_t s = Reload(p, op, k, out_row, grad, now, fetched); s != kNoRecord) {
    return s;
  }
  return CreateRow(p, op, k, out_row, grad, now);
}

int64_t EmbeddingStore::Reload(Partition& p, Op op, uint64_t k, float* out_row, const float* grad,
                               uint64_t now, Fetched* fetched) {
  // Not resident: its newest record is in the spill queue, or is a clean
  // copy evicted earlier in this request, or is what the disk returned.
  std::string value;
  bool on_disk = false, from_queue = false, from_memory = false, in_flight = false;
  if (auto q = p.pending_puts.find(k); q != p.pending_puts.end()) {
    if (q->second.gen == 0) {  // queued: taken out (it is the row now)
      value = std::move(q->second.value);
      on_disk = q->second.was_on_disk;
      p.pending_bytes -= value.size();
      p.pending_puts.erase(q);
      from_queue = true;
    } else {  // in flight: stays readable until it lands, which it will
      value = q->second.value;
      on_disk = in_flight = true;
    }
    from_memory = true;
  } else if (auto f = fetched->find(k); f != fetched->end()) {
    value = std::move(f->second);
    fetched->erase(f);
    on_disk = true;
  } else {
    return kNoRecord;
  }
  RowMeta meta;
  ParseRowMeta(value, &meta);  // validated: queued by us or checked by PinAndFetch
  if (Expired(meta.last_seen_step, now)) {
    if (on_disk) p.QueueDelete(k);
    ++p.c.expiries;
    return kNoRecord;
  }
  ++(from_memory ? p.c.memory_hits : p.c.disk_hits);
  const int64_t s = p.AdmitSlot(k, now);
  if (s < 0) {
    // Not admitted: served from the record, which goes back where it was
    // unless it changed (then it is queued for the disk).
    ExpandRecord(k, &value);
    if (ServeRecord(op, out_row, grad, now, &value) || from_queue) {
      codec_.Compact(&value);
      p.Queue(k, std::move(value), on_disk);
    } else if (!in_flight) {
      fetched->emplace(k, std::move(value));  // equal to the disk's record
    }
    return kServed;
  }
  FillRow(k, value, p.Row(s));
  p.Occupy(static_cast<uint32_t>(s), k, meta,
           kUsed | (on_disk ? kOnDisk : 0) | (from_queue ? kDirty : 0));
  return s;
}

int64_t EmbeddingStore::CreateRow(Partition& p, Op op, uint64_t k, float* out_row,
                                  const float* grad, uint64_t now) {
  if (options_.admission_min_count > 1) {
    if (op == Op::kPush) {
      ++p.c.dropped_pushes;
      return kServed;
    }
    if (p.CountSighting(k) < options_.admission_min_count) {
      options_.init(k, out_row);
      ++p.c.admission_rejected_pulls;
      return kServed;
    }
    p.admission.erase(k);
  }
  ++p.c.rows_created;
  const int64_t s = p.AdmitSlot(k, now);
  if (s < 0) {  // created straight into the spill queue
    std::string value = InitialRecord(k, {now, 0});
    ServeRecord(op, out_row, grad, now, &value);
    codec_.Compact(&value);
    p.Queue(k, std::move(value), /*on_disk=*/false);
    return kServed;
  }
  InitialRow(k, p.Row(s));
  p.Occupy(static_cast<uint32_t>(s), k, {now, 0}, kUsed | kDirty);
  return s;
}

inline void EmbeddingStore::Apply(Partition& p, Op op, uint32_t s, float* out_row,
                                  const float* grad, uint64_t now) {
  float* row = p.Row(s);
  if (options_.expiry_steps > 0) {  // last_seen_step is kept only where expiry reads it
    p.slot_last_seen[s] = now;
    p.slot_flags[s] |= kRef | kDirty;
  } else {
    p.slot_flags[s] |= kRef;
  }
  if (op == Op::kPull) {
    CopyRowOut(out_row, row, dim_);
  } else {
    options_.optimizer->Apply(row, row + dim_, grad, dim_);
    p.slot_flags[s] |= kDirty;
    if (p.slot_updates[s] != UINT32_MAX) ++p.slot_updates[s];
  }
}

Status EmbeddingStore::ServePartition(Partition& p, Op op, absl::Span<const uint64_t> keys,
                                      absl::Span<const uint32_t> idx, const Rows& rows,
                                      uint64_t now) {
  const bool expiry = options_.expiry_steps > 0;
  MutexLock lock(&p.mu);
  // Spill writes that failed earlier are retried first; while the disk tier
  // keeps failing, requests are refused before anything is applied, which
  // bounds how far memory can exceed the budget.
  if (p.write_failed) VREC_RETURN_IF_ERROR(p.RetryFailedJobs());

  // 1. Pin and fetch (may fail; nothing applied yet).
  Fetched fetched;
  VREC_RETURN_IF_ERROR(PinAndFetch(p, keys, idx, &fetched));

  // 2. Locate or admit each key's row, and 3. apply the request to it, in
  // key order. Nothing below fails.
  if (op == Op::kPull) {
    p.c.pull_keys += idx.size();
  } else {
    p.c.push_keys += idx.size();
  }
  // Rows and index slots are scattered over large arrays: a three-stage
  // pipeline overlaps the cache misses of many keys. kFar keys ahead the
  // index slot is prefetched; kNear keys ahead the (now cached) lookup runs
  // and the row is prefetched; then the key is served.
  // kNear shrinks for wide rows, so that what is prefetched ahead (~24 KiB:
  // 1 KB rows with their Adagrad state and gradient are 48 cache lines a
  // key) stays within what the core can have in flight.
  constexpr size_t kFar = 32, kRing = 32;  // kRing > kNear: a slot is read before reused
  const size_t prefetch_bytes = sizeof(float) * (op == Op::kPull ? dim_ : row_floats_ + dim_);
  const size_t kNear = std::clamp<size_t>((24 << 10) / prefetch_bytes, 4, 16);
  FrequencySketch* const freq = p.freq.get();
  int64_t seen[kRing];  // seen[pos % kRing]: the slot found when pos was prefetched
  auto prefetch_row = [&](size_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) {
    if (pos >= idx.size()) return;
    seen[pos % kRing] = -1;
    auto it = p.index.find(keys[idx[pos]]);
    if (it == p.index.end()) return;
    seen[pos % kRing] = it->second;
    // The slot's metadata is touched too (a cache miss each, otherwise).
    __builtin_prefetch(&p.slot_flags[it->second]);
    __builtin_prefetch(&p.slot_key[it->second]);
    if (op == Op::kPush) __builtin_prefetch(&p.slot_updates[it->second]);
    if (expiry) __builtin_prefetch(&p.slot_last_seen[it->second]);
    const char* row = reinterpret_cast<const char*>(p.Row(it->second));
    const size_t row_bytes = sizeof(float) * (op == Op::kPull ? dim_ : row_floats_);
    for (size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(row + b);
    if (op == Op::kPush && rows.grads != nullptr) {  // the gradient, in the caller's matrix
      const char* g = reinterpret_cast<const char*>(rows.grads + rows.Offset(idx[pos], dim_));
      for (size_t b = 0; b < sizeof(float) * dim_; b += 64) __builtin_prefetch(g + b);
    }
  };
  auto prefetch_far = [&](size_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) {
    p.index.prefetch(keys[idx[pos]]);
    if (freq != nullptr) freq->Prefetch(keys[idx[pos]]);
  };
  // A pooled push forms each key's gradient here, just before it is applied.
  std::vector<float> pooled_grad(rows.uses != nullptr ? dim_ : 0);
  for (size_t pos = 0; pos < std::min(kFar, idx.size()); ++pos) prefetch_far(pos);
  for (size_t pos = 0; pos < kNear; ++pos) prefetch_row(pos);
  for (size_t pos = 0; pos < idx.size(); ++pos) {
    if (pos + kFar < idx.size()) prefetch_far(pos + kFar);
    prefetch_row(pos + kNear);
    const uint32_t i = idx[pos];
    const uint64_t k = keys[i];
    float* const out_row = op == Op::kPull ? rows.out + rows.Offset(i, dim_) : nullptr;
    const float* grad = nullptr;
    if (op == Op::kPush && rows.uses != nullptr) {
      PooledGradient(*rows.uses, i, rows.pooled, dim_, pooled_grad.data());
      grad = pooled_grad.data();
    } else if (op == Op::kPush) {
      grad = rows.grads + rows.Offset(i, dim_);
    }
    if (freq != nullptr) freq->Increment(k);
    if (++p.sample_tick >= options_.hot_key_sample) {
      p.sample_tick = 0;
      p.hot.Offer(k, options_.hot_key_sample);
    }
    const int64_t slot =
        LocateOrAdmit(p, op, k, out_row, grad, now, &fetched, seen[pos % kRing]);
    if (slot == kServed) continue;
    Apply(p, op, static_cast<uint32_t>(slot), out_row, grad, now);
  }
  // Non-temporal stores (CopyRowOut) are ordered before whatever answers
  // the request.
  if (op == Op::kPull) _mm_sfence();
  // The request has been applied: what it evicted is handed to the spill
  // writer (or, without one, written now). If that write fails, the records
  // stay queued (readable, counted in memory) and the next request retries
  // it; reporting an error here would invite a retry that applies the push
  // twice.
  if (options_.spill != nullptr) {
    if (writer_ == nullptr) {
      if (!p.Flush().ok()) ++p.c.spill_write_failures;
    }  // else the writer takes them when the request ends (SubmitSpillJobs)
  }
  return absl::OkStatus();
}

uint64_t EmbeddingStore::AdvanceStep(uint64_t n) {
  return step_.fetch_add(n, std::memory_order_acq_rel) + n;
}

std::vector<std::pair<uint64_t, uint32_t>> EmbeddingStore::AdmissionCounts() const {
  std::vector<std::pair<uint64_t, uint32_t>> out;
  for (const auto& part : partitions_) {
    MutexLock lock(&part->mu);
    for (const auto& [key, count] : part->admission) out.emplace_back(key, count);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void EmbeddingStore::RestoreState(uint64_t step,
                                  absl::Span<const std::pair<uint64_t, uint32_t>> admission) {
  step_.store(step, std::memory_order_release);
  if (options_.admission_min_count <= 1) return;
  for (const auto& [key, count] : admission) {
    Partition& p = *partitions_[PartitionOf(key)];
    MutexLock lock(&p.mu);
    if (p.admission.size() >= p.options().admission_capacity || count == 0) continue;
    uint32_t& c = p.admission[key];
    c = std::max(c, count);
  }
}

StatusOr<uint64_t> EmbeddingStore::ExpireStale() {
  if (options_.expiry_steps == 0) return uint64_t{0};
  const uint64_t now = step();
  uint64_t removed = 0;
  for (auto& part : partitions_) {
    Partition& p = *part;
    MutexLock lock(&p.mu);
    VREC_RETURN_IF_ERROR(p.Flush());  // nothing in flight below
    removed += p.ExpireResident(now);
    VREC_RETURN_IF_ERROR(p.Flush());
  }
  // Disk: find candidates without locks, then re-check each under its lock
  // (it may have been reloaded or rewritten meanwhile).
  std::vector<std::vector<uint64_t>> candidates(partitions_.size());
  VREC_RETURN_IF_ERROR(options_.spill->Scan(
      SpillPrefix(options_.table_id), [&](const std::string& k, const std::string& v) {
        RowMeta meta;
        if (ParseRowMeta(v, &meta) && Expired(meta.last_seen_step, now)) {
          const uint64_t key = SpillKeyRowKey(k);
          candidates[PartitionOf(key)].push_back(key);
        }
        return true;
      }));
  for (size_t i = 0; i < partitions_.size(); ++i) {
    if (candidates[i].empty()) continue;
    Partition& p = *partitions_[i];
    MutexLock lock(&p.mu);
    std::vector<uint64_t> keys;
    std::vector<std::string> spill_keys;
    for (uint64_t k : candidates[i]) {
      if (p.index.contains(k) || p.InSpillQueue(k)) continue;
      keys.push_back(k);
      spill_keys.push_back(SpillKey(options_.table_id, k));
    }
    std::vector<std::optional<std::string>> values;
    VREC_RETURN_IF_ERROR(options_.spill->MultiGet(spill_keys, &values));
    for (size_t j = 0; j < keys.size(); ++j) {
      RowMeta meta;
      if (values[j] && ParseRowMeta(*values[j], &meta) && Expired(meta.last_seen_step, now)) {
        p.pending_deletes.try_emplace(keys[j], 0);
        ++p.c.expiries;
        ++removed;
      }
    }
    VREC_RETURN_IF_ERROR(p.Flush());
  }
  return removed;
}

Status EmbeddingStore::FlushAll() {
  if (options_.spill == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("table ", options_.table_name, ": FlushAll needs a spill store"));
  }
  for (auto& part : partitions_) {
    Partition& p = *part;
    MutexLock lock(&p.mu);
    VREC_RETURN_IF_ERROR(p.Flush());  // nothing in flight below
    VREC_RETURN_IF_ERROR(p.WriteResident());
  }
  return absl::OkStatus();
}

Status EmbeddingStore::ForEachRow(
    const std::function<void(uint64_t key, const float* row, const RowMeta& meta)>& fn) {
  const uint64_t now = step();
  std::vector<float> row(row_floats_);
  for (auto& part : partitions_) {
    Partition& p = *part;
    MutexLock lock(&p.mu);
    p.WaitForJobs();  // a job landing during the disk scan below would be seen twice
    for (uint32_t s = 0; s < p.num_slots; ++s) {
      if (!(p.slot_flags[s] & kUsed) || Expired(p.slot_last_seen[s], now)) continue;
      fn(p.slot_key[s], p.Row(s), RowMeta{p.slot_last_seen[s], p.slot_updates[s]});
    }
    for (const auto& [key, put] : p.pending_puts) {
      if (p.index.contains(key)) continue;  // an unlanded record of a resident row
      RowMeta meta;
      VREC_RETURN_IF_ERROR(DecodeRow(key, put.value, row.data(), &meta));
      if (!Expired(meta.last_seen_step, now)) fn(key, row.data(), meta);
    }
  }
  if (options_.spill == nullptr) return absl::OkStatus();
  Status decode_status;
  VREC_RETURN_IF_ERROR(options_.spill->Scan(SpillPrefix(options_.table_id),
                                            [&](const std::string& k, const std::string& v) {
                                              const uint64_t key = SpillKeyRowKey(k);
                                              Partition& p = *partitions_[PartitionOf(key)];
                                              {
                                                MutexLock lock(&p.mu);
                                                if (p.index.contains(key) || p.InSpillQueue(key))
                                                  return true;
                                              }
                                              RowMeta meta;
                                              decode_status = DecodeRow(key, v, row.data(), &meta);
                                              if (!decode_status.ok()) return false;
                                              if (!Expired(meta.last_seen_step, now))
                                                fn(key, row.data(), meta);
                                              return true;
                                            }));
  return decode_status;
}

Status EmbeddingStore::ImportRows(absl::Span<const uint64_t> keys,
                                  absl::Span<const float> weights) {
  if (options_.spill == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("table ", options_.table_name, ": importing rows needs a spill store"));
  }
  if (weights.size() != keys.size() * dim_) {
    return absl::InvalidArgumentError(absl::StrCat("table ", options_.table_name, ": import of ",
                                                   keys.size(), " keys with ", weights.size(),
                                                   " weights (dim ", dim_, ")"));
  }
  constexpr size_t kBatchRows = 4096;
  const RowMeta meta{step(), 1};
  std::vector<float> row(row_floats_);
  std::vector<uint64_t> per_partition(partitions_.size(), 0);
  SpillBatch batch;
  auto write = [&]() -> Status {
    if (batch.puts.empty()) return absl::OkStatus();
    Status s = options_.spill->Write(batch);
    batch.clear();
    if (!s.ok()) {
      return Status(s.code(), absl::StrCat("table ", options_.table_name, ": importing rows into ",
                                           options_.spill->Describe(), ": ", s.message()));
    }
    for (size_t i = 0; i < partitions_.size(); ++i) {  // they are on disk now
      if (per_partition[i] == 0) continue;
      MutexLock lock(&partitions_[i]->mu);
      partitions_[i]->disk_rows += per_partition[i];
      per_partition[i] = 0;
    }
    return absl::OkStatus();
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    const float* w = weights.data() + i * dim_;
    for (uint32_t d = 0; d < dim_; ++d) {
      if (!std::isfinite(w[d])) {
        return absl::InvalidArgumentError(absl::StrCat("table ", options_.table_name, ": key ",
                                                       keys[i], "'s weight ", d, " is not finite (",
                                                       w[d], ")"));
      }
    }
    const uint32_t part = PartitionOf(keys[i]);
    {
      Partition& p = *partitions_[part];
      MutexLock lock(&p.mu);
      if (p.index.contains(keys[i])) {
        return absl::FailedPreconditionError(absl::StrCat("table ", options_.table_name, ": key ",
                                                          keys[i], " is resident; import first"));
      }
    }
    std::copy(w, w + dim_, row.begin());
    options_.optimizer->InitState(row.data(), dim_, row.data() + dim_);
    batch.puts.emplace_back(SpillKey(options_.table_id, keys[i]), codec_.Encode(row.data(), meta));
    ++per_partition[part];
    if (batch.puts.size() >= kBatchRows) VREC_RETURN_IF_ERROR(write());
  }
  return write();
}

void EmbeddingStore::WaitForSpillWrites() {
  for (auto& part : partitions_) {
    MutexLock lock(&part->mu);
    part->WaitForJobs();
  }
}

uint64_t EmbeddingStore::MemoryBytes() const {
  uint64_t total = 0;
  for (const auto& part : partitions_) {
    MutexLock lock(&part->mu);
    total += part->MemoryBytes();
  }
  return total;
}

StoreStats EmbeddingStore::Stats() const {
  StoreStats st;
  st.table = options_.table_name;
  st.timestamp_ns = absl::GetCurrentTimeNanos();
  st.step = step();
  st.memory_budget_bytes = options_.memory_budget_bytes;
  st.max_rows_in_memory = uint64_t{max_rows_per_partition_} * partitions_.size();
  st.pull_requests = pull_requests_.load(std::memory_order_relaxed);
  st.push_requests = push_requests_.load(std::memory_order_relaxed);
  std::vector<HeavyHitter> hot;
  for (const auto& part : partitions_) {
    const Partition& p = *part;
    MutexLock lock(&p.mu);
    p.AddStats(&st, &hot);
  }
  st.hot_keys = MergeTop(std::move(hot), options_.hot_key_capacity);
  return st;
}

}  // namespace vrec::ps