// StoreStats: what an EmbeddingStore reports about one table (sizes, traffic
// counters, hot keys), and request rates between two reports. Plain values:
// what the server's STATS reply and the benchmarks print.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ps/heavy_hitters.h"

namespace vrec::ps {

struct StoreStats {
  std::string table;
  int64_t timestamp_ns = 0;  // absl::GetCurrentTimeNanos() when taken
  uint64_t step = 0;
  // Sizes.
  uint64_t rows_in_memory = 0;
  uint64_t rows_on_disk = 0;        // rows with a spill record (some also resident)
  uint64_t rows_disk_only = 0;      // spilled and not resident
  uint64_t rows_pending_spill = 0;  // evicted, write not yet done
  uint64_t memory_bytes = 0;
  uint64_t memory_budget_bytes = 0;
  uint64_t max_rows_in_memory = 0;  // 0 = unlimited
  // Traffic (cumulative).
  uint64_t pull_requests = 0, push_requests = 0;
  uint64_t pull_keys = 0, push_keys = 0;
  uint64_t memory_hits = 0;               // accesses served from memory
  uint64_t disk_hits = 0;                 // accesses that reloaded a spilled row
  uint64_t rows_created = 0;              // admissions: rows created (first touch or F-th sighting)
  uint64_t admission_rejected_pulls = 0;  // pulls answered with the initial value
  uint64_t dropped_pushes = 0;            // pushes of keys not yet admitted
  uint64_t pending_admission_keys = 0;
  uint64_t evictions = 0;  // rows dropped from memory to make room
  // Accesses served from a record without the row entering memory (new rows
  // created straight into the spill queue included): the partition was
  // full and the row no more frequent than its victim.
  uint64_t memory_bypasses = 0;
  uint64_t spill_rows_written = 0, spill_bytes_written = 0, spill_keys_read = 0;
  uint64_t expiries = 0;
  uint64_t spill_write_failures = 0;  // spill write jobs that failed (left queued)
  std::vector<HeavyHitter> hot_keys;  // approximate, sampled (see options)

  double MemoryHitRate() const {
    const uint64_t n = memory_hits + disk_hits;
    return n == 0 ? 1.0 : static_cast<double>(memory_hits) / n;
  }
};

// Request rates between two Stats() of the same store.
struct StoreRates {
  double pull_requests_per_s = 0, push_requests_per_s = 0;
  double pull_keys_per_s = 0, push_keys_per_s = 0;
};
StoreRates RatesBetween(const StoreStats& before, const StoreStats& after);

}  // namespace vrec::ps
