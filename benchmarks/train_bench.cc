// `vrec bench train`: training throughput of the paper-sized candidate model
// (history 50 + 50 tokens, embeddings 256, tower 1024-512-256, 2048 shared
// negatives, batch 512, Adagrad) with W worker threads and S parameter
// servers in this process, on synthetic examples held in memory, so the
// figure is the trainer's (model arithmetic, parameter traffic, batching),
// not the disk's. After --train_warmup_seconds, examples are counted for
// --seconds. --staleness picks the consistency model, as for vrec train.
// benchmarks/scaling.sh runs it across worker counts beside the PyTorch peer
// (benchmarks/torch_candidate_peer.py, same model and data shape).
#include <gflags/gflags.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench.h"
#include "cli/common_flags.h"
#include "common/random.h"
#include "common/run_info.h"
#include "common/thread_cpu.h"
#include "nlohmann/json.hpp"
#include "train/candidate_worker.h"
#include "train/job_roles.h"

DEFINE_int32(train_batch, 512, "examples per step and worker");
DEFINE_int32(train_negatives, 2048, "shared sampled-softmax negatives per step");
DEFINE_int32(train_dim, 256, "embedding and user-vector dimension");
DEFINE_string(train_tower, "1024,512,256", "hidden ReLU widths");
DEFINE_int64(train_videos, 1000000, "corpus size (video ids)");
DEFINE_int64(train_tokens, 1000000, "search-token vocabulary");
DEFINE_int32(train_history, 50, "watched videos and search tokens per example");
DEFINE_int32(train_pool, 20000, "distinct synthetic examples held in memory (cycled)");
DEFINE_double(train_warmup_seconds, 5, "unmeasured training before the measurement");
DEFINE_string(train_transport, "inproc",
              "how workers reach the servers: inproc (shared memory, no copies), tcp "
              "(loopback, as between processes, CURVE-authenticated as a job runs) or "
              "tcp_insecure (the same without CURVE: --insecure_data_plane)");

namespace vrec::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A skewed id in [1, n]: u^3 puts most mass on small ids (a few popular
// videos, a long tail), like real watch logs.
uint64_t SkewedId(Rng& rng, int64_t n) {
  const double u = rng.Uniform();
  return 1 + static_cast<uint64_t>(u * u * u * static_cast<double>(n - 1));
}

std::vector<CandidateExample> SyntheticExamples(int count, int history, int64_t videos,
                                                int64_t tokens) {
  Rng rng(2016, 7);
  std::vector<CandidateExample> out(count);
  for (int i = 0; i < count; ++i) {
    CandidateExample& e = out[i];
    e.set_example_id(i);
    for (int h = 0; h < history; ++h) e.add_watch_history(SkewedId(rng, videos));
    for (int h = 0; h < history; ++h) e.add_search_tokens(SkewedId(rng, tokens));
    e.set_region(1 + rng.UniformInt(50));
    e.set_device(1 + rng.UniformInt(8));
    e.set_age(static_cast<float>(rng.Uniform()));
    e.set_gender(rng.Uniform() < 0.5 ? 0.f : 1.f);
    e.set_logged_in(1.f);
    e.set_example_age(static_cast<float>(30 * rng.Uniform()));
    e.set_label_video(SkewedId(rng, videos));
  }
  return out;
}

}  // namespace

int RunTrainBench(int argc, char** argv) {
  if (argc > 1) {
    std::cerr << "vrec bench train: unexpected argument '" << argv[1] << "'\n";
    return 2;
  }
  if (FLAGS_workers < 1 || FLAGS_servers < 1 || FLAGS_seconds <= 0 || FLAGS_train_pool < 1) {
    std::cerr << "vrec bench train: --workers, --servers, --seconds and --train_pool must be "
                 "positive\n";
    return 2;
  }
  train::TrainOptions options;
  options.server.servers = FLAGS_servers;
  options.worker.workers = FLAGS_workers;
  options.worker.batch_size = FLAGS_train_batch;
  options.server.threads = FLAGS_server_threads;
  options.server.spill_dir = FLAGS_spill_dir.empty() ? "/tmp/vrec_bench_train" : FLAGS_spill_dir;
  if (FLAGS_train_transport != "inproc" && FLAGS_train_transport != "tcp" &&
      FLAGS_train_transport != "tcp_insecure") {
    std::cerr << "vrec bench train: --train_transport is inproc, tcp or tcp_insecure\n";
    return 2;
  }
  options.server.bind_host = FLAGS_train_transport == "inproc" ? "inproc" : "127.0.0.1";
  options.server.insecure_data_plane = FLAGS_train_transport == "tcp_insecure";
  models::CandidateSpecOptions& c = options.candidate;
  c.model.embedding_dim = FLAGS_train_dim;
  c.model.tower.clear();
  for (absl::string_view w : absl::StrSplit(FLAGS_train_tower, ',', absl::SkipEmpty())) {
    int width = 0;
    if (!absl::SimpleAtoi(w, &width) || width <= 0) {
      std::cerr << "vrec bench train: bad --train_tower '" << FLAGS_train_tower << "'\n";
      return 2;
    }
    c.model.tower.push_back(width);
  }
  c.model.output_dim = c.model.tower.empty() ? FLAGS_train_dim : c.model.tower.back();
  c.model.max_history = c.model.max_tokens = FLAGS_train_history;
  c.optimizer.set_kind(OptimizerConfig::ADAGRAD);
  c.optimizer.set_learning_rate(0.05f);
  c.sampler.set_kind(SamplerConfig::UNIGRAM);
  c.sampler.set_power(0.75f);
  c.sampler.set_num_negatives(static_cast<uint32_t>(FLAGS_train_negatives));

  auto spec = train::CandidateKind().Spec(options);
  if (!spec.ok()) {
    std::cerr << "vrec bench train: " << spec.status() << "\n";
    return 2;
  }
  std::cerr << "  generating " << FLAGS_train_pool << " examples\n";
  const std::vector<CandidateExample> examples = SyntheticExamples(
      FLAGS_train_pool, FLAGS_train_history, FLAGS_train_videos, FLAGS_train_tokens);
  train::JobData data;
  data.corpus.ids.resize(static_cast<size_t>(FLAGS_train_videos));
  data.corpus.label_counts.assign(data.corpus.ids.size(), 0.0);
  data.corpus.index.reserve(data.corpus.ids.size());
  for (int64_t v = 0; v < FLAGS_train_videos; ++v) {
    data.corpus.ids[v] = v + 1;
    data.corpus.index.emplace(v + 1, static_cast<int32_t>(v));
  }
  for (const auto& e : examples) data.corpus.label_counts[e.label_video() - 1] += 1;
  if (Status s = train::CandidateKind().PrepareWorkers(*spec, &data); !s.ok()) {
    std::cerr << "vrec bench train: " << s << "\n";
    return 1;
  }

  std::vector<train::ServerProcess> servers;
  net::ServerSet servers_at;
  if (auto keys = train::JobKeys(options.server); keys.ok()) {
    servers_at.keys = *keys;
  } else {
    std::cerr << "vrec bench train: " << keys.status() << "\n";
    return 1;
  }
  for (int s = 0; s < FLAGS_servers; ++s) {
    auto server = train::StartServer(*spec, options.server, servers_at.keys,
                                     train::SpillRoot(options), s, FLAGS_workers);
    if (!server.ok()) {
      std::cerr << "vrec bench train: " << server.status() << "\n";
      return 1;
    }
    servers_at.endpoints.push_back(server->endpoint);
    servers.push_back(std::move(*server));
  }
  auto router = ps::SlotRouter::Contiguous(FLAGS_servers).value();

  std::atomic<bool> stop{false};
  std::vector<std::atomic<uint64_t>> done(FLAGS_workers);
  std::vector<Status> status(FLAGS_workers);
  std::vector<std::thread> threads;
  for (int w = 0; w < FLAGS_workers; ++w) {
    threads.emplace_back([&, w] {
      NameThisThread("worker-" + std::to_string(w));
      auto run = [&]() -> Status {
        VREC_ASSIGN_OR_RETURN(auto transport, net::Client::Connect(servers_at));
        ps::PsClient client(transport.get(), router, static_cast<uint32_t>(w));
        train::CandidateWorkerOptions wo;
        wo.worker = w;
        wo.num_workers = FLAGS_workers;
        wo.batch_size = FLAGS_train_batch;
        wo.loop.report_seconds = 0.2;
        wo.loop.max_staleness = FLAGS_staleness;
        VREC_ASSIGN_OR_RETURN(
            auto worker,
            train::CandidateWorker::Create(&*spec, &data.corpus, data.sampler.get(), &client, wo));
        MemoryExamples<CandidateExample> source(&examples, w, FLAGS_workers);
        return worker->Run(&source, &stop, [&](const WorkerProgress& p) {
          done[w].store(p.examples(), std::memory_order_relaxed);
        });
      };
      status[w] = run();
      if (!status[w].ok()) stop = true;
    });
  }
  auto total = [&] {
    uint64_t n = 0;
    for (auto& d : done) n += d.load(std::memory_order_relaxed);
    return n;
  };
  std::cerr << "  warm-up " << FLAGS_train_warmup_seconds << " s\n";
  std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_train_warmup_seconds));
  const uint64_t before = total();
  const std::map<std::string, double> cpu_before = CpuSecondsByThreadName();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_seconds));
  const uint64_t after = total();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::map<std::string, double> cpu_after = CpuSecondsByThreadName();
  stop = true;
  for (auto& t : threads) t.join();
  for (int w = 0; w < FLAGS_workers; ++w) {
    if (!status[w].ok()) {
      std::cerr << "vrec bench train: worker " << w << ": " << status[w] << "\n";
      return 1;
    }
  }
  if (after == before) {
    std::cerr << "vrec bench train: no step finished in the measured " << secs
              << " s; raise --seconds\n";
    return 1;
  }
  // CPU milliseconds per step of each thread kind (workers summed), and
  // the rows each table served per step (the servers' own counts, all of
  // the run: warm-up included).
  const double steps = static_cast<double>(after - before) / FLAGS_train_batch;
  nlohmann::json cpu_ms = nlohmann::json::object();
  double cpu_total = 0;
  for (const auto& [name, cpu] : cpu_after) {
    const auto b = cpu_before.find(name);
    const double used = cpu - (b == cpu_before.end() ? 0.0 : b->second);
    if (used <= 0) continue;
    const std::string kind = name.rfind("worker-", 0) == 0 ? "worker" : name;
    cpu_ms[kind] = cpu_ms.value(kind, 0.0) + used * 1e3 / steps;
    cpu_total += used;
  }
  nlohmann::json keys_per_step = nlohmann::json::object();
  {
    auto transport = net::Client::Connect(servers_at);
    if (transport.ok()) {
      ps::PsClient client(transport->get(), router, 0);
      if (auto stats = client.Stats(); stats.ok()) {
        std::map<std::string, std::pair<double, double>> keys;  // table -> pulled, requests
        for (const std::string& js : *stats) {
          for (const auto& t : nlohmann::json::parse(js)) {
            auto& k = keys[t["table"].get<std::string>()];
            k.first += t["pull_keys"].get<double>();
          }
        }
        const double all_steps = static_cast<double>(total()) / FLAGS_train_batch;
        for (const auto& [table, k] : keys) keys_per_step[table] = k.first / all_steps;
      }
    }
  }
  PrintBenchResult("train", {{"model", "candidate"},
                             {"transport", FLAGS_train_transport},
                             {"workers", FLAGS_workers},
                             {"servers", FLAGS_servers},
                             {"staleness", FLAGS_staleness},
                             {"batch", FLAGS_train_batch},
                             {"negatives", FLAGS_train_negatives},
                             {"dim", FLAGS_train_dim},
                             {"tower", c.model.tower},
                             {"videos", FLAGS_train_videos},
                             {"seconds", secs},
                             {"examples", after - before},
                             {"examples_per_s", (after - before) / secs},
                             {"cpu_ms_per_step", cpu_ms},
                             {"cpu_cores_used", cpu_total / secs},
                             {"pulled_keys_per_step", keys_per_step}});
  for (auto& s : servers) s.server->Stop();
  return 0;
}

}  // namespace vrec::bench
