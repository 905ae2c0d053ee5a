// The control plane of a job under mpirun (TrainMpi): MPI point-to-point
// messages between rank 0 (the coordinator), ranks 1..S (the parameter
// servers) and ranks S+1..N-1 (the workers), on MPI_COMM_WORLD.
//
//   worker -> 0        kProgress: a serialized WorkerProgress (reports,
//                      paused ones, the last one marked done)
//   0 -> worker        kPause, kRelease, kStop (no payload)
//   0 -> server        kCommand (int: checkpoint, save, shutdown), then for
//                      checkpoint and save the folder (text, kPath)
//   server -> 0        kAck (int64: rows written, or -1 after a kError text)
//
// Every call is made from the rank's main thread (MPI_THREAD_FUNNELED).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ps/server_storage.h"
#include "train/control_plane.h"

namespace vrec::train {

// Rank 0's side.
class MpiControlPlane : public ControlPlane {
 public:
  MpiControlPlane(int num_servers, int num_workers);

  std::vector<WorkerProgress> Poll() override;
  void RequestPause() override;
  void Release() override;
  void StopWorkers() override;
  StatusOr<std::vector<ServerState>> CheckpointServers(const std::string& dir) override;
  StatusOr<uint64_t> SaveServers(const std::string& dir) override;

  // Ends every server's ServeCommands loop.
  void ShutdownServers();
  // While waiting for the servers' acks: why a rank is lost (OK while none
  // is), so a checkpoint or save never waits for a server that is gone.
  void set_peers_lost(std::function<Status()> lost) { peers_lost_ = std::move(lost); }

 private:
  // Sends `command` (and `dir`) to every server and gathers their acks.
  StatusOr<std::vector<uint64_t>> CommandServers(int command, const std::string& dir);
  int WorkerRank(int w) const { return 1 + num_servers_ + w; }

  const int num_servers_, num_workers_;
  std::vector<bool> done_, paused_;
  bool stop_sent_ = false;
  std::function<Status()> peers_lost_;
};

// A worker rank's side.
class MpiWorkerChannel : public WorkerChannel {
 public:
  void Report(const WorkerProgress& progress) override;
  bool PauseRequested() override;
  void Paused(const WorkerProgress& progress) override;
  bool StopRequested() override;
  // After the worker's last report and a barrier with rank 0 (so nothing
  // more is on its way): receives the stop and pause messages that reached
  // this rank after it finished.
  void DrainStrayMessages();

 private:
  bool stop_ = false;
};

// A server rank's side: serves rank 0's commands on `storage` (server
// `index`) until told to shut down.
void ServeCommands(ps::ServerStorage* storage, int index);

}  // namespace vrec::train
