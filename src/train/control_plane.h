// The control plane of a training job: how the coordinator reaches its
// workers and parameter servers, and how a worker hears from the
// coordinator. Parameters never travel here (that is the PS data plane,
// src/ps over src/net); only small messages do:
//
//   worker -> coordinator   WorkerProgress reports: about every second, a
//                           `paused` one when it stops for a checkpoint, and
//                           a last one marked `done` (with the error when it
//                           failed)
//   coordinator -> workers  pause, release (after a checkpoint), stop
//   coordinator -> servers  write your part of checkpoint DIR; save your rows
//                           into the model folder; (the launcher) shut down
//
// Two implementations: LocalControlPlane (every role in one process,
// workers on threads; local_control_plane.h) and the MPI one (a role per
// rank; mpi_control_plane.h). The Coordinator (coordinator.h) is written
// against ControlPlane only; tests drive it through a fake.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/checkpoint.pb.h"
#include "vrec/status.h"

namespace vrec::train {

// The coordinator's side. Thread safety: used by the coordinator's thread
// only.
class ControlPlane {
 public:
  virtual ~ControlPlane() = default;

  // The worker reports that arrived since the last call, in arrival order;
  // never blocks. After a worker's `done` report no other report of it follows.
  virtual std::vector<WorkerProgress> Poll() = 0;

  // Asks every worker that is not done to pause at its next step boundary.
  // Each answers with a `paused` report (or, if it was finishing, `done`)
  // and waits until Release().
  virtual void RequestPause() = 0;
  // Lets every paused worker go on; the pause request is withdrawn.
  virtual void Release() = 0;
  // Asks every worker to stop after its current step. Idempotent.
  virtual void StopWorkers() = 0;

  // Every server writes its part of the checkpoint in folder `dir`
  // (WriteServerCheckpoint); their states in server order. Called only
  // while no worker has a request in flight (all paused or done).
  virtual StatusOr<std::vector<ServerState>> CheckpointServers(const std::string& dir) = 0;
  // Every server saves its rows into model folder `dir` (SaveServerTables);
  // the rows saved by all of them.
  virtual StatusOr<uint64_t> SaveServers(const std::string& dir) = 0;
};

// A worker's side. Thread safety: used by the worker's thread only.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  // Sends a report (not `paused`); does not wait for the coordinator.
  virtual void Report(const WorkerProgress& progress) = 0;
  // Whether the coordinator asked for a pause (the worker then calls Paused
  // at its next step boundary).
  virtual bool PauseRequested() = 0;
  // Reports `progress` (marked paused) and blocks until released (the
  // coordinator releases every paused worker once all are paused or done,
  // whatever else happens, a stop or an error included).
  virtual void Paused(const WorkerProgress& progress) = 0;
  // Whether the coordinator asked this worker to stop.
  virtual bool StopRequested() = 0;
};

}  // namespace vrec::train
