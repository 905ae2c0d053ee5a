// EmbeddingStore: one table's rows on one parameter server.
//
// A row is `dim` weights followed by the optimizer's state
// (Optimizer::StateFloats(dim) floats). Rows of a sparse table are keyed by
// 64-bit IDs and created on first touch with weights from the table's
// initializer, a pure function of (seed, table, key). Dense tables use the
// same store with block indices as keys.
//
// Tiers. Rows live in an in-memory hash table split into partitions (a key's
// partition is a function of its hash). With a memory budget, each partition
// holds at most a fixed number of rows, computed at creation so that every
// byte it can hold (row arena, per-row metadata, hash-map slots, admission
// counters, hot-key sketch) fits in budget / num_partitions; see
// MemoryBytes(). Every access is counted in a per-partition FrequencySketch.
// When a full partition needs room, the least frequent of 8 rows sampled
// from a clock hand is the victim, evicted only if the newcomer is strictly
// more frequent (TinyLFU admission); otherwise the newcomer is served from
// its spill record without entering memory (a push rewrites the record via
// the spill queue). Rows a request asks for are pinned while it runs: they
// are never its victims. An evicted row that changed since it was last written
// (or was never written) goes to the SpillStore, then it is dropped from
// memory. A lookup that misses memory reads the spill store (one MultiGet per
// partition per request) before creating a new row, so no update is lost:
// the newest copy of a row is always in exactly one of memory, the spill
// queue, or disk (memory wins over an older disk record of the same key).
// Evicted rows are queued per partition; at the end of the request that
// evicted them the queue becomes one write job, written by a background
// thread (background_spill_writes; one per store) while requests go on. A
// record stays in the queue, readable, until its job lands; a newer record
// of the same key supersedes it (jobs of a partition land in order). At
// most max_spill_jobs_in_flight jobs a partition are in flight, beyond that
// a request waits for the disk; memory can exceed the budget by the records
// in flight (WaitForSpillWrites() waits for them). If a job's write fails,
// the request that made it has already succeeded (it has been applied); the
// job and later ones stay queued (readable, counted in memory) and the next
// request to the partition retries them first and is refused with the
// error, nothing applied, while the disk tier keeps failing.
//
// Admission (admission_min_count = F > 1): a row is created only at the F-th
// Pull of its key. Until then Pull returns the initial value and Push of it
// is dropped (counted in Stats). Pending counts are kept exactly for up to
// admission_tracker_capacity keys; when a partition's share is full, all its
// counts are halved (aging) and zeros dropped, so a key may need more than F
// sightings under pressure, never fewer.
//
// Expiry (expiry_steps = T > 0): the store has a step clock advanced by
// AdvanceStep() (the server calls it once per applied push request or per
// global step). A row last touched (pulled or pushed) at step s is gone once
// the clock passes s + T: any later access sees a fresh row (subject to
// admission again). Expired rows are dropped lazily on access and eagerly by
// ExpireStale(), which also removes them from disk.
//
// Errors: a request touches partitions one after another. A partition either
// serves all of its keys or fails with nothing applied (spill store down,
// corrupt spill record: kDataLoss naming table, key and store). On error the
// partitions served before it keep their effect, so a failed Push may be
// partly applied, per partition. Rows are never lost or corrupted by a
// failure.
//
// Where the pieces live: a partition's arena, index, eviction and spill
// queue in partition.h (its capacity under a budget: RowsPerPartition), the
// record format in row_record.h, the stats structs in store_stats.h. This
// class routes keys to partitions and serves a request in three phases per
// partition (ServePartition).
//
// Thread safety: all methods are thread-safe. Requests lock one partition at
// a time (a ps::Mutex, i.e. absl::Mutex, per partition), so concurrent requests to different
// partitions run in parallel. Pushes to the same row are applied one at a
// time in some order.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "common/serial_worker.h"
#include "proto/model.pb.h"
#include "ps/mutex.h"
#include "ps/optimizer.h"
#include "ps/pooled_gradients.h"
#include "ps/row_record.h"
#include "ps/spill_store.h"
#include "ps/store_stats.h"
#include "vrec/status.h"

namespace vrec::ps {

struct EmbeddingStoreOptions {
  std::string table_name;  // for messages and stats
  uint64_t table_id = 0;   // TableId(table_name) unless set otherwise
  uint32_t dim = 0;        // weights per row
  std::shared_ptr<const Optimizer> optimizer;
  // Writes the `dim` initial weights of `key`. Must be a pure function.
  std::function<void(uint64_t key, float* weights)> init;

  uint64_t memory_budget_bytes = 0;  // 0 = unlimited (then spill is optional)
  uint32_t admission_min_count = 0;  // 0 or 1 = create on first touch
  uint64_t expiry_steps = 0;         // 0 = never expire
  SpillStore* spill = nullptr;       // not owned; required with a budget or expiry
  // Evicted rows are written to the spill store by a background thread (one
  // per store), off the requests' path; false writes them at the end of the
  // request that evicted them.
  bool background_spill_writes = true;
  // Write jobs a partition may have in flight; a request that would hand
  // over one more waits for the disk (this bounds the memory they hold).
  uint32_t max_spill_jobs_in_flight = 2;

  uint32_t num_partitions = 16;
  uint64_t admission_tracker_capacity = 1 << 16;  // pending keys tracked, all partitions
  uint32_t hot_key_capacity = 16;                 // Space-Saving counters per partition
  uint32_t hot_key_sample = 16;                   // offer one of every N accesses
};

// Options for building a store from the model config.
struct TableStoreOptions {
  uint64_t seed = 0;                 // ModelConfig.seed
  SpillStore* spill = nullptr;       // shared by the tables of a server
  uint64_t memory_budget_bytes = 0;  // overrides TableConfig.storage when > 0
  uint32_t num_partitions = 16;
  uint32_t max_spill_jobs_in_flight = 2;  // see EmbeddingStoreOptions
  uint32_t dense_block_floats = 4096;     // block width of dense tables
  uint64_t glorot_fan_in = 0;             // GLOROT_UNIFORM dense tables only
  uint64_t glorot_fan_out = 0;
};

class Partition;

class EmbeddingStore {
 public:
  // kInvalidArgument for dim 0, no optimizer or init, a budget or expiry
  // without a spill store, or a budget too small to hold one row per
  // partition (the message says how much is needed).
  static StatusOr<std::unique_ptr<EmbeddingStore>> Create(EmbeddingStoreOptions options);

  // A store for `table` as the model config declares it (initializer,
  // optimizer, storage policy). Dense tables get dim = dense_block_floats,
  // keys = block indices, the tail of the last block zero.
  static StatusOr<std::unique_ptr<EmbeddingStore>> FromConfig(const TableConfig& table,
                                                              const TableStoreOptions& options);

  ~EmbeddingStore();
  EmbeddingStore(const EmbeddingStore&) = delete;
  EmbeddingStore& operator=(const EmbeddingStore&) = delete;

  // out[i*dim .. (i+1)*dim) = weights of keys[i]. Keys may repeat.
  // REQUIRES: out.size() == keys.size() * dim (else kInvalidArgument).
  Status Pull(absl::Span<const uint64_t> keys, absl::Span<float> out);

  // Applies the optimizer to keys[i] with grads[i*dim ..). Repeated keys are
  // applied one after another in order. kInvalidArgument (nothing applied)
  // for a size mismatch or a non-finite gradient (naming index and key).
  Status Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads);

  // Pull and Push with the rows at given places of a caller's matrix (an
  // in-process request reads and writes the worker's batch matrices
  // directly): row i is rows + position(i) * dim, where position(i) is
  // positions[i], or i when `positions` is empty. Keys may repeat.
  // REQUIRES: positions empty or of keys.size(); every row addressed is
  // dim floats the caller owns, distinct rows for distinct keys of a pull.
  Status PullRows(absl::Span<const uint64_t> keys, absl::Span<const uint32_t> positions,
                  float* rows);
  Status PushRows(absl::Span<const uint64_t> keys, absl::Span<const uint32_t> positions,
                  const float* rows);
  // Applies the optimizer to keys[i] with the gradient formed from the
  // pooled matrix (num_pooled x dim) and the key's uses (pooled_gradients.h)
  // as it is applied: no gradient row is written or read. Keys are unique.
  // kInvalidArgument (nothing applied) where CheckPooled fails.
  Status PushPooled(absl::Span<const uint64_t> keys, const PooledUses& uses, const float* pooled,
                    uint64_t num_pooled);

  // Advances the step clock by n and returns the new step.
  uint64_t AdvanceStep(uint64_t n = 1);
  uint64_t step() const { return step_.load(std::memory_order_acquire); }

  // Removes every expired row from memory and disk. Returns how many.
  StatusOr<uint64_t> ExpireStale();

  // Writes every resident row that has no up-to-date spill record, so the
  // spill store alone then holds the whole table (for checkpoints).
  // Requires a spill store (kFailedPrecondition otherwise).
  Status FlushAll();

  // Calls fn for every live row (memory, spill queue and disk) with its
  // weights and state (RowFloats() floats). Not a snapshot: run it while no
  // pushes are in flight. fn must not call into this store.
  Status ForEachRow(
      const std::function<void(uint64_t key, const float* row, const RowMeta& meta)>& fn);

  // Checkpoint state beside the rows: the keys seen but not yet admitted
  // and their counts (empty without admission).
  std::vector<std::pair<uint64_t, uint32_t>> AdmissionCounts() const;
  // Restores a checkpoint's state: sets the step clock and adds admission
  // counts (as far as the tracker's capacity allows: a key beyond it needs
  // more sightings, never fewer). Call before the store serves requests.
  void RestoreState(uint64_t step, absl::Span<const std::pair<uint64_t, uint32_t>> admission);

  // Writes rows of the given weights (keys[i]'s are weights[i*dim ..)) with
  // a fresh optimizer state, as a new row gets, straight to the spill store:
  // they load into memory on first access. Each is last seen at step() and
  // counted as updated (so its record is never taken for the initializer's).
  // For warm starts from a model folder, which keeps weights only.
  // REQUIRES: the store has not served a request yet and holds none of the
  // keys; no key is given twice. kFailedPrecondition without a spill store
  // or for a key already resident; kInvalidArgument for a size mismatch or a
  // weight that is not finite (naming the key).
  Status ImportRows(absl::Span<const uint64_t> keys, absl::Span<const float> weights);

  // Waits until every spill write handed to the background writer has
  // landed or failed (a failed one is retried by the next request to its
  // partition). Then no records are in flight: MemoryBytes() is within the
  // budget and rows_on_disk counts every landed record.
  void WaitForSpillWrites();

  StoreStats Stats() const;
  // Bytes of memory held by the in-memory tier (what the budget bounds).
  uint64_t MemoryBytes() const;

  uint32_t dim() const { return dim_; }
  uint32_t RowFloats() const { return row_floats_; }
  const std::string& table_name() const { return options_.table_name; }
  uint64_t table_id() const { return options_.table_id; }

 private:
  enum class Op { kPull, kPush };
  // Records a request read from the spill store (checked), by key; each is
  // taken by the first use of its key.
  using Fetched = absl::flat_hash_map<uint64_t, std::string>;

  explicit EmbeddingStore(EmbeddingStoreOptions options);
  Status Init();
  uint32_t PartitionOf(uint64_t key) const;
  // Where request row i is: base + (positions ? positions[i] : i) * dim.
  // A pooled push has `uses` and `pooled` instead of grads.
  struct Rows {
    float* out = nullptr;          // pull
    const float* grads = nullptr;  // push
    const uint32_t* positions = nullptr;
    const PooledUses* uses = nullptr;
    const float* pooled = nullptr;
    size_t Offset(size_t i, uint32_t dim) const {
      return static_cast<size_t>(positions != nullptr ? positions[i] : i) * dim;
    }
  };
  Status Serve(Op op, absl::Span<const uint64_t> keys, const Rows& rows);

  // Serves keys[idx[...]] of one partition under its lock, in three phases:
  // PinAndFetch (the only one that may fail: then nothing is applied), then
  // per key in order LocateOrAdmit and Apply. With a background writer,
  // what it evicts stays queued; the request's caller hands the queues of
  // every partition it served to the writer at once (SubmitSpillJobs).
  Status ServePartition(Partition& p, Op op, absl::Span<const uint64_t> keys,
                        absl::Span<const uint32_t> idx, const Rows& rows, uint64_t step);
  // Phase 1. REQUIRES p.mu. Starts the request's pins and pins the resident
  // rows of its keys (under a row limit, where rows are evicted: none of
  // them is evicted before it is served, see Partition::AdmitSlot); then one
  // MultiGet for the keys that are neither resident nor in the spill queue,
  // every record checked (kDataLoss naming the key) into `fetched`. Fails,
  // having changed no row, if the read fails or a record is corrupt.
  Status PinAndFetch(Partition& p, absl::Span<const uint64_t> keys,
                     absl::Span<const uint32_t> idx, Fetched* fetched);
  // Phase 2. REQUIRES p.mu. Finds key k's resident row or makes one: from
  // its newest record (spill queue, or `fetched`), else a new row (subject
  // to admission); may evict or expire other rows. Returns the slot, pinned,
  // for Apply; or kServed when nothing is left to do: the key was served
  // from its record without entering memory (the full partition did not
  // admit it), or admission answered the pull with the initial value or
  // dropped the push.
  // `seen`: the slot the index held for k when its row was prefetched (a
  // hint, checked; < 0: none).
  int64_t LocateOrAdmit(Partition& p, Op op, uint64_t k, float* out_row, const float* grad,
                        uint64_t now, Fetched* fetched, int64_t seen);
  // LocateOrAdmit for a key not resident: reloads its newest live record
  // (slot or kServed), or kNoRecord if it has none (an expired one is
  // deleted).
  int64_t Reload(Partition& p, Op op, uint64_t k, float* out_row, const float* grad, uint64_t now,
                 Fetched* fetched);
  // LocateOrAdmit for a key without a live row: admission, then a new row
  // (slot) or, if the partition does not admit it, a new record (kServed).
  int64_t CreateRow(Partition& p, Op op, uint64_t k, float* out_row, const float* grad,
                    uint64_t now);
  // Phase 3. REQUIRES p.mu. A pull copies resident row `s`'s weights to
  // out_row; a push applies the optimizer to it with `grad`. Marks the row
  // touched (and dirty if it changed).
  void Apply(Partition& p, Op op, uint32_t s, float* out_row, const float* grad, uint64_t now);

  // Turns the queued records of `parts` into write jobs and hands them to
  // writer_ as one task (one wake-up of the writer per request, not one per
  // partition); then waits while a partition has more than
  // max_spill_jobs_in_flight jobs in flight. Jobs of a partition are taken
  // and submitted under submit_mu_, so they reach the writer in the order
  // they were numbered (a newer record never lands before an older one).
  void SubmitSpillJobs(const std::vector<Partition*>& parts);

  // Serves a row that stays out of memory from its whole record (a pull
  // copies its weights to out_row, a push applies grad); returns whether the
  // record changed (then it must be written back).
  bool ServeRecord(Op op, float* out_row, const float* grad, uint64_t now,
                   std::string* record) const;
  // Turns a compact record (codec_) into a whole one; leaves a whole one.
  void ExpandRecord(uint64_t key, std::string* record) const;
  // The row (RowFloats() floats) of a valid record of `key`, whole or compact.
  void FillRow(uint64_t key, const std::string& record, float* row) const;
  // A new row's weights and optimizer state (RowFloats() floats), and its
  // whole record.
  void InitialRow(uint64_t key, float* row) const;
  std::string InitialRecord(uint64_t key, const RowMeta& meta) const;
  // Checks a record read from the spill store (kDataLoss naming key and
  // store if corrupt), then fills `meta` and, unless null, `row`.
  Status DecodeRow(uint64_t key, const std::string& value, float* row, RowMeta* meta) const;
  bool Expired(uint64_t last_seen, uint64_t now) const {
    return options_.expiry_steps > 0 && now > last_seen + options_.expiry_steps;
  }

  const EmbeddingStoreOptions options_;
  const uint32_t dim_;
  const uint32_t row_floats_;
  uint32_t max_rows_per_partition_ = 0;  // 0 = unlimited; constant after Init()
  // Records of this table's rows, with its initializer's fingerprint;
  // constant after Init().
  RowRecordCodec codec_{0, 0};
  std::vector<std::unique_ptr<Partition>> partitions_;
  // Background spill writes (see background_spill_writes); declared after
  // partitions_ so it finishes its jobs before they are destroyed.
  std::unique_ptr<SerialWorker> writer_;
  Mutex submit_mu_;  // held while taking and submitting jobs; before any partition's
  std::atomic<uint64_t> step_{0};
  std::atomic<uint64_t> pull_requests_{0}, push_requests_{0};
  std::atomic<uint32_t> next_start_{0};  // first partition of the next request
};

}  // namespace vrec::ps
