// The control plane of a job whose roles all run in this process
// (TrainLocal): workers on threads, each with its WorkerChannel; the
// servers' storage called directly for checkpoints and saves.
//
// Thread safety: the ControlPlane methods are called by the coordinator's
// thread, each channel by its worker's thread; they meet under one mutex.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "ps/server_storage.h"
#include "train/control_plane.h"

namespace vrec::train {

class LocalControlPlane : public ControlPlane {
 public:
  // `servers`: the job's servers' storage, in server order (not owned).
  LocalControlPlane(int num_workers, std::vector<ps::ServerStorage*> servers);
  ~LocalControlPlane() override;

  // Worker w's side; valid as long as the plane.
  WorkerChannel* channel(int worker);

  std::vector<WorkerProgress> Poll() override;
  void RequestPause() override;
  void Release() override;
  void StopWorkers() override;
  StatusOr<std::vector<ServerState>> CheckpointServers(const std::string& dir) override;
  StatusOr<uint64_t> SaveServers(const std::string& dir) override;

 private:
  class Channel;

  const std::vector<ps::ServerStorage*> servers_;
  std::vector<std::unique_ptr<Channel>> channels_;
  std::atomic<bool> pause_requested_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable released_;
  std::vector<WorkerProgress> reports_;  // guarded by mu_
  uint64_t generation_ = 0;              // guarded by mu_; +1 at every Release
};

}  // namespace vrec::train
