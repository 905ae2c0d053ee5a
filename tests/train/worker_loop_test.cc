// The worker loop's consistency model: the rule (StepToSee, MayPull), and
// the guarantee end to end -- worker threads running PipelinedWorker's loop
// against two in-process parameter servers, each step's pulls checked
// against what the model promises.
#include "train/worker_loop.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/random.h"
#include "net/transport.h"
#include "ps/embedding_store.h"
#include "ps/optimizer.h"
#include "ps/ps_server.h"
#include "ps/slot_router.h"
#include "testutil/testutil.h"

namespace vrec::train {
namespace {

TEST(StepToSeeTest, IsTheStepBeforeMinusTheBound) {
  // Synchronous: step t sees step t - 1.
  EXPECT_EQ(StepToSee(1, 0), 0u);
  EXPECT_EQ(StepToSee(2, 0), 1u);
  EXPECT_EQ(StepToSee(10, 0), 9u);
  // Staleness s: step t sees step t - 1 - s, nothing before step s + 2.
  EXPECT_EQ(StepToSee(3, 2), 0u);
  EXPECT_EQ(StepToSee(4, 2), 1u);
  EXPECT_EQ(StepToSee(10, 2), 7u);
}

TEST(MayPullTest, WaitsForTheSlowestWorkerAndThisOne) {
  // Asynchronous: always.
  EXPECT_TRUE(MayPull(100, -1, 0, 0));
  // Synchronous: step t once everyone, this worker included, finished t - 1.
  EXPECT_TRUE(MayPull(1, 0, 0, 0));
  EXPECT_TRUE(MayPull(5, 0, 4, 4));
  EXPECT_FALSE(MayPull(5, 0, 4, 3));  // another worker is behind
  EXPECT_FALSE(MayPull(5, 0, 3, 4));  // this worker's step 4 is not acknowledged
  // Staleness 2: step t once everyone finished t - 3.
  EXPECT_TRUE(MayPull(5, 2, 2, 2));
  EXPECT_TRUE(MayPull(5, 2, 4, 2));
  EXPECT_FALSE(MayPull(5, 2, 4, 1));
  EXPECT_FALSE(MayPull(5, 2, 1, 4));
}

// A coordinator's pauses, as the control plane gives them: a request every
// worker sees, and a release once every worker not done has paused.
class Pauses {
 public:
  explicit Pauses(int workers) : running_(workers) {}
  bool Requested() {
    absl::MutexLock lock(&mu_);
    return requested_;
  }
  // A worker's paused(): blocks until released.
  Status Paused() {
    absl::MutexLock lock(&mu_);
    const int round = round_;
    ++paused_;
    changed_.SignalAll();
    while (round_ == round) changed_.Wait(&mu_);
    return absl::OkStatus();
  }
  void Done() {
    absl::MutexLock lock(&mu_);
    --running_;
    changed_.SignalAll();
  }
  // Requests a pause, waits until every running worker paused, releases
  // them; false if every worker was done by then.
  bool PauseAll() {
    absl::MutexLock lock(&mu_);
    requested_ = true;
    while (paused_ != running_) changed_.Wait(&mu_);
    const bool any = paused_ > 0;
    requested_ = false;
    paused_ = 0;
    ++round_;
    changed_.SignalAll();
    return any;
  }

 private:
  absl::Mutex mu_;
  absl::CondVar changed_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_);
  int paused_ ABSL_GUARDED_BY(mu_) = 0;
  int round_ ABSL_GUARDED_BY(mu_) = 0;
};

constexpr int kKeysPerWorker = 6;  // half on each server

// A worker whose model is a counter: each step adds 1 to each of its own
// rows (it pushes -1 to an SGD table with learning rate 1) and pulls every
// worker's rows, so what a pull of step t shows is the number of steps of
// each worker whose pushes were applied before it was served.
class CounterWorker : public PipelinedWorker {
 public:
  // What a pull showed of one worker's rows: the least and the greatest.
  struct Range {
    float lo = 0, hi = 0;
  };

  CounterWorker(int worker, int steps, ps::PsClient* client, ps::PsTable table,
                std::vector<std::vector<uint64_t>> keys, uint64_t seed)
      : steps_(steps),
        client_(client),
        table_(table),
        keys_(std::move(keys)),
        rng_(seed, static_cast<uint64_t>(worker)) {
    progress_.set_worker(worker);
    for (const auto& k : keys_) all_keys_.insert(all_keys_.end(), k.begin(), k.end());
    for (auto& rows : rows_) rows.resize(all_keys_.size());
    ones_.assign(kKeysPerWorker, -1.f);
  }

  Status Run(const WorkerLoopOptions& options) {
    return RunLoop(options, client_, nullptr, [](const WorkerProgress&) {});
  }
  // seen()[t - 1][v]: what the pulls of step t showed of worker v's rows.
  const std::vector<std::vector<Range>>& seen() const { return seen_; }

 private:
  StatusOr<bool> ReadSlot(int slot) override {
    if (batches_read_ >= static_cast<uint64_t>(steps_)) return false;
    step_of_[slot] = batches_read_ + 1;
    return true;
  }
  void PullSlot(int slot) override {
    pulls_[slot] = client_->Pull(table_, all_keys_, rows_[slot].data());
  }
  Status ComputeSlot(int slot, double* loss, int* examples) override {
    VREC_RETURN_IF_ERROR(pulls_[slot].Wait());
    VREC_RETURN_IF_ERROR(WaitPushes());  // as the real workers
    std::vector<Range> seen(keys_.size());
    for (size_t v = 0; v < keys_.size(); ++v) {
      const float* r = rows_[slot].data() + v * kKeysPerWorker;
      seen[v] = {*std::min_element(r, r + kKeysPerWorker),
                 *std::max_element(r, r + kKeysPerWorker)};
    }
    EXPECT_EQ(step_of_[slot], seen_.size() + 1);
    seen_.push_back(std::move(seen));
    // Some arithmetic, of varying length.
    std::this_thread::sleep_for(std::chrono::microseconds(rng_.UniformInt(300)));
    pushes_.push_back(client_->Push(table_, keys_[progress_.worker()], ones_));
    *loss = 0;
    *examples = 1;
    return absl::OkStatus();
  }
  SourcePosition Position() const override { return SourcePosition(); }
  void ExampleIds(int slot, std::vector<uint64_t>* ids) const override {
    ids->assign(1, step_of_[slot]);
  }

  const int steps_;
  ps::PsClient* const client_;
  const ps::PsTable table_;
  const std::vector<std::vector<uint64_t>> keys_;  // by worker
  std::vector<uint64_t> all_keys_;
  std::vector<float> ones_;
  Rng rng_;
  uint64_t step_of_[2] = {0, 0};
  std::vector<float> rows_[2];
  ps::PsRequest pulls_[2];
  std::vector<std::vector<Range>> seen_;
};

// Two parameter servers holding the counters of `workers` workers.
struct Counters {
  explicit Counters(int workers) {
    OptimizerConfig sgd;
    sgd.set_kind(OptimizerConfig::SGD);
    sgd.set_learning_rate(1.0f);
    for (int s = 0; s < 2; ++s) {
      ps::EmbeddingStoreOptions o;
      o.table_name = "counter";
      o.table_id = ps::TableId("counter");
      o.dim = 1;
      o.optimizer = std::shared_ptr<const ps::Optimizer>(ps::Optimizer::Create(sgd).value());
      o.init = [](uint64_t, float* w) { *w = 0; };
      stores.push_back(ps::EmbeddingStore::Create(std::move(o)).value());
      services.push_back(std::make_unique<ps::PsService>(
          std::vector<ps::EmbeddingStore*>{stores.back().get()}, workers));
      net::ServerOptions so;
      so.threads = 2;  // requests of one worker may be served concurrently
      servers.push_back(net::Server::Start(services.back().get(), so).value());
      endpoints.push_back(servers.back()->endpoint());
    }
    table = {0, ps::TableId("counter"), 1};
    // Each worker's rows, half on each server.
    for (int w = 0; w < workers; ++w) {
      std::vector<uint64_t> mine;
      int on[2] = {0, 0};
      for (uint64_t k = 1000 * static_cast<uint64_t>(w + 1); mine.size() < kKeysPerWorker; ++k) {
        int& n = on[router.Server(table.table_id, k)];
        if (n < kKeysPerWorker / 2) {
          ++n;
          mine.push_back(k);
        }
      }
      keys.push_back(std::move(mine));
    }
  }
  ps::SlotRouter router = ps::SlotRouter::Contiguous(2).value();
  std::vector<std::unique_ptr<ps::EmbeddingStore>> stores;
  std::vector<std::unique_ptr<ps::PsService>> services;
  std::vector<std::unique_ptr<net::Server>> servers;
  std::vector<std::string> endpoints;
  ps::PsTable table;
  std::vector<std::vector<uint64_t>> keys;
};

struct Job {
  int workers = 3;
  int steps = 40;
  int64_t staleness = 0;
  bool pauses = false;  // a coordinator pauses every worker now and then
};

// Runs `job` and checks every pull of every step against the consistency
// model; the failures' descriptions (empty: all good).
std::vector<std::string> RunCounters(const Job& job, uint64_t seed) {
  Counters c(job.workers);
  Pauses pauses(job.workers);
  std::vector<std::unique_ptr<net::Client>> transports;
  std::vector<std::unique_ptr<ps::PsClient>> clients;
  std::vector<std::unique_ptr<CounterWorker>> workers;
  for (int w = 0; w < job.workers; ++w) {
    transports.push_back(net::Client::Connect(c.endpoints).value());
    clients.push_back(std::make_unique<ps::PsClient>(transports.back().get(), c.router,
                                                     static_cast<uint32_t>(w)));
    workers.push_back(
        std::make_unique<CounterWorker>(w, job.steps, clients.back().get(), c.table, c.keys, seed));
  }
  WorkerLoopOptions options;
  options.max_staleness = job.staleness;
  if (job.pauses) {
    options.pause_requested = [&] { return pauses.Requested(); };
    options.paused = [&](const WorkerProgress&) { return pauses.Paused(); };
  }
  std::vector<Status> status(job.workers);
  std::vector<std::thread> threads;
  for (int w = 0; w < job.workers; ++w) {
    threads.emplace_back([&, w] {
      status[w] = workers[w]->Run(options);
      pauses.Done();
    });
  }
  int rounds = 0;
  if (job.pauses) {
    while (pauses.PauseAll()) {
      ++rounds;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  for (auto& t : threads) t.join();

  std::vector<std::string> failures;
  for (int w = 0; w < job.workers; ++w) {
    if (!status[w].ok()) failures.push_back(absl::StrCat("worker ", w, ": ", status[w].ToString()));
  }
  if (job.pauses && rounds < 3) failures.push_back(absl::StrCat("only ", rounds, " pauses"));
  const int64_t s = job.staleness;
  for (int w = 0; w < job.workers && failures.empty(); ++w) {
    const auto& seen = workers[w]->seen();
    if (seen.size() != static_cast<size_t>(job.steps)) {
      failures.push_back(absl::StrCat("worker ", w, " trained ", seen.size(), " steps"));
    }
    if (s < 0) continue;  // asynchronous: no promise
    for (size_t i = 0; i < seen.size(); ++i) {
      const uint64_t t = i + 1;
      for (int v = 0; v < job.workers; ++v) {
        // Every worker's steps <= t - 1 - s; this worker's own step t not
        // yet, another's no further than step t + s (it could not have
        // pulled for a later one before this worker finished step t - 1).
        const float lo = static_cast<float>(StepToSee(t, s));
        const float hi = static_cast<float>(
            v == w ? t - 1 : std::min<uint64_t>(t + static_cast<uint64_t>(s), job.steps));
        const CounterWorker::Range r = seen[i][v];
        if (r.lo < lo || r.hi > hi) {
          failures.push_back(absl::StrCat("worker ", w, " step ", t, " saw worker ", v,
                                          "'s rows at ", r.lo, "..", r.hi, ", want ", lo, "..", hi,
                                          " (staleness ", s, ")"));
        }
      }
    }
  }
  // In the end every push has landed.
  std::vector<float> rows(job.workers * kKeysPerWorker);
  std::vector<uint64_t> all;
  for (const auto& k : c.keys) all.insert(all.end(), k.begin(), k.end());
  Status pulled = clients[0]->Pull(c.table, all, rows.data()).Wait();
  if (!pulled.ok()) failures.push_back(pulled.ToString());
  for (float x : rows) {
    if (x != static_cast<float>(job.steps)) {
      failures.push_back(absl::StrCat("a row ended at ", x));
      break;
    }
  }
  return failures;
}

class ConsistencyTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(ConsistencyTest, EveryPullSeesWhatTheBoundPromises) {
  const uint64_t seed = testing::TestSeed(20);
  Job job;
  job.staleness = GetParam();
  const std::vector<std::string> failures = RunCounters(job, seed);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures (seed " << seed << "), first "
                                << failures.front();
}

TEST_P(ConsistencyTest, HoldsAcrossCheckpointPauses) {
  const uint64_t seed = testing::TestSeed(21);
  Job job;
  job.staleness = GetParam();
  job.steps = 150;
  job.pauses = true;
  const std::vector<std::string> failures = RunCounters(job, seed);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures (seed " << seed << "), first "
                                << failures.front();
}

INSTANTIATE_TEST_SUITE_P(Staleness, ConsistencyTest, ::testing::Values(-1, 0, 1, 3),
                         [](const ::testing::TestParamInfo<int64_t>& p) {
                           return p.param < 0 ? std::string("Async")
                                              : absl::StrCat("Bound", p.param);
                         });

}  // namespace
}  // namespace vrec::train
