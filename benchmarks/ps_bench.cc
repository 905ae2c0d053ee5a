// vrec bench ps: pull and push throughput and latency of the parameter server
// over the real transport (ZeroMQ over TCP loopback), S servers and C client
// threads in one process. Each result is one JSON line:
//   {"bench":"ps","op":"pull","dim":64,"batch":10000,"keys_per_s":..,
//    "gbytes_per_s":..,"p50_us":..,"p99_us":.., commit, machine...}
// gbytes_per_s counts value bytes only (keys * dim * 4), the payload a
// trainer wants; keys and headers are overhead.
//
// Keys: uniform over --rows keys (unique within a batch), or Zipf(--zipf) by
// rank with duplicates removed as a worker would (--zipf > 0). With
// --budget_mb, each server holds its table under that memory budget and
// spills to RocksDB under --spill_dir: the large-table scale run.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench.h"
#include "cli/common_flags.h"
#include "common/random.h"
#include "common/run_info.h"
#include "common/thread_cpu.h"
#include "common/zipf.h"
#include "net/transport.h"
#include "nlohmann/json.hpp"
#include "ps/embedding_store.h"
#include "ps/ps_client.h"
#include "ps/ps_server.h"
#include "ps/spill_store.h"

DEFINE_int32(clients, 1, "client threads, each with its own connection to every server");
DEFINE_string(dim, "64", "floats per row; a comma list sweeps (e.g. 8,64,256)");
DEFINE_string(batch, "10000",
              "unique keys per request; a comma list sweeps (e.g. 1000,10000,100000)");
DEFINE_string(ops, "pull,push",
              "operations to measure, comma-separated: pull, push, and pullpush (a worker's "
              "step: pull a batch's rows, then push gradients for the same rows; keys_per_s "
              "then counts keys pulled and pushed once each)");
DEFINE_uint64(rows, 1000000, "key space; rows are created by a warm-up pass first");
DEFINE_double(zipf, 0, "Zipf exponent of key popularity (0 = uniform)");
DEFINE_double(warmup_seconds, 0,
              "unmeasured load before each measurement (lets a memory-budgeted table reach "
              "its steady state)");
DEFINE_bool(ps_insecure_data_plane, false,
            "plain ZeroMQ instead of CURVE between clients and servers (training's "
            "--insecure_data_plane): measures what authentication costs");
DEFINE_int32(inflight, 2, "requests each client keeps in flight");
DEFINE_uint64(budget_mb, 0, "memory budget per server in MiB (0 = all in memory)");
DEFINE_string(batches, "auto",
              "how key batches are drawn: 'pool' (drawn before the clock, cycled), 'fresh' "
              "(drawn inside the timed loop: the generator's cost counts) or 'auto' (fresh "
              "under a memory budget, where a cycled pool would let the memory tier learn it)");

namespace vrec::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<int> ParseList(const std::string& s, const char* flag) {
  std::vector<int> out;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    int v;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) {
      std::cerr << "vrec bench ps: --" << flag << " wants positive integers, got '" << s << "'\n";
      std::exit(2);
    }
    out.push_back(v);
  }
  return out;
}

// Batches of keys each client draws up front and cycles through.
constexpr int kBatchPool = 64;

// The key of rank r: spread by a hash so hot keys land on every server.
uint64_t KeyOf(uint64_t rank) { return Mix64(rank + 1); }

// A bijection of 0..n-1: r * p mod n for a prime p that does not divide n.
uint64_t ScrambledRank(uint64_t r, uint64_t n) {
  constexpr uint64_t kPrime = 2654435761ULL;  // prime; r * p is taken in 128 bits
  const uint64_t p = n % kPrime == 0 ? 4294967311ULL : kPrime;
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * p) % n);
}

// One batch of `batch` unique keys.
void MakeBatch(Rng& rng, const ZipfSampler* zipf, int batch, absl::flat_hash_set<uint64_t>* seen,
               std::vector<uint64_t>* keys) {
  keys->clear();
  seen->clear();
  const uint64_t rows = FLAGS_rows;
  if (zipf == nullptr && static_cast<uint64_t>(batch) * 2 > rows) {
    // Dense batches: a random window of the key space.
    const uint64_t start = rng.UniformInt(rows);
    for (int i = 0; i < batch; ++i) keys->push_back(KeyOf((start + i) % rows));
    return;
  }
  while (static_cast<int>(keys->size()) < batch) {
    const uint64_t rank = zipf ? zipf->Rank(rng) : rng.UniformInt(rows);
    if (seen->insert(rank).second) keys->push_back(KeyOf(rank));
  }
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(q * (v.size() - 1));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

uint64_t PeakRssBytes() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

struct Setup {
  std::vector<std::unique_ptr<ps::RocksSpillStore>> spills;
  std::vector<std::unique_ptr<ps::EmbeddingStore>> stores;
  std::vector<std::unique_ptr<ps::PsService>> services;
  std::vector<std::unique_ptr<net::Server>> servers;
  net::ServerSet servers_at;  // endpoints and the keys, as a job's
};

StatusOr<Setup> StartServers(int dim) {
  Setup s;
  if (!FLAGS_ps_insecure_data_plane) {
    VREC_ASSIGN_OR_RETURN(s.servers_at.keys, net::GenerateDataPlaneKeys());
  }
  TableConfig table;
  table.set_name("bench");
  table.set_dim(dim);
  table.mutable_initializer()->set_kind(InitializerConfig::UNIFORM);
  table.mutable_initializer()->set_scale(0.05f);
  OptimizerConfig* opt = table.mutable_optimizer();
  opt->set_learning_rate(0.01f);
  if (FLAGS_optimizer == "sgd") {
    opt->set_kind(OptimizerConfig::SGD);
  } else if (FLAGS_optimizer == "adagrad") {
    opt->set_kind(OptimizerConfig::ADAGRAD);
  } else if (FLAGS_optimizer == "adam") {
    opt->set_kind(OptimizerConfig::ADAM);
  } else if (FLAGS_optimizer == "ftrl") {
    opt->set_kind(OptimizerConfig::FTRL);
  } else {
    return absl::InvalidArgumentError("--optimizer must be sgd, adagrad, adam or ftrl");
  }
  for (int i = 0; i < FLAGS_servers; ++i) {
    ps::TableStoreOptions o;
    o.seed = 1;
    if (FLAGS_budget_mb > 0) {
      const std::string dir =
          (FLAGS_spill_dir.empty() ? std::string("/tmp/vrec_ps_bench") : FLAGS_spill_dir) +
          "/server" + std::to_string(i);
      ps::RocksSpillOptions ro;
      ro.path = dir;
      ro.destroy_existing = true;
      VREC_ASSIGN_OR_RETURN(auto spill, ps::RocksSpillStore::Open(ro));
      s.spills.push_back(std::move(spill));
      o.spill = s.spills.back().get();
      o.memory_budget_bytes = FLAGS_budget_mb << 20;
    }
    VREC_ASSIGN_OR_RETURN(auto store, ps::EmbeddingStore::FromConfig(table, o));
    s.stores.push_back(std::move(store));
    s.services.push_back(
        std::make_unique<ps::PsService>(std::vector<ps::EmbeddingStore*>{s.stores.back().get()}));
    net::ServerOptions so;
    so.threads = FLAGS_server_threads;
    so.keys = s.servers_at.keys;
    VREC_ASSIGN_OR_RETURN(auto server, net::Server::Start(s.services.back().get(), so));
    s.servers_at.endpoints.push_back(server->endpoint());
    s.servers.push_back(std::move(server));
  }
  return s;
}

// Every server's stats JSON (one array of tables per server).
StatusOr<std::vector<std::string>> StatsOf(const net::ServerSet& servers_at) {
  VREC_ASSIGN_OR_RETURN(auto transport, net::Client::Connect(servers_at));
  ps::PsClient client(transport.get(), ps::SlotRouter::Contiguous(FLAGS_servers).value());
  return client.Stats();
}

// Sum of a counter over every table of every server.
uint64_t SumCounter(const std::vector<std::string>& stats, const char* name) {
  uint64_t sum = 0;
  for (const std::string& s : stats) {
    for (const auto& table : nlohmann::json::parse(s)) sum += table.value(name, uint64_t{0});
  }
  return sum;
}

bool BatchesFromPool() {
  if (FLAGS_batches == "pool") return true;
  if (FLAGS_batches == "fresh") return false;
  return FLAGS_budget_mb == 0;
}

// Runs one (op, dim, batch) measurement and prints its JSON line.
Status Measure(const std::string& op, int dim, int batch, const Setup& setup,
               const ZipfSampler* zipf, double seconds, bool report) {
  const net::ServerSet& servers_at = setup.servers_at;
  const ps::PsTable table{0, ps::TableId("bench"), static_cast<uint32_t>(dim)};
  std::atomic<uint64_t> keys_done{0}, requests_done{0};
  std::vector<std::vector<double>> latencies(FLAGS_clients);
  std::atomic<bool> failed{false};
  Status first_error;
  std::mutex error_mu;
  // With every row in memory, key batches are drawn before the clock starts
  // (a pool per client, cycled in order), so the figure is the parameter
  // server's, not the key generator's; a pool spans far more rows than any
  // CPU cache holds. Under a memory budget a cycled pool would let the
  // memory tier learn it, so batches are drawn fresh inside the timed loop
  // (their cost counts against the server). --batches overrides either.
  const bool use_pool = BatchesFromPool();
  static int measurements = 0;
  const int measurement = measurements++;
  std::vector<std::vector<std::vector<uint64_t>>> pools(FLAGS_clients);
  for (int c = 0; c < FLAGS_clients && use_pool; ++c) {
    Rng rng(1234, c);
    absl::flat_hash_set<uint64_t> seen;
    pools[c].resize(kBatchPool);
    for (auto& b : pools[c]) MakeBatch(rng, zipf, batch, &seen, &b);
  }
  std::vector<std::string> stats_before;
  if (auto st = StatsOf(servers_at); st.ok()) stats_before = *st;
  // CPU time by thread name over the measurement (cpu_us_per_key): the
  // server's handler threads (net-handler) and proxy (net-proxy), its spill
  // writer (vrec-spill) and RocksDB's flush and compaction threads
  // (rocksdb:high, rocksdb:low), ZeroMQ's I/O threads of server and clients
  // together (ZMQbg/IO/0), the clients' receive threads (net-client-io) and
  // the client threads themselves (bench-client: drawing batches, waiting;
  // they live only inside the measurement and count their own).
  // The clients' connections (and their I/O threads) are made first and
  // outlive the measurement, so that their CPU time is counted too.
  std::vector<std::unique_ptr<net::Client>> transports;
  for (int c = 0; c < FLAGS_clients; ++c) {
    VREC_ASSIGN_OR_RETURN(auto transport, net::Client::Connect(servers_at));
    transports.push_back(std::move(transport));
  }
  const std::map<std::string, double> cpu_before = CpuSecondsByThreadName();
  std::atomic<uint64_t> client_cpu_ns{0};
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < FLAGS_clients; ++c) {
    threads.emplace_back([&, c] {
      NameThisThread("bench-client");
      const double cpu0 = ThisThreadCpuSeconds();
      ps::PsClient client(transports[c].get(), ps::SlotRouter::Contiguous(FLAGS_servers).value(),
                          c);
      const std::vector<std::vector<uint64_t>>& pool = pools[c];
      size_t next_batch = 0;
      // A different key sequence for every measurement, so that a warm-up
      // phase does not pre-load exactly the keys measured after it.
      Rng rng(4321 + 1000 * measurement, c);
      absl::flat_hash_set<uint64_t> seen;
      std::vector<std::vector<uint64_t>> fresh(FLAGS_inflight);
      struct Slot {
        const std::vector<uint64_t>* keys = nullptr;
        std::vector<float> buf;
        ps::PsRequest req;
        Clock::time_point start;
        bool pushing = false;  // the request in flight is a push
      };
      // pullpush: a step's gradients, the same for every step (the pulled
      // values stay in buf, as a worker's would).
      const bool step = op == "pullpush";
      const std::vector<float> grads(step ? static_cast<size_t>(batch) * dim : 0, 1e-3f);
      std::vector<Slot> slots(FLAGS_inflight);
      auto issue = [&](Slot& s) {
        if (use_pool) {
          s.keys = &pool[next_batch];
          next_batch = (next_batch + 1) % pool.size();
        } else {
          std::vector<uint64_t>& keys = fresh[&s - slots.data()];
          MakeBatch(rng, zipf, batch, &seen, &keys);
          s.keys = &keys;
        }
        s.buf.resize(static_cast<size_t>(batch) * dim, op == "push" ? 1e-3f : 0.f);
        s.start = Clock::now();
        s.pushing = op == "push";
        s.req = s.pushing ? client.Push(table, *s.keys, s.buf)
                          : client.Pull(table, *s.keys, s.buf.data());
      };
      for (auto& s : slots) issue(s);
      size_t next = 0;
      while (true) {
        Slot& s = slots[next];
        Status st = s.req.Wait();
        if (!st.ok()) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (first_error.ok()) first_error = st;
          failed = true;
          return;
        }
        if (step && !s.pushing) {  // the step's second half, on the same keys
          s.pushing = true;
          s.req = client.Push(table, *s.keys, grads);
          next = (next + 1) % slots.size();
          continue;
        }
        latencies[c].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - s.start).count());
        keys_done += batch;
        requests_done++;
        if (Clock::now() >= deadline || failed) break;
        issue(s);
        next = (next + 1) % slots.size();
      }
      for (auto& s : slots) {
        if (s.req.valid()) (void)s.req.Wait();
      }
      client_cpu_ns += static_cast<uint64_t>((ThisThreadCpuSeconds() - cpu0) * 1e9);
    });
  }
  const auto t0 = Clock::now();
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!first_error.ok()) return first_error;
  nlohmann::json cpu_per_key = nlohmann::json::object();
  const double client_cpu = client_cpu_ns.load() * 1e-9;
  double cpu_total = client_cpu;
  for (const auto& [name, after] : CpuSecondsByThreadName()) {
    const auto before = cpu_before.find(name);
    const double used = after - (before == cpu_before.end() ? 0.0 : before->second);
    if (used <= 0 || name == "bench-client") continue;
    cpu_total += used;
    cpu_per_key[name] = keys_done > 0 ? used * 1e6 / static_cast<double>(keys_done) : 0.0;
  }
  cpu_per_key["bench-client"] =
      keys_done > 0 ? client_cpu * 1e6 / static_cast<double>(keys_done) : 0.0;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  const double keys_per_s = keys_done / secs;
  // Share of row accesses served by the memory tier during the measurement.
  // And, per key served, what the disk tier did: rows read, records
  // written, bytes written, and memory-tier evictions and bypasses.
  double hit_rate = 1.0;
  std::map<std::string, double> per_key = {{"spill_keys_read", 0},
                                           {"spill_rows_written", 0},
                                           {"spill_bytes_written", 0},
                                           {"evictions", 0},
                                           {"memory_bypasses", 0}};
  if (auto after = StatsOf(servers_at); after.ok() && !stats_before.empty()) {
    auto delta = [&](const char* name) {
      return static_cast<double>(SumCounter(*after, name) - SumCounter(stats_before, name));
    };
    const double mem = delta("memory_hits"), disk = delta("disk_hits");
    if (mem + disk > 0) hit_rate = mem / (mem + disk);
    for (auto& [name, value] : per_key) {
      value = keys_done > 0 ? delta(name.c_str()) / static_cast<double>(keys_done) : 0;
    }
  }
  if (!report) return absl::OkStatus();
  // RocksDB's own memory (index and filter blocks, memtables, block cache):
  // outside the memory tier's budget, inside the process's RSS.
  uint64_t spill_memory = 0;
  for (const auto& spill : setup.spills) spill_memory += spill->MemoryBytes();
  PrintBenchResult("ps", {{"op", op},
                          {"dim", dim},
                          {"batch", batch},
                          {"servers", FLAGS_servers},
                          {"clients", FLAGS_clients},
                          {"inflight", FLAGS_inflight},
                          {"optimizer", FLAGS_optimizer},
                          {"rows", FLAGS_rows},
                          {"zipf", FLAGS_zipf},
                          {"budget_mb", FLAGS_budget_mb},
                          {"warmup_seconds", FLAGS_warmup_seconds},
                          {"batches", BatchesFromPool() ? "pool" : "fresh"},
                          {"server_threads", FLAGS_server_threads},
                          {"requests", requests_done.load()},
                          {"seconds", secs},
                          {"keys_per_s", keys_per_s},
                          {"gbytes_per_s", keys_per_s * dim * 4 / 1e9},
                          {"p50_us", Percentile(all, 0.5)},
                          {"p99_us", Percentile(all, 0.99)},
                          {"memory_hit_rate", hit_rate},
                          {"spill_reads_per_key", per_key["spill_keys_read"]},
                          {"spill_writes_per_key", per_key["spill_rows_written"]},
                          {"spill_bytes_per_key", per_key["spill_bytes_written"]},
                          {"evictions_per_key", per_key["evictions"]},
                          {"bypasses_per_key", per_key["memory_bypasses"]},
                          {"cpu_cores", cpu_total / secs},
                          {"cpu_us_per_key", cpu_per_key},
                          {"peak_rss_bytes", PeakRssBytes()},
                          {"spill_store_memory_bytes", spill_memory}});
  return absl::OkStatus();
}

}  // namespace

int RunPsBench(int argc, char** argv) {
  if (FLAGS_batches != "auto" && FLAGS_batches != "pool" && FLAGS_batches != "fresh") {
    std::cerr << "vrec bench ps: --batches takes auto, pool or fresh, got '" << FLAGS_batches
              << "'\n";
    return 2;
  }
  if (FLAGS_servers < 1 || FLAGS_clients < 1 || FLAGS_inflight < 1 || FLAGS_rows < 1 ||
      FLAGS_seconds <= 0) {
    std::cerr
        << "vrec bench ps: --servers, --clients, --inflight, --rows and --seconds must be > 0\n";
    return 2;
  }
  for (absl::string_view op : absl::StrSplit(FLAGS_ops, ',')) {
    if (op != "pull" && op != "push" && op != "pullpush") {
      std::cerr << "vrec bench ps: --ops takes pull, push and/or pullpush, got '" << op << "'\n";
      return 2;
    }
  }
  const std::vector<int> dims = ParseList(FLAGS_dim, "dim");
  const std::vector<int> batches = ParseList(FLAGS_batch, "batch");
  std::unique_ptr<ZipfSampler> zipf;
  if (FLAGS_zipf > 0) zipf = std::make_unique<ZipfSampler>(FLAGS_rows, FLAGS_zipf);
  for (int dim : dims) {
    auto setup = StartServers(dim);
    if (!setup.ok()) {
      std::cerr << "vrec bench ps: " << setup.status() << "\n";
      return 1;
    }
    {
      // Warm-up: create every row once so pulls measure serving, not creation.
      auto transport = net::Client::Connect(setup->servers_at).value();
      ps::PsClient client(transport.get(), ps::SlotRouter::Contiguous(FLAGS_servers).value());
      const ps::PsTable table{0, ps::TableId("bench"), static_cast<uint32_t>(dim)};
      const uint64_t chunk = 50000;
      std::vector<uint64_t> keys;
      std::vector<float> buf;
      const auto t0 = Clock::now();
      for (uint64_t start = 0; start < FLAGS_rows; start += chunk) {
        keys.clear();
        // Ranks in a scrambled order (a bijection of 0..rows-1), so that the
        // memory tier does not start out holding exactly the hottest rows.
        for (uint64_t r = start; r < std::min<uint64_t>(FLAGS_rows, start + chunk); ++r) {
          keys.push_back(KeyOf(ScrambledRank(r, FLAGS_rows)));
        }
        buf.resize(keys.size() * dim);
        Status st = client.Pull(table, keys, buf.data()).Wait();
        if (!st.ok()) {
          std::cerr << "vrec bench ps: warm-up failed: " << st << "\n";
          return 1;
        }
        if (std::chrono::duration<double>(Clock::now() - t0).count() > 5 &&
            start % (chunk * 20) == 0) {
          std::cerr << "  warm-up: " << start << " / " << FLAGS_rows << " rows\n";
        }
      }
    }
    for (absl::string_view op : absl::StrSplit(FLAGS_ops, ',')) {
      for (int batch : batches) {
        if (static_cast<uint64_t>(batch) > FLAGS_rows) {
          std::cerr << "vrec bench ps: --batch " << batch << " exceeds --rows\n";
          return 2;
        }
        if (FLAGS_warmup_seconds > 0) {
          std::cerr << "  warm-up load: " << op << " for " << FLAGS_warmup_seconds << " s\n";
          Status st = Measure(std::string(op), dim, batch, *setup, zipf.get(), FLAGS_warmup_seconds,
                              /*report=*/false);
          if (!st.ok()) {
            std::cerr << "vrec bench ps: " << st << "\n";
            return 1;
          }
        }
        Status st = Measure(std::string(op), dim, batch, *setup, zipf.get(), FLAGS_seconds,
                            /*report=*/true);
        if (!st.ok()) {
          std::cerr << "vrec bench ps: " << st << "\n";
          return 1;
        }
      }
    }
  }
  return 0;
}

}  // namespace vrec::bench
