#include "train/mpi_job.h"

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "glog/logging.h"
#include "train/saved_model.h"

namespace vrec::train {
namespace {

// Message tags of the control plane.
enum Tag : int {
  kProgressTag = 1,  // worker -> coordinator: WireProgress
  kErrorTag = 2,     // worker -> coordinator: error text (before its last progress)
  kStopTag = 3,      // coordinator -> worker: no payload
  kServerTag = 4,    // coordinator -> server: ServerCommand
  kServerAckTag = 5, // server -> coordinator: uint64 rows saved, or -1 on failure + kErrorTag
};

enum ServerCommand : int { kSave = 1, kShutdown = 2 };

// WorkerProgress on the wire (plain data; all ranks run the same binary).
struct WireProgress {
  int32_t worker;
  int32_t epoch;
  int32_t done;
  int32_t pad;
  uint64_t examples, steps, skipped;
  double loss_sum, seconds;
};

WireProgress ToWire(const WorkerProgress& p) {
  return WireProgress{p.worker, p.epoch, p.done ? 1 : 0, 0, p.examples, p.steps, p.skipped,
                      p.loss_sum, p.seconds};
}

WorkerProgress FromWire(const WireProgress& w) {
  WorkerProgress p;
  p.worker = w.worker;
  p.epoch = w.epoch;
  p.done = w.done != 0;
  p.examples = w.examples;
  p.steps = w.steps;
  p.skipped = w.skipped;
  p.loss_sum = w.loss_sum;
  p.seconds = w.seconds;
  return p;
}

void SendText(const std::string& text, int dest, int tag) {
  MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, dest, tag, MPI_COMM_WORLD);
}

std::string RecvText(int source, int tag) {
  MPI_Status st;
  MPI_Probe(source, tag, MPI_COMM_WORLD, &st);
  int n = 0;
  MPI_Get_count(&st, MPI_CHAR, &n);
  std::string text(static_cast<size_t>(n), '\0');
  MPI_Recv(text.data(), n, MPI_CHAR, st.MPI_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return text;
}

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

// A server bound to every interface advertises this host's name instead.
std::string Advertised(const std::string& endpoint) {
  if (endpoint.find("0.0.0.0") == std::string::npos) return endpoint;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return absl::StrReplaceAll(endpoint, {{"0.0.0.0", host}});
}

Status RunServerRank(const ModelSpec& spec, const TrainOptions& options, int index,
                     int num_workers, int world_size) {
  TrainOptions o = options;
  if (o.bind_host == "*") o.bind_host = "0.0.0.0";
  StatusOr<ServerProcess> server =
      o.bind_host == "inproc"
          ? StatusOr<ServerProcess>(absl::InvalidArgumentError(
                "--bind_host=inproc serves only this process; under mpirun use an address or *"))
          : StartServer(spec, o, index, num_workers);
  const std::string endpoint = server.ok() ? Advertised(server->endpoint) : "";
  AllGatherEndpoints(endpoint, world_size);
  if (!server.ok()) return server.status();
  LOG(INFO) << "parameter server " << index << " serving at " << endpoint;
  while (true) {
    int command = 0;
    MPI_Recv(&command, 1, MPI_INT, 0, kServerTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (command == kShutdown) break;
    if (command == kSave) {
      StatusOr<uint64_t> rows = SaveServerTables(*server->storage, options.model_dir, index);
      int64_t n = rows.ok() ? static_cast<int64_t>(*rows) : -1;
      if (!rows.ok()) SendText(absl::StrCat("server ", index, ": ", rows.status().ToString()), 0,
                               kErrorTag);
      MPI_Send(&n, 1, MPI_INT64_T, 0, kServerAckTag, MPI_COMM_WORLD);
    }
  }
  server->server->Stop();
  return absl::OkStatus();
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
  const int servers = options.servers;
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
  StatusOr<ModelSpec> spec = BuildSpec(options);
  if (!spec.ok()) return finalize(spec.status());
  const bool is_server = rank >= 1 && rank <= servers;

  // Coordinator and workers share the corpus and its label counts.
  MPI_Comm peers;
  MPI_Comm_split(MPI_COMM_WORLD, is_server ? 1 : 0, rank, &peers);
  if (is_server) {
    Status s = RunServerRank(*spec, options, rank - 1, workers, size);
    MPI_Comm_free(&peers);
    if (!s.ok()) return finalize(Status(s.code(), absl::StrCat("server ", rank - 1, ": ",
                                                                s.message())));
    return finalize(nlohmann::json());
  }
  std::vector<std::string> all = AllGatherEndpoints("", size);
  std::vector<std::string> endpoints;
  for (int r = 1; r <= servers; ++r) endpoints.push_back(all[r]);
  bool servers_up = true;
  for (const auto& e : endpoints) servers_up &= !e.empty();

  // The coordinator reads the dataset once (label counts, or the ranking
  // features' quantiles); workers get the result.
  const bool ranking = spec->kind == "ranking";
  JobData data;
  Status data_status;
  if (rank == 0) {
    StatusOr<JobData> d = LoadJobData(options, *spec);
    if (d.ok()) {
      data = std::move(*d);
    } else {
      data_status = d.status();
    }
  } else {
    StatusOr<DatasetManifest> m = ReadManifest(options.data_dir);
    StatusOr<Corpus> c = !m.ok() ? StatusOr<Corpus>(m.status())
                         : ranking ? StatusOr<Corpus>(Corpus())
                                   : LoadCorpus(options.data_dir, *m, false);
    if (c.ok()) {
      data.manifest = *m;
      data.corpus = std::move(*c);
      if (options.stream) {  // each worker rank simulates its own users
        auto world = GeneratedWorld::Load(options.data_dir, data.manifest);
        if (world.ok()) {
          data.world = *world;
        } else {
          data_status = world.status();
        }
      }
    } else {
      data_status = c.status();
    }
  }
  int64_t corpus_size = static_cast<int64_t>(data.corpus.ids.size());
  int ok = data_status.ok() && servers_up ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, peers);
  int64_t coordinator_size = corpus_size;
  MPI_Bcast(&coordinator_size, 1, MPI_INT64_T, 0, peers);
  if (all_ok && coordinator_size != corpus_size) all_ok = 0;
  if (all_ok && !ranking) {
    data.corpus.label_counts.resize(static_cast<size_t>(corpus_size));
    MPI_Bcast(data.corpus.label_counts.data(), static_cast<int>(corpus_size), MPI_DOUBLE, 0,
              peers);
  }
  if (all_ok && ranking) {  // features x quantiles, as one block of doubles
    int64_t shape[2] = {static_cast<int64_t>(data.quantiles.size()),
                        data.quantiles.empty() ? 0 : data.quantiles[0].quantiles_size()};
    MPI_Bcast(shape, 2, MPI_INT64_T, 0, peers);
    std::vector<double> flat(static_cast<size_t>(shape[0] * shape[1]));
    if (rank == 0) {
      for (int64_t f = 0; f < shape[0]; ++f) {
        for (int64_t q = 0; q < shape[1]; ++q) {
          flat[f * shape[1] + q] = data.quantiles[f].quantiles(static_cast<int>(q));
        }
      }
    }
    MPI_Bcast(flat.data(), static_cast<int>(flat.size()), MPI_DOUBLE, 0, peers);
    if (rank != 0) {
      data.quantiles.clear();
      for (int64_t f = 0; f < shape[0]; ++f) {
        QuantileInfo q;
        q.set_feature(RankingContinuousFeatures()[f]);
        for (int64_t k = 0; k < shape[1]; ++k) q.add_quantiles(flat[f * shape[1] + k]);
        data.quantiles.push_back(std::move(q));
      }
    }
  }
  spec->quantiles = data.quantiles;

  if (rank != 0) {  // a worker
    const int w = rank - 1 - servers;
    WorkerProgress last_sent;  // the newest progress (sent, or the final one)
    last_sent.worker = w;
    Status s = all_ok ? absl::OkStatus()
               : !data_status.ok()
                   ? data_status
                   : absl::UnavailableError("the job could not start (see the other ranks' logs)");
    if (s.ok()) {
      StatusOr<model::NegativeSampler> sampler =
          ranking ? model::NegativeSampler::Uniform(1) : BuildSampler(*spec, data.corpus);
      std::atomic<bool> stop_me{false};
      if (!sampler.ok()) {
        s = sampler.status();
      } else {
        s = RunWorker(*spec, data, *sampler, options, endpoints, w, workers, &stop_me,
                      [&](const WorkerProgress& p) {
                        int flag = 0;
                        MPI_Iprobe(0, kStopTag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
                        if (flag || (stop != nullptr && stop->load())) stop_me = true;
                        if (p.done) {  // sent below, after any error text
                          last_sent = p;
                          return;
                        }
                        WireProgress wp = ToWire(p);
                        MPI_Send(&wp, sizeof(wp), MPI_BYTE, 0, kProgressTag, MPI_COMM_WORLD);
                        last_sent = p;
                      });
      }
    }
    if (!s.ok()) SendText(absl::StrCat("worker ", w, ": ", s.ToString()), 0, kErrorTag);
    // The final report, marked done.
    WireProgress wp = ToWire(last_sent);
    wp.worker = w;
    wp.done = s.ok() ? 1 : 2;
    MPI_Send(&wp, sizeof(wp), MPI_BYTE, 0, kProgressTag, MPI_COMM_WORLD);
    // A stop message sent after this worker finished is drained here.
    MPI_Barrier(peers);
    MPI_Comm_free(&peers);
    int flag = 1;
    while (flag) {
      MPI_Iprobe(0, kStopTag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
      if (flag) MPI_Recv(nullptr, 0, MPI_BYTE, 0, kStopTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    if (!s.ok()) return finalize(s);
    return finalize(nlohmann::json());
  }

  // The coordinator.
  auto shutdown_servers = [&] {
    for (int r = 1; r <= servers; ++r) {
      int c = kShutdown;
      MPI_Send(&c, 1, MPI_INT, r, kServerTag, MPI_COMM_WORLD);
    }
  };
  std::vector<WorkerProgress> last(workers);
  std::vector<bool> done(workers, false);
  std::string first_error;
  if (!options.model_dir.empty()) {
    if (Status s = MakeDirs(options.model_dir); !s.ok() && first_error.empty()) {
      first_error = s.ToString();
    }
  }
  if (!all_ok && first_error.empty()) {
    first_error = !data_status.ok() ? data_status.ToString()
                                    : "a server or worker could not start (see its log)";
  }
  ProgressTracker tracker(options, workers, data.train_records);
  bool stop_sent = false;
  auto send_stop = [&] {
    if (stop_sent) return;
    for (int w = 0; w < workers; ++w) {
      MPI_Send(nullptr, 0, MPI_BYTE, 1 + servers + w, kStopTag, MPI_COMM_WORLD);
    }
    stop_sent = true;
  };
  auto last_eval = std::chrono::steady_clock::now();
  auto last_stats = last_eval;
  nlohmann::json previous_stats;
  int remaining = workers;
  while (remaining > 0) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kErrorTag, MPI_COMM_WORLD, &flag, &st);
    if (flag) {
      std::string e = RecvText(st.MPI_SOURCE, kErrorTag);
      LOG(ERROR) << e;
      if (first_error.empty()) first_error = e;
      send_stop();
    }
    MPI_Iprobe(MPI_ANY_SOURCE, kProgressTag, MPI_COMM_WORLD, &flag, &st);
    if (flag) {
      WireProgress wp;
      MPI_Recv(&wp, sizeof(wp), MPI_BYTE, st.MPI_SOURCE, kProgressTag, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
      const int w = wp.worker;
      if (wp.done != 0) {
        if (w >= 0 && w < workers && !done[w]) {
          done[w] = true;
          --remaining;
          last[w] = FromWire(wp);
          last[w].done = true;
          tracker.Update(last[w]);
        }
      } else if (w >= 0 && w < workers) {
        last[w] = FromWire(wp);
        tracker.Update(last[w]);
      }
      continue;  // drain queued reports before sleeping
    }
    if (stop != nullptr && stop->load()) send_stop();
    tracker.MaybeReport();
    if (all_ok && options.eval_every_seconds > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - last_eval).count() >=
            options.eval_every_seconds) {
      PeriodicEval(*spec, data, options, endpoints, &tracker);
      last_eval = std::chrono::steady_clock::now();
    }
    if (all_ok && options.ps_stats_seconds > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - last_stats).count() >=
            options.ps_stats_seconds) {
      LogPsStats(endpoints, &tracker, &previous_stats);
      last_stats = std::chrono::steady_clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  MPI_Barrier(peers);  // workers drain stray stop messages after this
  MPI_Comm_free(&peers);
  tracker.MaybeReport(/*force=*/true);
  if (!first_error.empty()) {
    shutdown_servers();
    return finalize(absl::InternalError(first_error));
  }

  nlohmann::json summary =
      JobSummary(*spec, servers, workers, tracker, stop != nullptr && stop->load());
  Status status;
  if (!options.model_dir.empty()) {
    int64_t rows = 0;
    for (int r = 1; r <= servers; ++r) {
      int c = kSave;
      MPI_Send(&c, 1, MPI_INT, r, kServerTag, MPI_COMM_WORLD);
    }
    for (int r = 1; r <= servers; ++r) {
      int64_t n = 0;
      MPI_Recv(&n, 1, MPI_INT64_T, r, kServerAckTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (n < 0) {
        status = absl::InternalError(RecvText(r, kErrorTag));
      } else {
        rows += n;
      }
    }
    if (status.ok()) {
      status = WriteTrainedModel(options.model_dir,
                                 MakeTrainedModel(*spec, options, servers, tracker.examples(),
                                                  tracker.steps(), tracker.seconds()));
    }
    summary["model_dir"] = options.model_dir;
    summary["rows_saved"] = rows;
  }
  if (status.ok() && options.final_eval) {
    StatusOr<nlohmann::json> eval =
        EvaluateThroughServers(*spec, data, options, endpoints, options.eval);
    if (eval.ok()) {
      tracker.RecordEval(*eval);
      std::cerr << EvalLine(*eval) << std::endl;
      summary["eval"] = *eval;
    } else {
      status = eval.status();
    }
  }
  shutdown_servers();
  summary["launcher"] = "mpirun";
  if (!status.ok()) return finalize(status);
  return finalize(summary);
}

}  // namespace vrec::train
