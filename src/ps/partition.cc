#include "ps/partition.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace vrec::ps {
namespace {

// Bytes per slot of an absl::flat_hash_map: the slot plus one control byte.
template <typename Map>
uint64_t MapBytes(const Map& m) {
  return m.capacity() == 0 ? 0 : m.capacity() * (sizeof(typename Map::value_type) + 1) + 16;
}

// Entries are reserved at 32/25 of the most they will hold: then
// erase+insert cycles rehash in place and the map never grows past that.
uint64_t ReserveFor(uint64_t entries) { return entries * 32 / 25 + 1; }

}  // namespace

PartitionLayout PartitionLayout::For(uint32_t row_floats, uint32_t max_rows,
                                     uint64_t expiry_steps) {
  PartitionLayout l;
  l.row_floats = row_floats;
  l.max_rows = max_rows;
  l.expiry_steps = expiry_steps;
  const uint64_t row_bytes = uint64_t{row_floats} * sizeof(float);
  l.small_chunk_rows = static_cast<uint32_t>(std::clamp<uint64_t>((16 << 10) / row_bytes, 1, 256));
  // Rounded up: a chunk of at least 2 MiB whatever the row size (Adam's
  // 193-float rows would otherwise give chunks just short of a huge page).
  l.big_chunk_rows =
      static_cast<uint32_t>(std::max<uint64_t>(1, (kHugePageBytes + row_bytes - 1) / row_bytes));
  return l;
}

uint32_t PartitionLayout::ChunksFor(uint32_t rows) const {
  const uint32_t small_slots = small_chunk_rows * kSmallChunks;
  if (rows <= small_slots) return (rows + small_chunk_rows - 1) / small_chunk_rows;
  return kSmallChunks + (rows - small_slots + big_chunk_rows - 1) / big_chunk_rows;
}

uint64_t PartitionFixedBytes(uint32_t hot_key_capacity, uint64_t admission_keys) {
  absl::flat_hash_map<uint64_t, uint32_t> probe_admission;
  if (admission_keys > 0) probe_admission.reserve(ReserveFor(admission_keys));
  // The object, the tracker, the sketch's pointer and object (its table is
  // per row), the hot-key counters (reserved in their constructor).
  return sizeof(Partition) + MapBytes(probe_admission) + sizeof(void*) + sizeof(FrequencySketch) +
         SpaceSaving(hot_key_capacity).MemoryBytes();
}

uint64_t PartitionRowBytes(uint32_t row_floats) {
  // Row arena + slot metadata (key, last seen, updates, flags, pin) + free
  // list + chunk pointer (amortized upper bound).
  return uint64_t{row_floats} * sizeof(float) + 8 + 8 + 4 + 1 + 1 + 4 + sizeof(void*);
}

uint32_t RowsPerPartition(uint64_t budget_bytes, uint32_t num_partitions, uint32_t row_floats,
                          uint64_t fixed_bytes) {
  if (num_partitions == 0) return 0;
  const uint64_t per_part = budget_bytes / num_partitions;
  const uint64_t per_row = PartitionRowBytes(row_floats);
  // A first guess at ~62 bytes a row for the index and the sketch, then down
  // in steps of 1/32 until the exact sizes fit.
  uint64_t m = per_part > fixed_bytes ? (per_part - fixed_bytes) / (per_row + 62) : 0;
  m = std::min<uint64_t>(m, UINT32_MAX - 1);
  Partition::RowIndex probe;
  while (m > 0) {
    Partition::RowIndex().swap(probe);
    probe.reserve(ReserveFor(m));
    if (fixed_bytes + m * per_row + MapBytes(probe) + FrequencySketch::BytesFor(m) <= per_part) {
      break;
    }
    m -= std::max<uint64_t>(1, m / 32);
  }
  return static_cast<uint32_t>(m);
}

Partition::Partition(PartitionOptions options)
    : hot(options.hot_key_capacity), options_(std::move(options)) {
  MutexLock lock(&mu);
  const uint32_t m = options_.layout.max_rows;
  if (m == 0) return;
  index.reserve(ReserveFor(m));
  if (options_.admission) admission.reserve(ReserveFor(options_.admission_capacity));
  slot_key.reserve(m);
  slot_last_seen.reserve(m);
  slot_updates.reserve(m);
  slot_flags.reserve(m);
  slot_pin.reserve(m);
  free_slots.reserve(m);
  chunks.reserve(options_.layout.ChunksFor(m));
  freq = std::make_unique<FrequencySketch>(m);
}

int64_t Partition::AdmitSlot(uint64_t candidate, uint64_t now) {
  if (!free_slots.empty()) {
    const uint32_t s = free_slots.back();
    free_slots.pop_back();
    return s;
  }
  const PartitionLayout& l = options_.layout;
  const uint32_t max_rows = l.max_rows;
  if (max_rows == 0 || num_slots < max_rows) {
    const uint32_t small_slots = l.small_chunk_rows * PartitionLayout::kSmallChunks;
    const bool small = num_slots < small_slots;
    const uint32_t chunk_rows = small ? l.small_chunk_rows : l.big_chunk_rows;
    if ((small ? num_slots : num_slots - small_slots) % chunk_rows == 0) {
      uint32_t rows = chunk_rows;
      if (max_rows != 0) rows = std::min(rows, max_rows - num_slots);
      const size_t floats = static_cast<size_t>(rows) * l.row_floats;
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
    if (l.Expired(slot_last_seen[s], now)) {
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

void Partition::Evict(uint32_t s) {
  const uint64_t key = slot_key[s];
  const uint8_t f = slot_flags[s];
  if ((f & kDirty) || !(f & kOnDisk)) {
    Queue(key,
          options_.codec.Encode(Row(s), {slot_last_seen[s], slot_updates[s]}, /*compact=*/true),
          (f & kOnDisk) != 0);
  }
  if (f & kOnDisk) --resident_on_disk;
  index.erase(key);
  slot_flags[s] = 0;
  ++c.evictions;
}

void Partition::Queue(uint64_t key, std::string record, bool on_disk) {
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

void Partition::QueueDelete(uint64_t key) {
  if (auto q = pending_puts.find(key); q != pending_puts.end()) {
    pending_bytes -= q->second.value.size();
    pending_puts.erase(q);
  }
  pending_deletes.try_emplace(key, 0);
}

void Partition::Remove(uint32_t s) {
  const uint64_t key = slot_key[s];
  if (slot_flags[s] & kOnDisk) {
    QueueDelete(key);
    --resident_on_disk;
  }
  index.erase(key);
  slot_flags[s] = 0;
  ++c.expiries;
}

std::shared_ptr<SpillJob> Partition::TakeJob() {
  auto job = std::make_shared<SpillJob>();
  job->gen = ++next_gen;
  const uint64_t table_id = options_.table_id;
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

void Partition::Landed(const SpillJob& job) {
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

Status Partition::WriteJob(const SpillJob& job) {
  Status s = options_.spill->Write(job.batch);
  if (!s.ok()) return SpillWriteError(job, s);
  Landed(job);
  return absl::OkStatus();
}

Status Partition::SpillWriteError(const SpillJob& job, const Status& s) const {
  return Status(s.code(),
                absl::StrCat("table ", options_.table_name, ": spilling ", job.put_keys.size(),
                             " rows to ", options_.spill->Describe(), ": ", s.message()));
}

void Partition::WriteInBackground(std::shared_ptr<SpillJob> job) {
  {
    MutexLock lock(&mu);
    if (write_failed) {  // an earlier job failed: this one waits behind it
      failed_jobs.push_back(std::move(job));
      return;
    }
  }
  // No lock while writing: requests go on meanwhile. Nothing else writes
  // this partition's records now (jobs run one at a time, in order, and a
  // request writes only failed jobs, or after WaitForJobs).
  const Status s = options_.spill->Write(job->batch);
  MutexLock lock(&mu);
  if (s.ok()) {
    Landed(*job);
  } else {
    LOG(WARNING) << SpillWriteError(*job, s).message() << " (retried by the next request)";
    ++c.spill_write_failures;
    write_failed = true;
    failed_jobs.push_back(std::move(job));
  }
}

Status Partition::RetryFailedJobs() {
  while (!failed_jobs.empty()) {
    VREC_RETURN_IF_ERROR(WriteJob(*failed_jobs.front()));
    failed_jobs.pop_front();
  }
  write_failed = false;
  return absl::OkStatus();
}

Status Partition::Flush() {
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

void Partition::WaitForJobs() {
  mu.Await(absl::Condition(
      +[](Partition* p)
           ABSL_NO_THREAD_SAFETY_ANALYSIS { return p->jobs_in_flight == p->failed_jobs.size(); },
      this));
}

void Partition::WaitForJobRoom() {
  mu.Await(absl::Condition(
      +[](Partition* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return p->jobs_in_flight <= p->options_.max_spill_jobs_in_flight || p->write_failed;
      },
      this));
}

uint32_t Partition::CountSighting(uint64_t key) {
  auto it = admission.find(key);
  if (it == admission.end()) {
    while (admission.size() >= options_.admission_capacity) {
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

uint64_t Partition::ExpireResident(uint64_t now) {
  const uint64_t before = c.expiries;
  for (uint32_t s = 0; s < num_slots; ++s) {
    if ((slot_flags[s] & kUsed) && options_.layout.Expired(slot_last_seen[s], now)) {
      Remove(s);
      FreeSlot(s);
    }
  }
  for (auto it = pending_puts.begin(); it != pending_puts.end();) {
    RowMeta meta;
    if (ParseRowMeta(it->second.value, &meta) &&
        options_.layout.Expired(meta.last_seen_step, now)) {
      if (it->second.was_on_disk) pending_deletes.try_emplace(it->first, 0);
      pending_bytes -= it->second.value.size();
      ++c.expiries;
      pending_puts.erase(it++);
    } else {
      ++it;
    }
  }
  return c.expiries - before;
}

Status Partition::WriteResident() {
  SpillBatch batch;
  std::vector<uint32_t> written;
  uint64_t new_records = 0, bytes = 0;
  for (uint32_t s = 0; s < num_slots; ++s) {
    const uint8_t f = slot_flags[s];
    if (!(f & kUsed) || ((f & kOnDisk) && !(f & kDirty))) continue;
    batch.puts.emplace_back(
        SpillKey(options_.table_id, slot_key[s]),
        options_.codec.Encode(Row(s), {slot_last_seen[s], slot_updates[s]}, /*compact=*/true));
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
    if (!(slot_flags[s] & kOnDisk)) ++resident_on_disk;
    slot_flags[s] = (slot_flags[s] | kOnDisk) & ~kDirty;
  }
  disk_rows += new_records;
  c.spill_rows_written += written.size();
  c.spill_bytes_written += bytes;
  return absl::OkStatus();
}

void Partition::AddStats(StoreStats* st, std::vector<HeavyHitter>* hot_keys) const {
  st->rows_in_memory += index.size();
  st->rows_on_disk += disk_rows;
  // A row reloaded from a record still in flight counts as on disk before
  // its record lands.
  st->rows_disk_only += disk_rows - std::min(disk_rows, resident_on_disk);
  st->rows_pending_spill += pending_puts.size();
  st->memory_bytes += MemoryBytes();
  st->pull_keys += c.pull_keys;
  st->push_keys += c.push_keys;
  st->memory_hits += c.memory_hits;
  st->disk_hits += c.disk_hits;
  st->rows_created += c.rows_created;
  st->admission_rejected_pulls += c.admission_rejected_pulls;
  st->dropped_pushes += c.dropped_pushes;
  st->pending_admission_keys += admission.size();
  st->evictions += c.evictions;
  st->spill_rows_written += c.spill_rows_written;
  st->spill_bytes_written += c.spill_bytes_written;
  st->spill_keys_read += c.spill_keys_read;
  st->expiries += c.expiries;
  st->spill_write_failures += c.spill_write_failures;
  st->memory_bypasses += c.bypasses;
  for (const HeavyHitter& h : hot.Top(hot.capacity())) hot_keys->push_back(h);
}

uint64_t Partition::MemoryBytes() const {
  return sizeof(Partition) + arena_floats * sizeof(float) + chunks.capacity() * sizeof(void*) +
         slot_key.capacity() * sizeof(uint64_t) + slot_last_seen.capacity() * sizeof(uint64_t) +
         slot_updates.capacity() * sizeof(uint32_t) + slot_flags.capacity() + slot_pin.capacity() +
         free_slots.capacity() * sizeof(uint32_t) + MapBytes(index) + MapBytes(admission) +
         pending_bytes + MapBytes(pending_puts) + MapBytes(pending_deletes) + in_flight_bytes +
         hot.MemoryBytes() + (freq ? sizeof(FrequencySketch) + freq->MemoryBytes() : 0);
}

}  // namespace vrec::ps
