// Partition: one lock's worth of an EmbeddingStore's in-memory tier.
//
// A partition holds the resident rows of the keys that hash to it: a row
// arena (chunks of slots), per-slot metadata, a key -> slot index, request
// pins, a clock hand for victim sampling under a row limit (TinyLFU
// admission against a FrequencySketch), the admission tracker of keys not
// yet created, and the spill queue: records of evicted rows (and deletes of
// expired ones) on their way to the SpillStore as numbered write jobs. See
// embedding_store.h for the policies; this class keeps their invariants:
//   * a key is in at most one of: the index (resident), the spill queue's
//     queued (gen 0) records; a record in flight (gen > 0) stays readable
//     until its job lands, unless a newer record of the key supersedes it;
//   * a slot pinned by the request in progress (Pinned) is never a victim;
//   * num_slots never exceeds layout.max_rows (when it is not 0).
//
// Its layout (row size, row limit, arena chunking, expiry) and where its
// records go (spill store, table, record codec) are given by value at
// construction and constant after.
//
// Thread safety: every field is guarded by `mu`; methods REQUIRE it held,
// except the constructor and WriteInBackground (which takes it). The owner
// (EmbeddingStore) reads and updates fields directly under `mu` on its hot
// path and goes through the methods for everything that must keep the
// invariants above (occupying and freeing slots, queueing records, jobs).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/huge_pages.h"
#include "ps/frequency_sketch.h"
#include "ps/heavy_hitters.h"
#include "ps/mutex.h"
#include "ps/row_record.h"
#include "ps/spill_store.h"
#include "ps/store_stats.h"
#include "vrec/status.h"

namespace vrec::ps {

// The shape of a partition's arena and its row limit.
struct PartitionLayout {
  uint32_t row_floats = 0;    // floats per row: weights + optimizer state
  uint32_t max_rows = 0;      // rows held at most; 0 = unlimited
  uint64_t expiry_steps = 0;  // 0 = rows never expire
  // Arena chunks: the first kSmallChunks hold small_chunk_rows rows each,
  // later ones big_chunk_rows.
  static constexpr uint32_t kSmallChunks = 64;
  uint32_t small_chunk_rows = 1;
  uint32_t big_chunk_rows = 1;

  // The layout of rows of `row_floats` floats: chunks of about 16 KB (at
  // most 256 rows) first, so small or sparse tables do not pin much memory,
  // then chunks of at least 2 MiB that the kernel may back with huge pages
  // (random row lookups in a large table then miss the TLB far less often).
  static PartitionLayout For(uint32_t row_floats, uint32_t max_rows, uint64_t expiry_steps);

  // Chunks holding `rows` slots.
  uint32_t ChunksFor(uint32_t rows) const;
  // Whether a row last seen at step `last_seen` is gone at step `now`.
  bool Expired(uint64_t last_seen, uint64_t now) const {
    return expiry_steps > 0 && now > last_seen + expiry_steps;
  }
};

// Everything a partition is made of besides its rows; constant after
// construction.
struct PartitionOptions {
  PartitionLayout layout;
  RowRecordCodec codec{0, 0};
  SpillStore* spill = nullptr;  // not owned; null: no disk tier (nothing is queued)
  uint64_t table_id = 0;        // spill keys
  std::string table_name;       // messages
  uint32_t max_spill_jobs_in_flight = 1;
  uint32_t hot_key_capacity = 16;   // Space-Saving counters
  uint64_t admission_capacity = 1;  // pending keys tracked
  bool admission = false;           // with a row limit, reserve the admission tracker up front
};

// Rows one partition may hold within `budget_bytes / num_partitions` bytes
// of the in-memory tier: the fixed cost of a partition (PartitionFixedBytes)
// plus, per row, the arena, the slot metadata, the index slots reserved at
// 32/25 of the rows and the frequency sketch. 0 when not even one row fits
// (including a zero budget: callers treat 0 bytes as unlimited before
// asking). At most UINT32_MAX - 1.
uint32_t RowsPerPartition(uint64_t budget_bytes, uint32_t num_partitions, uint32_t row_floats,
                          uint64_t fixed_bytes);
// A partition's fixed cost under a budget: the object, the hot-key sketch
// and (with admission) its tracker, reserved up front so they never grow.
uint64_t PartitionFixedBytes(uint32_t hot_key_capacity, uint64_t admission_keys);
// Bytes of a row's arena share, slot metadata and free-list entry (the
// index and sketch come on top, see RowsPerPartition).
uint64_t PartitionRowBytes(uint32_t row_floats);

// One batch of a partition's spill queue on its way to the spill store.
struct SpillJob {
  uint64_t gen = 0;
  SpillBatch batch;
  std::vector<uint64_t> put_keys, delete_keys;  // batch order
  uint64_t new_records = 0;                     // puts of keys without a durable record
  uint64_t bytes = 0;                           // values
};

class Partition {
 public:
  // Slot flags.
  static constexpr uint8_t kUsed = 1;    // slot holds a row
  static constexpr uint8_t kRef = 2;     // touched since the clock hand last passed
  static constexpr uint8_t kDirty = 4;   // differs from its spill record (or has none)
  static constexpr uint8_t kOnDisk = 8;  // a durable spill record of this key exists

  // The large arrays, probed at random once a key: on huge pages
  // (common/huge_pages.h) where they are 2 MiB or more.
  template <typename T>
  using HugeVector = std::vector<T, HugePageAllocator<T>>;
  using RowIndex =
      absl::flat_hash_map<uint64_t, uint32_t, absl::Hash<uint64_t>, std::equal_to<uint64_t>,
                          HugePageAllocator<std::pair<const uint64_t, uint32_t>>>;

  // The spill queue holds records in two states: queued (gen 0: not yet
  // handed to the disk) and in flight (gen g > 0: part of write job g, which
  // the spill writer is writing). Both are the key's newest durable state
  // and readable until the write lands; then the entry is dropped, unless a
  // newer one replaced it meanwhile.
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

  // With layout.max_rows > 0, reserves every array for that many rows up
  // front (they then never grow) and builds the frequency sketch.
  explicit Partition(PartitionOptions options);
  Partition(const Partition&) = delete;
  Partition& operator=(const Partition&) = delete;

  const PartitionOptions& options() const { return options_; }
  const PartitionLayout& layout() const { return options_.layout; }

  // The row (layout().row_floats floats) of slot `s`.
  float* Row(uint32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const PartitionLayout& l = options_.layout;
    const uint32_t small_slots = l.small_chunk_rows * PartitionLayout::kSmallChunks;
    if (slot < small_slots) {
      return chunks[slot / l.small_chunk_rows].get() +
             static_cast<size_t>(slot % l.small_chunk_rows) * l.row_floats;
    }
    slot -= small_slots;
    return chunks[PartitionLayout::kSmallChunks + slot / l.big_chunk_rows].get() +
           static_cast<size_t>(slot % l.big_chunk_rows) * l.row_floats;
  }

  // Pins: a slot holding a key of the request in progress carries that
  // request's serial (mod 256) in slot_pin. A stale serial equal to the
  // current one after wrapping only keeps a row from being a victim once.
  // BeginRequest starts a new serial (unpinning every slot at once).
  void BeginRequest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { ++serial; }
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
  // from its record without caching it. The slot's row is not filled.
  int64_t AdmitSlot(uint64_t candidate, uint64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

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
  void Evict(uint32_t s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Removes resident row `s` for good (expiry), queueing deletion of its
  // spill record. The caller reuses or frees the slot (FreeSlot).
  void Remove(uint32_t s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Makes removed slot `s` available to AdmitSlot.
  void FreeSlot(uint32_t s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { free_slots.push_back(s); }

  // Queues `record` (a RowRecordCodec record) as the newest copy of `key`,
  // to be written by the next job. REQUIRES: the key is not resident and
  // has no queued (gen 0) record; an in-flight one is superseded.
  void Queue(uint64_t key, std::string record, bool on_disk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Queues deletion of `key`'s durable record (expiry), dropping an
  // in-flight record of it (which lands before the delete).
  void QueueDelete(uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Whether the spill queue holds a record or a delete of `key` (then the
  // disk's record, if any, is not its newest state).
  bool InSpillQueue(uint64_t key) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return pending_puts.contains(key) || pending_deletes.contains(key);
  }

  // The queued (gen 0) records and deletes as write job `++next_gen`, now in
  // flight; null if nothing is queued.
  std::shared_ptr<SpillJob> TakeJob() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Job `job` has landed on disk: its entries leave the queue (unless a
  // newer record replaced them) and the disk's row count moves.
  void Landed(const SpillJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Writes `job` now, on this thread; on failure it stays in flight.
  Status WriteJob(const SpillJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Runs on the store's background writer: writes `job` without holding mu
  // (requests go on meanwhile), then takes mu to land it or, if the write
  // fails, to keep it (and later jobs) in failed_jobs for RetryFailedJobs.
  void WriteInBackground(std::shared_ptr<SpillJob> job) ABSL_LOCKS_EXCLUDED(mu);

  // Retries, in order, the jobs whose background write failed (and those
  // queued behind them). Fails with the first error, leaving the rest.
  Status RetryFailedJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Every record of the queue on disk: waits for the jobs in flight, retries
  // failed ones, then writes what is queued, on this thread. On failure the
  // records stay queued (readable) and are retried next time.
  Status Flush() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Until every job in flight has landed or failed.
  void WaitForJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Until at most max_spill_jobs_in_flight jobs are in flight (or a write
  // has failed: the next request retries it).
  void WaitForJobRoom() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Counts one sighting of a not-yet-admitted key; returns its count.
  uint32_t CountSighting(uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Expiry of the in-memory tier at step `now`: removes expired resident
  // rows and queued records (queueing deletes of their durable records).
  // Returns how many rows expired.
  uint64_t ExpireResident(uint64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Writes every resident row that has no up-to-date spill record, on this
  // thread, and marks them clean. REQUIRES: nothing in flight (Flush).
  Status WriteResident() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Adds this partition's sizes and counters to `st` and its hot keys to
  // `hot`.
  void AddStats(StoreStats* st, std::vector<HeavyHitter>* hot) const ABSL_SHARED_LOCKS_REQUIRED(mu);

  // Bytes held (what the budget bounds).
  uint64_t MemoryBytes() const ABSL_SHARED_LOCKS_REQUIRED(mu);

  mutable Mutex mu;
  RowIndex index ABSL_GUARDED_BY(mu);                        // key -> slot
  std::vector<HugeArray<float>> chunks ABSL_GUARDED_BY(mu);  // row arena (see kSmallChunks)
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
  SpaceSaving hot ABSL_GUARDED_BY(mu);
  // Access frequencies for admission to a full partition (with a row limit).
  std::unique_ptr<FrequencySketch> freq ABSL_GUARDED_BY(mu);
  uint32_t sample_tick ABSL_GUARDED_BY(mu) = 0;
  Counters c ABSL_GUARDED_BY(mu);

 private:
  Status SpillWriteError(const SpillJob& job, const Status& s) const;

  const PartitionOptions options_;
};

}  // namespace vrec::ps
