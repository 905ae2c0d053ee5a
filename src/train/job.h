// A training job with every role in this process: parameter servers on
// loopback (or inproc) endpoints, workers on threads, the Coordinator on
// the calling thread, over a LocalControlPlane. Under mpirun, TrainMpi
// (mpi_job.h) runs the same roles one per rank. Roles: job_roles.h;
// what the coordinator does: coordinator.h; docs/training.md.
//
// Stopping: at max_examples (all workers together), after `epochs`, after
// max_seconds, or when *stop becomes true (SIGINT/SIGTERM): workers finish
// their step, the servers save their rows into model_dir, and the
// coordinator writes model.pb. Training without model_dir saves nothing.
//
// Thread safety: one job per process at a time.
#pragma once

#include <atomic>

#include "nlohmann/json.hpp"
#include "train/train_options.h"
#include "vrec/status.h"

namespace vrec::train {

// Runs the whole job in this process. The last stdout line of `vrec train`
// is the returned JSON summary.
StatusOr<nlohmann::json> TrainLocal(const TrainOptions& options, const std::atomic<bool>* stop);

}  // namespace vrec::train
