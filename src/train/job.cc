#include "train/job.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "common/run_info.h"
#include "data/dataset.h"
#include "glog/logging.h"
#include "net/transport.h"
#include "ps/slot_router.h"
#include "train/saved_model.h"

namespace vrec::train {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string Human(double x) {
  if (x >= 1e6) return absl::StrFormat("%.2fM", x / 1e6);
  if (x >= 1e3) return absl::StrFormat("%.1fk", x / 1e3);
  return absl::StrFormat("%.0f", x);
}

std::string Duration(double s) {
  if (s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return absl::StrFormat("%dh%02dm", t / 3600, (t / 60) % 60);
  if (t >= 60) return absl::StrFormat("%dm%02ds", t / 60, t % 60);
  return absl::StrFormat("%ds", t);
}

}  // namespace

StatusOr<JobData> LoadJobData(const TrainOptions& options, const ModelSpec& spec) {
  JobData d;
  VREC_ASSIGN_OR_RETURN(d.manifest, ReadManifest(options.data_dir));
  if (options.stream) {
    VREC_ASSIGN_OR_RETURN(d.world, GeneratedWorld::Load(options.data_dir, d.manifest));
  }
  const bool streamed = d.manifest.train_streamed();
  if (streamed && !options.stream) {
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
  std::string spill = options.spill_dir;
  if (spill.empty()) {
    spill = options.model_dir.empty() ? absl::StrCat("/tmp/vrec-spill-", getpid())
                                      : JoinPath(options.model_dir, "spill");
  }
  so.spill_path = JoinPath(spill, absl::StrFormat("server-%05d", server));
  so.fresh = true;
  so.memory_budget_bytes = options.server_memory_bytes;
  so.dense_block_floats = kDenseBlockFloats;
  so.glorot_fans = spec.glorot_fans;
  if (restore != nullptr) {
    return RestoreServerStorage(spec.config, so, *restore, server, num_servers);
  }
  return ps::ServerStorage::Create(spec.config, so);
}

ProgressTracker::ProgressTracker(const TrainOptions& options, int num_workers,
                                 uint64_t train_records, const CheckpointManifest* resumed)
    : options_(options),
      workers_(num_workers),
      start_(Clock::now()),
      last_(start_),
      last_worker_examples_(num_workers, 0) {
  for (int w = 0; w < num_workers; ++w) workers_[w].worker = w;
  if (options.max_examples > 0) {
    target_examples_ = options.max_examples;
  } else if (options.epochs > 0) {
    target_examples_ = train_records * static_cast<uint64_t>(options.epochs);
  }
  std::string path = options.metrics_file;
  if (path.empty() && !options.model_dir.empty()) {
    path = JoinPath(options.model_dir, "metrics.jsonl");
  }
  if (resumed != nullptr) {
    for (const WorkerState& w : resumed->workers()) {
      if (w.worker() < 0 || w.worker() >= num_workers) continue;
      workers_[w.worker()] = FromWorkerState(w);
      workers_[w.worker()].done = false;
      last_worker_examples_[w.worker()] = w.examples();
    }
    last_examples_ = examples();
    last_steps_ = steps();
    for (const auto& w : workers_) last_loss_sum_ += w.loss_sum;
    seconds_before_ = resumed->model().train_seconds();
  }
  if (path.empty()) return;
  if (resumed != nullptr) {
    // The curve carries on from the checkpoint: records written after it
    // (by the run that stopped) are dropped.
    std::string kept;
    if (StatusOr<std::string> old = ReadFileToString(path); old.ok()) {
      size_t start = 0;
      while (start < old->size()) {
        size_t end = old->find('\n', start);
        if (end == std::string::npos) end = old->size();
        const std::string line = old->substr(start, end - start);
        start = end + 1;
        nlohmann::json rec = nlohmann::json::parse(line, nullptr, false);
        if (rec.is_discarded() || !rec.is_object()) continue;  // a torn last line
        if (rec.value("examples", uint64_t{0}) <= resumed->model().examples_trained()) {
          absl::StrAppend(&kept, line, "\n");
        }
      }
    }
    if (Status st = WriteFileAtomic(path, kept); !st.ok()) LOG(WARNING) << st;
    metrics_.open(path, std::ios::out | std::ios::app);
    return;
  }
  metrics_.open(path, std::ios::out | std::ios::trunc);
}

void ProgressTracker::Update(const WorkerProgress& p) {
  if (p.worker >= 0 && p.worker < static_cast<int>(workers_.size())) workers_[p.worker] = p;
}

bool ProgressTracker::AllDone() const {
  for (const auto& w : workers_) {
    if (!w.done) return false;
  }
  return true;
}

uint64_t ProgressTracker::examples() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w.examples;
  return n;
}

uint64_t ProgressTracker::steps() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w.steps;
  return n;
}

double ProgressTracker::seconds() const { return seconds_before_ + Since(start_); }

void ProgressTracker::MaybeReport(bool force) {
  double dt = Since(last_);
  if (!force && dt < options_.progress_seconds) return;
  const double t = seconds();
  // The final line after a short tail reports the whole run's rates (a
  // rate over a fraction of a second says nothing).
  if (force && dt < 1.0) {
    dt = t;
    last_examples_ = 0;
    std::fill(last_worker_examples_.begin(), last_worker_examples_.end(), 0);
  }
  const uint64_t ex = examples(), st = steps();
  double loss_sum = 0;
  for (const auto& w : workers_) loss_sum += w.loss_sum;
  if (st > last_steps_) recent_loss_ = (loss_sum - last_loss_sum_) / (st - last_steps_);
  const double rate = dt > 0 ? (ex - last_examples_) / dt : 0;
  std::string per_worker;
  nlohmann::json worker_rates = nlohmann::json::array();
  for (size_t w = 0; w < workers_.size(); ++w) {
    const double r = dt > 0 ? (workers_[w].examples - last_worker_examples_[w]) / dt : 0;
    worker_rates.push_back(r);
    if (workers_.size() <= 8) absl::StrAppend(&per_worker, w ? " " : "", Human(r));
    last_worker_examples_[w] = workers_[w].examples;
  }
  double eta = -1;
  if (target_examples_ > 0 && rate > 0) {
    eta = (static_cast<double>(target_examples_) - ex) / rate;
  }
  if (options_.max_seconds > 0) {
    const double left = options_.max_seconds - t;
    eta = eta < 0 ? left : std::min(eta, left);
  }
  std::string line = absl::StrFormat("[train] %6.1fs  examples %s", t, Human(ex));
  if (target_examples_ > 0) {
    absl::StrAppend(&line, absl::StrFormat(" (%.0f%%)", 100.0 * ex / target_examples_));
  }
  absl::StrAppend(&line, "  ", Human(rate), " ex/s");
  if (!per_worker.empty() && workers_.size() > 1) absl::StrAppend(&line, " [", per_worker, "]");
  absl::StrAppend(&line, absl::StrFormat("  loss %.4f", recent_loss_));
  if (eta >= 0) absl::StrAppend(&line, "  ETA ", Duration(eta));
  std::cerr << line << std::endl;
  if (metrics_.is_open()) {
    nlohmann::json rec = {{"time_s", t},          {"examples", ex},
                          {"steps", st},          {"examples_per_s", rate},
                          {"loss", recent_loss_}, {"worker_examples_per_s", worker_rates}};
    metrics_ << rec.dump() << "\n";
    metrics_.flush();
  }
  last_ = Clock::now();
  last_examples_ = ex;
  last_steps_ = st;
  last_loss_sum_ = loss_sum;
}

void ProgressTracker::RecordPsStats(const nlohmann::json& stats) {
  if (!metrics_.is_open()) return;
  nlohmann::json rec = {{"time_s", seconds()}, {"examples", examples()}, {"ps", stats}};
  metrics_ << rec.dump() << "\n";
  metrics_.flush();
}

void LogPsStats(const std::vector<std::string>& endpoints, ProgressTracker* tracker,
                nlohmann::json* previous) {
  auto transport = net::Client::Connect(endpoints);
  if (!transport.ok()) return;
  auto router = ps::SlotRouter::Contiguous(static_cast<uint32_t>(endpoints.size()));
  if (!router.ok()) return;
  ps::PsClient client(transport->get(), *router, 0);
  auto stats = client.Stats();
  if (!stats.ok()) {
    LOG(WARNING) << "parameter-server stats: " << stats.status();
    return;
  }
  nlohmann::json all = nlohmann::json::array();
  const double now = tracker->seconds();
  for (size_t s = 0; s < stats->size(); ++s) {
    nlohmann::json tables = nlohmann::json::parse((*stats)[s], nullptr, false);
    if (tables.is_discarded()) continue;
    uint64_t mem = 0, disk = 0, hits = 0, misses = 0, pulls = 0, pushes = 0, bytes = 0;
    std::vector<std::pair<uint64_t, std::string>> hot;
    for (const auto& t : tables) {
      mem += t.value("rows_in_memory", uint64_t{0});
      disk += t.value("rows_on_disk", uint64_t{0});
      hits += t.value("memory_hits", uint64_t{0});
      misses += t.value("disk_hits", uint64_t{0});
      pulls += t.value("pull_keys", uint64_t{0});
      pushes += t.value("push_keys", uint64_t{0});
      bytes += t.value("memory_bytes", uint64_t{0});
      for (const auto& h : t.value("hot_keys", nlohmann::json::array())) {
        hot.emplace_back(
            h.value("count", uint64_t{0}),
            absl::StrCat(t.value("table", std::string()), ":", h.value("key", uint64_t{0})));
      }
    }
    double pull_rate = 0, push_rate = 0;
    if (previous->is_array() && s < previous->size()) {
      const nlohmann::json& p = (*previous)[s];
      const double dt = now - p.value("time_s", 0.0);
      if (dt > 0) {
        pull_rate = (pulls - p.value("pull_keys", uint64_t{0})) / dt;
        push_rate = (pushes - p.value("push_keys", uint64_t{0})) / dt;
      }
    }
    std::sort(hot.rbegin(), hot.rend());
    std::string hottest;
    for (size_t i = 0; i < std::min<size_t>(3, hot.size()); ++i) {
      absl::StrAppend(&hottest, i ? " " : "", hot[i].second);
    }
    const double hit_rate = hits + misses > 0 ? static_cast<double>(hits) / (hits + misses) : 1.0;
    std::cerr << absl::StrFormat(
                     "[ps]    server %d: %s rows in memory (%.0f MB), %s on disk, memory hits "
                     "%.1f%%, %s keys/s pulled, %s pushed; hottest %s",
                     s, Human(mem), bytes / 1e6, Human(disk), 100 * hit_rate, Human(pull_rate),
                     Human(push_rate), hottest.empty() ? "-" : hottest)
              << std::endl;
    all.push_back({{"server", s},
                   {"time_s", now},
                   {"rows_in_memory", mem},
                   {"rows_on_disk", disk},
                   {"memory_bytes", bytes},
                   {"memory_hit_rate", hit_rate},
                   {"pull_keys", pulls},
                   {"push_keys", pushes},
                   {"pull_keys_per_s", pull_rate},
                   {"push_keys_per_s", push_rate},
                   {"tables", tables}});
  }
  tracker->RecordPsStats(all);
  *previous = all;
}

void ProgressTracker::RecordEval(const nlohmann::json& eval) {
  if (!metrics_.is_open()) return;
  nlohmann::json rec = {{"time_s", seconds()}, {"examples", examples()}, {"eval", eval}};
  metrics_ << rec.dump() << "\n";
  metrics_.flush();
}

TrainedModel MakeTrainedModel(const ModelSpec& spec, const TrainOptions& options, int num_servers,
                              uint64_t examples, uint64_t steps, double seconds) {
  TrainedModel m;
  m.set_format_version(kTrainedModelFormatVersion);
  m.set_kind(spec.kind);
  *m.mutable_config() = spec.config;
  for (int s = 0; s < num_servers; ++s) m.add_table_files(ServerTablesFile(s));
  for (const auto& d : spec.dense) *m.add_dense() = d;
  for (const auto& q : spec.quantiles) *m.add_quantiles() = q;
  m.set_examples_trained(examples);
  m.set_steps(steps);
  m.set_train_seconds(seconds);
  m.set_dataset(options.data_dir);
  m.set_commit(RunInfo().value("commit", ""));
  return m;
}

StatusOr<std::optional<FoundCheckpoint>> FindResumeCheckpoint(const TrainOptions& options,
                                                              const ModelSpec& spec,
                                                              int num_workers) {
  if (!options.resume) return std::optional<FoundCheckpoint>();
  if (options.checkpoint_dir.empty()) {
    return absl::InvalidArgumentError(
        "--resume needs --checkpoint_dir (where the checkpoints are)");
  }
  StatusOr<FoundCheckpoint> found = FindCheckpoint(options.checkpoint_dir);
  if (absl::IsNotFound(found.status())) {
    LOG(INFO) << "--resume: " << found.status().message() << "; starting from scratch";
    return std::optional<FoundCheckpoint>();
  }
  VREC_RETURN_IF_ERROR(found.status());
  VREC_RETURN_IF_ERROR(CheckResumable(found->manifest, spec, num_workers, options.batch_size,
                                      options.epochs, options.max_examples, options.stream));
  return std::optional<FoundCheckpoint>(std::move(*found));
}

Status CommitJobCheckpoint(const ModelSpec& spec, const TrainOptions& options, int num_servers,
                           uint64_t sequence, const std::vector<WorkerProgress>& workers,
                           const std::vector<ServerState>& servers, double seconds) {
  uint64_t examples = 0, steps = 0, rows = 0;
  for (const auto& w : workers) {
    examples += w.examples;
    steps += w.steps;
  }
  for (const auto& s : servers) rows += s.rows();
  CheckpointManifest m;
  m.set_format_version(kCheckpointFormatVersion);
  m.set_sequence(sequence);
  *m.mutable_model() = MakeTrainedModel(spec, options, num_servers, examples, steps, seconds);
  m.mutable_model()->clear_table_files();
  m.set_num_servers(static_cast<uint32_t>(num_servers));
  m.set_slot_router(
      ps::SlotRouter::Contiguous(static_cast<uint32_t>(num_servers)).value().Serialize());
  for (int s = 0; s < num_servers; ++s) {
    m.add_server_dirs(ServerCheckpointDir(s));
    m.add_server_states(ServerStateFile(s));
  }
  for (const auto& w : workers) *m.add_workers() = ToWorkerState(w);
  m.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  m.set_batch_size(options.batch_size);
  m.set_epochs(options.epochs);
  m.set_max_examples(options.max_examples);
  m.set_stream(options.stream);
  m.set_rows(rows);
  VREC_ASSIGN_OR_RETURN(std::string written,
                        CommitCheckpoint(options.checkpoint_dir, m, options.keep_checkpoints));
  std::cerr << absl::StrFormat("[ckpt]  %s: %d examples, %d rows", written, examples, rows)
            << std::endl;
  return absl::OkStatus();
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
  if (options.bind_host == "inproc") {
    static std::atomic<int> instances{0};
    so.bind = absl::StrCat("inproc://vrec-ps-", index, "-", instances.fetch_add(1));
  } else {
    so.bind =
        absl::StrCat("tcp://", options.bind_host.empty() ? "127.0.0.1" : options.bind_host, ":*");
  }
  so.threads = options.server_threads;
  VREC_ASSIGN_OR_RETURN(p.server, net::Server::Start(p.service.get(), so));
  p.endpoint = p.server->endpoint();
  return p;
}

namespace {

// Opens worker `worker`'s example source, at the checkpoint's position when
// resuming.
template <typename Example>
StatusOr<std::unique_ptr<ExampleSource<Example>>> OpenSource(
    const JobData& data, const TrainOptions& options,
    const google::protobuf::RepeatedPtrField<ShardInfo>& shards, int worker, int num_workers,
    const WorkerHooks& hooks) {
  std::unique_ptr<ExampleSource<Example>> source;
  if (data.world != nullptr) {
    source =
        std::make_unique<GeneratorSource<Example>>(data.world, worker, num_workers, options.epochs);
  } else {
    VREC_ASSIGN_OR_RETURN(source,
                          ExampleStream<Example>::Open(ShardPaths(options.data_dir, shards), worker,
                                                       num_workers, options.epochs));
  }
  if (hooks.resume != nullptr) VREC_RETURN_IF_ERROR(source->Seek(hooks.resume->position));
  return source;
}

WorkerLoopOptions LoopOptions(const TrainOptions& options, int worker, const WorkerHooks& hooks) {
  WorkerLoopOptions lo;
  lo.max_seconds = options.max_seconds;
  lo.max_staleness = options.max_staleness;
  lo.pause_requested = hooks.pause_requested;
  lo.paused = hooks.paused;
  if (!options.example_log_dir.empty()) {
    lo.example_log = JoinPath(options.example_log_dir, absl::StrFormat("worker-%05d.log", worker));
  }
  return lo;
}

}  // namespace

Status RunWorker(const ModelSpec& spec, const JobData& data, const model::NegativeSampler& sampler,
                 const TrainOptions& options, const std::vector<std::string>& endpoints, int worker,
                 int num_workers, const std::atomic<bool>* stop,
                 const std::function<void(const WorkerProgress&)>& report,
                 const WorkerHooks& hooks) {
  VREC_ASSIGN_OR_RETURN(auto transport, net::Client::Connect(endpoints));
  VREC_ASSIGN_OR_RETURN(ps::SlotRouter router,
                        ps::SlotRouter::Contiguous(static_cast<uint32_t>(endpoints.size())));
  ps::PsClient client(transport.get(), router, static_cast<uint32_t>(worker));
  if (!options.example_log_dir.empty()) VREC_RETURN_IF_ERROR(MakeDirs(options.example_log_dir));
  if (spec.kind == "ranking") {
    RankingWorkerOptions ro;
    ro.worker = worker;
    ro.batch_size = options.batch_size;
    ro.max_examples = WorkerShare(options.max_examples, worker, num_workers);
    ro.loop = LoopOptions(options, worker, hooks);
    VREC_ASSIGN_OR_RETURN(auto w, RankingWorker::Create(&spec, &client, ro));
    VREC_ASSIGN_OR_RETURN(auto source,
                          OpenSource<RankingExample>(data, options, data.manifest.ranking_train(),
                                                     worker, num_workers, hooks));
    if (hooks.resume != nullptr) w->Restore(*hooks.resume);
    return w->Run(source.get(), stop, report);
  }
  CandidateWorkerOptions wo;
  wo.worker = worker;
  wo.num_workers = num_workers;
  wo.batch_size = options.batch_size;
  wo.max_examples = WorkerShare(options.max_examples, worker, num_workers);
  wo.seed = options.candidate.seed;
  wo.loop = LoopOptions(options, worker, hooks);
  VREC_ASSIGN_OR_RETURN(auto w,
                        CandidateWorker::Create(&spec, &data.corpus, &sampler, &client, wo));
  VREC_ASSIGN_OR_RETURN(auto source,
                        OpenSource<CandidateExample>(data, options, data.manifest.candidate_train(),
                                                     worker, num_workers, hooks));
  if (hooks.resume != nullptr) w->Restore(*hooks.resume);
  return w->Run(source.get(), stop, report);
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

void PeriodicEval(const ModelSpec& spec, const JobData& data, const TrainOptions& options,
                  const std::vector<std::string>& endpoints, ProgressTracker* tracker) {
  CandidateEvalOptions eo = options.eval;
  eo.max_examples = options.eval_examples_during;
  auto eval = EvaluateThroughServers(spec, data, options, endpoints, eo);
  if (!eval.ok()) {
    LOG(WARNING) << "periodic evaluation failed: " << eval.status();
    return;
  }
  tracker->RecordEval(*eval);
  std::cerr << EvalLine(*eval) << std::endl;
}

nlohmann::json JobSummary(const ModelSpec& spec, int servers, int workers,
                          const ProgressTracker& tracker, bool stopped) {
  return {{"model", spec.kind},
          {"servers", servers},
          {"workers", workers},
          {"examples", tracker.examples()},
          {"steps", tracker.steps()},
          {"seconds", tracker.seconds()},
          {"examples_per_s", tracker.examples() / std::max(1e-9, tracker.seconds())},
          {"final_loss", tracker.RecentLoss()},
          {"stopped", stopped}};
}

namespace {

// Workers of one process stop here for a checkpoint until released.
class PauseGate {
 public:
  explicit PauseGate(int workers) : paused_(workers) {}
  bool requested() const { return requested_.load(std::memory_order_relaxed); }
  void Request() { requested_ = true; }
  Status Pause(const WorkerProgress& p) {
    std::unique_lock<std::mutex> lock(mu_);
    paused_[p.worker] = p;
    const uint64_t generation = generation_;
    cv_.wait(lock, [&] { return generation_ != generation; });
    return absl::OkStatus();
  }
  // The paused workers' progress (nullopt: not paused).
  std::vector<std::optional<WorkerProgress>> Paused() {
    std::lock_guard<std::mutex> lock(mu_);
    return paused_;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    requested_ = false;
    std::fill(paused_.begin(), paused_.end(), std::nullopt);
    ++generation_;
    cv_.notify_all();
  }

 private:
  std::atomic<bool> requested_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::optional<WorkerProgress>> paused_;
  uint64_t generation_ = 0;
};

}  // namespace

CheckpointSchedule::CheckpointSchedule(const TrainOptions& options, uint64_t examples)
    : every_(options.checkpoint_every),
      enabled_(!options.checkpoint_dir.empty() && options.checkpoint_every.enabled()),
      last_examples_(examples),
      last_time_(Clock::now()),
      sequence_(options.checkpoint_dir.empty() ? 1
                                               : NextCheckpointSequence(options.checkpoint_dir)) {}

bool CheckpointSchedule::Due(uint64_t examples) const {
  if (!enabled_) return false;
  return (every_.examples > 0 && examples >= last_examples_ + every_.examples) ||
         (every_.seconds > 0 && Since(last_time_) >= every_.seconds);
}

uint64_t CheckpointSchedule::Taken(uint64_t examples) {
  last_examples_ = examples;
  last_time_ = Clock::now();
  return sequence_++;
}

StatusOr<nlohmann::json> TrainLocal(const TrainOptions& options_in, const std::atomic<bool>* stop) {
  TrainOptions options = options_in;
  if (options.bind_host.empty()) options.bind_host = "inproc";
  if (options.servers < 1 || options.workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--servers (", options.servers,
                                                   ") and --workers (", options.workers,
                                                   ") must be at least 1"));
  }
  if (!options.model_dir.empty()) VREC_RETURN_IF_ERROR(MakeDirs(options.model_dir));
  VREC_ASSIGN_OR_RETURN(ModelSpec spec, BuildSpec(options));
  VREC_ASSIGN_OR_RETURN(std::optional<FoundCheckpoint> resume,
                        FindResumeCheckpoint(options, spec, options.workers));
  VREC_ASSIGN_OR_RETURN(JobData data, LoadJobData(options, spec));
  spec.quantiles = data.quantiles;
  model::NegativeSampler sampler = model::NegativeSampler::Uniform(1).value();
  if (spec.kind == "candidate") {
    VREC_ASSIGN_OR_RETURN(sampler, BuildSampler(spec, data.corpus));
  }
  LOG(INFO) << "dataset " << options.data_dir << ": " << data.corpus.ids.size() << " videos, "
            << data.train_records << " training examples";

  // Servers.
  std::vector<ServerProcess> servers;
  std::vector<std::string> endpoints;
  if (resume) {
    LOG(INFO) << "resuming from " << resume->dir << " ("
              << resume->manifest.model().examples_trained() << " examples trained)";
  }
  for (int s = 0; s < options.servers; ++s) {
    VREC_ASSIGN_OR_RETURN(ServerProcess server,
                          StartServer(spec, options, s, options.workers,
                                      resume ? &*resume : nullptr, options.servers));
    endpoints.push_back(server.endpoint);
    servers.push_back(std::move(server));
  }
  // A checkpoint of every server and the workers' states.
  auto write_checkpoint = [&](uint64_t sequence, const std::vector<WorkerProgress>& states,
                              double seconds) -> Status {
    const std::string dir = JoinPath(options.checkpoint_dir, CheckpointName(sequence));
    std::vector<ServerState> server_states;
    for (int s = 0; s < options.servers; ++s) {
      VREC_ASSIGN_OR_RETURN(ServerState st,
                            WriteServerCheckpoint(servers[s].storage.get(), dir, s));
      server_states.push_back(std::move(st));
    }
    return CommitJobCheckpoint(spec, options, options.servers, sequence, states, server_states,
                               seconds);
  };

  // Workers.
  ProgressTracker tracker(options, options.workers, data.train_records,
                          resume ? &resume->manifest : nullptr);
  std::vector<WorkerProgress> resumed(options.workers);
  if (resume) {
    for (const WorkerState& w : resume->manifest.workers())
      resumed[w.worker()] = FromWorkerState(w);
  }
  CheckpointSchedule schedule(options, tracker.examples());
  PauseGate gate(options.workers);
  Status checkpoint_status;
  std::mutex mu;
  std::vector<WorkerProgress> reports;
  std::vector<Status> worker_status(options.workers);
  std::vector<std::thread> threads;
  std::atomic<bool> stop_workers{false};
  for (int w = 0; w < options.workers; ++w) {
    threads.emplace_back([&, w] {
      WorkerHooks hooks;
      if (resume) hooks.resume = &resumed[w];
      hooks.pause_requested = [&] { return gate.requested(); };
      hooks.paused = [&](const WorkerProgress& p) { return gate.Pause(p); };
      Status s = RunWorker(
          spec, data, sampler, options, endpoints, w, options.workers, &stop_workers,
          [&](const WorkerProgress& p) {
            std::lock_guard<std::mutex> lock(mu);
            reports.push_back(p);
          },
          hooks);
      std::lock_guard<std::mutex> lock(mu);
      worker_status[w] = s;
      if (!s.ok()) {
        WorkerProgress done;
        done.worker = w;
        done.done = true;
        reports.push_back(done);
      }
    });
  }

  // Coordinator.
  auto last_eval = Clock::now();
  auto last_stats = Clock::now();
  nlohmann::json previous_stats;
  Status eval_status;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& p : reports) tracker.Update(p);
      reports.clear();
      bool failed = false;
      for (const Status& s : worker_status) failed |= !s.ok();
      if (failed) stop_workers = true;
    }
    if (stop != nullptr && stop->load()) stop_workers = true;
    if (tracker.AllDone()) break;
    tracker.MaybeReport();
    if (!gate.requested() && checkpoint_status.ok() && schedule.Due(tracker.examples())) {
      gate.Request();
    }
    if (gate.requested()) {  // every worker paused or done: write it
      std::vector<std::optional<WorkerProgress>> paused = gate.Paused();
      std::vector<WorkerProgress> states(options.workers);
      bool all = true, failed = false;
      {
        std::lock_guard<std::mutex> lock(mu);  // reports were drained above
        for (int w = 0; w < options.workers; ++w) {
          failed |= !worker_status[w].ok();
          if (paused[w]) {
            states[w] = *paused[w];
          } else if (tracker.worker(w).done) {
            states[w] = tracker.worker(w);
          } else {
            all = false;
          }
        }
      }
      if (failed) {
        gate.Release();
      } else if (all) {
        uint64_t examples = 0;
        for (const auto& st : states) examples += st.examples;
        checkpoint_status = write_checkpoint(schedule.Taken(examples), states, tracker.seconds());
        if (!checkpoint_status.ok()) stop_workers = true;
        gate.Release();
      }
    }
    if (options.eval_every_seconds > 0 && Since(last_eval) >= options.eval_every_seconds) {
      PeriodicEval(spec, data, options, endpoints, &tracker);
      last_eval = Clock::now();
    }
    if (options.ps_stats_seconds > 0 && Since(last_stats) >= options.ps_stats_seconds) {
      LogPsStats(endpoints, &tracker, &previous_stats);
      last_stats = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& p : reports) tracker.Update(p);
    reports.clear();
  }
  tracker.MaybeReport(/*force=*/true);
  for (int w = 0; w < options.workers; ++w) {
    if (!worker_status[w].ok()) {
      return Status(worker_status[w].code(),
                    absl::StrCat("worker ", w, ": ", worker_status[w].message()));
    }
  }
  VREC_RETURN_IF_ERROR(checkpoint_status);
  if (!options.checkpoint_dir.empty()) {  // the final state, to resume or export from
    std::vector<WorkerProgress> states(options.workers);
    for (int w = 0; w < options.workers; ++w) states[w] = tracker.worker(w);
    VREC_RETURN_IF_ERROR(
        write_checkpoint(schedule.Taken(tracker.examples()), states, tracker.seconds()));
  }

  nlohmann::json summary =
      JobSummary(spec, options.servers, options.workers, tracker, stop != nullptr && stop->load());
  if (!options.model_dir.empty()) {
    uint64_t rows = 0;
    for (int s = 0; s < options.servers; ++s) {
      VREC_ASSIGN_OR_RETURN(uint64_t r,
                            SaveServerTables(*servers[s].storage, options.model_dir, s));
      rows += r;
    }
    VREC_RETURN_IF_ERROR(WriteTrainedModel(
        options.model_dir, MakeTrainedModel(spec, options, options.servers, tracker.examples(),
                                            tracker.steps(), tracker.seconds())));
    summary["model_dir"] = options.model_dir;
    summary["rows_saved"] = rows;
  }
  if (options.final_eval) {
    VREC_ASSIGN_OR_RETURN(nlohmann::json eval,
                          EvaluateThroughServers(spec, data, options, endpoints, options.eval));
    tracker.RecordEval(eval);
    std::cerr << EvalLine(eval) << std::endl;
    summary["eval"] = eval;
  }
  for (auto& s : servers) s.server->Stop();
  return summary;
}

}  // namespace vrec::train
