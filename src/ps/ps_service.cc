#include "ps/ps_service.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vrec::ps {
namespace {

net::Message ReplyWithStatus(const Status& status) {
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_status_code(static_cast<int32_t>(status.code()));
  h.set_error(std::string(status.message()));
  net::Message m;
  m.header = h.SerializeAsString();
  return m;
}

// A frame's bytes as T values, copied only if the frame is misaligned.
template <typename T>
absl::Span<const T> FrameAs(const zmq::message_t& frame, std::vector<T>* scratch) {
  const size_t n = frame.size() / sizeof(T);
  if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(T) == 0) {
    return absl::Span<const T>(static_cast<const T*>(frame.data()), n);
  }
  scratch->resize(n);
  std::memcpy(scratch->data(), frame.data(), n * sizeof(T));
  return absl::Span<const T>(*scratch);
}

nlohmann::json StatsToJson(const StoreStats& s) {
  nlohmann::json hot = nlohmann::json::array();
  for (const auto& h : s.hot_keys) hot.push_back({{"key", h.key}, {"count", h.count}});
  return {{"table", s.table},
          {"step", s.step},
          {"rows_in_memory", s.rows_in_memory},
          {"rows_on_disk", s.rows_on_disk},
          {"memory_bytes", s.memory_bytes},
          {"memory_budget_bytes", s.memory_budget_bytes},
          {"memory_hit_rate", s.MemoryHitRate()},
          {"memory_hits", s.memory_hits},
          {"disk_hits", s.disk_hits},
          {"pull_requests", s.pull_requests},
          {"push_requests", s.push_requests},
          {"pull_keys", s.pull_keys},
          {"push_keys", s.push_keys},
          {"rows_created", s.rows_created},
          {"dropped_pushes", s.dropped_pushes},
          {"evictions", s.evictions},
          {"memory_bypasses", s.memory_bypasses},
          {"spill_keys_read", s.spill_keys_read},
          {"spill_rows_written", s.spill_rows_written},
          {"spill_bytes_written", s.spill_bytes_written},
          {"expiries", s.expiries},
          {"hot_keys", hot}};
}

}  // namespace

PsService::PsService(std::vector<EmbeddingStore*> tables, uint32_t num_workers)
    : tables_(std::move(tables)), worker_steps_(num_workers, 0) {}

StatusOr<net::Message> PsService::Clock(const PsHeader& header) {
  uint64_t min_step;
  {
    MutexLock lock(&clock_mu_);
    if (header.worker() >= worker_steps_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("clock from worker ", header.worker(),
                                                     "; this job has ", worker_steps_.size()));
    }
    uint64_t& mine = worker_steps_[header.worker()];
    mine = header.set_step() ? header.worker_step() : std::max(mine, header.worker_step());
    min_step = *std::min_element(worker_steps_.begin(), worker_steps_.end());
  }
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_min_step(min_step);
  net::Message m;
  m.header = h.SerializeAsString();
  return m;
}

net::Message PsService::ErrorReply(const Status& status) { return ReplyWithStatus(status); }

std::string PsService::StatsJson() const {
  nlohmann::json all = nlohmann::json::array();
  for (const EmbeddingStore* t : tables_) all.push_back(StatsToJson(t->Stats()));
  return all.dump();
}

net::Message PsService::Handle(net::Message request) {
  PsHeader header;
  if (!header.ParseFromString(request.header)) {
    return ReplyWithStatus(absl::InvalidArgumentError(
        absl::StrCat("unparseable request header (", request.header.size(), " bytes)")));
  }
  StatusOr<net::Message> reply = Serve(header, request);
  if (!reply.ok()) {
    LOG_EVERY_N(WARNING, 100) << "parameter server rejected a request: " << reply.status();
    return ReplyWithStatus(reply.status());
  }
  return std::move(reply).value();
}

StatusOr<net::Message> PsService::Serve(const PsHeader& header, net::Message& request) {
  if (header.version() != kPsWireVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("wire version ", header.version(), ", this server speaks ", kPsWireVersion));
  }
  if (header.op() == PsHeader::STATS) {
    PsHeader h;
    h.set_version(kPsWireVersion);
    h.set_stats_json(StatsJson());
    net::Message m;
    m.header = h.SerializeAsString();
    return m;
  }
  if (header.op() == PsHeader::CLOCK) return Clock(header);
  if (header.table() >= tables_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no table ", header.table(), "; this server has ", tables_.size()));
  }
  EmbeddingStore* table = tables_[header.table()];
  if (header.dim() != table->dim()) {
    return absl::InvalidArgumentError(absl::StrCat("table ", table->table_name(), " has dim ",
                                                   table->dim(), ", request says ", header.dim()));
  }
  const uint64_t n = header.num_keys();
  const size_t want_frames = header.op() == PsHeader::PUSH ? 2 : 1;
  if (header.op() != PsHeader::PULL && header.op() != PsHeader::PUSH) {
    return absl::InvalidArgumentError(absl::StrCat("unknown op ", header.op()));
  }
  if (request.frames.size() != want_frames) {
    return absl::InvalidArgumentError(absl::StrCat(PsHeader::Op_Name(header.op()), " needs ",
                                                   want_frames, " data frames, got ",
                                                   request.frames.size()));
  }
  if (request.frames[0].size() != n * sizeof(uint64_t)) {
    return absl::InvalidArgumentError(
        absl::StrCat("key frame of ", request.frames[0].size(), " bytes for ", n, " keys"));
  }
  std::vector<uint64_t> key_scratch;
  absl::Span<const uint64_t> keys = FrameAs<uint64_t>(request.frames[0], &key_scratch);
  const uint64_t values = n * table->dim();
  if (header.op() == PsHeader::PULL) {
    // Not zero-filled: Pull writes every value (2.5 MB at 10k x 64 floats).
    std::unique_ptr<float[]> out(new float[values]);
    VREC_RETURN_IF_ERROR(table->Pull(keys, absl::MakeSpan(out.get(), values)));
    PsHeader h;
    h.set_version(kPsWireVersion);
    h.set_num_keys(n);
    net::Message m;
    m.header = h.SerializeAsString();
    m.frames.push_back(net::FrameFromArray(std::move(out), values));
    return m;
  }
  if (request.frames[1].size() != values * sizeof(float)) {
    return absl::InvalidArgumentError(absl::StrCat("gradient frame of ", request.frames[1].size(),
                                                   " bytes for ", n, " keys of dim ",
                                                   table->dim()));
  }
  std::vector<float> grad_scratch;
  VREC_RETURN_IF_ERROR(table->Push(keys, FrameAs<float>(request.frames[1], &grad_scratch)));
  table->AdvanceStep();
  PsHeader h;
  h.set_version(kPsWireVersion);
  net::Message m;
  m.header = h.SerializeAsString();
  return m;
}

// ----------------------------------------------------------------- client

Status PsRequest::Wait() {
  Status first = status_;
  for (Part& part : parts_) {
    StatusOr<net::Message> reply = part.reply.get();
    Status st = reply.status();
    PsHeader h;
    if (st.ok() && !h.ParseFromString(reply->header)) {
      st = absl::DataLossError("unparseable reply header");
    }
    if (st.ok() && h.status_code() != 0) {
      st = Status(static_cast<absl::StatusCode>(h.status_code()), h.error());
    }
    if (st.ok() && out_ != nullptr) {
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
  parts_.clear();
  status_ = absl::OkStatus();
  return first;
}

PsClient::PsClient(net::Client* client, SlotRouter router, uint32_t worker)
    : client_(client), router_(std::move(router)), worker_(worker) {
  CHECK_EQ(static_cast<int>(router_.num_servers()), client_->num_servers())
      << "slot router and transport disagree on the number of servers";
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
  net::Message m;
  m.header = h.SerializeAsString();
  return m;
}

PsRequest PsClient::Pull(const PsTable& table, absl::Span<const uint64_t> keys, float* out) {
  PsRequest req;
  req.out_ = out;
  req.dim_ = table.dim;
  req.client_ = client_;
  const int servers = client_->num_servers();
  std::vector<std::vector<uint64_t>> split(servers);
  std::vector<std::vector<uint32_t>> positions(servers);
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t s = router_.Server(table.table_id, keys[i]);
    split[s].push_back(keys[i]);
    positions[s].push_back(static_cast<uint32_t>(i));
  }
  for (int s = 0; s < servers; ++s) {
    if (split[s].empty()) continue;
    net::Message m = MakeRequest(PsHeader::PULL, table, split[s].size());
    m.frames.push_back(net::FrameFromVector(std::move(split[s])));
    req.parts_.push_back({s, client_->Call(s, std::move(m)), std::move(positions[s])});
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

Status PsClient::WaitForStaleness(uint64_t step, uint64_t max_staleness,
                                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(100);
  while (true) {
    PsHeader h;
    h.set_version(kPsWireVersion);
    h.set_op(PsHeader::CLOCK);
    h.set_worker(worker_);
    h.set_worker_step(step);
    net::Message m;
    m.header = h.SerializeAsString();
    VREC_ASSIGN_OR_RETURN(net::Message reply, client_->Call(0, std::move(m)).get());
    PsHeader r;
    if (!r.ParseFromString(reply.header)) return absl::DataLossError("unparseable clock reply");
    if (r.status_code() != 0)
      return Status(static_cast<absl::StatusCode>(r.status_code()), r.error());
    if (r.min_step() + max_staleness >= step) return absl::OkStatus();
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("worker ", worker_, " at step ", step, " waited ", timeout.count(),
                       " ms for the slowest worker (at step ", r.min_step(), ", staleness bound ",
                       max_staleness, ")"));
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
  net::Message m;
  m.header = h.SerializeAsString();
  VREC_ASSIGN_OR_RETURN(net::Message reply, client_->Call(0, std::move(m)).get());
  PsHeader r;
  if (!r.ParseFromString(reply.header)) return absl::DataLossError("unparseable clock reply");
  if (r.status_code() != 0)
    return Status(static_cast<absl::StatusCode>(r.status_code()), r.error());
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
    net::Message m;
    m.header = h.SerializeAsString();
    replies.push_back(client_->Call(s, std::move(m)));
  }
  std::vector<std::string> out;
  for (int s = 0; s < static_cast<int>(replies.size()); ++s) {
    VREC_ASSIGN_OR_RETURN(net::Message reply, replies[s].get());
    PsHeader h;
    if (!h.ParseFromString(reply.header)) {
      return absl::DataLossError(absl::StrCat("unparseable stats reply from server ", s));
    }
    if (h.status_code() != 0)
      return Status(static_cast<absl::StatusCode>(h.status_code()), h.error());
    out.push_back(h.stats_json());
  }
  return out;
}

}  // namespace vrec::ps
