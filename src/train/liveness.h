// Liveness of a job's ranks under mpirun (docs/operations.md, "When a rank
// fails"): a rank that is dead or frozen is found within --failure_timeout
// seconds, at any point of the job, checkpoint and save included.
//
// Every rank answers pings on a small ZeroMQ endpoint of its own
// (LivenessEndpoint; CURVE with the job's keys) from threads of their own,
// so a rank busy with a long evaluation or checkpoint still answers while a
// frozen process (SIGSTOP, a machine gone) does not. Rank 0 watches every
// other rank; every other rank watches rank 0 (LivenessWatch): each pings
// its peers once per `interval`, and a peer that has not answered for
// `timeout` is lost. What follows is the watcher's `on_lost`: rank 0's
// coordinator fails the job naming the peer (and ends the process itself if
// it is stuck); another rank ends its process, which makes mpirun end the
// job.
//
// Thread safety: LivenessWatch::lost() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/transport.h"
#include "vrec/status.h"

namespace vrec::train {

// Answers every request with `who` (e.g. "worker 2 (rank 4 on host h3)").
class LivenessEndpoint {
 public:
  // Binds `bind` ("tcp://ADDRESS:*") with the job's keys.
  static StatusOr<std::unique_ptr<LivenessEndpoint>> Start(const std::string& bind,
                                                           const net::DataPlaneKeys& keys,
                                                           const std::string& who);
  ~LivenessEndpoint();
  const std::string& endpoint() const;

 private:
  class Handler;
  LivenessEndpoint() = default;
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<net::Server> server_;
};

struct LivenessPeer {
  std::string who;       // "parameter server 1 (rank 2 on host h2)"
  std::string endpoint;  // its LivenessEndpoint
};

struct LivenessOptions {
  double interval_seconds = 1;  // between pings of a peer
  double timeout_seconds = 60;  // a peer silent this long is lost
  // Called once, from the watch's thread, with why the first lost peer is
  // taken as lost.
  std::function<void(const Status&)> on_lost;
};

class LivenessWatch {
 public:
  static StatusOr<std::unique_ptr<LivenessWatch>> Start(std::vector<LivenessPeer> peers,
                                                        const net::DataPlaneKeys& keys,
                                                        LivenessOptions options);
  ~LivenessWatch();  // stops pinging
  LivenessWatch(const LivenessWatch&) = delete;
  LivenessWatch& operator=(const LivenessWatch&) = delete;

  // OK while every peer answers; then kDeadlineExceeded naming the first
  // peer lost (it stays so).
  Status lost() const;

 private:
  LivenessWatch(std::vector<LivenessPeer> peers, LivenessOptions options);
  void Loop();

  const std::vector<LivenessPeer> peers_;
  const LivenessOptions options_;
  std::unique_ptr<net::Client> client_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  Status lost_;  // guarded by mu_
  std::thread thread_;
};

// Ends this process at once with `status` on stderr and in the log (exit
// code 1): for a rank whose job cannot go on (mpirun then ends the others).
[[noreturn]] void EndProcess(const Status& status);

}  // namespace vrec::train
