#include "ps/ps_client.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "ps/mutex.h"
#include "ps/ps_wire.h"

namespace vrec::ps {

Status PsRequest::Wait() {
  Status first = status_;
  for (Part& part : parts_) {
    StatusOr<net::Message> reply = part.reply.get();
    Status st = reply.status();
    PsHeader h;
    if (st.ok() && !h.ParseFromString(reply->header)) {
      st = absl::DataLossError("unparseable reply header");
    }
    if (st.ok()) st = StatusFromHeader(h);
    if (st.ok() && part.local) {
      // The server wrote (pull) or read (push) the caller's rows before it
      // replied; the hand-over through the transport is invisible to
      // ThreadSanitizer (ps_server.cc releases the same address).
      VREC_TSAN_ACQUIRE(rows_);
    } else if (st.ok() && out_ != nullptr) {
      const size_t want = part.positions.size() * static_cast<size_t>(dim_) * sizeof(float);
      if (reply->frames.size() != 1 || reply->frames[0].size() != want) {
        st = absl::DataLossError(absl::StrCat("pull reply of wrong size (want ", want, " bytes)"));
      } else {
        // Rows go back to their request positions; runs of consecutive
        // positions (all of them with one server) are copied at once.
        const char* src = reply->frames[0].data<char>();
        const size_t row_bytes = dim_ * sizeof(float);
        const std::vector<uint32_t>& pos = part.positions;
        for (size_t i = 0; i < pos.size();) {
          size_t j = i + 1;
          while (j < pos.size() && pos[j] == pos[j - 1] + 1) ++j;
          std::memcpy(out_ + static_cast<size_t>(pos[i]) * dim_, src + i * row_bytes,
                      (j - i) * row_bytes);
          i = j;
        }
      }
    }
    if (!st.ok() && first.ok()) {
      first = Status(st.code(), absl::StrCat("parameter server ", part.server, " (",
                                             client_->endpoint(part.server), "): ", st.message()));
    }
  }
  if (borrowed_ != nullptr) {
    // The transport may still hold frames of the caller's memory (a reply
    // that failed or timed out); they are let go of soon after.
    std::unique_lock<std::mutex> lock(borrowed_->mu);
    borrowed_->done.wait(lock, [&] { return borrowed_->frames == 0; });
    lock.unlock();
    borrowed_.reset();
  }
  parts_.clear();
  status_ = absl::OkStatus();
  return first;
}

namespace {

// A frame of `bytes` bytes at `data`, which it does not own: `borrowed`
// counts it until the transport lets go of it.
zmq::message_t BorrowedFrame(const void* data, size_t bytes,
                             const std::shared_ptr<PsRequest::Borrowed>& borrowed) {
  if (bytes == 0) return zmq::message_t();
  {
    std::lock_guard<std::mutex> lock(borrowed->mu);
    ++borrowed->frames;
  }
  auto* hold = new std::shared_ptr<PsRequest::Borrowed>(borrowed);
  return zmq::message_t(
      const_cast<void*>(data), bytes,
      +[](void* /*data*/, void* hint) {
        auto* h = static_cast<std::shared_ptr<PsRequest::Borrowed>*>(hint);
        {
          std::lock_guard<std::mutex> lock((*h)->mu);
          --(*h)->frames;
        }
        (*h)->done.notify_all();
        delete h;
      },
      hold);
}

}  // namespace

PsClient::PsClient(net::Client* client, SlotRouter router, uint32_t worker)
    : client_(client), router_(std::move(router)), worker_(worker) {
  CHECK_EQ(static_cast<int>(router_.num_servers()), client_->num_servers())
      << "slot router and transport disagree on the number of servers";
  for (int s = 0; s < client_->num_servers(); ++s) {
    local_.push_back(net::IsInproc(client_->endpoint(s)));
  }
}

net::Message PsClient::MakeRequest(PsHeader::Op op, const PsTable& table, uint64_t num_keys) const {
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_op(op);
  h.set_table(table.index);
  h.set_dim(table.dim);
  h.set_num_keys(num_keys);
  h.set_worker(worker_);
  h.set_worker_step(step_.load(std::memory_order_relaxed));
  return MessageWithHeader(h);
}

net::Message PsClient::MakeLocalRequest(PsHeader::Op op, const PsTable& table, uint64_t num_keys,
                                        const void* rows, uint64_t num_rows) const {
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_op(op);
  h.set_table(table.index);
  h.set_dim(table.dim);
  h.set_num_keys(num_keys);
  h.set_worker(worker_);
  h.set_worker_step(step_.load(std::memory_order_relaxed));
  h.set_local_rows_address(reinterpret_cast<uintptr_t>(rows));
  h.set_local_rows(num_rows);
  return MessageWithHeader(h);
}

void PsClient::Split(const PsTable& table, absl::Span<const uint64_t> keys,
                     std::vector<std::vector<uint64_t>>* split,
                     std::vector<std::vector<uint32_t>>* positions) const {
  const int servers = client_->num_servers();
  split->assign(servers, {});
  positions->assign(servers, {});
  if (servers == 1) {
    (*split)[0].assign(keys.begin(), keys.end());
    (*positions)[0].resize(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) (*positions)[0][i] = static_cast<uint32_t>(i);
    return;
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t s = router_.Server(table.table_id, keys[i]);
    (*split)[s].push_back(keys[i]);
    (*positions)[s].push_back(static_cast<uint32_t>(i));
  }
}

PsRequest PsClient::Pull(const PsTable& table, absl::Span<const uint64_t> keys, float* out) {
  PsRequest req;
  req.out_ = out;
  req.rows_ = out;
  req.dim_ = table.dim;
  req.client_ = client_;
  std::vector<std::vector<uint64_t>> split;
  std::vector<std::vector<uint32_t>> positions;
  Split(table, keys, &split, &positions);
  for (int s = 0; s < client_->num_servers(); ++s) {
    if (split[s].empty()) continue;
    const uint64_t n = split[s].size();
    if (local_[s]) {
      // The server writes the rows into `out` itself; the caller's earlier
      // use of `out` happens before (for ThreadSanitizer, see Wait).
      VREC_TSAN_RELEASE(out);
      net::Message m = MakeLocalRequest(PsHeader::PULL, table, n, out, keys.size());
      m.frames.push_back(net::FrameFromVector(std::move(split[s])));
      if (n != keys.size()) m.frames.push_back(net::FrameFromVector(std::move(positions[s])));
      req.parts_.push_back({s, client_->Call(s, std::move(m)), {}, /*local=*/true});
      continue;
    }
    net::Message m = MakeRequest(PsHeader::PULL, table, n);
    m.frames.push_back(net::FrameFromVector(std::move(split[s])));
    req.parts_.push_back({s, client_->Call(s, std::move(m)), std::move(positions[s])});
  }
  return req;
}

PsRequest PsClient::PushRows(const PsTable& table, absl::Span<const uint64_t> keys,
                             absl::Span<const float> grads) {
  PsRequest req;
  req.client_ = client_;
  req.rows_ = grads.data();
  const size_t dim = table.dim;
  if (grads.size() != keys.size() * dim) {
    req.status_ = absl::InvalidArgumentError(absl::StrCat(
        "push of ", keys.size(), " keys of dim ", dim, " with ", grads.size(), " gradients"));
    return req;
  }
  std::vector<std::vector<uint64_t>> split;
  std::vector<std::vector<uint32_t>> positions;
  Split(table, keys, &split, &positions);
  for (int s = 0; s < client_->num_servers(); ++s) {
    if (split[s].empty()) continue;
    const uint64_t n = split[s].size();
    if (local_[s]) {
      // The server reads the gradients where they are (see Pull).
      VREC_TSAN_RELEASE(grads.data());
      net::Message m = MakeLocalRequest(PsHeader::PUSH, table, n, grads.data(), keys.size());
      m.frames.push_back(net::FrameFromVector(std::move(split[s])));
      if (n != keys.size()) m.frames.push_back(net::FrameFromVector(std::move(positions[s])));
      req.parts_.push_back({s, client_->Call(s, std::move(m)), {}, /*local=*/true});
      continue;
    }
    net::Message m = MakeRequest(PsHeader::PUSH, table, n);
    m.frames.push_back(net::FrameFromVector(std::move(split[s])));
    if (n == keys.size()) {
      // One server takes every key, in order: the gradients go as they are.
      if (req.borrowed_ == nullptr) req.borrowed_ = std::make_shared<PsRequest::Borrowed>();
      m.frames.push_back(BorrowedFrame(grads.data(), grads.size() * sizeof(float), req.borrowed_));
    } else {
      std::unique_ptr<float[]> part(new float[n * dim]);
      for (size_t j = 0; j < n; ++j) {
        std::memcpy(part.get() + j * dim, grads.data() + static_cast<size_t>(positions[s][j]) * dim,
                    dim * sizeof(float));
      }
      m.frames.push_back(net::FrameFromArray(std::move(part), n * dim));
    }
    req.parts_.push_back({s, client_->Call(s, std::move(m)), {}});
  }
  return req;
}

PsRequest PsClient::PushPooled(const PsTable& table, absl::Span<const uint64_t> keys,
                               const PooledUses& uses, absl::Span<const float> pooled) {
  PsRequest req;
  req.client_ = client_;
  req.rows_ = pooled.data();
  const size_t dim = table.dim;
  if (dim == 0 || pooled.size() % dim != 0 || uses.offsets.size() != keys.size() + 1) {
    req.status_ = absl::InvalidArgumentError(
        absl::StrCat("pooled push of ", keys.size(), " keys with ", uses.offsets.size(),
                     " use offsets and ", pooled.size(), " pooled floats of dim ", dim));
    return req;
  }
  const uint64_t num_pooled = pooled.size() / dim;
  req.borrowed_ = std::make_shared<PsRequest::Borrowed>();
  auto borrow = [&](auto span) {
    return BorrowedFrame(span.data(), span.size() * sizeof(span[0]), req.borrowed_);
  };
  auto send = [&](int s, uint64_t n, std::vector<zmq::message_t> frames) {
    net::Message m;
    if (local_[s]) {
      VREC_TSAN_RELEASE(pooled.data());  // the server reads it where it is (see Pull)
      m = MakeLocalRequest(PsHeader::PUSH_POOLED, table, n, pooled.data(), num_pooled);
    } else {
      m = MakeRequest(PsHeader::PUSH_POOLED, table, n);
      frames.push_back(borrow(pooled));
    }
    PsHeader h;
    h.ParseFromString(m.header);
    h.set_num_pooled(num_pooled);
    m.header = h.SerializeAsString();
    m.frames = std::move(frames);
    req.parts_.push_back({s, client_->Call(s, std::move(m)), {}, local_[s]});
  };
  const int servers = client_->num_servers();
  auto copy = [](auto span) {
    return net::FrameFromBytes(span.data(), span.size() * sizeof(span[0]));
  };
  if (servers == 1) {
    // Keys and uses are copied (a few hundred KB: the caller may refill
    // them before this push is answered); the pooled matrix is not.
    std::vector<zmq::message_t> frames;
    frames.push_back(copy(keys));
    frames.push_back(copy(uses.offsets));
    frames.push_back(copy(uses.rows));
    frames.push_back(copy(uses.weights));
    send(0, keys.size(), std::move(frames));
    return req;
  }
  // Each server's keys, with their uses renumbered from 0.
  std::vector<std::vector<uint64_t>> split(servers);
  std::vector<std::vector<uint32_t>> offsets(servers, std::vector<uint32_t>{0}), rows(servers);
  std::vector<std::vector<float>> weights(servers);
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t s = router_.Server(table.table_id, keys[i]);
    split[s].push_back(keys[i]);
    for (uint32_t u = uses.offsets[i]; u < uses.offsets[i + 1]; ++u) {
      rows[s].push_back(uses.rows[u]);
      weights[s].push_back(uses.weights[u]);
    }
    offsets[s].push_back(static_cast<uint32_t>(rows[s].size()));
  }
  for (int s = 0; s < servers; ++s) {
    if (split[s].empty()) continue;
    const uint64_t n = split[s].size();
    std::vector<zmq::message_t> frames;
    frames.push_back(net::FrameFromVector(std::move(split[s])));
    frames.push_back(net::FrameFromVector(std::move(offsets[s])));
    frames.push_back(net::FrameFromVector(std::move(rows[s])));
    frames.push_back(net::FrameFromVector(std::move(weights[s])));
    send(s, n, std::move(frames));
  }
  return req;
}

PsRequest PsClient::Push(const PsTable& table, absl::Span<const uint64_t> keys,
                         absl::Span<const float> grads) {
  PsRequest req;
  req.client_ = client_;
  const size_t dim = table.dim;
  if (grads.size() != keys.size() * dim) {
    req.status_ = absl::InvalidArgumentError(absl::StrCat(
        "push of ", keys.size(), " keys of dim ", dim, " with ", grads.size(), " gradients"));
    return req;
  }
  const int servers = client_->num_servers();
  // Two passes, so that each server's part is allocated once at its final
  // size (a step pushes ~15 MB per table; growing the parts key by key
  // copied and page-faulted them several times over). First: each key's
  // server and its row in that server's part (distinct keys numbered in
  // order of first appearance).
  std::vector<uint32_t> server_of(keys.size());
  std::vector<uint32_t> row(keys.size());
  std::vector<uint32_t> unique(servers, 0);
  absl::flat_hash_map<uint64_t, uint32_t> seen;
  seen.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t s = router_.Server(table.table_id, keys[i]);
    server_of[i] = s;
    auto [it, inserted] = seen.emplace(keys[i], unique[s]);
    if (inserted) ++unique[s];
    row[i] = it->second;
  }
  // Then: a key's first appearance is its part's next row (appended);
  // later ones add onto that row.
  std::vector<std::vector<uint64_t>> split(servers);
  std::vector<std::vector<float>> split_grads(servers);
  for (int s = 0; s < servers; ++s) {
    split[s].reserve(unique[s]);
    split_grads[s].reserve(static_cast<size_t>(unique[s]) * dim);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t s = server_of[i];
    const float* g = grads.data() + i * dim;
    if (row[i] == split[s].size()) {
      split_grads[s].insert(split_grads[s].end(), g, g + dim);  // within the reserve
      split[s].push_back(keys[i]);
    } else {
      float* dst = split_grads[s].data() + static_cast<size_t>(row[i]) * dim;
      for (size_t d = 0; d < dim; ++d) dst[d] += g[d];
    }
  }
  for (int s = 0; s < servers; ++s) {
    if (split[s].empty()) continue;
    net::Message m = MakeRequest(PsHeader::PUSH, table, split[s].size());
    m.frames.push_back(net::FrameFromVector(std::move(split[s])));
    m.frames.push_back(net::FrameFromVector(std::move(split_grads[s])));
    req.parts_.push_back({s, client_->Call(s, std::move(m)), {}});
  }
  return req;
}

StatusOr<uint64_t> PsClient::ReportClock(uint64_t finished_step) {
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_op(PsHeader::CLOCK);
  h.set_worker(worker_);
  h.set_worker_step(finished_step);
  VREC_ASSIGN_OR_RETURN(net::Message reply, client_->Call(0, MessageWithHeader(h)).get());
  PsHeader r;
  if (!r.ParseFromString(reply.header)) return absl::DataLossError("unparseable clock reply");
  VREC_RETURN_IF_ERROR(StatusFromHeader(r));
  return r.min_step();
}

StatusOr<bool> PsClient::WaitForClock(uint64_t finished_step, uint64_t slowest_at_least,
                                      const std::function<bool()>& give_up,
                                      std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(100);
  while (true) {
    VREC_ASSIGN_OR_RETURN(uint64_t slowest, ReportClock(finished_step));
    if (slowest >= slowest_at_least) return true;
    if (give_up && give_up()) return false;
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("worker ", worker_, " (finished step ", finished_step, ") waited ",
                       timeout.count(), " ms for every worker to finish step ", slowest_at_least,
                       "; the slowest is at step ", slowest));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(5000));
  }
}

Status PsClient::SetClock(uint64_t step, bool exact) {
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_op(PsHeader::CLOCK);
  h.set_worker(worker_);
  h.set_worker_step(step);
  h.set_set_step(exact);
  net::Message m = MessageWithHeader(h);
  VREC_ASSIGN_OR_RETURN(net::Message reply, client_->Call(0, std::move(m)).get());
  PsHeader r;
  if (!r.ParseFromString(reply.header)) return absl::DataLossError("unparseable clock reply");
  VREC_RETURN_IF_ERROR(StatusFromHeader(r));
  return absl::OkStatus();
}

Status PsClient::LeaveClock() { return SetClock(std::numeric_limits<uint64_t>::max(), false); }

Status PsClient::RejoinClock(uint64_t step) { return SetClock(step, true); }

StatusOr<std::vector<std::string>> PsClient::Stats() {
  std::vector<std::future<StatusOr<net::Message>>> replies;
  for (int s = 0; s < client_->num_servers(); ++s) {
    PsHeader h;
    h.set_version(kPsWireVersion);
    h.set_op(PsHeader::STATS);
    net::Message m = MessageWithHeader(h);
    replies.push_back(client_->Call(s, std::move(m)));
  }
  std::vector<std::string> out;
  for (int s = 0; s < static_cast<int>(replies.size()); ++s) {
    VREC_ASSIGN_OR_RETURN(net::Message reply, replies[s].get());
    PsHeader h;
    if (!h.ParseFromString(reply.header)) {
      return absl::DataLossError(absl::StrCat("unparseable stats reply from server ", s));
    }
    VREC_RETURN_IF_ERROR(StatusFromHeader(h));
    out.push_back(h.stats_json());
  }
  return out;
}

}  // namespace vrec::ps
