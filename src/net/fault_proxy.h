// A fault-injecting stand-in for a network between a transport Client and
// Server (transport.h), for tests: this kernel has no netem, so delays,
// losses and a peer that stops answering are made here. Clients dial the
// proxy's endpoint instead of the server's; the proxy forwards each request
// to the server and each reply back, after `delay`, dropping requests and
// replies at the given rates, or swallowing everything while silent (a
// frozen peer: connections stay up, nothing comes back).
//
// Plain ZeroMQ on both sides (no CURVE). Thread safety: every method may be
// called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "vrec/status.h"
#include "zmq.hpp"

namespace vrec::net {

struct FaultOptions {
  std::chrono::milliseconds delay{0};  // each way
  double drop_requests = 0;            // probability a request is lost
  double drop_replies = 0;             // probability a reply is lost
  bool silent = false;                 // take everything, answer nothing
  uint64_t seed = 1;                   // of the drops
};

class FaultProxy {
 public:
  // Forwards to the transport server at `target`; binds tcp://127.0.0.1:*.
  static StatusOr<std::unique_ptr<FaultProxy>> Start(const std::string& target,
                                                     FaultOptions options = {});
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  void set_options(const FaultOptions& options);

  uint64_t forwarded() const { return forwarded_.load(); }  // requests that reached the server
  uint64_t dropped() const { return dropped_.load(); }      // requests and replies lost

 private:
  explicit FaultProxy(FaultOptions options);
  void Loop(zmq::socket_t front, zmq::socket_t back);
  FaultOptions options() const;

  zmq::context_t context_{1};
  std::string endpoint_;
  mutable std::mutex mu_;
  FaultOptions options_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> forwarded_{0}, dropped_{0};
  std::thread thread_;
};

}  // namespace vrec::net
