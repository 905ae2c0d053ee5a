// The loop every worker runs, whatever its model: two batch slots, so that
// the next batch can be read, and its pulls issued, before the current one
// is computed (the network overlaps the arithmetic) -- as far as the
// consistency model allows.
//
//   read(A); pull(A)
//   while A: if the next pulls may go now: read(B), pull(B)
//            compute(A); report
//            otherwise: wait until they may; read(B), pull(B)
//            swap(A, B)
//
// Consistency (WorkerLoopOptions::max_staleness = s; docs/training.md).
// Steps count from 1; a worker has finished step t once the servers have
// acknowledged (applied) its pushes of steps <= t.
//   s < 0  asynchronous: the next batch's pulls always go out before the
//          current step computes, so they miss its pushes (and perhaps the
//          previous step's, still in flight) and any other worker's.
//   s >= 0 bounded staleness: the pulls of step t go out only once every
//          worker, this one included, has finished step t - 1 - s
//          (StepToSee, MayPull), so they see all those pushes; s = 0 is
//          synchronous (step t reads every worker's step t - 1). They
//          overlap the previous step only when server 0's clock allows that
//          before it computes (never for s = 0: the next batch is then read
//          and pulled after this step's pushes are acknowledged and every
//          other worker has finished it).
// The worker reports its finished step to server 0's clock whenever it looks
// at it. A worker that stops leaves the clock (its pushes are all applied),
// so the others do not wait for it; a paused one keeps its place, and a
// worker that waits for it pauses too when asked.
//
// Stopping: the data ends (read returns false), max_seconds pass, or *stop
// becomes true; pushes in flight are waited for, and the last report is
// marked done.
//
// Checkpoints: when pause_requested() says so at the top of a step (or
// while the worker waits for the clock), the worker computes the batch it
// has without reading the next one, waits for its pushes, and calls
// paused() with its progress and data position; no request of this worker
// is then in flight and the position is exactly after the last trained
// example. paused() blocks until training may go on. Restore() puts a
// worker back at a checkpoint's progress; the caller seeks its example
// source to the checkpoint's position.
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

// The consistency model's rule. With staleness bound `max_staleness` >= 0,
// the pulls of step `step` (from 1) must see the pushes of steps <= the
// returned one by every worker (0: none yet).
uint64_t StepToSee(uint64_t step, int64_t max_staleness);

// Whether the pulls of step `step` may be sent when this worker has finished
// `own_finished` steps and the slowest worker (server 0's clock, which this
// worker's report joined) `slowest_finished`. Always true when asynchronous
// (max_staleness < 0).
bool MayPull(uint64_t step, int64_t max_staleness, uint64_t own_finished,
             uint64_t slowest_finished);

// A worker's progress is the WorkerProgress proto (proto/checkpoint.proto):
// the worker holds it, reports it, and a checkpoint keeps it.

struct WorkerLoopOptions {
  double max_seconds = 0;      // 0 = no limit
  int64_t max_staleness = -1;  // steps; -1 = asynchronous (see above)
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
  // Reads the next batch into slot 0 or 1 (no parameter traffic); false
  // when the data has nothing left.
  virtual StatusOr<bool> ReadSlot(int slot) = 0;
  // Issues the pulls of the batch ReadSlot put in `slot` (asynchronous).
  virtual void PullSlot(int slot) = 0;
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
  uint64_t examples_read_ = 0;  // including skipped ones
  uint64_t batches_read_ = 0;   // the index of the batch ReadSlot reads next
};

}  // namespace vrec::train
