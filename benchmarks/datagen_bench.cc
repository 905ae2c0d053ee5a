// `vrec bench datagen`: candidate examples per second of the world generator
// on one core, including protobuf serialization.
//
// Two measurements, each the median of --datagen_bench_runs runs:
//   mode "memory": one UserSimulator over the users, every example serialized
//                  into a buffer (what the generator costs, without the disk);
//   mode "files":  GenerateDataset with one thread and one shard into a
//                  temporary folder (record framing, CRCs and writes; no fsync).
// examples_per_s counts candidate examples (train + test) per second; the
// ranking rows written meanwhile are reported beside it.
#include <gflags/gflags.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "bench.h"
#include "common/run_info.h"
#include "data/generator.h"
#include "data/world.h"

DEFINE_int64(datagen_bench_videos, 100000, "videos in the benchmark world");
DEFINE_int64(datagen_bench_users, 20000, "users simulated per run");
DEFINE_int32(datagen_bench_topics, 200, "topics in the benchmark world");
DEFINE_int32(datagen_bench_runs, 5, "runs per mode; the median is reported");
DEFINE_double(datagen_bench_page_rate, 0.1, "share of watches that show a ranking page");
DEFINE_string(datagen_bench_dir, "", "scratch folder for mode files (default: a /tmp folder)");

namespace vrec::bench {
namespace {

class SerializingSink : public ExampleSink {
 public:
  Status AddCandidate(const CandidateExample& e, bool) override {
    e.SerializeToString(&buffer_);
    bytes_ += buffer_.size();
    return absl::OkStatus();
  }
  Status AddRanking(const RankingExample& e, bool) override {
    e.SerializeToString(&buffer_);
    bytes_ += buffer_.size();
    return absl::OkStatus();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string buffer_;
  uint64_t bytes_ = 0;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int RunDatagenBench(int argc, char** argv) {
  if (FLAGS_datagen_bench_runs < 1 || FLAGS_datagen_bench_users < 1) {
    std::cerr
        << "vrec bench datagen: --datagen_bench_runs and --datagen_bench_users must be >= 1\n";
    return 2;
  }
  WorldOptions wo;
  wo.seed = 1;
  wo.num_videos = FLAGS_datagen_bench_videos;
  wo.num_users = FLAGS_datagen_bench_users;
  wo.num_tokens = FLAGS_datagen_bench_videos;
  wo.num_topics = FLAGS_datagen_bench_topics;
  GeneratorOptions go;
  go.page_rate = FLAGS_datagen_bench_page_rate;
  go.test_users = std::min<int64_t>(2000, wo.num_users / 10);
  go.threads = 1;
  go.shards = 1;
  go.sync = false;
  go.progress_interval_s = 0;
  const auto build_start = std::chrono::steady_clock::now();
  auto world = World::Build(wo, 1);
  if (!world.ok()) {
    std::cerr << "vrec bench datagen: " << world.status() << "\n";
    return 1;
  }
  const double build_seconds = Seconds(build_start);
  std::cerr << "world of " << wo.num_videos << " videos built in " << build_seconds << " s\n";
  const std::vector<bool> test = ChooseTestUsers(wo.seed, wo.num_users, go.test_users);

  // Mode memory.
  std::vector<double> rates, ranking_rates;
  GenerationCounts counts;
  uint64_t bytes = 0;
  for (int run = 0; run < FLAGS_datagen_bench_runs; ++run) {
    UserSimulator sim(world->get(), go, &test);
    SerializingSink sink;
    OracleStats oracle;
    counts = GenerationCounts();
    const auto start = std::chrono::steady_clock::now();
    for (int64_t u = 0; u < wo.num_users; ++u) {
      if (Status s = sim.Simulate(u, &sink, &oracle, &counts); !s.ok()) {
        std::cerr << "vrec bench datagen: " << s << "\n";
        return 1;
      }
    }
    const double secs = Seconds(start);
    rates.push_back((counts.candidate_train + counts.candidate_test) / secs);
    ranking_rates.push_back((counts.ranking_train + counts.ranking_test) / secs);
    bytes = sink.bytes();
    std::cerr << "memory run " << run << ": " << rates.back() << " examples/s\n";
  }
  PrintBenchResult("datagen",
                   {{"mode", "memory"},
                    {"examples_per_s", Median(rates)},
                    {"ranking_rows_per_s", Median(ranking_rates)},
                    {"candidate_examples", counts.candidate_train + counts.candidate_test},
                    {"ranking_rows", counts.ranking_train + counts.ranking_test},
                    {"serialized_bytes", bytes},
                    {"runs", FLAGS_datagen_bench_runs},
                    {"threads", 1},
                    {"num_videos", wo.num_videos},
                    {"num_users", wo.num_users},
                    {"num_topics", wo.num_topics},
                    {"world_build_s", build_seconds}});

  // Mode files.
  std::string dir = FLAGS_datagen_bench_dir;
  const bool own_dir = dir.empty();
  if (own_dir) dir = "/tmp/vrec_bench_datagen_" + std::to_string(::getpid());
  go.out_dir = dir;
  rates.clear();
  ranking_rates.clear();
  for (int run = 0; run < FLAGS_datagen_bench_runs; ++run) {
    auto summary = GenerateDataset(**world, go);
    if (!summary.ok()) {
      std::cerr << "vrec bench datagen: " << summary.status() << "\n";
      return 1;
    }
    const GenerationCounts& c = summary->counts;
    rates.push_back((c.candidate_train + c.candidate_test) / summary->generate_seconds);
    ranking_rates.push_back((c.ranking_train + c.ranking_test) / summary->generate_seconds);
    std::cerr << "files run " << run << ": " << rates.back() << " examples/s\n";
  }
  if (own_dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  PrintBenchResult("datagen", {{"mode", "files"},
                               {"examples_per_s", Median(rates)},
                               {"ranking_rows_per_s", Median(ranking_rates)},
                               {"runs", FLAGS_datagen_bench_runs},
                               {"threads", 1},
                               {"num_videos", wo.num_videos},
                               {"num_users", wo.num_users},
                               {"num_topics", wo.num_topics}});
  return 0;
}

}  // namespace vrec::bench
