#include "train/mpi_job.h"

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "glog/logging.h"
#include "net/host_address.h"
#include "train/coordinator.h"
#include "train/job_roles.h"
#include "train/liveness.h"
#include "train/mpi_control_plane.h"

namespace vrec::train {
namespace {

using StartPoint = StatusOr<JobStart>;

// Every rank's endpoint (empty for non-servers), by rank.
std::vector<std::string> AllGatherEndpoints(const std::string& mine, int size) {
  constexpr int kMax = 256;
  char buf[kMax] = {};
  std::strncpy(buf, mine.c_str(), kMax - 1);
  std::vector<char> all(static_cast<size_t>(kMax) * size);
  MPI_Allgather(buf, kMax, MPI_CHAR, all.data(), kMax, MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::string> out;
  for (int r = 0; r < size; ++r) out.emplace_back(all.data() + static_cast<size_t>(r) * kMax);
  return out;
}

// A server bound to every interface advertises an address the other
// machines can dial instead (net/host_address.h).
std::string Advertised(const std::string& endpoint) {
  if (endpoint.find("0.0.0.0") == std::string::npos) return endpoint;
  return absl::StrReplaceAll(endpoint, {{"0.0.0.0", net::AdvertisedHost()}});
}

// Rank 0's `mine` (text, or an error) on every rank; collective over
// MPI_COMM_WORLD (what other ranks pass is ignored).
StatusOr<std::string> BroadcastFromRankZero(int rank, const StatusOr<std::string>& mine) {
  std::string text;
  int64_t header[2] = {0, 0};
  if (rank == 0) {
    text = mine.ok() ? *mine : std::string(mine.status().message());
    header[0] = static_cast<int64_t>(mine.status().code());
    header[1] = static_cast<int64_t>(text.size());
  }
  MPI_Bcast(header, 2, MPI_INT64_T, 0, MPI_COMM_WORLD);
  text.resize(static_cast<size_t>(header[1]));
  MPI_Bcast(text.data(), static_cast<int>(header[1]), MPI_BYTE, 0, MPI_COMM_WORLD);
  if (header[0] != 0) return Status(static_cast<absl::StatusCode>(header[0]), text);
  return text;
}

// The job's data-plane keys, made by rank 0 (the launch is the trust root)
// and handed to every rank; collective over MPI_COMM_WORLD. Every rank gets
// rank 0's error when it could not make them.
StatusOr<net::DataPlaneKeys> ShareJobKeys(const ServerOptions& options, int rank) {
  StatusOr<std::string> mine;
  if (rank == 0) {
    StatusOr<net::DataPlaneKeys> keys = JobKeys(options);
    mine = keys.ok() ? StatusOr<std::string>(net::SerializeKeys(*keys)) : keys.status();
  }
  VREC_ASSIGN_OR_RETURN(const std::string bytes, BroadcastFromRankZero(rank, mine));
  return net::ParseKeys(bytes);
}

// --bind_network's address on this machine (net/host_address.h); empty
// without it.
StatusOr<std::string> BindNetworkAddress(const ServerOptions& o) {
  if (o.bind_network.empty()) return std::string();
  StatusOr<std::string> a = net::AddressInNetworks(o.bind_network);
  if (a.ok()) return a;
  return Status(a.status().code(),
                absl::StrCat("--bind_network=", o.bind_network, ": ", a.status().message()));
}

// The address this rank binds: --bind_network's address on this machine,
// every interface for --bind_host='*' (Advertised names it), or --bind_host.
StatusOr<std::string> BindAddress(const ServerOptions& o) {
  if (o.bind_host == "*") return std::string("0.0.0.0");
  VREC_ASSIGN_OR_RETURN(std::string own, BindNetworkAddress(o));
  return own.empty() ? o.bind_host : own;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "?";
  return name;
}

// Who rank `rank` is, for messages: "parameter server 1 (rank 2 on host h2)".
std::string RankName(int rank, int num_servers, const std::string& host) {
  const std::string role = rank == 0             ? "the coordinator"
                           : rank <= num_servers ? absl::StrCat("parameter server ", rank - 1)
                                                 : absl::StrCat("worker ", rank - 1 - num_servers);
  return absl::StrCat(role, " (rank ", rank, " on host ", host, ")");
}

// This rank's part of the job's liveness (train/liveness.h): its endpoint,
// and its watch (rank 0 watches every rank, the others rank 0). Collective
// over MPI_COMM_WORLD. Ranks whose endpoint did not start are not watched.
struct RankLiveness {
  std::unique_ptr<LivenessEndpoint> endpoint;
  std::unique_ptr<LivenessWatch> watch;
};
RankLiveness StartLiveness(const TrainOptions& options, const StatusOr<net::DataPlaneKeys>& keys,
                           int rank, int size) {
  RankLiveness l;
  const double timeout = options.coordinator.failure_timeout_seconds;
  const std::string who = RankName(rank, options.server.servers, HostName());
  StatusOr<std::string> host = BindAddress(options.server);
  if (timeout > 0 && keys.ok() && host.ok()) {
    const std::string bind = host->empty() || *host == "inproc" ? std::string("127.0.0.1") : *host;
    StatusOr<std::unique_ptr<LivenessEndpoint>> e =
        LivenessEndpoint::Start(absl::StrCat("tcp://", bind, ":*"), *keys, who);
    if (e.ok()) {
      l.endpoint = std::move(*e);
    } else {
      LOG(WARNING) << who << ": no liveness endpoint (it cannot be watched): " << e.status();
    }
  }
  const std::string mine =
      l.endpoint ? absl::StrCat(Advertised(l.endpoint->endpoint()), "\t", who) : "";
  const std::vector<std::string> all = AllGatherEndpoints(mine, size);
  if (timeout <= 0 || !keys.ok()) return l;
  std::vector<LivenessPeer> peers;
  for (int r = 0; r < size; ++r) {
    const size_t tab = all[r].find('\t');
    if (r == rank || (rank != 0 && r != 0) || tab == std::string::npos) continue;
    peers.push_back({all[r].substr(tab + 1), all[r].substr(0, tab)});
  }
  LivenessOptions lo;
  lo.timeout_seconds = timeout;
  lo.on_lost = [rank](const Status& status) {
    if (rank != 0) {
      EndProcess(Status(status.code(),
                        absl::StrCat(status.message(), "; this rank ends so that the job ends")));
    }
    // Rank 0: the coordinator ends the job (CoordinatedJob::peers_lost); if
    // it is stuck (in a collective with the lost rank), this thread does.
    std::thread([status] {
      std::this_thread::sleep_for(std::chrono::seconds(15));
      EndProcess(Status(status.code(), absl::StrCat(status.message(),
                                                    "; the coordinator was stuck, rank 0 ends")));
    }).detach();
  };
  StatusOr<std::unique_ptr<LivenessWatch>> w =
      LivenessWatch::Start(std::move(peers), *keys, std::move(lo));
  if (w.ok()) {
    l.watch = std::move(*w);
  } else {
    LOG(WARNING) << who << ": not watching the other ranks: " << w.status();
  }
  return l;
}

// --max_seconds as a promise: whatever a rank does, this one ends by
// max_seconds + grace after it started (so a job with a frozen rank ends
// too: mpirun ends the others once one has gone).
void StartDeadline(const TrainOptions& options, int rank, int num_servers) {
  const double max_seconds = options.worker.max_seconds;
  if (max_seconds <= 0) return;
  const double limit = max_seconds + options.coordinator.max_seconds_grace;
  const std::string who = RankName(rank, num_servers, HostName());
  std::thread([limit, who, max_seconds] {
    std::this_thread::sleep_for(std::chrono::duration<double>(limit));
    EndProcess(absl::DeadlineExceededError(absl::StrFormat(
        "%s: the job has not ended %.0f s after it started (--max_seconds=%.0f plus "
        "--max_seconds_grace); ending it as promised",
        who, limit, max_seconds)));
  }).detach();
}

// Where the job starts (a checkpoint to resume, a warm start, or scratch):
// rank 0 finds and verifies it (reading every byte of a checkpoint once),
// the others open the one it chose (a shared file system) without reading
// its files again. Collective over MPI_COMM_WORLD; every rank gets rank 0's
// error.
StartPoint ShareJobStart(const TrainOptions& options, int rank, models::ModelSpec* spec,
                         int num_workers) {
  StartPoint found = JobStart();
  StatusOr<std::string> ref;  // what rank 0 chose (JobStart::Ref)
  if (rank == 0) {
    found = FindJobStart(options, spec, num_workers);
    ref = found.ok() ? StatusOr<std::string>(found->Ref()) : found.status();
  }
  ref = BroadcastFromRankZero(rank, ref);
  if (rank == 0) return found;
  if (!ref.ok()) return ref.status();
  return OpenJobStart(*ref, options, spec, num_workers);
}

// A server rank: starts its server, tells every rank its endpoint, then
// serves the coordinator's commands until shut down.
Status RunServerRank(const models::ModelSpec& spec, const TrainOptions& options,
                     const StatusOr<net::DataPlaneKeys>& keys, int index, int num_servers,
                     int num_workers, int world_size, const StartPoint& start) {
  ServerOptions o = options.server;
  StatusOr<std::string> own = BindAddress(o);
  if (own.ok()) o.bind_host = *own;
  TemporarySpillCleanup cleanup(options);  // after the server, whatever happens
  StatusOr<ServerProcess> server =
      !start.ok()  ? StatusOr<ServerProcess>(start.status())
      : !keys.ok() ? StatusOr<ServerProcess>(keys.status())
      : !own.ok()  ? StatusOr<ServerProcess>(own.status())
      : o.bind_host == "inproc"
          ? StatusOr<ServerProcess>(absl::InvalidArgumentError(
                "--bind_host=inproc serves only this process; under mpirun use an address or *"))
          : StartServer(spec, o, *keys, SpillRoot(options), index, num_workers, &*start,
                        num_servers);
  const std::string endpoint = server.ok() ? Advertised(server->endpoint) : "";
  AllGatherEndpoints(endpoint, world_size);
  if (!server.ok()) return server.status();
  LOG(INFO) << "parameter server " << index << " serving at " << endpoint;
  ServeCommands(server->storage.get(), index);
  server->server->Stop();
  return absl::OkStatus();
}

// Rank 0 reads the dataset once (LoadJobData, full: label counts, fitted
// quantiles); the workers read their own part (the manifest, the corpus's
// ids) and get the rest from rank 0. Collective over `peers` (rank 0 and the
// workers); false on every rank if any of them failed.
bool ShareJobData(const ModelKind& kind, const TrainOptions& options, const models::ModelSpec& spec,
                  int rank, bool servers_up, const StartPoint& start, MPI_Comm peers, JobData* data,
                  Status* status) {
  StatusOr<JobData> d = LoadJobData(kind, options.data_dir, options.worker.stream, spec,
                                    /*full=*/rank == 0, options.worker.validation_users);
  if (d.ok()) {
    *data = std::move(*d);
  } else {
    *status = d.status();
  }
  if (status->ok() && !start.ok()) *status = start.status();
  if (status->ok() && start->resume) {
    *status = CheckResumeData(start->resume->manifest, data->manifest, options.data_dir);
  }
  if (status->ok() && rank == 0) {  // the normalisers every rank gets below
    StatusOr<std::vector<QuantileInfo>> q = JobQuantiles(*start, std::move(data->quantiles));
    if (q.ok()) {
      data->quantiles = std::move(*q);
    } else {
      *status = q.status();
    }
  }
  int ok = status->ok() && servers_up ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, peers);
  if (!all_ok) return false;
  // What rank 0 computed: the quantiles (a serialized TrainedModel holding
  // only them), then the corpus's label counts (in corpus order).
  TrainedModel shared;
  if (rank == 0) {
    for (const auto& q : data->quantiles) *shared.add_quantiles() = q;
  }
  std::string bytes = rank == 0 ? shared.SerializeAsString() : std::string();
  int64_t n = static_cast<int64_t>(bytes.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, peers);
  bytes.resize(static_cast<size_t>(n));
  MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_BYTE, 0, peers);
  int parsed = rank == 0 || shared.ParseFromString(bytes) ? 1 : 0, all_parsed = 0;
  MPI_Allreduce(&parsed, &all_parsed, 1, MPI_INT, MPI_MIN, peers);
  if (!all_parsed) {
    *status = absl::DataLossError("the quantiles broadcast by rank 0 did not parse");
    return false;
  }
  data->quantiles.assign(shared.quantiles().begin(), shared.quantiles().end());
  int64_t counts = static_cast<int64_t>(data->corpus.label_counts.size());
  MPI_Bcast(&counts, 1, MPI_INT64_T, 0, peers);
  if (counts > 0) {
    // Every rank read the same corpus: its size must match rank 0's counts.
    int same = static_cast<int64_t>(data->corpus.ids.size()) == counts ? 1 : 0, all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, peers);
    if (!all_same) {
      *status = absl::FailedPreconditionError("the ranks read corpora of different sizes");
      return false;
    }
    data->corpus.label_counts.resize(static_cast<size_t>(counts));
    MPI_Bcast(data->corpus.label_counts.data(), static_cast<int>(counts), MPI_DOUBLE, 0, peers);
  }
  // The validation slice's ids, which no worker trains on.
  std::vector<uint64_t> held_out;
  if (rank == 0 && data->held_out != nullptr) {
    held_out.assign(data->held_out->begin(), data->held_out->end());
  }
  int64_t held = static_cast<int64_t>(held_out.size());
  MPI_Bcast(&held, 1, MPI_INT64_T, 0, peers);
  if (held > 0) {
    held_out.resize(static_cast<size_t>(held));
    MPI_Bcast(held_out.data(), static_cast<int>(held), MPI_UINT64_T, 0, peers);
    if (rank != 0) {
      data->held_out =
          std::make_shared<const absl::flat_hash_set<uint64_t>>(held_out.begin(), held_out.end());
    }
  }
  return true;
}

// A worker rank: trains, reporting to rank 0, until its share is done or it
// is stopped. Its last report reaches rank 0 in every case.
Status RunWorkerRank(const ModelKind& kind, const models::ModelSpec& spec, JobData& data,
                     const TrainOptions& options, const net::ServerSet& servers_at, int worker,
                     int num_workers, const StartPoint& start, Status startup, MPI_Comm peers,
                     const std::atomic<bool>* stop) {
  MpiWorkerChannel channel;
  Status s = startup;
  if (s.ok()) s = kind.PrepareWorkers(spec, &data);
  if (s.ok()) {  // reports its last progress itself
    WorkerProgress resumed;
    const WorkerProgress* from = nullptr;
    if (start.ok() && start->resume) {
      for (const WorkerProgress& p : start->resume->manifest.workers()) {
        if (p.worker() == worker) resumed = p;
      }
      from = &resumed;
    }
    s = RunWorkerRole(kind, spec, data, options.worker, servers_at, worker, num_workers, from,
                      &channel, stop);
  } else {
    WorkerProgress last;
    MarkLastReport(worker, s, &last);
    channel.Report(last);
  }
  MPI_Barrier(peers);  // rank 0 sends nothing more after this
  channel.DrainStrayMessages();
  return s;
}

}  // namespace

bool LaunchedByMpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

StatusOr<nlohmann::json> TrainMpi(const TrainOptions& options, const std::atomic<bool>* stop) {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int servers = options.server.servers;
  const int workers = size - 1 - servers;
  auto finalize = [&](StatusOr<nlohmann::json> result) {
    MPI_Finalize();
    return result;
  };
  if (servers < 1 || workers < 1) {
    return finalize(absl::InvalidArgumentError(absl::StrCat(
        "mpirun -np ", size, " with --servers=", servers, " leaves ", workers,
        " workers: use -np of at least --servers + 2 (one coordinator, the servers, then "
        "workers)")));
  }
  StatusOr<const ModelKind*> kind = FindModelKind(options.model);
  if (!kind.ok()) return finalize(kind.status());
  StatusOr<models::ModelSpec> spec = JobSpec(**kind, options);
  if (!spec.ok()) return finalize(spec.status());
  const bool is_server = rank >= 1 && rank <= servers;
  const StartPoint start = ShareJobStart(options, rank, &*spec, workers);

  const StatusOr<net::DataPlaneKeys> keys = ShareJobKeys(options.server, rank);
  StartDeadline(options, rank, servers);
  const RankLiveness liveness = StartLiveness(options, keys, rank, size);

  // Rank 0 and the workers share the corpus and its label counts.
  MPI_Comm peers;
  MPI_Comm_split(MPI_COMM_WORLD, is_server ? 1 : 0, rank, &peers);
  if (is_server) {
    Status s = RunServerRank(*spec, options, keys, rank - 1, servers, workers, size, start);
    MPI_Comm_free(&peers);
    if (!s.ok())
      return finalize(Status(s.code(), absl::StrCat("server ", rank - 1, ": ", s.message())));
    return finalize(nlohmann::json());
  }
  std::vector<std::string> all = AllGatherEndpoints("", size);
  net::ServerSet servers_at;
  if (keys.ok()) servers_at.keys = *keys;
  for (int r = 1; r <= servers; ++r) servers_at.endpoints.push_back(all[r]);
  bool servers_up = true;
  for (const auto& e : servers_at.endpoints) servers_up &= !e.empty();
  JobData data;
  Status data_status;
  const bool all_ok =
      ShareJobData(**kind, options, *spec, rank, servers_up, start, peers, &data, &data_status);
  if (!keys.ok() && data_status.ok()) data_status = keys.status();
  spec->quantiles = data.quantiles;
  const Status startup =
      all_ok ? absl::OkStatus()
      : !data_status.ok()
          ? data_status
          : absl::UnavailableError("the job could not start (see the other ranks' logs)");

  if (rank != 0) {
    Status s = RunWorkerRank(**kind, *spec, data, options, servers_at, rank - 1 - servers, workers,
                             start, startup, peers, stop);
    MPI_Comm_free(&peers);
    if (!s.ok()) return finalize(s);
    return finalize(nlohmann::json());
  }

  // Rank 0: the coordinator.
  const JobStart started = start.ok() ? *start : JobStart();
  if (started.resume) {
    LOG(INFO) << "resuming from " << started.resume->dir << " ("
              << started.resume->manifest.model().examples_trained() << " examples trained)";
  }
  // The model folder first: the coordinator's metrics file goes into it.
  const Status made = options.model_dir.empty() ? absl::OkStatus() : MakeDirs(options.model_dir);
  MpiControlPlane plane(servers, workers);
  LivenessWatch* watch = liveness.watch.get();
  const auto peers_lost = [watch] { return watch == nullptr ? absl::OkStatus() : watch->lost(); };
  plane.set_peers_lost(peers_lost);
  CoordinatedJob job =
      CoordinatedJobOf(**kind, options, *spec, data, servers_at, servers, workers, started);
  if (!all_ok) job.servers_at.endpoints.clear();  // no stats from servers that are not all up
  job.peers_lost = peers_lost;
  // Once every worker is done, rank 0 sends them nothing more: they may
  // leave (drain stray stop and pause messages) while it saves and evaluates.
  job.workers_done = [&peers] {
    MPI_Barrier(peers);
    MPI_Comm_free(&peers);
  };
  Coordinator coordinator(std::move(job), &plane);
  coordinator.Fail(made);
  if (!all_ok) {
    coordinator.Fail(!data_status.ok() ? data_status
                                       : absl::UnavailableError(
                                             "a server or worker could not start (see its log)"));
  }
  StatusOr<nlohmann::json> summary = coordinator.Run(stop);
  if (coordinator.abandoned_workers()) {
    // A rank that never answers again (a silent worker, a rank lost): no
    // collective can finish. Abort, so that mpirun ends every rank and exits
    // non-zero.
    std::cerr << "vrec train: " << summary.status() << std::endl;
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  plane.ShutdownServers();
  if (summary.ok()) (*summary)["launcher"] = "mpirun";
  return finalize(summary);
}

}  // namespace vrec::train
