#include "train/mpi_control_plane.h"

#include <mpi.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "glog/logging.h"
#include "models/checkpoint.h"
#include "models/saved_model.h"

namespace vrec::train {
namespace {

// Message tags.
enum Tag : int {
  kProgress = 1,  // worker -> coordinator: WorkerProgress
  kError = 2,     // server -> coordinator: error text (before its kAck of -1)
  kStop = 3,      // coordinator -> worker
  kCommand = 4,   // coordinator -> server: ServerCommand
  kAck = 5,       // server -> coordinator: int64 rows, or -1
  kPause = 6,     // coordinator -> worker
  kRelease = 7,   // coordinator -> worker
  kPath = 8,      // coordinator -> server: the folder of a checkpoint or save
};

enum ServerCommand : int { kSave = 1, kShutdown = 2, kCheckpoint = 3 };

void SendBytes(const std::string& bytes, int dest, int tag) {
  MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD);
}

std::string RecvBytes(int source, int tag, int* from = nullptr) {
  MPI_Status st;
  MPI_Probe(source, tag, MPI_COMM_WORLD, &st);
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  std::string bytes(static_cast<size_t>(n), '\0');
  MPI_Recv(bytes.data(), n, MPI_BYTE, st.MPI_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (from != nullptr) *from = st.MPI_SOURCE;
  return bytes;
}

void SendEmpty(int dest, int tag) { MPI_Send(nullptr, 0, MPI_BYTE, dest, tag, MPI_COMM_WORLD); }

// Receives a message of `tag` from `source` if one is waiting.
bool TakeEmpty(int source, int tag) {
  int flag = 0;
  MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
  if (flag) MPI_Recv(nullptr, 0, MPI_BYTE, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return flag != 0;
}

// The ack first (rank 0 waits for it), then the error text it announces.
void Ack(StatusOr<uint64_t> rows, int index) {
  const int64_t n = rows.ok() ? static_cast<int64_t>(*rows) : -1;
  MPI_Send(&n, 1, MPI_INT64_T, 0, kAck, MPI_COMM_WORLD);
  if (!rows.ok()) {
    SendBytes(absl::StrCat("server ", index, ": ", rows.status().ToString()), 0, kError);
  }
}

}  // namespace

MpiControlPlane::MpiControlPlane(int num_servers, int num_workers)
    : num_servers_(num_servers),
      num_workers_(num_workers),
      done_(num_workers, false),
      paused_(num_workers, false) {}

std::vector<WorkerProgress> MpiControlPlane::Poll() {
  std::vector<WorkerProgress> out;
  while (true) {
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, kProgress, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
    if (!flag) return out;
    int from = 0;
    const std::string bytes = RecvBytes(MPI_ANY_SOURCE, kProgress, &from);
    WorkerProgress p;
    const int w = from - 1 - num_servers_;
    if (w < 0 || w >= num_workers_) {
      LOG(ERROR) << "control plane: a progress report from rank " << from << ", not a worker";
      continue;
    }
    if (!p.ParseFromString(bytes) || p.worker() != w) {
      // It may have been the worker's last: count the worker as failed
      // rather than wait for it forever.
      p.Clear();
      p.set_worker(w);
      p.set_done(true);
      p.set_error_code(static_cast<int32_t>(absl::StatusCode::kDataLoss));
      p.set_error(absl::StrCat("an unreadable progress report (", bytes.size(), " bytes)"));
    }
    if (p.paused()) paused_[w] = true;
    if (p.done()) done_[w] = true;
    out.push_back(std::move(p));
  }
}

void MpiControlPlane::RequestPause() {
  for (int w = 0; w < num_workers_; ++w) {
    if (!done_[w]) SendEmpty(WorkerRank(w), kPause);
  }
}

void MpiControlPlane::Release() {
  for (int w = 0; w < num_workers_; ++w) {
    if (paused_[w]) SendEmpty(WorkerRank(w), kRelease);
    paused_[w] = false;
  }
}

void MpiControlPlane::StopWorkers() {
  if (stop_sent_) return;
  for (int w = 0; w < num_workers_; ++w) {
    if (!done_[w]) SendEmpty(WorkerRank(w), kStop);
  }
  stop_sent_ = true;
}

StatusOr<std::vector<uint64_t>> MpiControlPlane::CommandServers(int command,
                                                                const std::string& dir) {
  for (int r = 1; r <= num_servers_; ++r) {
    MPI_Send(&command, 1, MPI_INT, r, kCommand, MPI_COMM_WORLD);
    SendBytes(dir, r, kPath);
  }
  Status status;
  std::vector<uint64_t> rows(num_servers_);
  for (int r = 1; r <= num_servers_; ++r) {
    // A server may take long (a checkpoint of a large table): wait as long
    // as it is alive, never for one that is lost.
    while (true) {
      int arrived = 0;
      MPI_Iprobe(r, kAck, MPI_COMM_WORLD, &arrived, MPI_STATUS_IGNORE);
      if (arrived) break;
      if (peers_lost_) {
        if (Status lost = peers_lost_(); !lost.ok()) return lost;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    int64_t n = 0;
    MPI_Recv(&n, 1, MPI_INT64_T, r, kAck, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (n < 0) {
      const std::string e = RecvBytes(r, kError);
      if (status.ok()) status = absl::InternalError(e);
    } else {
      rows[r - 1] = static_cast<uint64_t>(n);
    }
  }
  if (!status.ok()) return status;
  return rows;
}

StatusOr<std::vector<ServerState>> MpiControlPlane::CheckpointServers(const std::string& dir) {
  VREC_ASSIGN_OR_RETURN(std::vector<uint64_t> rows, CommandServers(kCheckpoint, dir));
  std::vector<ServerState> states(rows.size());
  for (size_t s = 0; s < rows.size(); ++s) {
    // Each server has written its state beside its rows (the checkpoint
    // folder is shared); the acknowledgement carries only its row count.
    const std::string path = JoinPath(dir, models::ServerStateFile(static_cast<int>(s)));
    StatusOr<std::string> bytes = ReadFileToString(path);
    if (!bytes.ok() || !states[s].ParseFromString(*bytes)) {
      return absl::DataLossError(absl::StrCat("server ", s,
                                              " acknowledged its checkpoint part but its state ",
                                              path, " is missing or does not parse"));
    }
    states[s].set_server(static_cast<int32_t>(s));
    states[s].set_rows(rows[s]);
  }
  return states;
}

StatusOr<uint64_t> MpiControlPlane::SaveServers(const std::string& dir) {
  VREC_ASSIGN_OR_RETURN(std::vector<uint64_t> rows, CommandServers(kSave, dir));
  uint64_t total = 0;
  for (uint64_t r : rows) total += r;
  return total;
}

void MpiControlPlane::ShutdownServers() {
  for (int r = 1; r <= num_servers_; ++r) {
    int c = kShutdown;
    MPI_Send(&c, 1, MPI_INT, r, kCommand, MPI_COMM_WORLD);
  }
}

void MpiWorkerChannel::Report(const WorkerProgress& progress) {
  SendBytes(progress.SerializeAsString(), 0, kProgress);
}

bool MpiWorkerChannel::PauseRequested() { return TakeEmpty(0, kPause); }

void MpiWorkerChannel::Paused(const WorkerProgress& progress) {
  WorkerProgress p = progress;
  p.set_paused(true);
  Report(p);
  MPI_Recv(nullptr, 0, MPI_BYTE, 0, kRelease, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

bool MpiWorkerChannel::StopRequested() {
  if (!stop_) stop_ = TakeEmpty(0, kStop);
  return stop_;
}

void MpiWorkerChannel::DrainStrayMessages() {
  for (int tag : {kStop, kPause}) {
    while (TakeEmpty(0, tag)) {
    }
  }
}

void ServeCommands(ps::ServerStorage* storage, int index) {
  while (true) {
    int command = 0;
    MPI_Recv(&command, 1, MPI_INT, 0, kCommand, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (command == kShutdown) return;
    const std::string dir = RecvBytes(0, kPath);
    if (command == kCheckpoint) {
      StatusOr<ServerState> state = models::WriteServerCheckpoint(storage, dir, index);
      Ack(state.ok() ? StatusOr<uint64_t>(state->rows()) : StatusOr<uint64_t>(state.status()),
          index);
    } else if (command == kSave) {
      Ack(models::SaveServerTables(*storage, dir, index), index);
    } else {
      Ack(absl::InvalidArgumentError(absl::StrCat("unknown command ", command)), index);
    }
  }
}

}  // namespace vrec::train
