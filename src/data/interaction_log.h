// What a conversion's reading pass collects (csv_converter.h), whatever the
// input: the MovieLens CSV reader (csv_converter.cc) and the events-table
// reader (events_reader.h) fill it; the conversion turns it into examples.
//
// Thread safety: plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/id_key.h"

namespace vrec {

// One watch, packed: dense user and item indices, unix seconds.
struct Interaction {
  uint32_t user;
  uint32_t item;
  int64_t timestamp;
};
static_assert(sizeof(Interaction) == 16, "keep interactions packed");

// One search: its tokens are search_tokens[begin, end).
struct SearchEvent {
  uint32_t user;
  int64_t timestamp;
  uint32_t begin, end;
};

struct InteractionLog {
  std::vector<Interaction> interactions;
  std::vector<uint64_t> user_ids;        // dense user index -> id (key)
  std::vector<uint64_t> item_ids;        // dense item index -> id (key)
  std::vector<uint32_t> item_topic;      // dense item index -> topic (0 = none)
  std::vector<std::string> topic_names;  // topic id - 1 -> its name (genre, channel)
  // Events tables: the team's ids of the keys above.
  std::optional<IdTable> user_names, item_names;
  // Events tables: searches (by user, any order) and their token keys.
  std::vector<SearchEvent> searches;
  std::vector<uint64_t> search_tokens;
  // Users and items tables, by dense index (empty: no table).
  std::vector<float> user_age;           // scaled as CandidateExample.age; 0 unknown
  std::vector<float> user_gender;        // [0, 1], 0.5 unknown
  std::vector<double> item_upload_time;  // days since 1970; NaN unknown
  std::vector<float> item_duration;      // seconds; 0 unknown
};

}  // namespace vrec
