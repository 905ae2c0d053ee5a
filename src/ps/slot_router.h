// Placement of parameters on parameter servers.
//
// A key of a sparse table hashes to one of a fixed number of *virtual slots*
// (Mix64(key ^ table salt) % num_slots); a slot belongs to exactly one server
// through the `slot_owner` table. Because the slot of a key never changes,
// state can move between different numbers of servers by moving whole slots:
// restoring a checkpoint onto 3 servers instead of 2 reassigns slots, never
// individual keys. Dense tables (tower weights) are cut into fixed-size blocks
// (DenseBlocks); block b is treated as key b of that table.
//
// Thread safety: SlotRouter and DenseBlocks are immutable after construction
// and safe to share between threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common/random.h"
#include "vrec/status.h"

namespace vrec::ps {

// Stable 64-bit id of a table name (FNV-1a then Mix64): the same on every
// machine and independent of the order of tables in the config.
uint64_t TableId(const std::string& table_name);

class SlotRouter {
 public:
  static constexpr uint32_t kDefaultNumSlots = 4096;

  // Contiguous ranges: server s owns slots [s*S/N, (s+1)*S/N).
  // kInvalidArgument unless 0 < num_servers <= num_slots.
  static StatusOr<SlotRouter> Contiguous(uint32_t num_servers,
                                         uint32_t num_slots = kDefaultNumSlots);

  // An explicit owner per slot. kInvalidArgument if `slot_owner` is empty,
  // any owner is >= num_servers, or some server owns no slot.
  static StatusOr<SlotRouter> FromOwners(uint32_t num_servers, std::vector<uint32_t> slot_owner);

  // Binary round trip (little-endian, versioned) for checkpoint manifests.
  std::string Serialize() const;
  // kDataLoss naming the byte offset for a truncated or inconsistent input.
  static StatusOr<SlotRouter> Deserialize(const std::string& bytes);

  uint32_t num_slots() const { return static_cast<uint32_t>(slot_owner_.size()); }
  uint32_t num_servers() const { return num_servers_; }
  const std::vector<uint32_t>& slot_owner() const { return slot_owner_; }

  // The virtual slot of `key` in the table with id `table_id`; a pure
  // function of (table_id, key, num_slots).
  uint32_t Slot(uint64_t table_id, uint64_t key) const {
    return static_cast<uint32_t>(SlotHash(table_id, key) % slot_owner_.size());
  }
  uint32_t Server(uint64_t table_id, uint64_t key) const {
    return slot_owner_[Slot(table_id, key)];
  }
  uint32_t ServerOfSlot(uint32_t slot) const { return slot_owner_[slot]; }

  // The well-mixed hash behind Slot(); also used to stripe keys over the
  // partitions of a store (different bits, see EmbeddingStore).
  static uint64_t SlotHash(uint64_t table_id, uint64_t key) { return Mix64(key ^ table_id); }

 private:
  SlotRouter(uint32_t num_servers, std::vector<uint32_t> slot_owner)
      : num_servers_(num_servers), slot_owner_(std::move(slot_owner)) {}

  uint32_t num_servers_;
  std::vector<uint32_t> slot_owner_;
};

// A dense vector of `size` floats cut into blocks of `block_floats` floats
// (the last block may be shorter; stores pad it to full width with zeros).
class DenseBlocks {
 public:
  // kInvalidArgument if size == 0 or block_floats == 0.
  static StatusOr<DenseBlocks> Create(uint64_t size, uint32_t block_floats);

  uint64_t size() const { return size_; }
  uint32_t block_floats() const { return block_floats_; }
  uint64_t num_blocks() const { return (size_ + block_floats_ - 1) / block_floats_; }
  // First element of block b and its number of real (unpadded) elements.
  uint64_t BlockBegin(uint64_t b) const { return b * block_floats_; }
  uint32_t BlockLength(uint64_t b) const {
    const uint64_t end = std::min<uint64_t>(size_, (b + 1) * block_floats_);
    return static_cast<uint32_t>(end - BlockBegin(b));
  }
  uint64_t BlockOf(uint64_t element) const { return element / block_floats_; }

 private:
  DenseBlocks(uint64_t size, uint32_t block_floats) : size_(size), block_floats_(block_floats) {}
  uint64_t size_;
  uint32_t block_floats_;
};

}  // namespace vrec::ps
