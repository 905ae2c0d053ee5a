// PsClient: the worker's view of all parameter servers (the ps-lite
// KVWorker of this system).
//
// It splits a batch of keys by server through the SlotRouter, sends one
// request per server (all in flight at once) in the wire format of
// ps_wire.h, and gathers the replies. Pull keys must be unique within a call
// (the worker dedupes per batch); Push sums the gradients of duplicate keys
// before sending, so each server applies one update per key. The server
// side is PsService (ps_server.h); worker code includes only this header.
//
// Copies. A server in this process (an "inproc://" endpoint) is handed the
// caller's matrix by address: it writes pulled rows straight into `out` and
// applies the optimizer reading PushRows' gradients where they are, so a
// row crosses memory once each way. A remote server's pull reply is copied
// into `out` (the one copy out of the transport); PushRows sends the
// caller's gradients without copying them when one server takes every key.
//
// Thread safety: PsClient is thread-safe; each PsRequest is used by one
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "net/transport.h"
#include "proto/ps.pb.h"
#include "ps/pooled_gradients.h"
#include "ps/slot_router.h"
#include "vrec/status.h"

namespace vrec::ps {

// A table as the client addresses it.
struct PsTable {
  uint32_t index = 0;     // position in every server's table list
  uint64_t table_id = 0;  // TableId(name): salts the slot hash
  uint32_t dim = 0;
};

// An outstanding Pull or Push. Wait() blocks until every server answered,
// scatters pulled rows into the caller's buffer, and returns the first error
// (naming the server), or OK. A request destroyed or assigned over before
// Wait() waits first (ignoring the outcome): servers in this process write
// and read the caller's memory until they reply.
class PsRequest {
 public:
  PsRequest() = default;
  PsRequest(PsRequest&&) = default;
  PsRequest& operator=(PsRequest&& other) {
    if (this != &other) {
      Drain();
      parts_ = std::move(other.parts_);
      other.parts_.clear();
      out_ = other.out_;
      rows_ = other.rows_;
      dim_ = other.dim_;
      status_ = std::move(other.status_);
      other.status_ = absl::OkStatus();
      client_ = other.client_;
      borrowed_ = std::move(other.borrowed_);
    }
    return *this;
  }
  ~PsRequest() { Drain(); }
  Status Wait();
  bool valid() const { return !parts_.empty() || !status_.ok(); }

  // Frames that reference the caller's memory (PushRows to a remote
  // server): the transport calls Done() once per frame when it no longer
  // needs the memory; Wait() returns only after that.
  struct Borrowed {
    std::mutex mu;
    std::condition_variable done;
    int frames = 0;  // guarded by mu
  };

 private:
  friend class PsClient;
  struct Part {
    int server;
    std::future<StatusOr<net::Message>> reply;
    std::vector<uint32_t> positions;  // remote pull: where each key's row goes in `out`
    bool local = false;               // the server wrote or read the caller's rows itself
  };
  std::vector<Part> parts_;
  float* out_ = nullptr;  // pull destination, nullptr for push
  const void* rows_ = nullptr;  // the caller's matrix named to local servers
  uint32_t dim_ = 0;
  Status status_;  // an error found before sending
  const net::Client* client_ = nullptr;
  std::shared_ptr<Borrowed> borrowed_;

  void Drain() {
    if (!parts_.empty() || borrowed_ != nullptr) (void)Wait();
  }
};

class PsClient {
 public:
  // `client` must outlive this object; its server i is router server i.
  PsClient(net::Client* client, SlotRouter router, uint32_t worker = 0);

  // Pulls rows of `keys` (unique) into out[i*dim ..). `out` must stay valid
  // until Wait() returns.
  PsRequest Pull(const PsTable& table, absl::Span<const uint64_t> keys, float* out);
  // Pushes gradients; duplicate keys are summed first. The inputs are copied.
  PsRequest Push(const PsTable& table, absl::Span<const uint64_t> keys,
                 absl::Span<const float> grads);
  // Pushes the gradients of a batch's distinct rows: grads[i*dim ..) of
  // keys[i]. REQUIRES: keys unique. Nothing is copied for a server in this
  // process or when one server takes every key: `grads` must stay valid and
  // unchanged until Wait() returns.
  PsRequest PushRows(const PsTable& table, absl::Span<const uint64_t> keys,
                     absl::Span<const float> grads);
  // Pushes an embedding bag's row gradients as the bags' own: `pooled`
  // (rows of dim floats, one per example) and each key's uses of them
  // (pooled_gradients.h); every server forms its keys' gradients as it
  // applies its optimizer, so no gradient row exists anywhere, and a remote
  // server receives half a MB instead of a row per key. REQUIRES: keys
  // unique. Keys and uses are copied; `pooled` is not (a server in this
  // process reads it where it is; remote ones are sent it as it is): it
  // must stay valid and unchanged until Wait() returns.
  PsRequest PushPooled(const PsTable& table, absl::Span<const uint64_t> keys,
                       const PooledUses& uses, absl::Span<const float> pooled);
  // Stats JSON of every server, in server order.
  StatusOr<std::vector<std::string>> Stats();

  void set_step(uint64_t step) { step_ = step; }

  // Consistency between workers: server 0 keeps a clock of the steps each
  // worker has finished (pushed, and had acknowledged); the worker decides
  // what to wait for (train/worker_loop.h). ReportClock records that this
  // worker has finished `finished_step` and returns the slowest worker's
  // finished step (this one's included) -- one round trip.
  StatusOr<uint64_t> ReportClock(uint64_t finished_step);
  // Reports `finished_step` until every worker has finished
  // `slowest_at_least` (true), or until `give_up` (if set; polled between
  // looks at the clock) returns true (false). kDeadlineExceeded if neither
  // happens within `timeout`.
  StatusOr<bool> WaitForClock(uint64_t finished_step, uint64_t slowest_at_least,
                              const std::function<bool()>& give_up = nullptr,
                              std::chrono::milliseconds timeout = std::chrono::minutes(5));
  // Tells server 0 that this worker takes no more steps, so that bounded
  // staleness no longer waits for it (its clock becomes "infinitely ahead").
  Status LeaveClock();
  // Puts this worker back on the clock at `step` after a LeaveClock.
  Status RejoinClock(uint64_t step);
  const SlotRouter& router() const { return router_; }

 private:
  net::Message MakeRequest(PsHeader::Op op, const PsTable& table, uint64_t num_keys) const;
  // A request of server `s` that names the caller's matrix `rows` of
  // `num_rows` rows (an in-process server reads or writes it itself).
  net::Message MakeLocalRequest(PsHeader::Op op, const PsTable& table, uint64_t num_keys,
                                const void* rows, uint64_t num_rows) const;
  // Keys split by server: split[s] the keys of server s, positions[s] their
  // indices in `keys`.
  void Split(const PsTable& table, absl::Span<const uint64_t> keys,
             std::vector<std::vector<uint64_t>>* split,
             std::vector<std::vector<uint32_t>>* positions) const;
  Status SetClock(uint64_t step, bool exact);

  net::Client* const client_;
  const SlotRouter router_;
  const uint32_t worker_;
  std::vector<bool> local_;  // server s is in this process
  std::atomic<uint64_t> step_{0};
};

}  // namespace vrec::ps
