#include "train/job_roles.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "glog/logging.h"
#include "ps/slot_router.h"
#include "train/candidate_worker.h"
#include "train/evaluate.h"
#include "train/ranking.h"

namespace vrec::train {

StatusOr<JobData> LoadJobData(const TrainOptions& options, const ModelSpec& spec) {
  JobData d;
  VREC_ASSIGN_OR_RETURN(d.manifest, ReadManifest(options.data_dir));
  if (options.worker.stream) {
    VREC_ASSIGN_OR_RETURN(d.world, GeneratedWorld::Load(options.data_dir, d.manifest));
  }
  const bool streamed = d.manifest.train_streamed();
  if (streamed && !options.worker.stream) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset ", options.data_dir,
        " holds no training files (written by vrec datagen --write_train=false): train it with "
        "--stream, which simulates its training examples on the fly"));
  }
  if (spec.kind == "ranking") {
    // Quantiles are fitted on the training files, or on the sample datagen
    // kept of them when it did not write them.
    const auto& fit_on = streamed ? d.manifest.ranking_train_sample() : d.manifest.ranking_train();
    if (fit_on.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("dataset ", options.data_dir, " has no ranking training files"));
    }
    if (streamed) {
      d.train_records = d.manifest.ranking_train_examples();
    } else {
      for (const ShardInfo& s : d.manifest.ranking_train()) d.train_records += s.records();
    }
    VREC_ASSIGN_OR_RETURN(
        d.quantiles, FitRankingQuantiles(ShardPaths(options.data_dir, fit_on),
                                         static_cast<int>(spec.config.ranking().num_quantiles()),
                                         spec.config.seed()));
    return d;
  }
  if (streamed) {
    d.train_records = d.manifest.candidate_train_examples();
  } else {
    if (d.manifest.candidate_train_size() == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dataset ", options.data_dir, " has no candidate-generation training files"));
    }
    for (const ShardInfo& s : d.manifest.candidate_train()) d.train_records += s.records();
  }
  // Label counts: the unigram sampler's background and the popularity baseline.
  VREC_ASSIGN_OR_RETURN(d.corpus, LoadCorpus(options.data_dir, d.manifest, /*count_labels=*/true));
  return d;
}

StatusOr<ModelSpec> BuildSpec(const TrainOptions& options) {
  if (options.model == "candidate") return CandidateSpec(options.candidate);
  if (options.model == "ranking") return RankingSpec(options.ranking);
  return absl::InvalidArgumentError(
      absl::StrCat("--model=", options.model, ": use candidate or ranking"));
}

StatusOr<model::NegativeSampler> BuildSampler(const ModelSpec& spec, const Corpus& corpus) {
  if (spec.kind != "candidate") return model::NegativeSampler::Uniform(1);
  std::vector<double> counts = corpus.label_counts;
  if (counts.empty()) counts.assign(corpus.ids.size(), 1.0);
  return model::NegativeSampler::FromConfig(spec.config.candidate().sampler(), counts);
}

uint64_t WorkerShare(uint64_t total, int worker, int num_workers) {
  if (total == 0) return 0;
  const uint64_t w = static_cast<uint64_t>(num_workers);
  return total / w + (static_cast<uint64_t>(worker) < total % w ? 1 : 0);
}

StatusOr<std::unique_ptr<ps::ServerStorage>> CreateServerStorage(const ModelSpec& spec,
                                                                 const TrainOptions& options,
                                                                 int server,
                                                                 const FoundCheckpoint* restore,
                                                                 int num_servers) {
  ps::ServerStorageOptions so;
  std::string spill = options.server.spill_dir;
  if (spill.empty()) {
    spill = options.model_dir.empty() ? absl::StrCat("/tmp/vrec-spill-", getpid())
                                      : JoinPath(options.model_dir, "spill");
  }
  so.spill_path = JoinPath(spill, absl::StrFormat("server-%05d", server));
  so.fresh = true;
  so.memory_budget_bytes = options.server.memory_bytes;
  so.dense_block_floats = kDenseBlockFloats;
  so.glorot_fans = spec.glorot_fans;
  if (restore != nullptr) {
    return RestoreServerStorage(spec.config, so, *restore, server, num_servers);
  }
  return ps::ServerStorage::Create(spec.config, so);
}

StatusOr<std::optional<FoundCheckpoint>> FindResumeCheckpoint(const TrainOptions& options,
                                                              const ModelSpec& spec,
                                                              int num_workers) {
  if (!options.checkpoint.resume) return std::optional<FoundCheckpoint>();
  if (options.checkpoint.dir.empty()) {
    return absl::InvalidArgumentError(
        "--resume needs --checkpoint_dir (where the checkpoints are)");
  }
  StatusOr<FoundCheckpoint> found = FindCheckpoint(options.checkpoint.dir);
  if (absl::IsNotFound(found.status())) {
    LOG(INFO) << "--resume: " << found.status().message() << "; starting from scratch";
    return std::optional<FoundCheckpoint>();
  }
  VREC_RETURN_IF_ERROR(found.status());
  VREC_RETURN_IF_ERROR(CheckResumable(found->manifest, spec, num_workers, options.worker.batch_size,
                                      options.worker.epochs, options.worker.max_examples,
                                      options.worker.stream));
  return std::optional<FoundCheckpoint>(std::move(*found));
}

StatusOr<ServerProcess> StartServer(const ModelSpec& spec, const TrainOptions& options, int index,
                                    int num_workers, const FoundCheckpoint* restore,
                                    int num_servers) {
  ServerProcess p;
  VREC_ASSIGN_OR_RETURN(p.storage, CreateServerStorage(spec, options, index, restore, num_servers));
  std::vector<ps::EmbeddingStore*> tables;
  for (const auto& t : spec.config.tables()) tables.push_back(p.storage->Find(t.name()));
  p.service = std::make_unique<ps::PsService>(tables, static_cast<uint32_t>(num_workers));
  net::ServerOptions so;
  if (options.server.bind_host == "inproc") {
    static std::atomic<int> instances{0};
    so.bind = absl::StrCat("inproc://vrec-ps-", index, "-", instances.fetch_add(1));
  } else {
    so.bind = absl::StrCat(
        "tcp://", options.server.bind_host.empty() ? "127.0.0.1" : options.server.bind_host, ":*");
  }
  so.threads = options.server.threads;
  VREC_ASSIGN_OR_RETURN(p.server, net::Server::Start(p.service.get(), so));
  p.endpoint = p.server->endpoint();
  return p;
}

namespace {

// Opens worker `worker`'s example source, at `resume`'s position if given.
template <typename Example>
StatusOr<std::unique_ptr<ExampleSource<Example>>> OpenSource(
    const JobData& data, const TrainOptions& options,
    const google::protobuf::RepeatedPtrField<ShardInfo>& shards, int worker, int num_workers,
    const WorkerProgress* resume) {
  std::unique_ptr<ExampleSource<Example>> source;
  if (data.world != nullptr) {
    source = std::make_unique<GeneratorSource<Example>>(data.world, worker, num_workers,
                                                        options.worker.epochs);
  } else {
    VREC_ASSIGN_OR_RETURN(source,
                          ExampleStream<Example>::Open(ShardPaths(options.data_dir, shards), worker,
                                                       num_workers, options.worker.epochs));
  }
  if (resume != nullptr) VREC_RETURN_IF_ERROR(source->Seek(resume->position()));
  return source;
}

// Trains worker `worker` until its share is done or *stop (pausing as
// `loop` says), reporting through `report`. The final report is left to the caller.
Status TrainWorker(const ModelSpec& spec, const JobData& data,
                   const model::NegativeSampler& sampler, const TrainOptions& options,
                   const std::vector<std::string>& endpoints, int worker, int num_workers,
                   const WorkerProgress* resume, const WorkerLoopOptions& loop,
                   const std::atomic<bool>* stop,
                   const std::function<void(const WorkerProgress&)>& report) {
  VREC_ASSIGN_OR_RETURN(auto transport, net::Client::Connect(endpoints));
  VREC_ASSIGN_OR_RETURN(ps::SlotRouter router,
                        ps::SlotRouter::Contiguous(static_cast<uint32_t>(endpoints.size())));
  ps::PsClient client(transport.get(), router, static_cast<uint32_t>(worker));
  const WorkerOptions& wo = options.worker;
  if (!wo.example_log_dir.empty()) VREC_RETURN_IF_ERROR(MakeDirs(wo.example_log_dir));
  const uint64_t share = WorkerShare(wo.max_examples, worker, num_workers);
  if (spec.kind == "ranking") {
    RankingWorkerOptions ro;
    ro.worker = worker;
    ro.batch_size = wo.batch_size;
    ro.max_examples = share;
    ro.loop = loop;
    VREC_ASSIGN_OR_RETURN(auto w, RankingWorker::Create(&spec, &client, ro));
    VREC_ASSIGN_OR_RETURN(auto source,
                          OpenSource<RankingExample>(data, options, data.manifest.ranking_train(),
                                                     worker, num_workers, resume));
    if (resume != nullptr) w->Restore(*resume);
    return w->Run(source.get(), stop, report);
  }
  CandidateWorkerOptions co;
  co.worker = worker;
  co.num_workers = num_workers;
  co.batch_size = wo.batch_size;
  co.max_examples = share;
  co.seed = options.candidate.seed;
  co.loop = loop;
  VREC_ASSIGN_OR_RETURN(auto w,
                        CandidateWorker::Create(&spec, &data.corpus, &sampler, &client, co));
  VREC_ASSIGN_OR_RETURN(auto source,
                        OpenSource<CandidateExample>(data, options, data.manifest.candidate_train(),
                                                     worker, num_workers, resume));
  if (resume != nullptr) w->Restore(*resume);
  return w->Run(source.get(), stop, report);
}

}  // namespace

Status RunWorkerRole(const ModelSpec& spec, const JobData& data,
                     const model::NegativeSampler& sampler, const TrainOptions& options,
                     const std::vector<std::string>& endpoints, int worker, int num_workers,
                     const WorkerProgress* resume, WorkerChannel* channel,
                     const std::atomic<bool>* signal) {
  std::atomic<bool> stop{false};
  WorkerProgress last;  // the newest progress: sent, or held back as the final one
  last.set_worker(worker);
  if (resume != nullptr) last = *resume;
  // A stop asked by the coordinator or by a signal is seen at the next step.
  auto stopping = [&] {
    if (channel->StopRequested() || (signal != nullptr && signal->load())) stop = true;
  };
  const WorkerOptions& wo = options.worker;
  WorkerLoopOptions loop;
  loop.max_seconds = wo.max_seconds;
  loop.max_staleness = wo.max_staleness;
  loop.pause_requested = [&] {
    stopping();
    return channel->PauseRequested();
  };
  loop.paused = [&](const WorkerProgress& p) {
    channel->Paused(p);
    return absl::OkStatus();
  };
  if (!wo.example_log_dir.empty()) {
    loop.example_log = JoinPath(wo.example_log_dir, absl::StrFormat("worker-%05d.log", worker));
  }
  const Status status = TrainWorker(spec, data, sampler, options, endpoints, worker, num_workers,
                                    resume, loop, &stop, [&](const WorkerProgress& p) {
                                      last = p;
                                      if (!p.done())
                                        channel->Report(p);  // the final one is sent below
                                    });
  // The last report, marked done, with the error of a worker that failed
  // (also one that failed before its first step).
  last.set_worker(worker);
  last.set_done(true);
  last.set_paused(false);
  if (!status.ok()) {
    last.set_error_code(static_cast<int32_t>(status.code()));
    last.set_error(std::string(status.message()));
  }
  channel->Report(last);
  return status;
}

StatusOr<nlohmann::json> EvaluateThroughServers(const ModelSpec& spec, const JobData& data,
                                                const TrainOptions& options,
                                                const std::vector<std::string>& endpoints,
                                                const CandidateEvalOptions& eval) {
  VREC_ASSIGN_OR_RETURN(auto transport, net::Client::Connect(endpoints));
  VREC_ASSIGN_OR_RETURN(ps::SlotRouter router,
                        ps::SlotRouter::Contiguous(static_cast<uint32_t>(endpoints.size())));
  ps::PsClient client(transport.get(), router, 0);
  PsParameters params(&spec, &client);
  if (spec.kind == "ranking") {
    RankingEvalOptions ro;
    ro.max_examples = eval.max_examples;
    return EvaluateRanking(spec, &params, options.data_dir, data.manifest, ro);
  }
  return EvaluateCandidate(spec, &params, options.data_dir, data.manifest, data.corpus, eval);
}

std::string EvalLine(const nlohmann::json& eval) {
  if (eval.contains("weighted_per_user_loss")) {
    std::string line =
        absl::StrFormat("[eval]  weighted per-user loss %.4f  auc %.4f (%d impressions)",
                        eval["weighted_per_user_loss"].get<double>(), eval["auc"].get<double>(),
                        eval["impressions"].get<int64_t>());
    if (eval.contains("oracle")) {
      absl::StrAppend(&line,
                      absl::StrFormat("  oracle loss %.4f",
                                      eval["oracle"]["weighted_per_user_loss"].get<double>()));
    }
    return line;
  }
  std::string line =
      absl::StrFormat("[eval]  recall@1 %.4f  recall@100 %.4f  map %.4f (%d examples)",
                      eval["recall@1"].get<double>(), eval["recall@100"].get<double>(),
                      eval["map"].get<double>(), eval["examples"].get<int64_t>());
  if (eval.contains("popularity")) {
    absl::StrAppend(&line, absl::StrFormat("  popularity recall@100 %.4f",
                                           eval["popularity"]["recall@100"].get<double>()));
  }
  if (eval.contains("oracle") && eval["oracle"].contains("recall@100")) {
    absl::StrAppend(&line, absl::StrFormat("  oracle recall@100 %.4f",
                                           eval["oracle"]["recall@100"].get<double>()));
  }
  return line;
}

}  // namespace vrec::train
