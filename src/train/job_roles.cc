#include "train/job_roles.h"

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "glog/logging.h"
#include "models/saved_model.h"
#include "ps/slot_router.h"

namespace vrec::train {

StatusOr<JobData> LoadJobData(const ModelKind& kind, const std::string& data_dir, bool stream,
                              const models::ModelSpec& spec, bool full, uint64_t validation_users) {
  JobData d;
  d.dir = data_dir;
  d.validation_users = validation_users;
  VREC_ASSIGN_OR_RETURN(d.manifest, ReadManifest(data_dir));
  if (stream) {
    VREC_ASSIGN_OR_RETURN(d.world, GeneratedWorld::Load(data_dir, d.manifest));
  }
  if (d.manifest.train_streamed() && !stream) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset ", data_dir,
        " holds no training files (written by vrec datagen --write_train=false): train it with "
        "--stream, which simulates its training examples on the fly"));
  }
  VREC_RETURN_IF_ERROR(kind.LoadData(spec, full, &d));
  return d;
}

namespace {

std::string TemporarySpillRoot() { return absl::StrCat("/tmp/vrec-spill-", getpid()); }

}  // namespace

std::string SpillRoot(const TrainOptions& options) {
  if (!options.server.spill_dir.empty()) return options.server.spill_dir;
  if (!options.model_dir.empty()) return JoinPath(options.model_dir, "spill");
  return TemporarySpillRoot();
}

TemporarySpillCleanup::~TemporarySpillCleanup() {
  if (SpillRoot(options_) != TemporarySpillRoot()) return;
  std::error_code ec;
  std::filesystem::remove_all(TemporarySpillRoot(), ec);
  if (ec) LOG(WARNING) << "could not remove " << TemporarySpillRoot() << ": " << ec.message();
}

uint64_t WorkerShare(uint64_t total, int worker, int num_workers) {
  if (total == 0) return 0;
  const uint64_t w = static_cast<uint64_t>(num_workers);
  return total / w + (static_cast<uint64_t>(worker) < total % w ? 1 : 0);
}

StatusOr<std::unique_ptr<ps::ServerStorage>> CreateServerStorage(const models::ModelSpec& spec,
                                                                 const ServerOptions& options,
                                                                 const std::string& spill_root,
                                                                 int server, const JobStart* start,
                                                                 int num_servers) {
  ps::ServerStorageOptions so;
  so.spill_path = JoinPath(spill_root, absl::StrFormat("server-%05d", server));
  so.fresh = true;
  so.memory_budget_bytes = options.memory_bytes;
  so.dense_block_floats = models::kDenseBlockFloats;
  so.glorot_fans = spec.glorot_fans;
  if (start != nullptr && start->resume) {
    return models::RestoreServerStorage(spec.config, so, *start->resume, server, num_servers);
  }
  if (start != nullptr && start->warm) {
    return WarmStartStorage(spec, so, *start->warm, server, num_servers);
  }
  return ps::ServerStorage::Create(spec.config, so);
}

namespace {

// Whether this job can continue `found`; *spec takes its tables' initializers.
StatusOr<std::optional<models::FoundCheckpoint>> Adopt(models::FoundCheckpoint found,
                                                       const WorkerOptions& workers,
                                                       models::ModelSpec* spec, int num_workers) {
  for (TableConfig& t : *spec->config.mutable_tables()) {
    for (const TableConfig& saved : found.manifest.model().config().tables()) {
      if (saved.name() == t.name()) *t.mutable_initializer() = saved.initializer();
    }
  }
  VREC_RETURN_IF_ERROR(models::CheckResumable(found.manifest, *spec, num_workers,
                                              workers.batch_size, workers.epochs,
                                              workers.max_examples, workers.stream));
  if (found.manifest.validation_users() != workers.validation_users) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot resume: the checkpoint was trained with --validation_users=",
                     found.manifest.validation_users(), ", this run has ", workers.validation_users,
                     "; pass the same setting (the examples held out of training depend on it)"));
  }
  return std::optional<models::FoundCheckpoint>(std::move(found));
}

}  // namespace

StatusOr<std::optional<models::FoundCheckpoint>> FindResumeCheckpoint(
    const CheckpointOptions& checkpoint, const WorkerOptions& workers, models::ModelSpec* spec,
    int num_workers) {
  if (!checkpoint.resume) return std::optional<models::FoundCheckpoint>();
  if (checkpoint.dir.empty()) {
    return absl::InvalidArgumentError(
        "--resume needs --checkpoint_dir (where the checkpoints are)");
  }
  StatusOr<models::FoundCheckpoint> found = models::FindCheckpoint(checkpoint.dir);
  if (absl::IsNotFound(found.status())) {
    LOG(INFO) << "--resume: " << found.status().message() << "; starting from scratch";
    return std::optional<models::FoundCheckpoint>();
  }
  VREC_RETURN_IF_ERROR(found.status());
  return Adopt(std::move(*found), workers, spec, num_workers);
}

StatusOr<std::optional<models::FoundCheckpoint>> ResumeCheckpointAt(const std::string& dir,
                                                                    const WorkerOptions& workers,
                                                                    models::ModelSpec* spec,
                                                                    int num_workers) {
  VREC_ASSIGN_OR_RETURN(models::FoundCheckpoint found,
                        models::ReadCheckpoint(dir, /*verify_files=*/false));
  return Adopt(std::move(found), workers, spec, num_workers);
}

StatusOr<models::ModelSpec> JobSpec(const ModelKind& kind, const TrainOptions& options) {
  VREC_ASSIGN_OR_RETURN(models::ModelSpec spec, kind.Spec(options));
  VREC_RETURN_IF_ERROR(ApplyTablePolicies(options.tables, kind.GrowingTables(), &spec));
  return spec;
}

namespace {

constexpr char kResumeRef[] = "resume\t";
constexpr char kWarmRef[] = "warm\t";

void LogStart(const JobStart& start, const models::ModelSpec& spec) {
  if (start.warm) LOG(INFO) << start.warm->Describe();
  const std::string policies = DescribeTablePolicies(spec.config);
  if (!policies.empty()) LOG(INFO) << "tables with admission or expiry: " << policies;
}

}  // namespace

std::string JobStart::Ref() const {
  if (resume) return absl::StrCat(kResumeRef, resume->dir);
  if (warm) return absl::StrCat(kWarmRef, warm->source);
  return "";
}

StatusOr<JobStart> FindJobStart(const TrainOptions& options, models::ModelSpec* spec,
                                int num_workers) {
  JobStart start;
  const CheckpointOptions& c = options.checkpoint;
  if (c.resume && c.init_from.empty()) {
    VREC_ASSIGN_OR_RETURN(start.resume, FindResumeCheckpoint(c, options.worker, spec, num_workers));
  } else if (c.resume) {
    if (c.dir.empty()) {
      return absl::InvalidArgumentError(
          "--resume needs --checkpoint_dir (where the checkpoints are)");
    }
    StatusOr<models::FoundCheckpoint> found = models::FindCheckpoint(c.dir);
    if (found.ok()) {
      // Only a checkpoint of this very dataset continues this job; the
      // earlier day's (the same folder used day after day) does not.
      VREC_ASSIGN_OR_RETURN(DatasetManifest data, ReadManifest(options.data_dir));
      if (found->manifest.dataset_fingerprint() == DatasetFingerprint(data)) {
        VREC_ASSIGN_OR_RETURN(start.resume,
                              ResumeCheckpointAt(found->dir, options.worker, spec, num_workers));
      } else {
        LOG(INFO) << "--resume: the newest checkpoint in " << c.dir << " (" << found->dir
                  << ") was trained on another dataset (" << found->manifest.model().dataset()
                  << "); warm starting from --init_from=" << c.init_from;
      }
    } else if (absl::IsNotFound(found.status())) {
      LOG(INFO) << "--resume: " << found.status().message()
                << "; warm starting from --init_from=" << c.init_from;
    } else {
      return found.status();
    }
  }
  if (!start.resume && !c.init_from.empty()) {
    VREC_ASSIGN_OR_RETURN(start.warm, FindWarmStart(c.init_from, spec));
    if (start.warm->checkpoint && start.warm->checkpoint->manifest.dataset_fingerprint() != 0) {
      StatusOr<DatasetManifest> data = ReadManifest(options.data_dir);
      if (data.ok() &&
          start.warm->checkpoint->manifest.dataset_fingerprint() == DatasetFingerprint(*data)) {
        LOG(WARNING) << "--init_from=" << c.init_from << " was trained on this very --data ("
                     << options.data_dir
                     << "): this trains it again from there (to continue an interrupted run "
                        "instead, use --resume)";
      }
    }
  }
  LogStart(start, *spec);
  return start;
}

StatusOr<JobStart> OpenJobStart(const std::string& ref, const TrainOptions& options,
                                models::ModelSpec* spec, int num_workers) {
  JobStart start;
  if (absl::StartsWith(ref, kResumeRef)) {
    VREC_ASSIGN_OR_RETURN(start.resume, ResumeCheckpointAt(ref.substr(sizeof(kResumeRef) - 1),
                                                           options.worker, spec, num_workers));
  } else if (absl::StartsWith(ref, kWarmRef)) {
    VREC_ASSIGN_OR_RETURN(start.warm, FindWarmStart(ref.substr(sizeof(kWarmRef) - 1), spec,
                                                    /*verify_files=*/false));
  } else if (!ref.empty()) {
    return absl::InternalError(absl::StrCat("unknown job start '", ref, "'"));
  }
  return start;
}

StatusOr<std::vector<QuantileInfo>> JobQuantiles(const JobStart& start,
                                                 std::vector<QuantileInfo> fitted) {
  if (start.resume && start.resume->manifest.model().quantiles_size() > 0) {
    const auto& kept = start.resume->manifest.model().quantiles();
    return std::vector<QuantileInfo>(kept.begin(), kept.end());
  }
  if (start.warm) {
    const auto& before = start.warm->model.quantiles();
    return MergeQuantiles(std::vector<QuantileInfo>(before.begin(), before.end()), fitted);
  }
  return fitted;
}

Status CheckResumeData(const CheckpointManifest& checkpoint, const DatasetManifest& data,
                       const std::string& data_dir) {
  const uint64_t now = DatasetFingerprint(data);
  if (checkpoint.dataset_fingerprint() == 0 || checkpoint.dataset_fingerprint() == now) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "cannot resume: the checkpoint was trained on another dataset (%s, fingerprint %016x); "
      "--data=%s is %016x. Resume with the --data it was trained on, or start anew with another "
      "--checkpoint_dir",
      checkpoint.model().dataset(), checkpoint.dataset_fingerprint(), data_dir, now));
}

StatusOr<net::DataPlaneKeys> JobKeys(const ServerOptions& options) {
  if (options.bind_host == "inproc") return net::DataPlaneKeys{};  // never leaves the process
  if (options.insecure_data_plane) {
    LOG(WARNING) << "--insecure_data_plane: the parameter servers answer anyone who reaches "
                    "their ports (no CURVE); use it on trusted networks only";
    return net::DataPlaneKeys{};
  }
  StatusOr<net::DataPlaneKeys> keys = net::GenerateDataPlaneKeys();
  if (!keys.ok()) {
    return Status(keys.status().code(),
                  absl::StrCat(keys.status().message(),
                               "; or pass --insecure_data_plane on a trusted network"));
  }
  return keys;
}

StatusOr<ServerProcess> StartServer(const models::ModelSpec& spec, const ServerOptions& options,
                                    const net::DataPlaneKeys& keys, const std::string& spill_root,
                                    int index, int num_workers, const JobStart* start,
                                    int num_servers) {
  ServerProcess p;
  VREC_ASSIGN_OR_RETURN(p.storage,
                        CreateServerStorage(spec, options, spill_root, index, start, num_servers));
  std::vector<ps::EmbeddingStore*> tables;
  for (const auto& t : spec.config.tables()) tables.push_back(p.storage->Find(t.name()));
  p.service = std::make_unique<ps::PsService>(tables, static_cast<uint32_t>(num_workers));
  net::ServerOptions so;
  if (options.bind_host == "inproc") {
    static std::atomic<int> instances{0};
    so.bind = absl::StrCat("inproc://vrec-ps-", index, "-", instances.fetch_add(1));
  } else {
    so.bind =
        absl::StrCat("tcp://", options.bind_host.empty() ? "127.0.0.1" : options.bind_host, ":*");
  }
  so.threads = options.threads;
  so.keys = keys;
  VREC_ASSIGN_OR_RETURN(p.server, net::Server::Start(p.service.get(), so));
  p.endpoint = p.server->endpoint();
  return p;
}

namespace {

// Connects to the servers and trains worker `worker` through its kind.
Status TrainWorker(const ModelKind& kind, WorkerRun run, const net::ServerSet& servers_at) {
  VREC_ASSIGN_OR_RETURN(auto transport, net::Client::Connect(servers_at));
  VREC_ASSIGN_OR_RETURN(ps::SlotRouter router,
                        ps::SlotRouter::Contiguous(static_cast<uint32_t>(servers_at.size())));
  ps::PsClient client(transport.get(), router, static_cast<uint32_t>(run.worker));
  const WorkerOptions& wo = *run.options;
  if (!wo.example_log_dir.empty()) VREC_RETURN_IF_ERROR(MakeDirs(wo.example_log_dir));
  run.client = &client;
  run.max_examples = WorkerShare(wo.max_examples, run.worker, run.num_workers);
  return kind.RunWorker(run);
}

}  // namespace

Status RunWorkerRole(const ModelKind& kind, const models::ModelSpec& spec, const JobData& data,
                     const WorkerOptions& options, const net::ServerSet& servers_at, int worker,
                     int num_workers, const WorkerProgress* resume, WorkerChannel* channel,
                     const std::atomic<bool>* signal) {
  std::atomic<bool> stop{false};
  WorkerProgress last;  // the newest progress: sent, or held back as the final one
  last.set_worker(worker);
  if (resume != nullptr) last = *resume;
  // A stop asked by the coordinator or by a signal is seen at the next step.
  auto stopping = [&] {
    if (channel->StopRequested() || (signal != nullptr && signal->load())) stop = true;
  };
  const WorkerOptions& wo = options;
  WorkerLoopOptions loop;
  loop.max_seconds = wo.max_seconds;
  loop.max_staleness = wo.max_staleness;
  loop.pause_requested = [&] {
    stopping();
    return channel->PauseRequested();
  };
  loop.paused = [&](const WorkerProgress& p) {
    channel->Paused(p);
    stopping();  // a stop that came during the pause: no further step
    return absl::OkStatus();
  };
  if (!wo.example_log_dir.empty()) {
    loop.example_log = JoinPath(wo.example_log_dir, absl::StrFormat("worker-%05d.log", worker));
  }
  WorkerRun run;
  run.spec = &spec;
  run.data = &data;
  run.options = &options;
  run.worker = worker;
  run.num_workers = num_workers;
  run.resume = resume;
  run.loop = std::move(loop);
  run.stop = &stop;
  run.report = [&](const WorkerProgress& p) {
    last = p;
    if (!p.done()) channel->Report(p);  // the final one is sent below
  };
  const Status status = TrainWorker(kind, std::move(run), servers_at);
  // The last report, marked done, with the error of a worker that failed
  // (also one that failed before its first step).
  MarkLastReport(worker, status, &last);
  channel->Report(last);
  return status;
}

void MarkLastReport(int worker, const Status& status, WorkerProgress* progress) {
  progress->set_worker(worker);
  progress->set_done(true);
  progress->set_paused(false);
  if (!status.ok()) {
    progress->set_error_code(static_cast<int32_t>(status.code()));
    progress->set_error(std::string(status.message()));
  }
}

namespace {

// Calls `read` with the parameters held by the servers at `servers_at`.
StatusOr<nlohmann::json> WithServers(
    const models::ModelSpec& spec, const net::ServerSet& servers_at,
    const std::function<StatusOr<nlohmann::json>(models::ParameterSource*)>& read) {
  VREC_ASSIGN_OR_RETURN(auto transport, net::Client::Connect(servers_at));
  VREC_ASSIGN_OR_RETURN(ps::SlotRouter router,
                        ps::SlotRouter::Contiguous(static_cast<uint32_t>(servers_at.size())));
  ps::PsClient client(transport.get(), router, 0);
  models::PsParameters params(&spec, &client);
  return read(&params);
}

}  // namespace

StatusOr<nlohmann::json> EvaluateThroughServers(const ModelKind& kind,
                                                const models::ModelSpec& spec, const JobData& data,
                                                const net::ServerSet& servers_at,
                                                const models::EvalOptions& eval) {
  return WithServers(spec, servers_at, [&](models::ParameterSource* params) {
    return kind.Evaluate(spec, params, data.dir, data.manifest, &data.corpus, eval);
  });
}

CoordinatedJob CoordinatedJobOf(const ModelKind& kind, const TrainOptions& options,
                                const models::ModelSpec& spec, const JobData& data,
                                const net::ServerSet& servers_at, int num_servers, int num_workers,
                                const JobStart& start) {
  const CheckpointManifest* resumed = start.resume ? &start.resume->manifest : nullptr;
  CoordinatedJob job;
  job.spec = &spec;
  job.data_dir = options.data_dir;
  job.dataset_fingerprint = DatasetFingerprint(data.manifest);
  job.model_dir = options.model_dir;
  job.coordinator = options.coordinator;
  job.checkpoint = options.checkpoint;
  job.workers = options.worker;
  job.num_servers = num_servers;
  job.num_workers = num_workers;
  job.train_records = data.trained_per_epoch();
  job.resumed = resumed;
  if (start.warm) {
    job.warm_start = start.warm->source;
    job.examples_before = start.warm->examples_before();
  } else if (resumed != nullptr) {  // a warm-started job resumed: its history goes on
    job.warm_start = resumed->model().warm_start();
    job.examples_before = resumed->model().examples_before();
  }
  job.evaluate = [&kind, &spec, &data, servers_at](const models::EvalOptions& eval) {
    return EvaluateThroughServers(kind, spec, data, servers_at, eval);
  };
  if (!data.validation.empty()) {
    job.validation_examples = data.validation.size();
    job.validate = [&kind, &spec, &data, servers_at](const models::EvalOptions& eval) {
      return WithServers(spec, servers_at, [&](models::ParameterSource* params) {
        return kind.Validate(spec, params, data, eval);
      });
    };
  }
  job.evaluate_saved = [&kind, &data](const std::string& model_dir,
                                      const models::EvalOptions& eval) -> StatusOr<nlohmann::json> {
    VREC_ASSIGN_OR_RETURN(auto model, models::SavedModel::Open(model_dir));
    return kind.Evaluate(model->spec(), model.get(), data.dir, data.manifest, &data.corpus, eval);
  };
  job.eval_line = [&kind](const nlohmann::json& eval) { return kind.EvalLine(eval); };
  job.servers_at = servers_at;
  return job;
}

}  // namespace vrec::train
