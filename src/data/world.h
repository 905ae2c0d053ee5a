// World: the synthetic universe behind `vrec datagen`, and the exact
// next-watch process that both the generator samples from and the oracle
// evaluates. Everything is a pure function of WorldOptions (seed included).
//
// The generative model (docs/datagen.md has the full story):
//   - Videos have a topic (Zipf over topics), an upload time (some before the
//     window, the rest spread over it so new uploads arrive every day), a
//     heavy-tailed appeal (lognormal), a duration, a clickbait flag, and may be
//     episodes of a series uploaded on successive days.
//   - pop(v, d) = appeal_v * freshness(d - upload_v) for videos uploaded by the
//     start of day d, 0 before; freshness = floor + (1 - floor) 2^(-age/half_life).
//   - Users (derived on demand from (seed, index), never stored) have a sparse
//     interest distribution over a few topics, a region, a device, age, gender
//     and logged-in state.
//   - The next watch given state (user, last watched video, topic of the search
//     if the last action was a search, day d) is a mixture: the next episode
//     of the last video's series (if uploaded by d) with weight p_series, else
//     a topic (the searched topic, the last video's topic: stickiness, or one
//     of the user's interests), then a video of that topic with probability
//     pop(v, d) / Z(d, topic).
// Because the mixture is over topics and p(v) is monotone in pop(v, d) within
// a topic, exact probabilities need only per-(day, topic) normalisers, and the
// global top-K lies in the union of per-(day, topic) top-K lists plus the
// series item: the oracle never scans all videos.
//
// Thread safety: a built World is immutable; all const methods are safe to
// call concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/random.h"
#include "vrec/status.h"

namespace vrec {

inline constexpr int kMaxInterests = 8;
// Longest per-(day, topic) top list kept for the oracle (recall@100).
inline constexpr int kOracleMaxK = 100;

struct WorldOptions {
  uint64_t seed = 1;
  // Sizes.
  int64_t num_videos = 20000;
  int64_t num_users = 10000;
  int64_t num_tokens = 20000;  // each topic owns num_tokens / num_topics of them
  int32_t num_topics = 100;
  int32_t num_days = 30;  // the window [0, num_days); t_max = num_days
  int32_t num_regions = 20;
  int32_t num_devices = 4;
  // Videos.
  double topic_zipf_exponent = 0.8;  // topic popularity ~ (rank + 1)^-s
  double appeal_sigma = 1.5;         // appeal = exp(sigma * N(0, 1)): heavy tail
  double prewindow_fraction = 0.4;   // share uploaded before day 0 ...
  double prewindow_days = 365;       // ... uniformly over [-prewindow_days, 0)
  double series_fraction = 0.15;     // share of videos that are series episodes
  int32_t max_series_length = 10;    // episodes per series: uniform in [2, max]
  double clickbait_fraction = 0.05;
  double freshness_half_life_days = 2.0;
  double freshness_floor = 0.05;
  double mean_duration_s = 300;
  // Tokens.
  double token_zipf_exponent = 1.0;  // within a topic's block
  // Users.
  int32_t max_interests = 4;          // 1..max topics, Dirichlet(1) weights
  double mean_actions_per_user = 40;  // lognormal count ...
  double actions_sigma = 1.0;         // ... with this log-sigma
  int32_t max_actions_per_user = 2000;
  double search_probability = 0.15;  // an action is a search, else a watch
  // Next watch.
  double p_series = 0.6;   // next episode, when it is uploaded
  double p_search = 0.7;   // the searched topic, right after a search
  double p_sticky = 0.35;  // the last video's topic; the rest: interests
};

// kInvalidArgument naming the first field out of range.
Status ValidateWorldOptions(const WorldOptions& options);

struct Video {
  uint64_t id;           // opaque, never 0
  double upload_time;    // days; negative = before the window
  float appeal;          // > 0
  float duration;        // seconds
  uint32_t topic;        // 0-based
  int32_t next_episode;  // index of the next episode of its series, -1 if none
  uint32_t series;       // 0 = none, else 1-based series number
  uint16_t episode;      // 1-based, 0 if not in a series
  bool clickbait;
};

struct UserProfile {
  uint64_t id = 0;                     // opaque, never 0 once made
  uint32_t region = 0;                 // 1..num_regions
  uint32_t device = 0;                 // 1..num_devices
  float age = 0;                       // [0, 1]
  float gender = 0.5f;                 // 0, 1, or 0.5 = unknown
  float logged_in = 0;                 // 0 or 1
  float clickbait_susceptibility = 0;  // [0, 1], higher for younger users
  int num_interests = 0;
  std::array<uint32_t, kMaxInterests> interest_topic{};  // first num_interests distinct
  std::array<double, kMaxInterests> interest_weight{};   // sum to 1 (unused entries 0)
};

// What the next watch depends on.
struct NextWatchState {
  const UserProfile* user = nullptr;
  int32_t last_video = -1;    // index of the last watched video, -1 if none
  int32_t search_topic = -1;  // topic searched if the last action was a search
  int32_t day = 0;            // 0..num_days-1
};

// The state's next-watch distribution in closed form:
// P(v) = series_weight [v == series_video] + weight(topic v) pop(v, d) / Z(d, topic v).
struct NextWatchMixture {
  int32_t day = 0;
  int32_t series_video = -1;
  double series_weight = 0;
  int num_topics = 0;  // distinct topics with weight > 0
  std::array<uint32_t, kMaxInterests + 2> topic{};
  std::array<double, kMaxInterests + 2> weight{};
  // Weight of `t` (0 if absent).
  double TopicWeight(uint32_t t) const;
};

// Ground truth of one impression (ranking).
struct ImpressionTruth {
  double click_prob;
  double engagement;                 // E[watched fraction] parameter, see SampleWatchTime
  double expected_watch_if_clicked;  // seconds
  double expected_watch_time() const { return click_prob * expected_watch_if_clicked; }
};

class World {
 public:
  // Builds videos, per-(day, topic) sampling tables, normalisers and top
  // lists using up to `threads` threads (0 = hardware concurrency); the result
  // does not depend on `threads`.
  static StatusOr<std::unique_ptr<World>> Build(const WorldOptions& options, int threads = 0);

  const WorldOptions& options() const { return options_; }
  const std::vector<Video>& videos() const { return videos_; }
  double t_max() const { return options_.num_days; }
  int32_t DayOf(double t) const;

  // The user with index `u` (0 <= u < num_users), derived from (seed, u).
  UserProfile MakeUser(int64_t u) const;
  // Opaque token id of token index `i`, never 0.
  uint64_t TokenId(int64_t i) const;
  // A search: fills 1..3 token indices of `topic` into *tokens (appends).
  void SampleSearchTokens(uint32_t topic, Rng& rng, std::vector<int64_t>* tokens) const;
  // A topic drawn from the user's interests.
  uint32_t SampleInterest(const UserProfile& user, Rng& rng) const;
  // A topic drawn from global topic popularity.
  uint32_t SampleGlobalTopic(Rng& rng) const;

  double Freshness(double age_days) const;
  // pop(v, d); 0 if v is not uploaded by the start of day d.
  double Popularity(int32_t video, int32_t day) const;
  bool Available(int32_t video, int32_t day) const { return videos_[video].upload_time <= day; }
  // Z(d, t) = sum of pop(v, d) over uploaded videos of topic t (> 0 always:
  // every topic has a video from before the window).
  double Normalizer(int32_t day, uint32_t topic) const { return z_[Cell(day, topic)]; }

  NextWatchMixture Mixture(const NextWatchState& state) const;
  // Exact P(next = video | mixture).
  double Probability(const NextWatchMixture& m, int32_t video) const;
  // A draw from the mixture: O(number of mixture topics).
  int32_t SampleNextWatch(const NextWatchMixture& m, Rng& rng) const;
  // A video of `topic` uploaded by `day` with probability pop / Z: O(1).
  int32_t SampleFromTopic(int32_t day, uint32_t topic, Rng& rng) const;
  // The full distribution over all videos: O(num_videos), for tests.
  std::vector<double> Distribution(const NextWatchMixture& m) const;
  // Video indices of `topic` available on `day`, by decreasing pop(v, day),
  // at most kOracleMaxK of them.
  const uint32_t* TopList(int32_t day, uint32_t topic, int* n) const;

  // Ranking truth for showing `video` to `user` in state `m`, having shown it
  // `previous_impressions` times before.
  ImpressionTruth Impression(const UserProfile& user, const NextWatchMixture& m, int32_t video,
                             int previous_impressions) const;
  // Seconds watched after a click: duration * min(1, 2 e U), U ~ U(0, 1), whose
  // mean is expected_watch_if_clicked exactly.
  double SampleWatchTime(int32_t video, const ImpressionTruth& truth, Rng& rng) const;

 private:
  explicit World(const WorldOptions& options) : options_(options) {}
  void BuildVideos();
  void BuildTables(int threads);
  size_t Cell(int32_t day, uint32_t topic) const {
    return static_cast<size_t>(day) * options_.num_topics + topic;
  }

  const WorldOptions options_;
  std::vector<Video> videos_;
  // Videos of topic t sorted by upload time:
  // topic_videos_[topic_begin_[t] .. topic_begin_[t + 1]). Those available on
  // day d are a prefix of length cell_count_[Cell(d, t)].
  std::vector<uint32_t> topic_videos_;
  std::vector<int64_t> topic_begin_;
  std::vector<uint32_t> cell_count_;
  std::vector<double> z_;
  // Walker alias tables per cell, indexed from cell_alias_begin_[cell]. One
  // 12-byte entry holds both outcomes so a draw touches one cache line.
  struct AliasEntry {
    float prob;      // keep `video` if U < prob, else take `alias`
    uint32_t video;  // video indices
    uint32_t alias;
  };
  std::vector<int64_t> cell_alias_begin_;
  std::vector<AliasEntry> alias_;
  // Top lists per cell: top_[cell * kOracleMaxK ..], top_count_[cell] long.
  std::vector<uint32_t> top_;
  std::vector<uint8_t> top_count_;
  // Global topic distribution (alias table) and the within-topic token Zipf.
  std::vector<float> topic_alias_prob_;
  std::vector<uint32_t> topic_alias_other_;
  std::vector<double> token_cdf_;  // over a topic's block of tokens
  int64_t tokens_per_topic_ = 0;
};

// Builds a Walker alias table for `weights` (all >= 0, sum > 0).
void BuildAliasTable(const double* weights, size_t n, float* prob, uint32_t* other);

}  // namespace vrec
