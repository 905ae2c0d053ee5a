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
// Thread safety: PsClient is thread-safe; each PsRequest is used by one
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "net/transport.h"
#include "proto/ps.pb.h"
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
// (naming the server), or OK.
class PsRequest {
 public:
  PsRequest() = default;
  PsRequest(PsRequest&&) = default;
  PsRequest& operator=(PsRequest&&) = default;
  Status Wait();
  bool valid() const { return !parts_.empty() || !status_.ok(); }

 private:
  friend class PsClient;
  struct Part {
    int server;
    std::future<StatusOr<net::Message>> reply;
    std::vector<uint32_t> positions;  // where each key of this part goes in `out`
  };
  std::vector<Part> parts_;
  float* out_ = nullptr;  // pull destination, nullptr for push
  uint32_t dim_ = 0;
  Status status_;  // an error found before sending
  const net::Client* client_ = nullptr;
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
  Status SetClock(uint64_t step, bool exact);

  net::Client* const client_;
  const SlotRouter router_;
  const uint32_t worker_;
  std::atomic<uint64_t> step_{0};
};

}  // namespace vrec::ps
