// The training job under mpirun: one role per rank, MPI for the control
// plane, ZeroMQ for parameters (docs/training.md).
//
//   rank 0            coordinator (progress, evaluation, stop, model.pb)
//   ranks 1 .. S      parameter servers (S = options.server.servers)
//   ranks S+1 .. N-1  workers (at least one: N >= S + 2)
//
// Control messages (all small; mpi_control_plane.h has the tags):
//   servers -> all     their ZeroMQ endpoints (MPI_Allgather)
//   rank 0 -> workers  what it computed from the data: the ranking features'
//                      or the example age's quantiles and the corpus's label
//                      counts (MPI_Bcast on the rank-0+workers communicator,
//                      so servers need not read the data)
//   workers -> rank 0  WorkerProgress reports about every second, a paused
//                      one at a checkpoint, the last one marked done (with
//                      the error when the worker failed)
//   rank 0 -> workers  pause, release, stop
//   rank 0 -> servers  "checkpoint into DIR", "save into DIR", "shut down"
// The Coordinator runs on rank 0 over an MpiControlPlane.
// A rank that fails reports it and the job ends with a non-zero exit on
// rank 0; SIGINT/SIGTERM (mpirun forwards them) stop it cleanly, model saved.
//
// Thread safety: call once per process, from the main thread.
#pragma once

#include <atomic>

#include "nlohmann/json.hpp"
#include "train/train_options.h"
#include "vrec/status.h"

namespace vrec::train {

// True when this process was started by mpirun/mpiexec (Open MPI's or a
// PMI-based launcher's environment is present).
bool LaunchedByMpirun();

// Runs this rank's role. Initializes and finalizes MPI. Returns the job
// summary on rank 0 and a null JSON on the others.
StatusOr<nlohmann::json> TrainMpi(const TrainOptions& options, const std::atomic<bool>* stop);

}  // namespace vrec::train
