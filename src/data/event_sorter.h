// EventSorter groups a log's events by user, each user's in time order,
// within a memory budget: an external merge sort.
//
// Events are added in file order. While they fit in `memory_bytes` (32
// bytes an event, 8 a search token) they stay in memory; past it, the
// buffer is sorted and written to a run file in `spill_dir`, and the runs
// are merged at the end. Users come out in a seeded pseudo-random order
// (HashCombine(seed, user id), ties by dense index), so that they land in
// the output shuffled. A user's events come out
// by time, ties in the order they were added (across runs too).
//
// ForEachUser may be called several times (the conversion makes two
// passes); run files are removed when the sorter is destroyed.
//
// Thread safety: not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "data/interaction_log.h"
#include "vrec/status.h"

namespace vrec {

// One user's events, in time order. A search's tokens are
// tokens[e.item, e.item + e.tokens) (ForEachUser rewrites `item` so).
struct UserEvents {
  uint32_t user = 0;
  absl::Span<const LogEvent> events;
  absl::Span<const uint64_t> tokens;
};

class EventSorter {
 public:
  // `user_ids` (dense index -> id) must cover every user added so far.
  EventSorter(size_t memory_bytes, std::string spill_dir, const std::vector<uint64_t>* user_ids,
              uint64_t seed);
  ~EventSorter();
  EventSorter(const EventSorter&) = delete;
  EventSorter& operator=(const EventSorter&) = delete;

  // A search's tokens go with it (event.tokens must equal tokens.size()).
  Status Add(const LogEvent& event, absl::Span<const uint64_t> tokens = {});
  // After the last Add: sorts what is in memory.
  Status Finish();
  // Calls fn for each user, in output order. Stops at fn's first error.
  Status ForEachUser(const std::function<Status(const UserEvents&)>& fn);

  uint64_t events() const { return events_; }
  int64_t max_time_ms() const { return max_time_ms_; }  // of every event added
  int runs() const { return static_cast<int>(runs_.size()); }  // run files written
  uint64_t spilled_bytes() const { return spilled_bytes_; }

 private:
  struct Run;
  Status Spill();
  void SortBuffer();  // refreshes order_key_ first
  bool Before(const LogEvent& a, const LogEvent& b) const;

  const size_t memory_bytes_;
  const std::string spill_dir_;
  const std::vector<uint64_t>* user_ids_;
  const uint64_t seed_;
  std::vector<uint64_t> order_key_;  // dense user index -> place in the output
  std::vector<LogEvent> buffer_;
  std::vector<uint64_t> tokens_;  // of the buffer's searches; a search's `item` is its offset
  std::vector<std::string> runs_;
  uint64_t events_ = 0;
  int64_t max_time_ms_ = INT64_MIN;
  uint64_t spilled_bytes_ = 0;
  bool finished_ = false;
};

}  // namespace vrec
