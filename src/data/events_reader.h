// Reads a team's own log tables (docs/data_format.md) into an
// InteractionLog for the conversion (csv_converter.h):
//
//   - the events table (options.events_path): every row an event (watch,
//     impression, click, search: a search's query becomes tokens by
//     QueryTokens, keyed by IdKey), with its watch time, position, device
//     and region (ContextKey);
//   - the users table (options.users_path, optional): age (years, scaled as
//     CandidateExample.age), gender, region and logged_in of the users the
//     events name;
//   - the items table (options.items_path, optional): topic (or channel),
//     upload time and duration of the items the events name.
//
// String ids become keys (IdKey); the log keeps the ids. Users and items
// the events never name are counted and ignored. A bad row is an error
// "FILE:LINE: reason", or counted and skipped (options.skip_bad_rows).
//
// Thread safety: free functions; ReadPass is one pass's bookkeeping.
#pragma once

#include <chrono>
#include <cstdint>

#include "data/csv_converter.h"
#include "data/event_sorter.h"
#include "data/interaction_log.h"
#include "vrec/status.h"

namespace vrec {

// Every event goes to *sorter (LogEvent); the tables to *log.
Status ReadEventsLog(const ConvertOptions& options, InteractionLog* log, ConvertSummary* summary,
                     EventSorter* sorter);

// The bookkeeping of a reading pass, shared by the log readers.
class ReadPass {
 public:
  ReadPass(const ConvertOptions& options, ConvertSummary* summary);
  // A bad row: `status` itself, or OK when bad rows are skipped (counted,
  // the first few kept for the summary).
  Status BadRow(const Status& status);
  // Counts a data row; calls options.on_progress now and then.
  void Row(uint64_t file_position, uint64_t file_size);

 private:
  const ConvertOptions& options_;
  ConvertSummary* summary_;
  std::chrono::steady_clock::time_point start_, last_progress_;
};

}  // namespace vrec
