// Request/reply messaging over ZeroMQ: the data plane between workers and
// parameter servers (ps-lite's "van", without its singletons and CHECKs).
//
// A Message is an opaque header (a serialized protobuf, by convention) plus
// raw data frames (keys, values) that travel without re-encoding: a frame
// built from a std::vector is handed to ZeroMQ without a copy.
//
//   wire: [request id: 8 bytes LE] [header] [frame 0] ... [frame n-1]
//
// Server: one ROUTER socket bound to an endpoint, a proxy, and `threads`
// handler threads that call Handler::Handle concurrently. Whatever arrives —
// a malformed envelope, too many frames, too many bytes — is answered with an
// error reply built by the handler's ErrorReply(), logged, and never crashes
// the server.
//
// Client: one I/O thread owning a DEALER socket per server. Call() may be
// invoked from any thread, returns at once with a future, and many calls may
// be in flight at once; a call whose reply does not arrive within its deadline
// resolves to kUnavailable naming the endpoint, and a late reply is dropped.
// The I/O thread never blocks: a request that no connection can take yet (a
// server down, unreachable or refusing the handshake) waits for one until
// its deadline.
//
// Authentication: with the job's keys (net/curve_auth.h) every TCP socket
// speaks CURVE, and a server answers only clients holding the job's client
// key; "inproc://" endpoints never leave the process and stay plain.
//
// Thread safety: Server and Client are thread-safe. Handler implementations
// must be thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/curve_auth.h"
#include "vrec/status.h"
#include "zmq.hpp"

namespace vrec::net {

struct Message {
  std::string header;
  std::vector<zmq::message_t> frames;
  // Set by the Server on a request that came over an "inproc://" endpoint:
  // the sender is a thread of this process, so the request may name memory
  // by address (ps_server.h). Never read from the wire.
  bool local = false;

  size_t ByteSize() const;
};

// Builds a frame that takes ownership of `data` without copying it.
template <typename T>
zmq::message_t FrameFromVector(std::vector<T>&& data);
// Builds a frame that takes ownership of `n` elements at `data` (no copy, and
// unlike a vector no zero-filling before the caller writes them).
template <typename T>
zmq::message_t FrameFromArray(std::unique_ptr<T[]> data, size_t n);
// Copies `n` bytes into a new frame.
zmq::message_t FrameFromBytes(const void* data, size_t n);

class Handler {
 public:
  virtual ~Handler() = default;
  // Handles one request and returns its reply. Called from several threads.
  virtual Message Handle(Message request) = 0;
  // The reply for a request the transport rejected before Handle (e.g. too
  // large, or missing its header frame).
  virtual Message ErrorReply(const Status& status) = 0;
};

// The process-wide ZeroMQ context of "inproc://" endpoints: a server bound
// to one and the clients that dial it share it, and messages then pass
// between threads without being copied (no kernel, no TCP). Never
// terminated.
zmq::context_t& SharedContext();
bool IsInproc(const std::string& endpoint);

struct ServerOptions {
  // ZeroMQ endpoint; "tcp://127.0.0.1:*" picks a free port (see endpoint());
  // "inproc://NAME" serves clients of this process only, without copies.
  std::string bind = "tcp://127.0.0.1:*";
  int threads = 2;
  size_t max_frames = 16;
  size_t max_message_bytes = 512ull << 20;
  // The job's keys; empty: no authentication (trusted networks only).
  DataPlaneKeys keys;
};

class Server {
 public:
  // Binds and starts the threads. `handler` must outlive the server.
  static StatusOr<std::unique_ptr<Server>> Start(Handler* handler, const ServerOptions& options);
  ~Server();  // Stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound endpoint, with the real port, e.g. "tcp://127.0.0.1:41235".
  const std::string& endpoint() const { return endpoint_; }
  // Stops accepting, lets in-progress requests finish, joins. Idempotent.
  void Stop();

  uint64_t requests_handled() const { return handled_.load(std::memory_order_relaxed); }
  uint64_t requests_rejected() const { return rejected_.load(std::memory_order_relaxed); }
  // Connections refused at the handshake (no CURVE, or not the job's keys).
  uint64_t handshakes_refused() const { return guard_ ? guard_->refused() : 0; }

 private:
  Server(Handler* handler, const ServerOptions& options);
  void WorkerLoop(int index);

  Handler* const handler_;
  const ServerOptions options_;
  zmq::context_t own_context_;
  zmq::context_t* context_;  // own_context_, or SharedContext() for inproc
  std::string endpoint_;
  std::string backend_endpoint_;
  std::string control_endpoint_;
  std::unique_ptr<CurveGuard> guard_;  // before the context closes
  std::thread proxy_thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> handled_{0};
  std::atomic<uint64_t> rejected_{0};
};

struct ClientOptions {
  std::chrono::milliseconds default_timeout{30000};
  // The job's keys, for servers that demand them (ServerOptions::keys).
  DataPlaneKeys keys;
};

// A job's servers as its clients dial them: server i at endpoints[i], with
// the job's keys (empty: plain).
struct ServerSet {
  std::vector<std::string> endpoints;
  DataPlaneKeys keys;
  size_t size() const { return endpoints.size(); }
};

class Client {
 public:
  // Connects (lazily, as ZeroMQ does) to every endpoint; server i of Call()
  // is endpoints[i].
  static StatusOr<std::unique_ptr<Client>> Connect(const std::vector<std::string>& endpoints,
                                                   const ClientOptions& options = {});
  // The same with the set's keys (options.keys is replaced by them).
  static StatusOr<std::unique_ptr<Client>> Connect(const ServerSet& servers,
                                                   ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request` to server `server` and returns the reply's future.
  // timeout <= 0 means options.default_timeout.
  std::future<StatusOr<Message>> Call(
      int server, Message request,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  int num_servers() const { return static_cast<int>(endpoints_.size()); }
  const std::string& endpoint(int server) const { return endpoints_[server]; }

 private:
  struct Impl;
  Client(std::vector<std::string> endpoints, const ClientOptions& options);

  const std::vector<std::string> endpoints_;
  const ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

// ---- implementation details of the templates above ----
namespace internal {
template <typename T>
void FreeVector(void* /*data*/, void* hint) {
  delete static_cast<std::vector<T>*>(hint);
}
template <typename T>
void FreeArray(void* data, void* /*hint*/) {
  delete[] static_cast<T*>(data);
}
}  // namespace internal

template <typename T>
zmq::message_t FrameFromArray(std::unique_ptr<T[]> data, size_t n) {
  if (n == 0) return zmq::message_t();
  T* raw = data.release();
  return zmq::message_t(raw, n * sizeof(T), &internal::FreeArray<T>, nullptr);
}

template <typename T>
zmq::message_t FrameFromVector(std::vector<T>&& data) {
  auto* owned = new std::vector<T>(std::move(data));
  if (owned->empty()) {
    delete owned;
    return zmq::message_t();
  }
  return zmq::message_t(owned->data(), owned->size() * sizeof(T), &internal::FreeVector<T>, owned);
}

}  // namespace vrec::net
