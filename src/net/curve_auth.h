// The data plane's authentication: ZeroMQ CURVE (RFC 26, authenticated
// encryption of every frame) with one key pair for a job's servers and one
// for its clients (docs/operations.md, "Who can talk to a job").
//
// The launch is the trust root: rank 0 generates the job's keys
// (GenerateDataPlaneKeys) and hands them to every rank over MPI; a job in one
// process keeps them in memory. A server accepts a connection only after a
// CURVE handshake in which the client proves it holds the job's client secret
// key (checked by a ZAP handler, RFC 27) and knows the server's public key;
// any other peer (no CURVE, another key, garbage bytes) gets no reply, its
// messages never reach the handler, and the refusal is counted and logged.
//
// Thread safety: CurveGuard is thread-safe; the key structs are values.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "vrec/status.h"
#include "zmq.hpp"

namespace vrec::net {

// One CURVE key pair, Z85-encoded (40 characters each).
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

// A job's keys. Empty (enabled() false): plain ZeroMQ, as for "inproc://"
// endpoints, which never leave the process, or --insecure_data_plane.
struct DataPlaneKeys {
  CurveKeyPair server;  // every parameter server's
  CurveKeyPair client;  // every worker's (and the coordinator's)
  bool enabled() const { return !server.public_key.empty(); }
};

// Whether this libzmq was built with CURVE (Debian's is).
bool CurveAvailable();
// Fresh random keys (libsodium's generator, via zmq_curve_keypair).
// kUnavailable when libzmq lacks CURVE.
StatusOr<DataPlaneKeys> GenerateDataPlaneKeys();
// The keys as 160 bytes and back, to travel over MPI. Empty keys are "".
std::string SerializeKeys(const DataPlaneKeys& keys);
StatusOr<DataPlaneKeys> ParseKeys(const std::string& bytes);

// Makes `socket` a CURVE client of a server with `keys` (before connect).
void SetClientKeys(zmq::socket_t& socket, const DataPlaneKeys& keys);

// The server half, for one context and one server socket: answers ZAP
// requests (accepting only the job's client key) and watches the socket's
// handshakes, counting and logging every one that fails. Construct it before
// the socket binds; it stops (joining its threads) when destroyed, which must
// happen before the context is closed.
class CurveGuard {
 public:
  // Starts the ZAP handler in `context` (one per context: it binds
  // "inproc://zeromq.zap.01") and makes `socket` a CURVE server.
  static StatusOr<std::unique_ptr<CurveGuard>> Start(zmq::context_t& context, zmq::socket_t& socket,
                                                     const DataPlaneKeys& keys,
                                                     const std::string& name);
  ~CurveGuard();
  CurveGuard(const CurveGuard&) = delete;
  CurveGuard& operator=(const CurveGuard&) = delete;

  // Handshakes refused so far: a wrong or missing key, another mechanism,
  // bytes that are not ZMTP.
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // What the log lines call the server (e.g. its endpoint once bound).
  void set_name(const std::string& name);

 private:
  CurveGuard(std::string name, std::string client_key);
  void ServeZap(zmq::socket_t zap);
  void Watch(zmq::socket_t monitor);
  void Refused(const std::string& why);
  std::string name() const;

  mutable std::mutex mu_;
  std::string name_;                           // guarded by mu_
  std::map<std::string, uint64_t> by_reason_;  // refusals; guarded by mu_
  const std::string client_key_;               // 32 bytes, binary
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> refused_{0};
  std::thread zap_thread_;
  std::thread monitor_thread_;
};

}  // namespace vrec::net
