#include "ps/embedding_store.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/huge_pages.h"
#include "common/random.h"
#include "common/serial_worker.h"
#include "glog/logging.h"
#include "ps/frequency_sketch.h"
#include "ps/initializer.h"
#include "ps/slot_router.h"

namespace vrec::ps {
namespace {

// The partition's large arrays, probed at random once a key: on huge pages
// (common/huge_pages.h) where they are 2 MiB or more.
template <typename T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;
using RowIndex =
    absl::flat_hash_map<uint64_t, uint32_t, absl::Hash<uint64_t>, std::equal_to<uint64_t>,
                        HugePageAllocator<std::pair<const uint64_t, uint32_t>>>;

constexpr uint8_t kUsed = 1;    // slot holds a row
constexpr uint8_t kRef = 2;     // touched since the clock hand last passed
constexpr uint8_t kDirty = 4;   // differs from its spill record (or has none)
constexpr uint8_t kOnDisk = 8;  // a durable spill record of this key exists

// Bytes per slot of an absl::flat_hash_map: the slot plus one control byte.
template <typename Map>
uint64_t MapBytes(const Map& m) {
  return m.capacity() == 0 ? 0 : m.capacity() * (sizeof(typename Map::value_type) + 1) + 16;
}

// The spill queue holds records in two states: queued (gen 0: not yet
// handed to the disk) and in flight (gen g > 0: part of write job g, which
// the spill writer is writing). Both are the key's newest durable state and
// readable until the write lands; then the entry is dropped, unless a newer
// one replaced it meanwhile.
struct PendingPut {
  std::string value;
  bool was_on_disk = false;  // a durable record of the key exists (the put overwrites it)
  uint64_t gen = 0;
};

struct Counters {
  uint64_t pull_keys = 0, push_keys = 0, memory_hits = 0, disk_hits = 0, rows_created = 0;
  uint64_t admission_rejected_pulls = 0, dropped_pushes = 0, evictions = 0;
  uint64_t spill_rows_written = 0, spill_bytes_written = 0, spill_keys_read = 0, expiries = 0;
  uint64_t spill_write_failures = 0, bypasses = 0;
};

using ChunkPtr = HugeArray<float>;  // the row arena's chunks

}  // namespace

// One batch of a partition's queue on its way to the spill store.
struct EmbeddingStore::SpillJob {
  uint64_t gen = 0;
  SpillBatch batch;
  std::vector<uint64_t> put_keys, delete_keys;  // batch order
  uint64_t new_records = 0;                     // puts of keys without a durable record
  uint64_t bytes = 0;                           // values
};

uint32_t EmbeddingStore::ChunksFor(uint32_t rows) const {
  const uint32_t small_slots = small_chunk_rows_ * kSmallChunks;
  if (rows <= small_slots) return (rows + small_chunk_rows_ - 1) / small_chunk_rows_;
  return kSmallChunks + (rows - small_slots + big_chunk_rows_ - 1) / big_chunk_rows_;
}

// All members guarded by mu. Methods REQUIRE mu held.
struct EmbeddingStore::Partition {
  Partition(const EmbeddingStore* s, size_t hot_capacity) : store(s), hot(hot_capacity) {}

  float* Row(uint32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const uint32_t small_slots = store->small_chunk_rows_ * kSmallChunks;
    if (slot < small_slots) {
      return chunks[slot / store->small_chunk_rows_].get() +
             static_cast<size_t>(slot % store->small_chunk_rows_) * store->row_floats_;
    }
    slot -= small_slots;
    return chunks[kSmallChunks + slot / store->big_chunk_rows_].get() +
           static_cast<size_t>(slot % store->big_chunk_rows_) * store->row_floats_;
  }

  // Pins: a slot holding a key of the request in progress carries that
  // request's serial (mod 256) in slot_pin. A stale serial equal to the
  // current one after wrapping only keeps a row from being a victim once.
  bool Pinned(uint32_t s) const ABSL_SHARED_LOCKS_REQUIRED(mu) { return slot_pin[s] == serial; }
  void Pin(uint32_t s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { slot_pin[s] = serial; }

  // A slot for `candidate`, a key about to enter memory: a free one while the
  // partition is under its row limit; otherwise the least frequently used of
  // the next kVictimSample rows from the clock hand (ties: one not touched
  // since the hand last passed) is evicted to make room, but only if the
  // candidate is strictly more frequent (TinyLFU admission: a row seen once
  // does not push out one seen often). An expired row is dropped at once.
  // Rows pinned by the request in progress (Pinned) are passed over: a
  // request never evicts a row it has yet to serve. Returns -1 when the
  // candidate is not admitted (or every row is pinned): the caller serves it
  // from its record without caching it.
  int64_t AdmitSlot(uint64_t candidate, uint64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!free_slots.empty()) {
      const uint32_t s = free_slots.back();
      free_slots.pop_back();
      return s;
    }
    const uint32_t max_rows = store->max_rows_per_partition_;
    if (max_rows == 0 || num_slots < max_rows) {
      const uint32_t small_slots = store->small_chunk_rows_ * kSmallChunks;
      const bool small = num_slots < small_slots;
      const uint32_t chunk_rows = small ? store->small_chunk_rows_ : store->big_chunk_rows_;
      if ((small ? num_slots : num_slots - small_slots) % chunk_rows == 0) {
        uint32_t rows = chunk_rows;
        if (max_rows != 0) rows = std::min(rows, max_rows - num_slots);
        const size_t floats = static_cast<size_t>(rows) * store->row_floats_;
        chunks.push_back(AllocateHugeArray<float>(floats));
        arena_floats += floats;
      }
      slot_key.push_back(0);
      slot_last_seen.push_back(0);
      slot_updates.push_back(0);
      slot_flags.push_back(0);
      slot_pin.push_back(0);
      return num_slots++;
    }
    // Full (every slot holds a row): sample victims.
    constexpr uint32_t kVictimSample = 8;
    uint32_t victim = clock_hand;
    uint64_t victim_score = UINT64_MAX;
    // Pinned rows are skipped, looking at most kMaxLook rows: a request
    // that pins most of a partition (a batch as large as the partition's
    // share of the budget) bypasses memory instead of scanning it.
    constexpr uint32_t kMaxLook = 8 * kVictimSample;
    uint32_t sampled = 0;
    for (uint32_t i = 0; i < std::min(kMaxLook, num_slots) && sampled < kVictimSample; ++i) {
      const uint32_t s = clock_hand;
      clock_hand = clock_hand + 1 == num_slots ? 0 : clock_hand + 1;
      if (Pinned(s)) continue;
      ++sampled;
      if (store->Expired(slot_last_seen[s], now)) {
        Remove(s);
        return s;
      }
      const uint64_t score =
          2 * uint64_t{freq->Estimate(slot_key[s])} + ((slot_flags[s] & kRef) ? 1 : 0);
      slot_flags[s] &= ~kRef;
      if (score < victim_score) {
        victim_score = score;
        victim = s;
      }
    }
    if (sampled == 0 || 2 * uint64_t{freq->Estimate(candidate)} <= (victim_score & ~uint64_t{1})) {
      ++c.bypasses;
      return -1;
    }
    Evict(victim);
    return victim;
  }

  // Makes free slot `s` (its row already filled) the resident row of `key`,
  // pinned for the request in progress.
  void Occupy(uint32_t s, uint64_t key, const RowMeta& meta, uint8_t flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Pin(s);
    slot_key[s] = key;
    slot_last_seen[s] = meta.last_seen_step;
    slot_updates[s] = meta.updates;
    slot_flags[s] = flags;
    if (flags & kOnDisk) ++resident_on_disk;
    index[key] = s;
  }

  // Drops resident row `s` from memory, queueing a spill write if needed (a
  // clean row's spill record is current: nothing to write). REQUIRES: `s` is
  // not pinned (the request in progress does not ask for it).
  void Evict(uint32_t s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const uint64_t key = slot_key[s];
    const uint8_t f = slot_flags[s];
    if ((f & kDirty) || !(f & kOnDisk)) {
      Queue(key,
            store->codec_.Encode(Row(s), {slot_last_seen[s], slot_updates[s]}, /*compact=*/true),
            (f & kOnDisk) != 0);
    }
    if (f & kOnDisk) --resident_on_disk;
    index.erase(key);
    slot_flags[s] = 0;
    ++c.evictions;
  }

  // Queues `record` (RowRecordCodec::Encode) as the newest copy of `key`, to be written
  // by the next job. REQUIRES: the key is not resident and has no queued
  // (gen 0) record; an in-flight one is superseded.
  void Queue(uint64_t key, std::string record, bool on_disk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    pending_bytes += record.size();
    PendingPut put;
    put.value = std::move(record);
    put.was_on_disk = on_disk;
    if (auto d = pending_deletes.find(key); d != pending_deletes.end()) {
      // A queued delete of an older record is superseded by this put; an
      // in-flight one lands first (the record is then gone).
      if (d->second == 0) put.was_on_disk = true;
      pending_deletes.erase(d);
    }
    if (auto old = pending_puts.find(key); old != pending_puts.end()) {
      // In flight: it lands before this put, which then overwrites it.
      put.was_on_disk = true;
      pending_bytes -= old->second.value.size();
      old->second = std::move(put);
    } else {
      pending_puts.emplace(key, std::move(put));
    }
  }

  // Queues deletion of `key`'s durable record (expiry), dropping an
  // in-flight record of it (which lands before the delete).
  void QueueDelete(uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (auto q = pending_puts.find(key); q != pending_puts.end()) {
      pending_bytes -= q->second.value.size();
      pending_puts.erase(q);
    }
    pending_deletes.try_emplace(key, 0);
  }

  // Removes resident row `s` for good (expiry), queueing deletion of its
  // spill record. The caller reuses or frees the slot.
  void Remove(uint32_t s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const uint64_t key = slot_key[s];
    if (slot_flags[s] & kOnDisk) {
      QueueDelete(key);
      --resident_on_disk;
    }
    index.erase(key);
    slot_flags[s] = 0;
    ++c.expiries;
  }

  // The queued (gen 0) records and deletes as write job `++next_gen`, now in
  // flight; null if nothing is queued.
  std::shared_ptr<SpillJob> TakeJob() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto job = std::make_shared<SpillJob>();
    job->gen = ++next_gen;
    const uint64_t table_id = store->options_.table_id;
    for (auto& [key, put] : pending_puts) {
      if (put.gen != 0) continue;
      put.gen = job->gen;
      job->batch.puts.emplace_back(SpillKey(table_id, key), put.value);
      job->put_keys.push_back(key);
      job->bytes += put.value.size();
      if (!put.was_on_disk) ++job->new_records;
    }
    for (auto& [key, gen] : pending_deletes) {
      if (gen != 0) continue;
      gen = job->gen;
      job->batch.deletes.push_back(SpillKey(table_id, key));
      job->delete_keys.push_back(key);
    }
    if (job->put_keys.empty() && job->delete_keys.empty()) {
      --next_gen;
      return nullptr;
    }
    in_flight_bytes += job->bytes;
    ++jobs_in_flight;
    return job;
  }

  // Job `job` has landed on disk: its entries leave the queue (unless a
  // newer record replaced them) and the disk's row count moves.
  void Landed(const SpillJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (uint64_t key : job.put_keys) {
      auto it = pending_puts.find(key);
      if (it == pending_puts.end() || it->second.gen != job.gen) continue;
      pending_bytes -= it->second.value.size();
      pending_puts.erase(it);
    }
    for (uint64_t key : job.delete_keys) {
      auto it = pending_deletes.find(key);
      if (it != pending_deletes.end() && it->second == job.gen) pending_deletes.erase(it);
    }
    disk_rows += job.new_records;
    disk_rows -= job.delete_keys.size();
    c.spill_rows_written += job.put_keys.size();
    c.spill_bytes_written += job.bytes;
    in_flight_bytes -= job.bytes;
    --jobs_in_flight;
    if (pending_puts.empty()) absl::flat_hash_map<uint64_t, PendingPut>().swap(pending_puts);
    if (pending_deletes.empty()) absl::flat_hash_map<uint64_t, uint64_t>().swap(pending_deletes);
  }

  // Writes `job` now, on this thread; on failure it stays in flight.
  Status WriteJob(const SpillJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Status s = store->options_.spill->Write(job.batch);
    if (!s.ok()) return SpillWriteError(job, s);
    Landed(job);
    return absl::OkStatus();
  }

  Status SpillWriteError(const SpillJob& job, const Status& s) const {
    return Status(s.code(), absl::StrCat("table ", store->options_.table_name, ": spilling ",
                                         job.put_keys.size(), " rows to ",
                                         store->options_.spill->Describe(), ": ", s.message()));
  }

  // Retries, in order, the jobs whose background write failed (and those
  // queued behind them). Fails with the first error, leaving the rest.
  Status RetryFailedJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!failed_jobs.empty()) {
      VREC_RETURN_IF_ERROR(WriteJob(*failed_jobs.front()));
      failed_jobs.pop_front();
    }
    write_failed = false;
    return absl::OkStatus();
  }

  // Every record of the queue on disk: waits for the jobs in flight, retries
  // failed ones, then writes what is queued, on this thread. On failure the
  // records stay queued (readable) and are retried next time.
  Status Flush() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    WaitForJobs();
    VREC_RETURN_IF_ERROR(RetryFailedJobs());
    std::shared_ptr<SpillJob> job = TakeJob();
    if (job == nullptr) return absl::OkStatus();
    Status s = WriteJob(*job);
    if (!s.ok()) {
      failed_jobs.push_back(std::move(job));
      write_failed = true;
    }
    return s;
  }

  // Until every job in flight has landed or failed.
  void WaitForJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    mu.Await(absl::Condition(
        +[](Partition* p)
             ABSL_NO_THREAD_SAFETY_ANALYSIS { return p->jobs_in_flight == p->failed_jobs.size(); },
        this));
  }

  // Counts one sighting of a not-yet-admitted key; returns its count.
  uint32_t CountSighting(uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = admission.find(key);
    if (it == admission.end()) {
      while (admission.size() >= admission_capacity) {
        for (auto a = admission.begin(); a != admission.end();) {
          a->second >>= 1;
          if (a->second == 0) {
            admission.erase(a++);
          } else {
            ++a;
          }
        }
      }
      it = admission.emplace(key, 0).first;
    }
    return ++it->second;
  }

  uint64_t MemoryBytes() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return sizeof(Partition) + arena_floats * sizeof(float) + chunks.capacity() * sizeof(void*) +
           slot_key.capacity() * sizeof(uint64_t) + slot_last_seen.capacity() * sizeof(uint64_t) +
           slot_updates.capacity() * sizeof(uint32_t) + slot_flags.capacity() +
           slot_pin.capacity() + free_slots.capacity() * sizeof(uint32_t) + MapBytes(index) +
           MapBytes(admission) + pending_bytes + MapBytes(pending_puts) +
           MapBytes(pending_deletes) + in_flight_bytes + hot.MemoryBytes() +
           (freq ? sizeof(FrequencySketch) + freq->MemoryBytes() : 0);
  }

  const EmbeddingStore* const store;
  mutable Mutex mu;
  RowIndex index ABSL_GUARDED_BY(mu);                // key -> slot
  std::vector<ChunkPtr> chunks ABSL_GUARDED_BY(mu);  // row arena (see kSmallChunks)
  uint64_t arena_floats ABSL_GUARDED_BY(mu) = 0;
  uint32_t num_slots ABSL_GUARDED_BY(mu) = 0;
  HugeVector<uint64_t> slot_key ABSL_GUARDED_BY(mu);
  HugeVector<uint64_t> slot_last_seen ABSL_GUARDED_BY(mu);
  HugeVector<uint32_t> slot_updates ABSL_GUARDED_BY(mu);
  HugeVector<uint8_t> slot_flags ABSL_GUARDED_BY(mu);
  HugeVector<uint8_t> slot_pin ABSL_GUARDED_BY(mu);  // see Pinned
  uint8_t serial ABSL_GUARDED_BY(mu) = 0;            // of the request in progress
  std::vector<uint32_t> free_slots ABSL_GUARDED_BY(mu);
  uint32_t clock_hand ABSL_GUARDED_BY(mu) = 0;
  uint64_t resident_on_disk ABSL_GUARDED_BY(mu) = 0;  // resident rows with kOnDisk
  uint64_t disk_rows ABSL_GUARDED_BY(mu) = 0;         // durable spill records
  // The spill queue (see PendingPut): records and deletes queued or in
  // flight, each the newest state of its key.
  absl::flat_hash_map<uint64_t, PendingPut> pending_puts ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<uint64_t, uint64_t> pending_deletes ABSL_GUARDED_BY(mu);  // key -> gen
  uint64_t pending_bytes ABSL_GUARDED_BY(mu) = 0;
  // Write jobs: numbered from 1; in flight until landed. A job whose write
  // failed, and every later one, waits in failed_jobs (still in flight)
  // until a request retries them in order (RetryFailedJobs).
  uint64_t next_gen ABSL_GUARDED_BY(mu) = 0;
  uint64_t jobs_in_flight ABSL_GUARDED_BY(mu) = 0;
  uint64_t in_flight_bytes ABSL_GUARDED_BY(mu) = 0;  // the jobs' own copies of records
  bool write_failed ABSL_GUARDED_BY(mu) = false;
  std::deque<std::shared_ptr<SpillJob>> failed_jobs ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<uint64_t, uint32_t> admission ABSL_GUARDED_BY(mu);
  uint64_t admission_capacity ABSL_GUARDED_BY(mu) = 1;
  SpaceSaving hot ABSL_GUARDED_BY(mu);
  // Access frequencies for admission to a full partition (with a budget).
  std::unique_ptr<FrequencySketch> freq ABSL_GUARDED_BY(mu);
  uint32_t sample_tick ABSL_GUARDED_BY(mu) = 0;
  Counters c ABSL_GUARDED_BY(mu);
};

StoreRates RatesBetween(const StoreStats& before, const StoreStats& after) {
  StoreRates r;
  const double dt = (after.timestamp_ns - before.timestamp_ns) * 1e-9;
  if (dt <= 0) return r;
  r.pull_requests_per_s = (after.pull_requests - before.pull_requests) / dt;
  r.push_requests_per_s = (after.push_requests - before.push_requests) / dt;
  r.pull_keys_per_s = (after.pull_keys - before.pull_keys) / dt;
  r.push_keys_per_s = (after.push_keys - before.push_keys) / dt;
  return r;
}

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
  for (uint32_t i = 0; i < num_parts; ++i) {
    partitions_.push_back(std::make_unique<Partition>(this, options_.hot_key_capacity));
    Partition& p = *partitions_.back();
    MutexLock lock(&p.mu);
    p.admission_capacity = admission_per_part;
  }
  if (options_.spill != nullptr && options_.background_spill_writes) {
    writer_ = std::make_unique<SerialWorker>("vrec-spill");
  }
  // The arena grows by kSmallChunks chunks of about 16 KB (at most 256 rows),
  // so small or sparse tables do not pin much memory, then by chunks of
  // 2 MiB that the kernel may back with huge pages: random row lookups in a
  // large table then miss the TLB far less often.
  const uint64_t row_bytes = uint64_t{row_floats_} * sizeof(float);
  small_chunk_rows_ = static_cast<uint32_t>(std::clamp<uint64_t>((16 << 10) / row_bytes, 1, 256));
  // Rounded up: a chunk of at least 2 MiB whatever the row size (Adam's
  // 193-float rows would otherwise give chunks just short of a huge page).
  big_chunk_rows_ =
      static_cast<uint32_t>(std::max<uint64_t>(1, (kHugePageBytes + row_bytes - 1) / row_bytes));
  const uint64_t budget = options_.memory_budget_bytes;
  if (budget > 0) {
    // Fixed cost of a partition: the struct, the hot-key sketch and (with
    // admission) its tracker, reserved up front so it never grows.
    absl::flat_hash_map<uint64_t, uint32_t> probe_admission;
    if (admission) probe_admission.reserve(admission_per_part * 32 / 25 + 1);
    uint64_t fixed =
        sizeof(Partition) + MapBytes(probe_admission) + sizeof(void*) + sizeof(FrequencySketch);
    {
      Partition& p = *partitions_[0];
      MutexLock lock(&p.mu);
      fixed += p.hot.MemoryBytes();  // reserved in its constructor; never grows
    }
    const uint64_t per_part = budget / num_parts;
    // Row arena + slot metadata (key, last seen, updates, flags, pin) + free
    // list; then the index and the frequency sketch (8-16 bytes a row) below.
    const uint64_t per_row = uint64_t{row_floats_} * sizeof(float) + 8 + 8 + 4 + 1 + 1 + 4 +
                             sizeof(void*);  // chunk pointer, amortized upper bound
    uint64_t m = per_part > fixed ? (per_part - fixed) / (per_row + 62) : 0;
    m = std::min<uint64_t>(m, UINT32_MAX - 1);
    RowIndex probe;
    while (m > 0) {
      // Reserve so that size <= 25/32 of capacity: then erase+insert cycles
      // rehash in place and the index never grows past this capacity.
      RowIndex().swap(probe);
      probe.reserve(m * 32 / 25 + 1);
      if (fixed + m * per_row + MapBytes(probe) + FrequencySketch::BytesFor(m) <= per_part) break;
      m -= std::max<uint64_t>(1, m / 32);
    }
    if (m == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "table ", options_.table_name, ": memory budget ", budget, " bytes is too small for ",
          num_parts, " partitions of rows of ", row_floats_, " floats; need at least ",
          num_parts * (fixed + per_row + 256), " bytes"));
    }
    max_rows_per_partition_ = static_cast<uint32_t>(m);
    for (auto& part : partitions_) {
      Partition& p = *part;
      MutexLock lock(&p.mu);
      p.index.reserve(m * 32 / 25 + 1);
      if (admission) p.admission.reserve(admission_per_part * 32 / 25 + 1);
      p.slot_key.reserve(m);
      p.slot_last_seen.reserve(m);
      p.slot_updates.reserve(m);
      p.slot_flags.reserve(m);
      p.slot_pin.reserve(m);
      p.free_slots.reserve(m);
      p.chunks.reserve(ChunksFor(static_cast<uint32_t>(m)));
      p.freq = std::make_unique<FrequencySketch>(m);
    }
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
    std::memcpy(out_row, row, sizeof(float) * dim_);
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
  pull_requests_.fetch_add(1, std::memory_order_relaxed);
  return Serve(Op::kPull, keys, out.data(), nullptr);
}

Status EmbeddingStore::Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads) {
  if (grads.size() != keys.size() * dim_) {
    return absl::InvalidArgumentError(absl::StrCat("table ", options_.table_name, ": push of ",
                                                   keys.size(), " keys needs ", keys.size() * dim_,
                                                   " gradient floats, got ", grads.size()));
  }
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!std::isfinite(grads[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "table ", options_.table_name, ": non-finite gradient ", grads[i], " at key index ",
          i / dim_, " (key ", keys[i / dim_], "), element ", i % dim_));
    }
  }
  push_requests_.fetch_add(1, std::memory_order_relaxed);
  return Serve(Op::kPush, keys, nullptr, grads.data());
}

Status EmbeddingStore::Serve(Op op, absl::Span<const uint64_t> keys, float* out,
                             const float* grads) {
  const uint64_t now = step();
  const uint32_t num_parts = options_.num_partitions;
  std::vector<Partition*> served;
  if (num_parts == 1) {
    std::vector<uint32_t> idx(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) idx[i] = static_cast<uint32_t>(i);
    Status s = ServePartition(*partitions_[0], op, keys, idx, out, grads, now);
    served.push_back(partitions_[0].get());
    SubmitSpillJobs(served);
    return s;
  }
  std::vector<std::vector<uint32_t>> groups(num_parts);
  for (size_t i = 0; i < keys.size(); ++i) {
    groups[PartitionOf(keys[i])].push_back(static_cast<uint32_t>(i));
  }
  // Concurrent requests start at different partitions, so that they do not
  // queue behind each other on the same lock (a convoy).
  const uint32_t first = next_start_.fetch_add(1, std::memory_order_relaxed) % num_parts;
  for (uint32_t j = 0; j < num_parts; ++j) {
    const uint32_t p = first + j < num_parts ? first + j : first + j - num_parts;
    if (groups[p].empty()) continue;
    Status s = ServePartition(*partitions_[p], op, keys, groups[p], out, grads, now);
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
    writer_->Submit([this, jobs] {
      for (const auto& [p, job] : jobs) WriteInBackground(*p, job);
    });
  }
  for (const auto& [p, job] : jobs) {
    MutexLock lock(&p->mu);
    p->mu.Await(absl::Condition(
        +[](Partition* q) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return q->jobs_in_flight <= q->store->options_.max_spill_jobs_in_flight ||
                 q->write_failed;
        },
        p));
  }
}

Status EmbeddingStore::ServePartition(Partition& p, Op op, absl::Span<const uint64_t> keys,
                                      const std::vector<uint32_t>& idx, float* out,
                                      const float* grads, uint64_t now) {
  const bool admission = options_.admission_min_count > 1;
  const bool expiry = options_.expiry_steps > 0;
  MutexLock lock(&p.mu);
  // Spill writes that failed earlier are retried first; while the disk tier
  // keeps failing, requests are refused before anything is applied, which
  // bounds how far memory can exceed the budget.
  if (p.write_failed) VREC_RETURN_IF_ERROR(p.RetryFailedJobs());

  // 1. Pin the resident rows of the request (under a budget, where rows are
  // evicted: none of them is evicted before it is served, see AdmitSlot),
  // and one MultiGet for the keys that are neither resident nor queued.
  ++p.serial;
  absl::flat_hash_map<uint64_t, std::string> fetched;
  const bool read_disk = options_.spill != nullptr && p.disk_rows > 0;
  if (read_disk || max_rows_per_partition_ > 0) {
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
      if (!read_disk || p.pending_puts.contains(k) || p.pending_deletes.contains(k)) continue;
      if (seen.insert(k).second) missing.push_back(k);
    }
    if (!missing.empty()) {
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
        fetched.emplace(missing[j], std::move(*values[j]));
      }
    }
  }

  // 2. Serve the keys in order. Nothing below fails.
  if (op == Op::kPull) {
    p.c.pull_keys += idx.size();
  } else {
    p.c.push_keys += idx.size();
  }
  // Rows and index slots are scattered over large arrays: a three-stage
  // pipeline overlaps the cache misses of many keys. kFar keys ahead the
  // index slot is prefetched; kNear keys ahead the (now cached) lookup runs
  // and the row is prefetched; then the key is served.
  constexpr size_t kNear = 16, kFar = 32;
  const size_t prefetch_bytes = sizeof(float) * (op == Op::kPull ? dim_ : row_floats_);
  FrequencySketch* const freq = p.freq.get();
  auto prefetch_row = [&](size_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) {
    if (pos >= idx.size()) return;
    auto it = p.index.find(keys[idx[pos]]);
    if (it == p.index.end()) return;
    // The slot's metadata is touched too (a cache miss each, otherwise).
    __builtin_prefetch(&p.slot_flags[it->second]);
    if (op == Op::kPush) __builtin_prefetch(&p.slot_updates[it->second]);
    if (expiry) __builtin_prefetch(&p.slot_last_seen[it->second]);
    const char* row = reinterpret_cast<const char*>(p.Row(it->second));
    for (size_t b = 0; b < prefetch_bytes; b += 64) __builtin_prefetch(row + b);
  };
  auto prefetch_far = [&](size_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) {
    p.index.prefetch(keys[idx[pos]]);
    if (freq != nullptr) freq->Prefetch(keys[idx[pos]]);
  };
  for (size_t pos = 0; pos < std::min(kFar, idx.size()); ++pos) prefetch_far(pos);
  for (size_t pos = 0; pos < kNear; ++pos) prefetch_row(pos);
  for (size_t pos = 0; pos < idx.size(); ++pos) {
    if (pos + kFar < idx.size()) prefetch_far(pos + kFar);
    prefetch_row(pos + kNear);
    const uint32_t i = idx[pos];
    const uint64_t k = keys[i];
    float* const out_row = op == Op::kPull ? out + static_cast<size_t>(i) * dim_ : nullptr;
    const float* const grad = op == Op::kPush ? grads + static_cast<size_t>(i) * dim_ : nullptr;
    if (freq != nullptr) freq->Increment(k);
    if (++p.sample_tick >= options_.hot_key_sample) {
      p.sample_tick = 0;
      p.hot.Offer(k, options_.hot_key_sample);
    }
    int64_t slot = -1;
    if (auto it = p.index.find(k); it != p.index.end()) {
      slot = it->second;
      if (expiry && Expired(p.slot_last_seen[slot], now)) {
        p.Remove(static_cast<uint32_t>(slot));
        p.free_slots.push_back(static_cast<uint32_t>(slot));
        slot = -1;
      } else {
        ++p.c.memory_hits;
      }
    } else {
      // Not resident: its newest record is in the spill queue, or is a clean
      // copy evicted earlier in this request, or is what the disk returned.
      std::string value;
      bool found = false, on_disk = false, from_queue = false, from_memory = false;
      bool in_flight = false;
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
        found = from_memory = true;
      } else if (auto f = fetched.find(k); f != fetched.end()) {
        value = std::move(f->second);
        fetched.erase(f);
        found = on_disk = true;
      }
      if (found) {
        RowMeta meta;
        ParseRowMeta(value, &meta);  // validated: queued by us or checked above
        if (Expired(meta.last_seen_step, now)) {
          if (on_disk) p.QueueDelete(k);
          ++p.c.expiries;
        } else {
          ++(from_memory ? p.c.memory_hits : p.c.disk_hits);
          const int64_t s = p.AdmitSlot(k, now);
          if (s < 0) {
            // Not admitted: served from the record, which goes back where it
            // was unless it changed (then it is queued for the disk).
            ExpandRecord(k, &value);
            if (ServeRecord(op, out_row, grad, now, &value) || from_queue) {
              codec_.Compact(&value);
              p.Queue(k, std::move(value), on_disk);
            } else if (!in_flight) {
              fetched.emplace(k, std::move(value));  // equal to the disk's record
            }
            continue;
          }
          FillRow(k, value, p.Row(s));
          p.Occupy(static_cast<uint32_t>(s), k, meta,
                   kUsed | (on_disk ? kOnDisk : 0) | (from_queue ? kDirty : 0));
          slot = s;
        }
      }
    }
    if (slot < 0) {  // a new row, if admitted
      if (admission) {
        if (op == Op::kPush) {
          ++p.c.dropped_pushes;
          continue;
        }
        if (p.CountSighting(k) < options_.admission_min_count) {
          options_.init(k, out_row);
          ++p.c.admission_rejected_pulls;
          continue;
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
        continue;
      }
      InitialRow(k, p.Row(s));
      p.Occupy(static_cast<uint32_t>(s), k, {now, 0}, kUsed | kDirty);
      slot = s;
    }
    const uint32_t s = static_cast<uint32_t>(slot);
    float* row = p.Row(s);
    if (expiry) {  // last_seen_step is kept only where expiry reads it
      p.slot_last_seen[s] = now;
      p.slot_flags[s] |= kRef | kDirty;
    } else {
      p.slot_flags[s] |= kRef;
    }
    if (op == Op::kPull) {
      std::memcpy(out_row, row, sizeof(float) * dim_);
    } else {
      options_.optimizer->Apply(row, row + dim_, grad, dim_);
      p.slot_flags[s] |= kDirty;
      if (p.slot_updates[s] != UINT32_MAX) ++p.slot_updates[s];
    }
  }
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

void EmbeddingStore::WriteInBackground(Partition& p, std::shared_ptr<SpillJob> job) {
  {
    MutexLock lock(&p.mu);
    if (p.write_failed) {  // an earlier job failed: this one waits behind it
      p.failed_jobs.push_back(std::move(job));
      return;
    }
  }
  // No lock while writing: requests go on meanwhile. Nothing else writes
  // this partition's records now (jobs run one at a time, in order, and a
  // request writes only failed jobs, or after WaitForJobs).
  const Status s = options_.spill->Write(job->batch);
  MutexLock lock(&p.mu);
  if (s.ok()) {
    p.Landed(*job);
  } else {
    LOG(WARNING) << p.SpillWriteError(*job, s).message() << " (retried by the next request)";
    ++p.c.spill_write_failures;
    p.write_failed = true;
    p.failed_jobs.push_back(std::move(job));
  }
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
    if (p.admission.size() >= p.admission_capacity || count == 0) continue;
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
    const uint64_t before = p.c.expiries;
    for (uint32_t s = 0; s < p.num_slots; ++s) {
      if ((p.slot_flags[s] & kUsed) && Expired(p.slot_last_seen[s], now)) {
        p.Remove(s);
        p.free_slots.push_back(s);
      }
    }
    for (auto it = p.pending_puts.begin(); it != p.pending_puts.end();) {
      RowMeta meta;
      if (ParseRowMeta(it->second.value, &meta) && Expired(meta.last_seen_step, now)) {
        if (it->second.was_on_disk) p.pending_deletes.try_emplace(it->first, 0);
        p.pending_bytes -= it->second.value.size();
        ++p.c.expiries;
        p.pending_puts.erase(it++);
      } else {
        ++it;
      }
    }
    removed += p.c.expiries - before;
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
      if (p.index.contains(k) || p.pending_puts.contains(k) || p.pending_deletes.contains(k)) {
        continue;
      }
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
    VREC_RETURN_IF_ERROR(p.Flush());
    SpillBatch batch;
    std::vector<uint32_t> written;
    uint64_t new_records = 0, bytes = 0;
    for (uint32_t s = 0; s < p.num_slots; ++s) {
      const uint8_t f = p.slot_flags[s];
      if (!(f & kUsed) || ((f & kOnDisk) && !(f & kDirty))) continue;
      batch.puts.emplace_back(SpillKey(options_.table_id, p.slot_key[s]),
                              codec_.Encode(p.Row(s), {p.slot_last_seen[s], p.slot_updates[s]},
                                            /*compact=*/true));
      bytes += batch.puts.back().second.size();
      written.push_back(s);
      if (!(f & kOnDisk)) ++new_records;
    }
    Status st = options_.spill->Write(batch);
    if (!st.ok()) {
      return Status(st.code(), absl::StrCat("table ", options_.table_name, ": FlushAll to ",
                                            options_.spill->Describe(), ": ", st.message()));
    }
    for (uint32_t s : written) {
      if (!(p.slot_flags[s] & kOnDisk)) ++p.resident_on_disk;
      p.slot_flags[s] = (p.slot_flags[s] | kOnDisk) & ~kDirty;
    }
    p.disk_rows += new_records;
    p.c.spill_rows_written += written.size();
    p.c.spill_bytes_written += bytes;
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
  VREC_RETURN_IF_ERROR(options_.spill->Scan(
      SpillPrefix(options_.table_id), [&](const std::string& k, const std::string& v) {
        const uint64_t key = SpillKeyRowKey(k);
        Partition& p = *partitions_[PartitionOf(key)];
        {
          MutexLock lock(&p.mu);
          if (p.index.contains(key) || p.pending_puts.contains(key) ||
              p.pending_deletes.contains(key)) {
            return true;
          }
        }
        RowMeta meta;
        decode_status = DecodeRow(key, v, row.data(), &meta);
        if (!decode_status.ok()) return false;
        if (!Expired(meta.last_seen_step, now)) fn(key, row.data(), meta);
        return true;
      }));
  return decode_status;
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
    st.rows_in_memory += p.index.size();
    st.rows_on_disk += p.disk_rows;
    // A row reloaded from a record still in flight counts as on disk before
    // its record lands.
    st.rows_disk_only += p.disk_rows - std::min(p.disk_rows, p.resident_on_disk);
    st.rows_pending_spill += p.pending_puts.size();
    st.memory_bytes += p.MemoryBytes();
    st.pull_keys += p.c.pull_keys;
    st.push_keys += p.c.push_keys;
    st.memory_hits += p.c.memory_hits;
    st.disk_hits += p.c.disk_hits;
    st.rows_created += p.c.rows_created;
    st.admission_rejected_pulls += p.c.admission_rejected_pulls;
    st.dropped_pushes += p.c.dropped_pushes;
    st.pending_admission_keys += p.admission.size();
    st.evictions += p.c.evictions;
    st.spill_rows_written += p.c.spill_rows_written;
    st.spill_bytes_written += p.c.spill_bytes_written;
    st.spill_keys_read += p.c.spill_keys_read;
    st.expiries += p.c.expiries;
    st.spill_write_failures += p.c.spill_write_failures;
    st.memory_bypasses += p.c.bypasses;
    for (const HeavyHitter& h : p.hot.Top(p.hot.capacity())) hot.push_back(h);
  }
  st.hot_keys = MergeTop(std::move(hot), options_.hot_key_capacity);
  return st;
}

}  // namespace vrec::ps
