// FrequencySketch: approximate access counts of many keys in little memory,
// for the memory tier's admission decisions (TinyLFU, Einziger, Friedman and
// Manes 2017).
//
// A count-min sketch of 4-bit saturating counters: each key has 4 counters
// in one 64-byte block (one cache line per access), incremented with
// conservative update (only the counters at the minimum grow); the estimate
// is their minimum, so it never undercounts an exact count below 15 before
// aging. After `10 x expected_keys` increments every counter is halved, so
// the sketch follows popularity as it drifts (a burst long ago fades).
// Admission only compares small counts, so 15 is enough (as in Caffeine).
//
// Sized at 16 counters (8 bytes) per expected key: expected_keys is the
// number of rows the memory tier holds, while the keys seen in one period
// can be ten times as many.
//
// Thread safety: thread-compatible; the store keeps one per partition under
// the partition's mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/huge_pages.h"

namespace vrec::ps {

class FrequencySketch {
 public:
  explicit FrequencySketch(uint64_t expected_keys);

  // Counts one access of `key`; returns the new estimate.
  uint32_t Increment(uint64_t key);
  // Estimated accesses of `key` (since aging: halved every period).
  uint32_t Estimate(uint64_t key) const;
  // Brings the key's block towards the cache (for pipelined lookups).
  void Prefetch(uint64_t key) const { __builtin_prefetch(Block(Hash(key))); }

  // Halvings so far (for tests and stats).
  uint64_t agings() const { return agings_; }
  // Bytes held, for memory accounting; BytesFor is the same before building.
  size_t MemoryBytes() const { return BytesFor(expected_keys_); }
  static size_t BytesFor(uint64_t expected_keys);

 private:
  static constexpr size_t kBlockBytes = 64;  // 128 counters
  static uint64_t BlocksFor(uint64_t expected_keys);
  static uint64_t Hash(uint64_t key);
  uint8_t* Block(uint64_t hash) const;
  void Age();

  const uint64_t expected_keys_;
  const uint64_t num_blocks_;  // power of two
  const uint64_t period_;      // increments between halvings
  uint64_t additions_ = 0;
  uint64_t agings_ = 0;
  HugeArray<uint8_t> counters_;
};

}  // namespace vrec::ps
