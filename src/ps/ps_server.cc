#include "ps/ps_server.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "ps/ps_wire.h"

namespace vrec::ps {
namespace {

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
  return MessageWithHeader(h);
}

net::Message PsService::ErrorReply(const Status& status) { return StatusReply(status); }

StatusOr<net::Message> PsService::ServePooled(const PsHeader& header, net::Message& request,
                                              EmbeddingStore* table) {
  const uint64_t n = header.num_keys();
  const bool local = header.local_rows_address() != 0;
  if (local && !request.local) {
    return absl::InvalidArgumentError(
        "a request naming memory by address (local_rows_address) arrived over the network");
  }
  const size_t want_frames = local ? 4 : 5;
  if (request.frames.size() != want_frames) {
    return absl::InvalidArgumentError(absl::StrCat("PUSH_POOLED needs ", want_frames,
                                                   " data frames, got ", request.frames.size()));
  }
  auto count = [&](int f, size_t width, const char* what) -> StatusOr<size_t> {
    if (request.frames[f].size() % width != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " frame of ", request.frames[f].size(), " bytes"));
    }
    return request.frames[f].size() / width;
  };
  VREC_ASSIGN_OR_RETURN(size_t num_keys, count(0, sizeof(uint64_t), "key"));
  VREC_ASSIGN_OR_RETURN(size_t num_offsets, count(1, sizeof(uint32_t), "use offset"));
  VREC_RETURN_IF_ERROR(count(2, sizeof(uint32_t), "use row").status());
  VREC_RETURN_IF_ERROR(count(3, sizeof(float), "use weight").status());
  if (num_keys != n || num_offsets != n + 1) {
    return absl::InvalidArgumentError(absl::StrCat(num_keys, " keys and ", num_offsets,
                                                   " use offsets for ", n, " keys"));
  }
  // Compared by division: num_pooled * dim wraps around for a huge count.
  const uint64_t num_pooled = header.num_pooled();
  if (!local && (request.frames[4].size() % (sizeof(float) * table->dim()) != 0 ||
                 request.frames[4].size() / (sizeof(float) * table->dim()) != num_pooled)) {
    return absl::InvalidArgumentError(absl::StrCat("pooled frame of ", request.frames[4].size(),
                                                   " bytes for ", num_pooled, " rows of dim ",
                                                   table->dim()));
  }
  if (local && header.local_rows() != num_pooled) {
    return absl::InvalidArgumentError(absl::StrCat("a pooled matrix of ", header.local_rows(),
                                                   " rows, header says ", num_pooled));
  }
  std::vector<uint64_t> key_scratch;
  std::vector<uint32_t> offset_scratch, row_scratch;
  std::vector<float> weight_scratch, pooled_scratch;
  PooledUses uses;
  uses.offsets = FrameAs<uint32_t>(request.frames[1], &offset_scratch);
  uses.rows = FrameAs<uint32_t>(request.frames[2], &row_scratch);
  uses.weights = FrameAs<float>(request.frames[3], &weight_scratch);
  const absl::Span<const uint64_t> keys = FrameAs<uint64_t>(request.frames[0], &key_scratch);
  const float* pooled = nullptr;
  void* const address = reinterpret_cast<void*>(header.local_rows_address());
  if (local) {
    pooled = static_cast<const float*>(address);
    VREC_TSAN_ACQUIRE(address);  // see ServeLocal
  } else {
    pooled = FrameAs<float>(request.frames[4], &pooled_scratch).data();
  }
  Status s = table->PushPooled(keys, uses, pooled, num_pooled);
  if (local) VREC_TSAN_RELEASE(address);
  VREC_RETURN_IF_ERROR(s);
  table->AdvanceStep();
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_num_keys(n);
  return MessageWithHeader(h);
}

StatusOr<net::Message> PsService::ServeLocal(const PsHeader& header, net::Message& request,
                                             EmbeddingStore* table) {
  // An address means something only to a thread of this process: anything
  // that did not come over an in-process endpoint is refused, so no peer
  // can make the server read or write memory it names.
  if (!request.local) {
    return absl::InvalidArgumentError(
        "a request naming memory by address (local_rows_address) arrived over the network");
  }
  const uint64_t n = header.num_keys();
  const std::string& op = PsHeader::Op_Name(header.op());
  if (request.frames.empty() || request.frames.size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat("in-process ", op, " needs 1 or 2 data frames, got ",
                                                   request.frames.size()));
  }
  if (request.frames[0].size() % sizeof(uint64_t) != 0 ||
      request.frames[0].size() / sizeof(uint64_t) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("key frame of ", request.frames[0].size(), " bytes for ", n, " keys"));
  }
  std::vector<uint64_t> key_scratch;
  absl::Span<const uint64_t> keys = FrameAs<uint64_t>(request.frames[0], &key_scratch);
  std::vector<uint32_t> position_scratch;
  absl::Span<const uint32_t> positions;
  if (request.frames.size() == 2) {
    if (request.frames[1].size() != n * sizeof(uint32_t)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "position frame of ", request.frames[1].size(), " bytes for ", n, " keys"));
    }
    positions = FrameAs<uint32_t>(request.frames[1], &position_scratch);
    for (uint32_t p : positions) {
      if (p >= header.local_rows()) {
        return absl::InvalidArgumentError(
            absl::StrCat("position ", p, " in a matrix of ", header.local_rows(), " rows"));
      }
    }
  } else if (n > header.local_rows()) {
    return absl::InvalidArgumentError(
        absl::StrCat(n, " keys for a matrix of ", header.local_rows(), " rows"));
  }
  // The sender's matrix: its thread wrote it (push) or will read it (pull)
  // on the other side of the transport's hand-over, which ThreadSanitizer
  // cannot see (libzmq); PsClient releases the same address.
  void* const address = reinterpret_cast<void*>(header.local_rows_address());
  VREC_TSAN_ACQUIRE(address);
  Status s = header.op() == PsHeader::PULL
                 ? table->PullRows(keys, positions, static_cast<float*>(address))
                 : table->PushRows(keys, positions, static_cast<const float*>(address));
  VREC_TSAN_RELEASE(address);
  VREC_RETURN_IF_ERROR(s);
  if (header.op() == PsHeader::PUSH) table->AdvanceStep();
  PsHeader h;
  h.set_version(kPsWireVersion);
  h.set_num_keys(n);
  return MessageWithHeader(h);
}

std::string PsService::StatsJson() const {
  nlohmann::json all = nlohmann::json::array();
  for (const EmbeddingStore* t : tables_) all.push_back(StatsToJson(t->Stats()));
  return all.dump();
}

net::Message PsService::Handle(net::Message request) {
  PsHeader header;
  if (!header.ParseFromString(request.header)) {
    return StatusReply(absl::InvalidArgumentError(
        absl::StrCat("unparseable request header (", request.header.size(), " bytes)")));
  }
  StatusOr<net::Message> reply = absl::InternalError("no reply");
  try {
    reply = Serve(header, request);
  } catch (const std::bad_alloc&) {
    // Requests are validated before they allocate; one that still does not
    // fit in this machine's memory is refused, and the server carries on.
    reply = absl::ResourceExhaustedError(
        absl::StrCat("out of memory serving a request for ", header.num_keys(), " keys"));
  } catch (const std::exception& e) {
    reply = absl::InternalError(absl::StrCat("serving a request: ", e.what()));
  }
  if (!reply.ok()) {
    LOG_EVERY_N(WARNING, 100) << "parameter server rejected a request: " << reply.status();
    return StatusReply(reply.status());
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
    return MessageWithHeader(h);
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
  if (header.op() == PsHeader::PUSH_POOLED) return ServePooled(header, request, table);
  if (header.op() != PsHeader::PULL && header.op() != PsHeader::PUSH) {
    return absl::InvalidArgumentError(absl::StrCat("unknown op ", header.op()));
  }
  if (header.local_rows_address() != 0) return ServeLocal(header, request, table);
  const size_t want_frames = header.op() == PsHeader::PUSH ? 2 : 1;
  if (request.frames.size() != want_frames) {
    return absl::InvalidArgumentError(absl::StrCat(PsHeader::Op_Name(header.op()), " needs ",
                                                   want_frames, " data frames, got ",
                                                   request.frames.size()));
  }
  // Compared by division: n * 8 wraps around for a huge num_keys.
  if (request.frames[0].size() % sizeof(uint64_t) != 0 ||
      request.frames[0].size() / sizeof(uint64_t) != n) {
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
    net::Message m = MessageWithHeader(h);
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
  return MessageWithHeader(h);
}

}  // namespace vrec::ps
