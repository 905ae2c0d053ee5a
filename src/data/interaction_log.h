// What a conversion's reading pass collects (csv_converter.h), whatever the
// input: the MovieLens CSV reader (csv_converter.cc) and the events-table
// reader (events_reader.h) turn every row into a LogEvent, handed to an
// EventSorter (event_sorter.h), and fill the log's tables (ids, users,
// items) below; the conversion then builds each user's examples
// (example_builder.h) from the user's events in time order.
//
// Thread safety: plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/id_key.h"

namespace vrec {

// One event of a log, packed: dense user and item indices, milliseconds
// since 1970 (ties keep the order the events were read in).
struct LogEvent {
  static constexpr uint16_t kNoPosition = 0xffff;
  enum Kind : uint8_t { kWatch = 0, kImpression = 1, kClick = 2, kSearch = 3 };

  uint32_t user = 0;
  // Dense item index; a search has none (its tokens travel beside it in the
  // sorter, `tokens` of them).
  uint32_t item = 0;
  int64_t time_ms = 0;
  float watch_seconds = 0;         // 0 = none given
  uint32_t device = 0;             // a key of the device's name (ContextKey); 0 unknown
  uint32_t region = 0;             // a key of the region's name; 0 unknown
  uint16_t position = kNoPosition;  // an impression's slot
  uint8_t kind = kWatch;
  uint8_t tokens = 0;  // a search's token count (at most 255)
};
static_assert(sizeof(LogEvent) == 32, "keep events packed");

// A context value's (device, region) 32-bit key: the low half of its IdKey,
// never 0 (0 means unknown).
inline uint32_t ContextKey(std::string_view name) {
  const uint32_t key = static_cast<uint32_t>(IdKey(name));
  return key == 0 ? 1 : key;
}

// The log's tables, by dense index.
struct InteractionLog {
  std::vector<uint64_t> user_ids;        // dense user index -> id (key)
  std::vector<uint64_t> item_ids;        // dense item index -> id (key)
  std::vector<uint32_t> item_topic;      // dense item index -> topic (0 = none)
  std::vector<std::string> topic_names;  // topic id - 1 -> its name (genre, channel)
  // Events tables: the team's ids of the keys above.
  std::optional<IdTable> user_names, item_names;
  // Users and items tables, by dense index (empty: no table).
  std::vector<float> user_age;           // scaled as CandidateExample.age; 0 unknown
  std::vector<float> user_gender;        // [0, 1], 0.5 unknown
  std::vector<uint32_t> user_region;     // ContextKey; 0 unknown
  std::vector<float> user_logged_in;     // 0 or 1
  std::vector<double> item_upload_time;  // days since 1970; NaN unknown
  std::vector<float> item_duration;      // seconds; 0 unknown
};

}  // namespace vrec
