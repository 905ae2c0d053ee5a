#include "train/local_control_plane.h"

#include <utility>

#include "models/checkpoint.h"
#include "models/saved_model.h"

namespace vrec::train {

class LocalControlPlane::Channel : public WorkerChannel {
 public:
  explicit Channel(LocalControlPlane* plane) : plane_(plane) {}

  void Report(const WorkerProgress& progress) override {
    std::lock_guard<std::mutex> lock(plane_->mu_);
    plane_->reports_.push_back(progress);
  }

  bool PauseRequested() override {
    return plane_->pause_requested_.load(std::memory_order_relaxed);
  }

  void Paused(const WorkerProgress& progress) override {
    std::unique_lock<std::mutex> lock(plane_->mu_);
    plane_->reports_.push_back(progress);
    plane_->reports_.back().set_paused(true);
    // The coordinator releases only once every worker is paused or done, so
    // this pause is the one it is waiting for.
    const uint64_t generation = plane_->generation_;
    plane_->released_.wait(lock, [&] { return plane_->generation_ != generation; });
  }

  bool StopRequested() override { return plane_->stop_.load(std::memory_order_relaxed); }

 private:
  LocalControlPlane* const plane_;
};

LocalControlPlane::LocalControlPlane(int num_workers, std::vector<ps::ServerStorage*> servers)
    : servers_(std::move(servers)) {
  for (int w = 0; w < num_workers; ++w) channels_.push_back(std::make_unique<Channel>(this));
}

LocalControlPlane::~LocalControlPlane() = default;

WorkerChannel* LocalControlPlane::channel(int worker) { return channels_[worker].get(); }

std::vector<WorkerProgress> LocalControlPlane::Poll() {
  std::vector<WorkerProgress> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(reports_);
  return out;
}

void LocalControlPlane::RequestPause() { pause_requested_ = true; }

void LocalControlPlane::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  pause_requested_ = false;
  ++generation_;
  released_.notify_all();
}

void LocalControlPlane::StopWorkers() { stop_ = true; }

StatusOr<std::vector<ServerState>> LocalControlPlane::CheckpointServers(const std::string& dir) {
  std::vector<ServerState> states;
  for (size_t s = 0; s < servers_.size(); ++s) {
    VREC_ASSIGN_OR_RETURN(ServerState st,
                          models::WriteServerCheckpoint(servers_[s], dir, static_cast<int>(s)));
    states.push_back(std::move(st));
  }
  return states;
}

StatusOr<uint64_t> LocalControlPlane::SaveServers(const std::string& dir) {
  uint64_t rows = 0;
  for (size_t s = 0; s < servers_.size(); ++s) {
    VREC_ASSIGN_OR_RETURN(uint64_t r,
                          models::SaveServerTables(*servers_[s], dir, static_cast<int>(s)));
    rows += r;
  }
  return rows;
}

}  // namespace vrec::train
