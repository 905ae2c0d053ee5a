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
#include "absl/strings/str_replace.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "glog/logging.h"
#include "train/saved_model.h"

namespace vrec::train {
namespace {

// Message tags of the control plane.
enum Tag : int {
  kProgressTag = 1,   // worker -> coordinator: WireProgress
  kErrorTag = 2,      // worker -> coordinator: error text (before its last progress)
  kStopTag = 3,       // coordinator -> worker: no payload
  kServerTag = 4,     // coordinator -> server: ServerCommand
  kServerAckTag = 5,  // server -> coordinator: uint64 rows saved, or -1 on failure + kErrorTag
  kPauseTag = 6,      // coordinator -> worker: pause for a checkpoint (no payload)
  kResumeTag = 7,     // coordinator -> worker: the checkpoint is written, go on
  kSequenceTag = 8,   // coordinator -> server: int64 checkpoint sequence (after kCheckpoint)
};

enum ServerCommand : int { kSave = 1, kShutdown = 2, kCheckpoint = 3 };

// WorkerProgress on the wire (plain data; all ranks run the same binary).
struct WireProgress {
  int32_t worker;
  int32_t epoch;
  int32_t done;
  int32_t paused;
  uint64_t examples, steps, skipped;
  double loss_sum, seconds;
  // SourcePosition
  int32_t pos_epoch;
  uint32_t pos_shard;
  uint64_t pos_offset, pos_record;
  int64_t pos_next_user;
  uint64_t pos_pending, pos_next_index;
};

WireProgress ToWire(const WorkerProgress& p) {
  const SourcePosition& q = p.position;
  return WireProgress{p.worker,   p.epoch,       p.done ? 1 : 0, p.paused ? 1 : 0,
                      p.examples, p.steps,       p.skipped,      p.loss_sum,
                      p.seconds,  q.epoch(),     q.shard(),      q.offset(),
                      q.record(), q.next_user(), q.pending(),    q.next_index()};
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
  p.paused = w.paused != 0;
  p.position.set_epoch(w.pos_epoch);
  p.position.set_shard(w.pos_shard);
  p.position.set_offset(w.pos_offset);
  p.position.set_record(w.pos_record);
  p.position.set_next_user(w.pos_next_user);
  p.position.set_pending(w.pos_pending);
  p.position.set_next_index(w.pos_next_index);
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

Status RunServerRank(const ModelSpec& spec, const TrainOptions& options, int index, int num_servers,
                     int num_workers, int world_size,
                     const StatusOr<std::optional<FoundCheckpoint>>& resume) {
  TrainOptions o = options;
  if (o.bind_host == "*") o.bind_host = "0.0.0.0";
  StatusOr<ServerProcess> server =
      !resume.ok() ? StatusOr<ServerProcess>(resume.status())
      : o.bind_host == "inproc"
          ? StatusOr<ServerProcess>(absl::InvalidArgumentError(
                "--bind_host=inproc serves only this process; under mpirun use an address or *"))
          : StartServer(spec, o, index, num_workers, resume->has_value() ? &**resume : nullptr,
                        num_servers);
  const std::string endpoint = server.ok() ? Advertised(server->endpoint) : "";
  AllGatherEndpoints(endpoint, world_size);
  if (!server.ok()) return server.status();
  LOG(INFO) << "parameter server " << index << " serving at " << endpoint;
  while (true) {
    int command = 0;
    MPI_Recv(&command, 1, MPI_INT, 0, kServerTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (command == kShutdown) break;
    if (command == kCheckpoint) {
      int64_t sequence = 0;
      MPI_Recv(&sequence, 1, MPI_INT64_T, 0, kSequenceTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      StatusOr<ServerState> state = WriteServerCheckpoint(
          server->storage.get(),
          JoinPath(options.checkpoint_dir, CheckpointName(static_cast<uint64_t>(sequence))), index);
      int64_t n = state.ok() ? static_cast<int64_t>(state->rows()) : -1;
      if (!state.ok())
        SendText(absl::StrCat("server ", index, ": ", state.status().ToString()), 0, kErrorTag);
      MPI_Send(&n, 1, MPI_INT64_T, 0, kServerAckTag, MPI_COMM_WORLD);
    }
    if (command == kSave) {
      StatusOr<uint64_t> rows = SaveServerTables(*server->storage, options.model_dir, index);
      int64_t n = rows.ok() ? static_cast<int64_t>(*rows) : -1;
      if (!rows.ok())
        SendText(absl::StrCat("server ", index, ": ", rows.status().ToString()), 0, kErrorTag);
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
  // Every rank reads the checkpoint it resumes from (a shared file system).
  const StatusOr<std::optional<FoundCheckpoint>> resume =
      FindResumeCheckpoint(options, *spec, workers);

  // Coordinator and workers share the corpus and its label counts.
  MPI_Comm peers;
  MPI_Comm_split(MPI_COMM_WORLD, is_server ? 1 : 0, rank, &peers);
  if (is_server) {
    Status s = RunServerRank(*spec, options, rank - 1, servers, workers, size, resume);
    MPI_Comm_free(&peers);
    if (!s.ok())
      return finalize(Status(s.code(), absl::StrCat("server ", rank - 1, ": ", s.message())));
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
    StatusOr<Corpus> c = !m.ok()   ? StatusOr<Corpus>(m.status())
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
  if (data_status.ok() && !resume.ok()) data_status = resume.status();
  int64_t corpus_size = static_cast<int64_t>(data.corpus.ids.size());
  int ok = data_status.ok() && servers_up ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, peers);
  int64_t coordinator_size = corpus_size;
  MPI_Bcast(&coordinator_size, 1, MPI_INT64_T, 0, peers);
  if (all_ok && coordinator_size != corpus_size) all_ok = 0;
  if (all_ok && !ranking) {
    data.corpus.label_counts.resize(static_cast<size_t>(corpus_size));
    MPI_Bcast(data.corpus.label_counts.data(), static_cast<int>(corpus_size), MPI_DOUBLE, 0, peers);
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
      WorkerHooks hooks;
      WorkerProgress resumed;
      if (resume.ok() && resume->has_value()) {
        for (const WorkerState& ws : (*resume)->manifest.workers()) {
          if (ws.worker() == w) resumed = FromWorkerState(ws);
        }
        hooks.resume = &resumed;
      }
      hooks.pause_requested = [&] {
        int flag = 0;
        MPI_Iprobe(0, kPauseTag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
        if (flag) MPI_Recv(nullptr, 0, MPI_BYTE, 0, kPauseTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        return flag != 0;
      };
      hooks.paused = [&](const WorkerProgress& p) {
        WireProgress wp = ToWire(p);
        MPI_Send(&wp, sizeof(wp), MPI_BYTE, 0, kProgressTag, MPI_COMM_WORLD);
        MPI_Recv(nullptr, 0, MPI_BYTE, 0, kResumeTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        return absl::OkStatus();
      };
      if (!sampler.ok()) {
        s = sampler.status();
      } else {
        s = RunWorker(
            *spec, data, *sampler, options, endpoints, w, workers, &stop_me,
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
            },
            hooks);
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
    for (int tag : {kStopTag, kPauseTag}) {
      int flag = 1;
      while (flag) {
        MPI_Iprobe(0, tag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
        if (flag) MPI_Recv(nullptr, 0, MPI_BYTE, 0, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      }
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
  const CheckpointManifest* resumed_manifest =
      resume.ok() && resume->has_value() ? &(*resume)->manifest : nullptr;
  ProgressTracker tracker(options, workers, data.train_records, resumed_manifest);
  if (resumed_manifest != nullptr) {
    LOG(INFO) << "resuming from " << (*resume)->dir << " ("
              << resumed_manifest->model().examples_trained() << " examples trained)";
    for (const WorkerState& ws : resumed_manifest->workers()) {
      if (ws.worker() >= 0 && ws.worker() < workers) last[ws.worker()] = FromWorkerState(ws);
    }
  }
  CheckpointSchedule schedule(options, tracker.examples());
  bool pause_sent = false;
  std::vector<std::optional<WorkerProgress>> paused(workers);
  // Every server writes its part of checkpoint `sequence`, then the manifest.
  auto write_checkpoint = [&](uint64_t sequence, const std::vector<WorkerProgress>& states) {
    Status status;
    std::vector<ServerState> server_states(servers);
    for (int r = 1; r <= servers; ++r) {
      int c = kCheckpoint;
      int64_t seq = static_cast<int64_t>(sequence);
      MPI_Send(&c, 1, MPI_INT, r, kServerTag, MPI_COMM_WORLD);
      MPI_Send(&seq, 1, MPI_INT64_T, r, kSequenceTag, MPI_COMM_WORLD);
    }
    for (int r = 1; r <= servers; ++r) {
      int64_t n = 0;
      MPI_Recv(&n, 1, MPI_INT64_T, r, kServerAckTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (n < 0) {
        const std::string e = RecvText(r, kErrorTag);
        if (status.ok()) status = absl::InternalError(e);
      } else {
        server_states[r - 1].set_rows(static_cast<uint64_t>(n));
      }
    }
    if (!status.ok()) return status;
    return CommitJobCheckpoint(*spec, options, servers, sequence, states, server_states,
                               tracker.seconds());
  };
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
      if (wp.paused != 0 && w >= 0 && w < workers) {
        paused[w] = FromWire(wp);
        last[w] = *paused[w];
        last[w].paused = false;
        tracker.Update(last[w]);
      } else if (wp.done != 0) {
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
    if (all_ok && first_error.empty() && !pause_sent && schedule.Due(tracker.examples())) {
      for (int w = 0; w < workers; ++w) {
        if (!done[w]) MPI_Send(nullptr, 0, MPI_BYTE, 1 + servers + w, kPauseTag, MPI_COMM_WORLD);
      }
      pause_sent = true;
    }
    if (pause_sent) {  // every worker paused or done: write it, then let them go on
      bool all = true;
      std::vector<WorkerProgress> states(workers);
      for (int w = 0; w < workers; ++w) {
        if (paused[w]) {
          states[w] = *paused[w];
        } else if (done[w]) {
          states[w] = last[w];
        } else {
          all = false;
        }
      }
      if (all) {
        if (first_error.empty()) {
          uint64_t examples = 0;
          for (const auto& st : states) examples += st.examples;
          Status s = write_checkpoint(schedule.Taken(examples), states);
          if (!s.ok()) {
            LOG(ERROR) << s;
            first_error = s.ToString();
            send_stop();
          }
        }
        for (int w = 0; w < workers; ++w) {
          if (paused[w])
            MPI_Send(nullptr, 0, MPI_BYTE, 1 + servers + w, kResumeTag, MPI_COMM_WORLD);
          paused[w].reset();
        }
        pause_sent = false;
      }
    }
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
  if (!options.checkpoint_dir.empty()) {  // the final state, to resume or export from
    status = write_checkpoint(schedule.Taken(tracker.examples()), last);
  }
  if (status.ok() && !options.model_dir.empty()) {
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
