// The loop every worker runs, whatever its model: two batch slots, so that
// the next batch is read and its pulls issued before the current one is
// computed (the network overlaps the arithmetic; the next batch's rows are
// then one step stale, as in any asynchronous parameter server).
//
//   prepare(A); while A: prepare(B) unless stopping; compute(A); report;
//   swap(A, B)
//
// Stopping: the data ends (prepare returns false), max_seconds pass, or
// *stop becomes true; pushes in flight are waited for, and the last report
// is marked done. Bounded staleness (max_staleness >= 0): after each step
// the worker waits for its pushes, reports its step to server 0 and waits
// until no worker is more than max_staleness steps behind; a finished worker
// leaves the clock.
//
// Checkpoints: when pause_requested() says so at the top of a step, the
// worker computes the batch it has without reading the next one, waits for
// its pushes, and calls paused() with its progress and data position; no
// request of this worker is then in flight and the position is exactly
// after the last trained example. paused() blocks until training may go on
// (a worker with bounded staleness leaves the clock meanwhile and rejoins).
// Restore() puts a worker back at a checkpoint's progress; the caller seeks
// its example source to the checkpoint's position.
//
// Thread safety: a worker is used by one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "proto/checkpoint.pb.h"
#include "ps/ps_client.h"
#include "vrec/status.h"

namespace vrec::train {

// A worker's progress is the WorkerProgress proto (proto/checkpoint.proto):
// the worker holds it, reports it, and a checkpoint keeps it.

struct WorkerLoopOptions {
  double max_seconds = 0;  // 0 = no limit
  int64_t max_staleness = -1;
  double report_seconds = 1.0;
  // Checkpoints (see above); both unset = never pause.
  std::function<bool()> pause_requested;
  std::function<Status(const WorkerProgress&)> paused;
  // Diagnostics: a file to which each trained step appends a line
  // "<worker> <step> <example id> ..." (the exact-resume test counts them).
  std::string example_log;
};

class PipelinedWorker {
 public:
  virtual ~PipelinedWorker() = default;

  // Continues from a checkpoint: progress, and the examples read so far.
  void Restore(const WorkerProgress& progress);

 protected:
  // Reads the next batch into slot 0 or 1 and issues its pulls; false when
  // the data has nothing left.
  virtual StatusOr<bool> PrepareSlot(int slot) = 0;
  // Waits for the slot's pulls, trains, and queues its pushes in pushes_;
  // sets the batch's mean loss and size.
  virtual Status ComputeSlot(int slot, double* loss, int* examples) = 0;
  virtual SourcePosition Position() const = 0;
  // The example ids of the batch in `slot` (for options.example_log).
  virtual void ExampleIds(int slot, std::vector<uint64_t>* ids) const = 0;

  Status RunLoop(const WorkerLoopOptions& options, ps::PsClient* client,
                 const std::atomic<bool>* stop,
                 const std::function<void(const WorkerProgress&)>& report);
  // Waits for every queued push; the first error.
  Status WaitPushes();

  WorkerProgress progress_;
  std::vector<ps::PsRequest> pushes_;
  uint64_t examples_read_ = 0;     // including skipped ones
  uint64_t batches_prepared_ = 0;  // the index of the batch PrepareSlot reads next
};

}  // namespace vrec::train
