// The synthetic data generator behind `vrec datagen`: simulates every user of
// a World over the window and writes candidate-generation and ranking
// examples, the videos, and the oracle's figures (truth.json).
//
// Each user is simulated independently from its own random stream (seed,
// user), and users are assigned to output shards by index (user % shards), so
// the output is byte-identical for any number of threads.
//
// Per user: a heavy-ish tailed number of actions at increasing times in
// [0, t_max); each is a search (1..3 tokens of a topic drawn from the user's
// interests) or a watch drawn from World::Mixture(state). A share of watch
// events also shows a page of impressions (ranking examples) drawn from the
// user's true next-watch distribution, from popular videos and at random,
// with clicks and watch times from World::Impression. Every watch with at
// least one earlier watch is a candidate example (label = that watch,
// history = strictly earlier actions); a held-out user's last one is its test
// example and at most max_examples_per_user of the others, chosen uniformly,
// are training examples. All pages of held-out users are ranking test data.
//
// Thread safety: UserSimulator is not thread-safe (one per thread); the World
// it reads is shared. GenerateDataset runs its own threads.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/example_sink.h"
#include "data/oracle.h"
#include "data/world.h"
#include "nlohmann/json.hpp"
#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec {

// Ranking training examples kept by `write_train = false` for fitting the
// quantile normalisers (the fit's own reservoir holds 2^16 values).
inline constexpr int64_t kRankingTrainSample = 1 << 16;

struct GeneratorOptions {
  std::string out_dir;
  int32_t shards = 4;
  int32_t threads = 0;                 // 0 = hardware concurrency
  int32_t max_examples_per_user = 30;  // training candidate examples per user; 0 = all
  int64_t test_users = 2000;           // held-out users (capped at num_users)
  double page_rate = 0.1;              // share of watch events that show a page
  int32_t page_size = 10;              // impressions per page
  int32_t max_history = 50;            // watches / search tokens per example
  // Training labels (the paper's Figure 5): false = each label is a next
  // watch and its history what came before; true = a randomly held-out
  // watch whose history is the user's other watches and searches, earlier
  // and later (the last max_history of them). Test examples are always
  // next watches, so both are evaluated on predicting the future.
  bool random_labels = false;
  // false: training examples are counted (labels per video, totals) and the
  // ranking ones sampled (kRankingTrainSample, uniformly), but not written;
  // `vrec train --stream` simulates them on the fly. For runs larger than
  // the disk: only the held-out examples and the world's description land.
  bool write_train = true;
  double progress_interval_s = 5;  // stderr progress period; <= 0: none
  bool sync = true;                // fsync the files on close
  // Non-empty: also write the world as a team's log tables into this folder
  // (generated_logs.h: events.csv, items.csv, users.csv, test_users.txt,
  // README), from the simulator's own actions.
  std::string logs_dir;
};

// kInvalidArgument naming the first bad field.
Status ValidateGeneratorOptions(const GeneratorOptions& options, const WorldOptions& world);

// Exactly min(count, num_users) distinct users, chosen uniformly (Floyd's
// algorithm) from (seed): result[u] says whether user u is held out.
std::vector<bool> ChooseTestUsers(uint64_t seed, int64_t num_users, int64_t count);


// One impression of a page as the simulator showed it (ActionSink::Page).
struct PageImpression {
  uint64_t video_id = 0;
  bool clicked = false;
  float watch_time = 0;  // seconds, as RankingExample.watch_time; 0 when not clicked
};

// What a simulated user did, in the order it happened: the raw log behind
// its examples (`vrec datagen --logs`, generated_logs.h). Times are days.
// For each user: BeginUser, then its actions in time order; a page shown at
// a watch's time comes just before that watch (its history is the watches
// strictly before it). Calls never change what the simulator draws: the
// examples are the same with or without a sink.
class ActionSink {
 public:
  virtual ~ActionSink() = default;
  virtual Status BeginUser(const UserProfile& user, bool test) = 0;
  // A search of n tokens (ids as CandidateExample.search_tokens).
  virtual Status Search(double time, const uint64_t* token_ids, size_t n) = 0;
  // A page of n impressions, in slot order (slot = position 0..n-1).
  virtual Status Page(double time, const PageImpression* impressions, size_t n) = 0;
  virtual Status Watch(double time, uint64_t video_id) = 0;
};

struct GenerationCounts {
  int64_t users = 0;
  int64_t watches = 0;
  int64_t searches = 0;
  int64_t candidate_train = 0;
  int64_t candidate_test = 0;
  int64_t pages = 0;
  int64_t ranking_train = 0;
  int64_t ranking_test = 0;
  void Merge(const GenerationCounts& o);
  nlohmann::json ToJson() const;
};

class UserSimulator {
 public:
  // REQUIRES: `world` and `test_users` (num_users entries) outlive this.
  UserSimulator(const World* world, const GeneratorOptions& options,
                const std::vector<bool>* test_users);

  // Simulates user `u`, sending its examples to *sink, adding its held-out
  // figures to *oracle and its counts to *counts, and, when `actions` is
  // not null, its actions to *actions. Errors come from the sinks.
  Status Simulate(int64_t u, ExampleSink* sink, OracleStats* oracle, GenerationCounts* counts,
                  ActionSink* actions = nullptr);

 private:
  struct WatchEvent {
    double time;
    int32_t video;
    int32_t last_video;
    int32_t search_topic;
    uint32_t watches_before;
    uint32_t tokens_before;
  };
  Status ShowPage(int64_t u, const UserProfile& user, const NextWatchMixture& m, double time,
                  bool test, Rng& rng, ExampleSink* sink, OracleStats* oracle,
                  GenerationCounts* counts, ActionSink* actions);
  void FillHistory(uint32_t watches_before, uint32_t tokens_before,
                   google::protobuf::RepeatedField<uint64_t>* watches,
                   google::protobuf::RepeatedField<uint64_t>* tokens) const;

  const World* world_;
  const GeneratorOptions options_;
  const std::vector<bool>* test_users_;
  NextWatchOracle oracle_;
  // Per-user scratch, reused.
  std::vector<double> times_;
  std::vector<int32_t> watches_;        // video indices, in time order
  std::vector<uint64_t> watch_ids_;     // their ids
  std::vector<uint32_t> watch_topics_;  // their topics
  std::vector<int64_t> tokens_;         // search token indices, in time order
  std::vector<uint64_t> token_ids_;     // their ids
  std::vector<WatchEvent> events_;
  std::unordered_map<int32_t, int32_t> impressions_;       // video -> times shown
  std::unordered_map<uint32_t, double> topic_last_watch_;  // topic -> time
  std::vector<int32_t> page_;
  google::protobuf::RepeatedField<uint64_t> page_watch_history_;
  google::protobuf::RepeatedField<uint64_t> page_search_tokens_;
  std::vector<ScoredImpression> scored_;
  std::vector<PageImpression> logged_page_;
  CandidateExample candidate_;
  RankingExample ranking_;
  int64_t page_counter_ = 0;
};

struct GenerationSummary {
  GenerationCounts counts;
  OracleStats oracle;
  double generate_seconds = 0;
  int32_t threads = 0;
  // With GeneratorOptions::logs_dir: {"dir", "convert_command", "counts"}
  // (generated_logs.h); null otherwise.
  nlohmann::json logs;
  // {"oracle": {...}, "counts": {...}, "generate_seconds", "examples_per_s", ...,
  //  "logs" when written}
  nlohmann::json ToJson() const;
};

nlohmann::json WorldOptionsToJson(const WorldOptions& options);
// The inverse (truth.json's "world" object). kInvalidArgument naming a
// missing or non-numeric field.
StatusOr<WorldOptions> WorldOptionsFromJson(const nlohmann::json& json);

// Writes the dataset into options.out_dir (dataset.h layout): shards in
// parallel, then videos.rec, truth.json (`extra_truth` merged in), and the
// manifest last. The folder may exist; files of the same names are replaced.
StatusOr<GenerationSummary> GenerateDataset(const World& world, const GeneratorOptions& options,
                                            const nlohmann::json& extra_truth = {});

}  // namespace vrec
