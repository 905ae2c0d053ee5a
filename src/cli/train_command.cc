// `vrec train` and `vrec eval`: flags onto train::TrainOptions, signals onto
// a stop flag, the summary JSON onto the last stdout line. The work is in
// src/train (docs/training.md).
#include <gflags/gflags.h>

#include <cmath>
#include <csignal>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "cli/common_flags.h"
#include "data/dataset.h"
#include "models/candidate_eval.h"
#include "models/saved_model.h"
#include "net/host_address.h"
#include "train/job.h"
#include "train/job_roles.h"
#include "train/model_kind.h"
#include "train/mpi_job.h"

// --seed, --max_history, --servers, --server_threads, --optimizer, --spill_dir
// and --progress_seconds are shared: see cli/common_flags.h.
DEFINE_string(data, "", "Dataset folder (from vrec datagen or vrec convert)");
DEFINE_string(model_dir, "", "Folder for the trained model (model.pb, tables/, metrics.jsonl)");
DEFINE_string(model, "candidate",
              "Which model to train: candidate (generation, sampled softmax) or ranking "
              "(weighted logistic regression on impressions)");
DEFINE_bool(weighted, true,
            "Ranking: weight clicked impressions by watch time (false: a click-trained logistic "
            "regression, the paper's baseline)");
DEFINE_int32(num_quantiles, 100,
             "Ranking: quantiles per continuous feature (fitted before training)");
DEFINE_int32(batch_size, 512, "Examples per training step and worker");
DEFINE_uint64(max_examples, 0,
              "Stop after this many examples, all workers together (0 = no limit)");
DEFINE_int32(epochs, -1,
             "Passes over the training data (0 = no limit). Default (-1): up to 100 for a model "
             "with a validation slice, which stops once validation stops improving "
             "(--validation_users, --patience); 1 otherwise (the ranking model, --stream, "
             "--validation_users=0)");
DEFINE_uint64(
    validation_users, 10000,
    "Candidate model: the validation slice, each training user's last training example "
    "for up to this many users (chosen by a hash of the user id and --seed), held out of "
    "training; the job validates on it once per epoch, keeps the best model in "
    "--model_dir and stops when validation stops improving (--patience, "
    "--patience_fraction, --validation_window). 0 = no slice: train on every example for --epochs");
DEFINE_string(validation_metric, "recall@50",
              "The validation figure early stopping follows (higher is better): recall@1, "
              "recall@10, recall@50, recall@100 or map");
DEFINE_int32(patience, 3,
             "Early stopping waits for at least this many validations in a row without a better "
             "--validation_metric, and never stops before the model beats popularity on the "
             "validation slice (0 = never stop early; the best model is kept all the same)");
DEFINE_double(patience_fraction, 1.0,
              "... and for at least this fraction of the validations it took to reach the best "
              "(patience grows with the run: validation scores are noisy and a slowly learning "
              "model gains less than the noise per epoch; docs/quality.md)");
DEFINE_int32(validation_window, 3,
             "Early stopping judges the mean of the last this many validation scores (its noise "
             "shrinks by the square root; 1 = each score alone); the model kept is still the one "
             "with the best single score");
DEFINE_string(validate_every, "",
              "Validate every N examples or every Ns seconds instead of once per epoch");
DEFINE_bool(stream, false,
            "Workers simulate the generated dataset's world on the fly instead of reading its "
            "training files: the same examples in another order, nothing on disk (for runs "
            "larger than the disk; --data must come from vrec datagen)");
DEFINE_double(max_seconds, 0, "Stop after this many seconds of training (0 = no limit)");
DEFINE_int32(embedding_dim, 64,
             "Dimension of the video and search-token embeddings (ranking: topic gets half, "
             "region and device 8)");
DEFINE_string(tower, "256,128",
              "Hidden ReLU widths of the candidate tower, comma-separated; "
              "the last is the user-vector dimension (\"\" = no hidden layer)");
DEFINE_int32(output_dim, 0, "User-vector dimension without a tower (0 = last tower width)");
DEFINE_bool(use_example_age, true, "Feed the example age (t_max - t) to the candidate tower");
DEFINE_int32(negatives, 256, "Shared sampled-softmax negatives per step");
DEFINE_string(sampler, "unigram", "Negative sampler: uniform, or unigram (label counts^power)");
DEFINE_double(sampler_power, 0.75, "Exponent of the unigram sampler's counts");
DEFINE_double(learning_rate, 0,
              "Learning rate of every table's optimizer (0 = the optimizer's default: adam "
              "0.003, adagrad 0.1, sgd 0.05, ftrl 0.1)");
DEFINE_double(init_scale, 0.05,
              "Sparse rows start in U(-scale, scale): the candidate model's output rows and the "
              "ranking model's embeddings (the candidate model's input embeddings start at zero: "
              "an id training never updated reads as the zero embedding)");
DEFINE_uint64(server_memory_mb, 0,
              "Memory budget of each parameter server in MiB; colder rows spill to RocksDB "
              "(0 = all in memory)");
DEFINE_string(bind_host, "",
              "Address the parameter servers bind and workers dial: inproc (one process, no "
              "copies), an address, or * for every interface (mpirun across machines; see also "
              "--bind_network). Default: inproc without mpirun, 127.0.0.1 under mpirun");
DEFINE_string(bind_network, "",
              "Instead of --bind_host: each parameter server binds, and advertises, its own "
              "machine's address in this network, as Open MPI's btl_tcp_if_include names one: an "
              "IPv4 block (10.1.0.0/16) or an interface (eth0), or a comma list tried in order "
              "(mpirun across machines)");
DEFINE_bool(insecure_data_plane, false,
            "Run the parameter servers without authentication. By default every TCP "
            "connection between workers and servers is ZeroMQ CURVE with keys rank 0 makes for "
            "this job and hands out over MPI, so no other process can read or change the model; "
            "with this flag anyone who reaches a server's port can. Trusted networks only "
            "(docs/operations.md)");
DEFINE_double(failure_timeout, 60,
              "Under mpirun: a rank that is dead or frozen is found within this many seconds, at "
              "any point of the job: rank 0 pings every other rank about every second, and they "
              "ping rank 0, from threads of their own (a busy rank answers, a frozen one does "
              "not); a worker that sends no progress for this long counts as lost too. The job "
              "then ends non-zero naming the rank, its role and host (resume from the last "
              "checkpoint; vrec supervise does it for you). 0 = wait forever");
DEFINE_double(max_seconds_grace, 300,
              "With --max_seconds: the workers stop training at --max_seconds; the final "
              "checkpoint, save and evaluation then have this many seconds, and whatever any rank "
              "does, every rank of the job ends by --max_seconds plus this (exit 1 if it had to "
              "be cut short)");
DEFINE_double(eval_every_seconds, 0, "Evaluate on held-out examples this often (0 = at the end)");
DEFINE_uint64(eval_examples, 0, "Held-out examples of the final evaluation (0 = all)");
DEFINE_bool(exclude_watched, false,
            "Candidate model: the task is to recommend unwatched videos. Training leaves each "
            "example's watched videos out of its softmax's negatives; validation and evaluation "
            "drop them from the ranking. Default: true when the dataset's log has no rewatch "
            "(vrec convert records it: watches_unique in manifest.json), false otherwise "
            "(generated worlds: their users rewatch)");
DEFINE_bool(serving_example_age, false,
            "Evaluation: score every held-out example with example age 0, as at serving "
            "(default: at its own example age, as the oracle sees it)");
DEFINE_string(dump, "",
              "vrec eval, candidate model: write FILE, one JSON line per held-out example: the "
              "user, the label, its rank and the model's --dump_top videos, named by the "
              "dataset's own ids when it has them (a converted log of string ids)");
DEFINE_int32(dump_top, 10, "vrec eval --dump: videos listed per example");
DEFINE_bool(video_age_shares, false,
            "vrec eval, candidate model: also report how the model's probability and the "
            "held-out next watches spread over video age (days since upload; the paper's "
            "Figure 4)");
DEFINE_string(metrics_file, "", "JSONL metrics (default MODEL_DIR/metrics.jsonl)");
DEFINE_double(ps_stats_seconds, 30,
              "Log every parameter server's table stats this often (rows in memory and on disk, "
              "memory-hit rate, key rates, hottest keys; 0 = never)");
DEFINE_string(checkpoint_dir, "",
              "Folder of training checkpoints (ckpt-NNNNNNNN/, each complete when its MANIFEST "
              "exists); one is also written when training ends. Under mpirun every rank must "
              "see it (a shared file system)");
DEFINE_string(checkpoint_every, "",
              "Checkpoint this often: a time (30s, 10m, 2h) or a number of examples, all workers "
              "together (e.g. 200000); \"\" = only at the end");
DEFINE_int32(keep_checkpoints, 3, "Complete checkpoints kept (the newest)");
DEFINE_bool(resume, false,
            "Continue from the newest complete checkpoint in --checkpoint_dir (starts from "
            "scratch when there is none yet): no example is trained twice or skipped. The "
            "model and data flags must match the checkpoint's; --servers may differ");
DEFINE_string(init_from, "",
              "Warm start (day after day): train on --data, a new dataset, starting from the "
              "parameters of an earlier job instead of their initializers. Give a checkpoint "
              "(folder or --checkpoint_dir: rows, optimizer state, step clocks and admission "
              "counts of every table), or a model folder (--model_dir) or serving bundle (vrec "
              "export --out): their weights only, the optimizer state then starts fresh. The "
              "data position, epochs and early stopping start afresh; the step clocks go on "
              "(expiry keeps counting); the normalisers are the earlier model's merged with the "
              "new data's. The model flags must fit its tables (the learning rate, sampler, "
              "--min_count and --expire_after may change); --servers may differ. With --resume, "
              "a checkpoint of this --data in --checkpoint_dir wins (docs/training.md, \"Day "
              "after day\")");
DEFINE_string(min_count, "",
              "Admission: a sparse row is created only at the N-th time its id is pulled (until "
              "then it reads as its initial value and its updates are dropped), so that ids seen "
              "once or twice take no row. N applies to the tables of open-ended ids (candidate: "
              "video, token, video_out; ranking: rank/video, rank/token); TABLE:N,... sets "
              "tables one by one (e.g. video:3,token:5). \"\" = every id gets a row. Counts "
              "are kept in checkpoints, across --resume and --init_from");
DEFINE_string(expire_after, "",
              "Expiry: a sparse row not pulled or pushed for this many steps of its table's clock "
              "is removed (a later sighting starts it afresh, subject to --min_count), so tables "
              "stay bounded as the catalogue churns. The clock advances once per push request a "
              "server serves, about once per training step of any worker (the summary's "
              "\"steps\" and \"tables\"), and goes on across --resume and --init_from: for "
              "rows unseen for K days of daily training give K times a day's steps. Same forms "
              "as --min_count (STEPS, or TABLE:STEPS,...); \"\" = never");
DEFINE_string(example_log_dir, "",
              "Diagnostics: each worker appends \"<worker> <step> <example ids>\" per trained "
              "step to DIR/worker-NNNNN.log");

namespace vrec::cli {
namespace {

std::atomic<bool> g_stop{false};

// The default cap on epochs when validation decides when to stop.
constexpr int kMaxValidatedEpochs = 100;

void OnSignal(int) { g_stop.store(true); }

StatusOr<std::vector<int>> ParseTower(const std::string& text) {
  std::vector<int> tower;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int w = 0;
    if (!absl::SimpleAtoi(part, &w) || w <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tower: '", part, "' is not a positive width (e.g. 256,128)"));
    }
    tower.push_back(w);
  }
  return tower;
}

// vrec train's optimizer: --optimizer, or Adam when the flag is left at the
// default it shares with vrec bench ps (Adam trained both models best on
// generated worlds: docs/training.md).
StatusOr<OptimizerConfig> ParseOptimizer() {
  OptimizerConfig o;
  const bool unset = gflags::GetCommandLineFlagInfoOrDie("optimizer").is_default;
  const std::string name = unset ? "adam" : FLAGS_optimizer;
  double rate = FLAGS_learning_rate;
  if (name == "sgd") {
    o.set_kind(OptimizerConfig::SGD);
    if (rate == 0) rate = 0.05;
  } else if (name == "adagrad") {
    o.set_kind(OptimizerConfig::ADAGRAD);
    if (rate == 0) rate = 0.1;
  } else if (name == "adam") {
    o.set_kind(OptimizerConfig::ADAM);
    if (rate == 0) rate = 0.003;
  } else if (name == "ftrl") {
    o.set_kind(OptimizerConfig::FTRL);
    if (rate == 0) rate = 0.1;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--optimizer=", FLAGS_optimizer, ": use sgd, adagrad, adam or ftrl"));
  }
  if (rate < 0 || !std::isfinite(rate)) {
    return absl::InvalidArgumentError(absl::StrCat("--learning_rate=", rate, " must be >= 0"));
  }
  o.set_learning_rate(static_cast<float>(rate));
  return o;
}

}  // namespace

// --exclude_watched, or when it is not given, what the dataset's log says.
bool ExcludeWatched(const DatasetManifest& manifest) {
  if (!gflags::GetCommandLineFlagInfoOrDie("exclude_watched").is_default) {
    return FLAGS_exclude_watched;
  }
  return manifest.watches_unique();
}

StatusOr<train::TrainOptions> TrainOptionsFromFlags() {
  train::TrainOptions o;
  if (FLAGS_data.empty()) {
    return absl::InvalidArgumentError("--data is required (a folder from vrec datagen or convert)");
  }
  o.data_dir = FLAGS_data;
  o.model_dir = FLAGS_model_dir;
  o.model = FLAGS_model;
  o.server.servers = FLAGS_servers;
  o.worker.workers = FLAGS_workers;
  o.worker.batch_size = FLAGS_batch_size;
  o.worker.max_examples = FLAGS_max_examples;
  // The validation slice: the candidate model's, from training files (a
  // simulated stream has no last example per user).
  const bool validating = FLAGS_model == models::kCandidateKind && !FLAGS_stream;
  o.worker.validation_users = validating ? FLAGS_validation_users : 0;
  o.worker.epochs =
      FLAGS_epochs >= 0 ? FLAGS_epochs : (o.worker.validation_users > 0 ? kMaxValidatedEpochs : 1);
  o.coordinator.validation.metric = FLAGS_validation_metric;
  if (FLAGS_patience < 0) return absl::InvalidArgumentError("--patience must be >= 0");
  o.coordinator.validation.stopping.patience = FLAGS_patience;
  if (!(FLAGS_patience_fraction >= 0) || !std::isfinite(FLAGS_patience_fraction)) {
    return absl::InvalidArgumentError("--patience_fraction must be a number >= 0 (e.g. 1)");
  }
  o.coordinator.validation.stopping.patience_fraction = FLAGS_patience_fraction;
  if (FLAGS_validation_window < 1) {
    return absl::InvalidArgumentError("--validation_window must be >= 1");
  }
  o.coordinator.validation.stopping.window = FLAGS_validation_window;
  VREC_ASSIGN_OR_RETURN(o.coordinator.validation.every,
                        models::ParseCheckpointEvery(FLAGS_validate_every, "--validate_every"));
  o.worker.max_seconds = FLAGS_max_seconds;
  o.worker.max_staleness = FLAGS_staleness;
  o.worker.stream = FLAGS_stream;
  if (FLAGS_batch_size < 1) return absl::InvalidArgumentError("--batch_size must be >= 1");
  if (FLAGS_epochs < -1) return absl::InvalidArgumentError("--epochs must be >= 0");
  models::CandidateSpecOptions& c = o.candidate;
  c.seed = FLAGS_seed;
  c.model.embedding_dim = FLAGS_embedding_dim;
  VREC_ASSIGN_OR_RETURN(c.model.tower, ParseTower(FLAGS_tower));
  c.model.output_dim =
      FLAGS_output_dim > 0 ? FLAGS_output_dim : (c.model.tower.empty() ? 64 : c.model.tower.back());
  c.model.use_example_age = FLAGS_use_example_age;
  c.model.max_history = FLAGS_max_history;
  c.model.max_tokens = FLAGS_max_history;
  VREC_ASSIGN_OR_RETURN(c.optimizer, ParseOptimizer());
  c.embedding_init_scale = static_cast<float>(FLAGS_init_scale);
  if (FLAGS_negatives < 1) return absl::InvalidArgumentError("--negatives must be >= 1");
  c.sampler.set_num_negatives(static_cast<uint32_t>(FLAGS_negatives));
  if (FLAGS_sampler == "uniform") {
    c.sampler.set_kind(SamplerConfig::UNIFORM);
  } else if (FLAGS_sampler == "unigram") {
    c.sampler.set_kind(SamplerConfig::UNIGRAM);
    c.sampler.set_power(static_cast<float>(FLAGS_sampler_power));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--sampler=", FLAGS_sampler, ": use uniform or unigram"));
  }
  models::RankingSpecOptions& r = o.ranking;
  r.seed = FLAGS_seed;
  r.embedding_dim = FLAGS_embedding_dim;
  r.tower = c.model.tower;
  r.weighted = FLAGS_weighted;
  r.max_history = FLAGS_max_history;
  r.num_quantiles = FLAGS_num_quantiles;
  r.optimizer = c.optimizer;
  r.embedding_init_scale = c.embedding_init_scale;
  o.server.memory_bytes = FLAGS_server_memory_mb << 20;
  o.server.spill_dir = FLAGS_spill_dir;
  o.server.threads = FLAGS_server_threads;
  o.server.bind_host = FLAGS_bind_host;
  o.server.insecure_data_plane = FLAGS_insecure_data_plane;
  if (!FLAGS_bind_network.empty()) {
    if (!FLAGS_bind_host.empty()) {
      return absl::InvalidArgumentError("give --bind_host or --bind_network, not both");
    }
    Status s = net::ValidateNetworks(FLAGS_bind_network);
    if (!s.ok()) return Status(s.code(), absl::StrCat("--bind_network: ", s.message()));
    o.server.bind_network = FLAGS_bind_network;
  }
  o.coordinator.progress_seconds = FLAGS_progress_seconds;
  o.coordinator.metrics_file = FLAGS_metrics_file;
  o.coordinator.eval_every_seconds = FLAGS_eval_every_seconds;
  o.coordinator.ps_stats_seconds = FLAGS_ps_stats_seconds;
  if (FLAGS_failure_timeout < 0) {
    return absl::InvalidArgumentError("--failure_timeout must be >= 0 (0 = wait forever)");
  }
  o.coordinator.failure_timeout_seconds = FLAGS_failure_timeout;
  if (FLAGS_max_seconds_grace < 0) {
    return absl::InvalidArgumentError("--max_seconds_grace must be >= 0");
  }
  o.coordinator.max_seconds_grace = FLAGS_max_seconds_grace;
  o.coordinator.eval.max_examples = FLAGS_eval_examples;
  // A dataset that cannot be read fails the job later, with its own message.
  StatusOr<DatasetManifest> manifest = ReadManifest(FLAGS_data);
  o.coordinator.eval.exclude_watched =
      manifest.ok() ? ExcludeWatched(*manifest) : FLAGS_exclude_watched;
  o.worker.exclude_watched = o.coordinator.eval.exclude_watched;
  o.coordinator.eval.own_example_age = !FLAGS_serving_example_age;
  o.checkpoint.dir = FLAGS_checkpoint_dir;
  VREC_ASSIGN_OR_RETURN(o.checkpoint.every, models::ParseCheckpointEvery(FLAGS_checkpoint_every));
  if (o.checkpoint.every.enabled() && o.checkpoint.dir.empty()) {
    return absl::InvalidArgumentError("--checkpoint_every needs --checkpoint_dir");
  }
  if (FLAGS_keep_checkpoints < 1)
    return absl::InvalidArgumentError("--keep_checkpoints must be >= 1");
  o.checkpoint.keep = FLAGS_keep_checkpoints;
  o.checkpoint.resume = FLAGS_resume;
  o.checkpoint.init_from = FLAGS_init_from;
  o.worker.example_log_dir = FLAGS_example_log_dir;
  VREC_ASSIGN_OR_RETURN(o.tables.min_count, train::ParsePerTable(FLAGS_min_count, "--min_count"));
  VREC_ASSIGN_OR_RETURN(o.tables.expire_after,
                        train::ParsePerTable(FLAGS_expire_after, "--expire_after"));
  // Table names are checked against the model now: a usage error.
  if (!o.tables.min_count.empty() || !o.tables.expire_after.empty()) {
    VREC_ASSIGN_OR_RETURN(const train::ModelKind* kind, train::FindModelKind(o.model));
    VREC_RETURN_IF_ERROR(train::JobSpec(*kind, o).status());
  }
  return o;
}

int RunTrain(int argc, char** argv) {
  if (argc > 1) {
    std::cerr << "vrec train: unexpected argument '" << argv[1] << "'; see `vrec train --help`\n";
    return kExitUsage;
  }
  auto options = TrainOptionsFromFlags();
  if (!options.ok()) {
    std::cerr << "vrec train: " << options.status().message() << "\n";
    return kExitUsage;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const bool mpi = train::LaunchedByMpirun();
  auto summary = mpi ? train::TrainMpi(*options, &g_stop) : train::TrainLocal(*options, &g_stop);
  if (!summary.ok()) {
    std::cerr << "vrec train: " << summary.status() << "\n";
    return 1;
  }
  if (!summary->is_null()) std::cout << summary->dump() << std::endl;  // rank 0 only
  return 0;
}

int RunEval(int argc, char** argv) {
  if (argc > 1) {
    std::cerr << "vrec eval: unexpected argument '" << argv[1] << "'; see `vrec eval --help`\n";
    return kExitUsage;
  }
  if (FLAGS_model_dir.empty() || FLAGS_data.empty()) {
    std::cerr << "vrec eval: --model_dir and --data are required; see `vrec eval --help`\n";
    return kExitUsage;
  }
  auto run = [&]() -> StatusOr<nlohmann::json> {
    VREC_ASSIGN_OR_RETURN(auto model, models::SavedModel::Open(FLAGS_model_dir));
    VREC_ASSIGN_OR_RETURN(DatasetManifest manifest, ReadManifest(FLAGS_data));
    VREC_ASSIGN_OR_RETURN(const train::ModelKind* kind, train::FindModelKind(model->spec().kind));
    models::EvalOptions eo;
    eo.max_examples = FLAGS_eval_examples;
    eo.exclude_watched = ExcludeWatched(manifest);
    eo.own_example_age = !FLAGS_serving_example_age;
    // The video-age shares need the corpus too: read once for both.
    const bool shares = FLAGS_video_age_shares && kind == &train::CandidateKind();
    const bool dump = !FLAGS_dump.empty();
    if (dump && kind != &train::CandidateKind()) {
      return absl::InvalidArgumentError("--dump is for the candidate model");
    }
    Corpus corpus;
    if (shares || dump) {
      VREC_ASSIGN_OR_RETURN(corpus, LoadCorpus(FLAGS_data, manifest, /*count_labels=*/true));
    }
    VREC_ASSIGN_OR_RETURN(nlohmann::json eval,
                          kind->Evaluate(model->spec(), model.get(), FLAGS_data, manifest,
                                         shares ? &corpus : nullptr, eo));
    if (shares) {
      VREC_ASSIGN_OR_RETURN(
          eval["video_age_shares"],
          models::VideoAgeShares(model->spec(), model.get(), FLAGS_data, manifest, corpus, eo));
    }
    if (dump) {
      VREC_ASSIGN_OR_RETURN(const uint64_t lines,
                            models::DumpRecommendations(model->spec(), model.get(), FLAGS_data,
                                                        manifest, corpus, eo, FLAGS_dump_top,
                                                        FLAGS_dump));
      eval["dump"] = {{"path", FLAGS_dump}, {"examples", lines}, {"top", FLAGS_dump_top}};
    }
    eval["model"] = model->info().kind();
    eval["model_dir"] = FLAGS_model_dir;
    eval["data"] = FLAGS_data;
    return eval;
  };
  auto eval = run();
  if (!eval.ok()) {
    std::cerr << "vrec eval: " << eval.status() << "\n";
    return 1;
  }
  std::cout << eval->dump() << std::endl;
  return 0;
}

}  // namespace vrec::cli
