// The coordinator's view of training progress: the workers' newest reports,
// progress lines on stderr, and the metrics file (JSONL, one record per
// line: progress, evaluations, parameter-server stats), which
// scripts/plot_metrics.py draws.
//
// Resumed from a checkpoint, it carries on from the checkpoint's progress:
// examples, steps and time continue, and the metrics file keeps only the
// records up to the checkpoint before new ones are appended.
//
// Thread safety: used by one thread (the coordinator's).
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "net/transport.h"
#include "nlohmann/json.hpp"
#include "proto/checkpoint.pb.h"

namespace vrec::train {

struct ProgressTrackerOptions {
  double progress_seconds = 5;   // between progress lines
  std::string metrics_file;      // empty = no metrics file
  uint64_t target_examples = 0;  // for the percentage and ETA; 0 = unknown
  double max_seconds = 0;        // the job's time limit (ETA); 0 = none
};

class ProgressTracker {
 public:
  ProgressTracker(const ProgressTrackerOptions& options, int num_workers,
                  const CheckpointManifest* resumed = nullptr);
  const WorkerProgress& worker(int w) const { return workers_[w]; }
  const std::vector<WorkerProgress>& workers() const { return workers_; }
  // Takes a worker's newest report (its `paused` mark is not kept).
  void Update(const WorkerProgress& p);
  // Prints a line if progress_seconds have passed since the last (or if
  // `force`), and appends a metrics record.
  void MaybeReport(bool force = false);
  // Appends {"time_s", "examples", "eval": ...} to the metrics file.
  void RecordEval(const nlohmann::json& eval);
  // A metrics record {"time_s", "examples", "validation": validation}.
  void RecordValidation(const nlohmann::json& validation);
  // Appends {"time_s", "examples", "ps": [per server: [per table stats]]}.
  void RecordPsStats(const nlohmann::json& stats);
  bool AllDone() const;
  uint64_t examples() const;
  uint64_t steps() const;
  double seconds() const;  // of training, resumed runs included
  double RecentLoss() const { return recent_loss_; }

 private:
  // Appends {"time_s", "examples", key: value} to the metrics file.
  void Record(const char* key, const nlohmann::json& value);

  ProgressTrackerOptions options_;
  std::vector<WorkerProgress> workers_;
  std::chrono::steady_clock::time_point start_, last_;
  double seconds_before_ = 0;  // training time before the checkpoint resumed from
  uint64_t last_examples_ = 0, last_steps_ = 0;
  double last_loss_sum_ = 0;
  std::vector<uint64_t> last_worker_examples_;
  double recent_loss_ = 0;
  std::ofstream metrics_;
};

// Asks every server of `servers_at` for its table stats (ps::PsClient::Stats),
// logs one line per server (rows in memory and on disk, memory-hit rate,
// request rates since the previous call, hottest keys) and records them in
// the metrics file. *previous carries the last stats between calls. A
// failure is logged, not fatal.
void LogPsStats(const net::ServerSet& servers_at, ProgressTracker* tracker,
                nlohmann::json* previous);

}  // namespace vrec::train
