#include "ps/frequency_sketch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/random.h"

namespace vrec::ps {
namespace {

constexpr int kCounters = 4;  // per key

constexpr uint32_t kMax = 15;  // 4-bit counters

// The 4 counter positions (0..127) of a key inside its block: 5-bit fields
// of the hash's high half, one per quarter of the block so they never
// coincide.
void Positions(uint64_t h, int pos[kCounters]) {
  for (int i = 0; i < kCounters; ++i) pos[i] = i * 32 + static_cast<int>((h >> (8 * i + 32)) & 31);
}

uint32_t Get(const uint8_t* block, int pos) { return (block[pos >> 1] >> ((pos & 1) * 4)) & 15; }
void Bump(uint8_t* block, int pos) {
  block[pos >> 1] += static_cast<uint8_t>(1 << ((pos & 1) * 4));
}

}  // namespace

uint64_t FrequencySketch::BlocksFor(uint64_t expected_keys) {
  // 16 counters (8 bytes) per expected key, rounded up to a power of two.
  const uint64_t want = std::max<uint64_t>(1, (expected_keys * 8 + kBlockBytes - 1) / kBlockBytes);
  uint64_t blocks = 1;
  while (blocks < want) blocks <<= 1;
  return blocks;
}

size_t FrequencySketch::BytesFor(uint64_t expected_keys) {
  return BlocksFor(expected_keys) * kBlockBytes;
}

FrequencySketch::FrequencySketch(uint64_t expected_keys)
    : expected_keys_(std::max<uint64_t>(1, expected_keys)),
      num_blocks_(BlocksFor(expected_keys_)),
      period_(10 * expected_keys_),
      // Blocks are 64-byte aligned (one cache line); the table is probed at
      // random, so on huge pages where it is large enough.
      counters_(AllocateHugeArray<uint8_t>(num_blocks_ * kBlockBytes)) {
  std::memset(counters_.get(), 0, num_blocks_ * kBlockBytes);
}

uint64_t FrequencySketch::Hash(uint64_t key) { return Mix64(key ^ 0x9e3779b97f4a7c15ULL); }

uint8_t* FrequencySketch::Block(uint64_t hash) const {
  return counters_.get() + (hash & (num_blocks_ - 1)) * kBlockBytes;
}

uint32_t FrequencySketch::Estimate(uint64_t key) const {
  const uint64_t h = Hash(key);
  const uint8_t* b = Block(h);
  int pos[kCounters];
  Positions(h, pos);
  uint32_t m = kMax;
  for (int p : pos) m = std::min(m, Get(b, p));
  return m;
}

uint32_t FrequencySketch::Increment(uint64_t key) {
  const uint64_t h = Hash(key);
  uint8_t* b = Block(h);
  int pos[kCounters];
  Positions(h, pos);
  uint32_t m = kMax;
  for (int p : pos) m = std::min(m, Get(b, p));
  if (m < kMax) {
    for (int p : pos) {
      if (Get(b, p) == m) Bump(b, p);  // conservative update
    }
    ++m;
  }
  if (++additions_ >= period_) Age();
  return m;
}

void FrequencySketch::Age() {
  uint8_t* c = counters_.get();
  for (uint64_t i = 0; i < num_blocks_ * kBlockBytes; ++i) c[i] = (c[i] >> 1) & 0x77;
  additions_ /= 2;
  ++agings_;
}

}  // namespace vrec::ps
