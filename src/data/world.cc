#include "data/world.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"

namespace vrec {
namespace {

// Stream and salt constants: each random aspect of the world has its own
// stream so that changing one (e.g. the number of users) leaves the others.
constexpr uint64_t kVideoStream = 0x766964656f73ULL;  // "videos"
constexpr uint64_t kUserStream = 0x7573657273ULL;     // "users"
constexpr uint64_t kVideoIdSalt = 0x5649444944ULL;
constexpr uint64_t kTokenIdSalt = 0x544f4b454eULL;
constexpr uint64_t kUserIdSalt = 0x5553455249ULL;

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

uint64_t OpaqueId(uint64_t seed, uint64_t salt, uint64_t index) {
  const uint64_t id = Mix64(HashCombine(seed, salt) + index);
  return id == 0 ? 1 : id;  // 0 means "unknown" everywhere
}

Status OutOfRange(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("world option ", field, ": ", what));
}

}  // namespace

Status ValidateWorldOptions(const WorldOptions& o) {
  if (o.num_topics < 1) return OutOfRange("num_topics", "must be >= 1");
  if (o.num_videos < o.num_topics || o.num_videos >= (int64_t{1} << 31)) {
    return OutOfRange("num_videos", "must be in [num_topics, 2^31)");
  }
  if (o.num_tokens < o.num_topics) return OutOfRange("num_tokens", "must be >= num_topics");
  if (o.num_users < 1) return OutOfRange("num_users", "must be >= 1");
  if (o.num_days < 1 || o.num_days > 3650) return OutOfRange("num_days", "must be in [1, 3650]");
  if (o.num_regions < 1) return OutOfRange("num_regions", "must be >= 1");
  if (o.num_devices < 1) return OutOfRange("num_devices", "must be >= 1");
  if (!(o.topic_zipf_exponent >= 0)) return OutOfRange("topic_zipf_exponent", "must be >= 0");
  if (!(o.token_zipf_exponent >= 0)) return OutOfRange("token_zipf_exponent", "must be >= 0");
  if (!(o.appeal_sigma >= 0 && o.appeal_sigma <= 5)) {
    return OutOfRange("appeal_sigma", "must be in [0, 5]");
  }
  auto prob = [](double p) { return p >= 0 && p <= 1; };
  if (!prob(o.prewindow_fraction)) return OutOfRange("prewindow_fraction", "must be in [0, 1]");
  if (!(o.prewindow_days > 0)) return OutOfRange("prewindow_days", "must be > 0");
  if (!prob(o.series_fraction)) return OutOfRange("series_fraction", "must be in [0, 1]");
  if (o.max_series_length < 2 || o.max_series_length > 1000) {
    return OutOfRange("max_series_length", "must be in [2, 1000]");
  }
  if (!prob(o.clickbait_fraction)) return OutOfRange("clickbait_fraction", "must be in [0, 1]");
  if (!(o.freshness_half_life_days > 0)) {
    return OutOfRange("freshness_half_life_days", "must be > 0");
  }
  if (!(o.freshness_floor > 0 && o.freshness_floor <= 1)) {
    return OutOfRange("freshness_floor", "must be in (0, 1]");
  }
  if (!(o.mean_duration_s > 0)) return OutOfRange("mean_duration_s", "must be > 0");
  if (o.max_interests < 1 || o.max_interests > kMaxInterests) {
    return OutOfRange("max_interests", absl::StrCat("must be in [1, ", kMaxInterests, "]"));
  }
  if (!(o.mean_actions_per_user >= 1)) return OutOfRange("mean_actions_per_user", "must be >= 1");
  if (!(o.actions_sigma >= 0 && o.actions_sigma <= 3)) {
    return OutOfRange("actions_sigma", "must be in [0, 3]");
  }
  if (o.max_actions_per_user < 1) return OutOfRange("max_actions_per_user", "must be >= 1");
  if (!prob(o.search_probability) || o.search_probability >= 1) {
    return OutOfRange("search_probability", "must be in [0, 1)");
  }
  if (!prob(o.p_series)) return OutOfRange("p_series", "must be in [0, 1]");
  if (!prob(o.p_search)) return OutOfRange("p_search", "must be in [0, 1]");
  if (!prob(o.p_sticky)) return OutOfRange("p_sticky", "must be in [0, 1]");
  return absl::OkStatus();
}

void BuildAliasTable(const double* weights, size_t n, float* prob, uint32_t* other) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += weights[i];
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  small.reserve(n);
  large.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * n / sum;
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back(), l = large.back();
    small.pop_back();
    prob[s] = static_cast<float>(scaled[s]);
    other[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers are 1 up to rounding.
  for (uint32_t i : large) prob[i] = 1.0f, other[i] = i;
  for (uint32_t i : small) prob[i] = 1.0f, other[i] = i;
}

double NextWatchMixture::TopicWeight(uint32_t t) const {
  for (int i = 0; i < num_topics; ++i) {
    if (topic[i] == t) return weight[i];
  }
  return 0.0;
}

StatusOr<std::unique_ptr<World>> World::Build(const WorldOptions& options, int threads) {
  VREC_RETURN_IF_ERROR(ValidateWorldOptions(options));
  std::unique_ptr<World> world(new World(options));
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  world->BuildVideos();
  world->BuildTables(threads);
  return world;
}

int32_t World::DayOf(double t) const {
  const auto d = static_cast<int32_t>(std::floor(t));
  return std::clamp(d, 0, options_.num_days - 1);
}

void World::BuildVideos() {
  const WorldOptions& o = options_;
  const int32_t num_topics = o.num_topics;
  // Global topic popularity: Zipf over topic index.
  std::vector<double> w(num_topics);
  for (int32_t t = 0; t < num_topics; ++t) w[t] = std::pow(t + 1.0, -o.topic_zipf_exponent);
  topic_alias_prob_.resize(num_topics);
  topic_alias_other_.resize(num_topics);
  BuildAliasTable(w.data(), num_topics, topic_alias_prob_.data(), topic_alias_other_.data());
  // Tokens: Zipf within each topic's block.
  tokens_per_topic_ = o.num_tokens / num_topics;
  token_cdf_.resize(tokens_per_topic_);
  double acc = 0;
  for (int64_t i = 0; i < tokens_per_topic_; ++i) {
    acc += std::pow(i + 1.0, -o.token_zipf_exponent);
    token_cdf_[i] = acc;
  }
  for (double& c : token_cdf_) c /= acc;

  Rng rng(o.seed, kVideoStream);
  videos_.resize(o.num_videos);
  auto upload_time = [&]() {
    if (rng.Bernoulli(o.prewindow_fraction)) return -o.prewindow_days * (1.0 - rng.Uniform());
    return rng.Uniform() * o.num_days;
  };
  auto duration = [&]() {
    const double d = o.mean_duration_s * std::exp(0.8 * rng.Normal() - 0.32);
    return static_cast<float>(std::clamp(d, 15.0, 7200.0));
  };
  auto appeal = [&]() { return std::exp(o.appeal_sigma * rng.Normal()); };
  const double mean_series_length = (2.0 + o.max_series_length) / 2.0;
  const double series_start = o.series_fraction / mean_series_length;
  uint32_t num_series = 0;
  int64_t i = 0;
  while (i < o.num_videos) {
    Video& v = videos_[i];
    v.id = OpaqueId(o.seed, kVideoIdSalt, i);
    v.next_episode = -1;
    v.series = 0;
    v.episode = 0;
    v.clickbait = rng.Bernoulli(o.clickbait_fraction);
    v.duration = duration();
    if (i < num_topics) {
      // One video per topic from before the window: every topic always has a
      // video to watch, so every normaliser Z(d, t) is positive.
      v.topic = static_cast<uint32_t>(i);
      v.upload_time = -o.prewindow_days * (1.0 - rng.Uniform());
      v.appeal = static_cast<float>(appeal());
      ++i;
      continue;
    }
    if (rng.Bernoulli(series_start)) {
      const int64_t length =
          std::min<int64_t>(2 + rng.UniformInt(o.max_series_length - 1), o.num_videos - i);
      const uint32_t topic = SampleGlobalTopic(rng);
      const double base = upload_time();
      const double series_appeal = appeal();
      ++num_series;
      for (int64_t k = 0; k < length; ++k) {
        Video& e = videos_[i + k];
        if (k > 0) {
          e.id = OpaqueId(o.seed, kVideoIdSalt, i + k);
          e.clickbait = rng.Bernoulli(o.clickbait_fraction);
          e.duration = duration();
        }
        e.topic = topic;
        e.upload_time = base + k;  // one episode a day
        e.appeal = static_cast<float>(series_appeal * std::exp(0.3 * rng.Normal()));
        e.series = num_series;
        e.episode = static_cast<uint16_t>(k + 1);
        e.next_episode = k + 1 < length ? static_cast<int32_t>(i + k + 1) : -1;
      }
      i += length;
      continue;
    }
    v.topic = SampleGlobalTopic(rng);
    v.upload_time = upload_time();
    v.appeal = static_cast<float>(appeal());
    ++i;
  }
}

void World::BuildTables(int threads) {
  const int32_t num_topics = options_.num_topics;
  const int32_t num_days = options_.num_days;
  const int64_t num_videos = options_.num_videos;
  // Videos grouped by topic, each group sorted by upload time.
  topic_begin_.assign(num_topics + 1, 0);
  for (const Video& v : videos_) ++topic_begin_[v.topic + 1];
  for (int32_t t = 0; t < num_topics; ++t) topic_begin_[t + 1] += topic_begin_[t];
  topic_videos_.resize(num_videos);
  {
    std::vector<int64_t> fill(topic_begin_.begin(), topic_begin_.end() - 1);
    for (int64_t i = 0; i < num_videos; ++i) topic_videos_[fill[videos_[i].topic]++] = i;
  }
  const size_t num_cells = static_cast<size_t>(num_days) * num_topics;
  cell_count_.resize(num_cells);
  for (int32_t t = 0; t < num_topics; ++t) {
    uint32_t* begin = topic_videos_.data() + topic_begin_[t];
    uint32_t* end = topic_videos_.data() + topic_begin_[t + 1];
    std::sort(begin, end, [&](uint32_t a, uint32_t b) {
      return videos_[a].upload_time < videos_[b].upload_time ||
             (videos_[a].upload_time == videos_[b].upload_time && a < b);
    });
    int64_t n = 0;
    for (int32_t d = 0; d < num_days; ++d) {
      while (begin + n < end && videos_[begin[n]].upload_time <= d) ++n;
      cell_count_[Cell(d, t)] = static_cast<uint32_t>(n);
    }
  }
  cell_alias_begin_.resize(num_cells + 1);
  cell_alias_begin_[0] = 0;
  for (size_t c = 0; c < num_cells; ++c)
    cell_alias_begin_[c + 1] = cell_alias_begin_[c] + cell_count_[c];
  alias_.resize(cell_alias_begin_[num_cells]);
  z_.resize(num_cells);
  top_.resize(num_cells * kOracleMaxK);
  top_count_.resize(num_cells);

  // Each thread fills the cells of a disjoint set of topics.
  auto fill_topics = [&](int worker) {
    std::vector<double> weight;
    std::vector<uint32_t> order, other;
    std::vector<float> prob;
    for (int32_t t = worker; t < num_topics; t += threads) {
      const uint32_t* members = topic_videos_.data() + topic_begin_[t];
      for (int32_t d = 0; d < num_days; ++d) {
        const size_t cell = Cell(d, t);
        const uint32_t n = cell_count_[cell];
        weight.resize(n);
        double z = 0;
        for (uint32_t k = 0; k < n; ++k) {
          weight[k] = Popularity(members[k], d);
          z += weight[k];
        }
        z_[cell] = z;
        prob.resize(n);
        other.resize(n);
        BuildAliasTable(weight.data(), n, prob.data(), other.data());
        AliasEntry* table = alias_.data() + cell_alias_begin_[cell];
        for (uint32_t k = 0; k < n; ++k) table[k] = {prob[k], members[k], members[other[k]]};
        order.resize(n);
        std::iota(order.begin(), order.end(), 0u);
        const uint32_t k = std::min<uint32_t>(n, kOracleMaxK);
        auto by_weight = [&](uint32_t a, uint32_t b) {
          return weight[a] > weight[b] || (weight[a] == weight[b] && members[a] < members[b]);
        };
        if (k < n) std::nth_element(order.begin(), order.begin() + k, order.end(), by_weight);
        std::sort(order.begin(), order.begin() + k, by_weight);
        for (uint32_t j = 0; j < k; ++j) top_[cell * kOracleMaxK + j] = members[order[j]];
        top_count_[cell] = static_cast<uint8_t>(k);
      }
    }
  };
  threads = std::min(threads, num_topics);
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(fill_topics, w);
  fill_topics(0);
  for (auto& th : pool) th.join();
}

UserProfile World::MakeUser(int64_t u) const {
  const WorldOptions& o = options_;
  Rng rng(o.seed, HashCombine(kUserStream, static_cast<uint64_t>(u)));
  UserProfile p;
  p.id = OpaqueId(o.seed, kUserIdSalt, u);
  // Skewed categorical draws: low ids are the common regions and devices.
  const double ur = rng.Uniform();
  p.region =
      1 + std::min<uint32_t>(o.num_regions - 1, static_cast<uint32_t>(o.num_regions * ur * ur));
  const double ud = rng.Uniform();
  p.device =
      1 + std::min<uint32_t>(o.num_devices - 1, static_cast<uint32_t>(o.num_devices * ud * ud));
  p.age = static_cast<float>((rng.Uniform() + rng.Uniform()) / 2);
  p.gender = rng.Bernoulli(0.1) ? 0.5f : static_cast<float>(rng.UniformInt(2));
  p.logged_in = rng.Bernoulli(0.8) ? 1.0f : 0.0f;
  p.clickbait_susceptibility =
      static_cast<float>(std::clamp(1.0 - p.age + 0.2 * rng.Normal(), 0.0, 1.0));
  // Interests: half from global popularity, half shifted by region so that
  // region carries information about taste.
  const int n = 1 + static_cast<int>(rng.UniformInt(o.max_interests));
  const uint32_t region_shift =
      static_cast<uint32_t>((uint64_t{p.region - 1} * o.num_topics) / o.num_regions);
  p.num_interests = 0;
  double total = 0;
  for (int k = 0; k < n; ++k) {
    uint32_t topic = SampleGlobalTopic(rng);
    if (rng.Bernoulli(0.5)) topic = (topic + region_shift) % o.num_topics;
    const double w = rng.Exponential(1.0);  // Dirichlet(1, ..., 1) after normalising
    total += w;
    int j = 0;
    while (j < p.num_interests && p.interest_topic[j] != topic) ++j;
    if (j == p.num_interests) {
      p.interest_topic[j] = topic;
      p.interest_weight[j] = 0;
      ++p.num_interests;
    }
    p.interest_weight[j] += w;
  }
  for (int j = 0; j < p.num_interests; ++j) p.interest_weight[j] /= total;
  return p;
}

uint64_t World::TokenId(int64_t i) const { return OpaqueId(options_.seed, kTokenIdSalt, i); }

void World::SampleSearchTokens(uint32_t topic, Rng& rng, std::vector<int64_t>* tokens) const {
  const int count = 1 + static_cast<int>(rng.UniformInt(3));
  for (int k = 0; k < count; ++k) {
    const double u = rng.Uniform();
    const int64_t pos = std::min<int64_t>(
        std::upper_bound(token_cdf_.begin(), token_cdf_.end(), u) - token_cdf_.begin(),
        tokens_per_topic_ - 1);
    tokens->push_back(int64_t{topic} * tokens_per_topic_ + pos);
  }
}

uint32_t World::SampleInterest(const UserProfile& user, Rng& rng) const {
  double u = rng.Uniform();
  for (int j = 0; j < user.num_interests - 1; ++j) {
    if (u < user.interest_weight[j]) return user.interest_topic[j];
    u -= user.interest_weight[j];
  }
  return user.interest_topic[user.num_interests - 1];
}

uint32_t World::SampleGlobalTopic(Rng& rng) const {
  const uint32_t i = static_cast<uint32_t>(rng.UniformInt(options_.num_topics));
  return rng.Uniform() < topic_alias_prob_[i] ? i : topic_alias_other_[i];
}

double World::Freshness(double age_days) const {
  const double floor = options_.freshness_floor;
  return floor + (1.0 - floor) * std::exp2(-age_days / options_.freshness_half_life_days);
}

double World::Popularity(int32_t video, int32_t day) const {
  const Video& v = videos_[video];
  if (v.upload_time > day) return 0.0;
  return v.appeal * Freshness(day - v.upload_time);
}

NextWatchMixture World::Mixture(const NextWatchState& s) const {
  NextWatchMixture m;
  m.day = s.day;
  double rest = 1.0;
  auto add = [&m](uint32_t topic, double w) {
    if (w <= 0) return;
    for (int i = 0; i < m.num_topics; ++i) {
      if (m.topic[i] == topic) {
        m.weight[i] += w;
        return;
      }
    }
    m.topic[m.num_topics] = topic;
    m.weight[m.num_topics] = w;
    ++m.num_topics;
  };
  if (s.last_video >= 0) {
    const int32_t next = videos_[s.last_video].next_episode;
    if (next >= 0 && Available(next, s.day) && options_.p_series > 0) {
      m.series_video = next;
      m.series_weight = options_.p_series;
      rest -= options_.p_series;
    }
  }
  if (s.search_topic >= 0) {
    add(static_cast<uint32_t>(s.search_topic), rest * options_.p_search);
    rest *= 1.0 - options_.p_search;
  }
  if (s.last_video >= 0) {
    add(videos_[s.last_video].topic, rest * options_.p_sticky);
    rest *= 1.0 - options_.p_sticky;
  }
  const UserProfile& u = *s.user;
  for (int j = 0; j < u.num_interests; ++j) add(u.interest_topic[j], rest * u.interest_weight[j]);
  return m;
}

double World::Probability(const NextWatchMixture& m, int32_t video) const {
  double p = video == m.series_video ? m.series_weight : 0.0;
  const Video& v = videos_[video];
  const double w = m.TopicWeight(v.topic);
  if (w > 0 && v.upload_time <= m.day)
    p += w * Popularity(video, m.day) / Normalizer(m.day, v.topic);
  return p;
}

int32_t World::SampleFromTopic(int32_t day, uint32_t topic, Rng& rng) const {
  const size_t cell = Cell(day, topic);
  const AliasEntry& e = alias_[cell_alias_begin_[cell] + rng.UniformInt(cell_count_[cell])];
  return static_cast<int32_t>(rng.Uniform() < e.prob ? e.video : e.alias);
}

int32_t World::SampleNextWatch(const NextWatchMixture& m, Rng& rng) const {
  double u = rng.Uniform();
  if (u < m.series_weight) return m.series_video;
  u -= m.series_weight;
  for (int i = 0; i < m.num_topics - 1; ++i) {
    if (u < m.weight[i]) return SampleFromTopic(m.day, m.topic[i], rng);
    u -= m.weight[i];
  }
  return SampleFromTopic(m.day, m.topic[m.num_topics - 1], rng);
}

std::vector<double> World::Distribution(const NextWatchMixture& m) const {
  std::vector<double> p(videos_.size(), 0.0);
  if (m.series_video >= 0) p[m.series_video] += m.series_weight;
  for (int i = 0; i < m.num_topics; ++i) {
    const uint32_t t = m.topic[i];
    const size_t cell = Cell(m.day, t);
    const double scale = m.weight[i] / z_[cell];
    for (uint32_t k = 0; k < cell_count_[cell]; ++k) {
      const uint32_t v = topic_videos_[topic_begin_[t] + k];
      p[v] += scale * Popularity(v, m.day);
    }
  }
  return p;
}

const uint32_t* World::TopList(int32_t day, uint32_t topic, int* n) const {
  const size_t cell = Cell(day, topic);
  *n = top_count_[cell];
  return top_.data() + cell * kOracleMaxK;
}

ImpressionTruth World::Impression(const UserProfile& user, const NextWatchMixture& m, int32_t video,
                                  int previous_impressions) const {
  const Video& v = videos_[video];
  double affinity = m.TopicWeight(v.topic) + (video == m.series_video ? m.series_weight : 0.0);
  affinity = std::min(1.0, affinity);
  const double quality =
      options_.appeal_sigma > 0 ? std::log(v.appeal) / options_.appeal_sigma : 0.0;
  const double fresh = v.upload_time <= m.day ? Freshness(m.day - v.upload_time) : 1.0;
  const double sqrt_affinity = std::sqrt(affinity);
  double logit =
      -2.0 + 2.5 * sqrt_affinity + 0.4 * quality + 1.0 * fresh - 0.5 * previous_impressions;
  if (v.clickbait) logit += 2.0 * user.clickbait_susceptibility;
  ImpressionTruth truth;
  truth.click_prob = Sigmoid(logit);
  truth.engagement =
      Sigmoid(-0.3 + 2.5 * sqrt_affinity + 0.3 * quality) * (v.clickbait ? 0.15 : 1.0);
  // E[min(1, 2 e U)] for U ~ U(0, 1).
  const double e = truth.engagement;
  const double mean_fraction = e <= 0.5 ? e : 1.0 - 1.0 / (4.0 * e);
  truth.expected_watch_if_clicked = v.duration * mean_fraction;
  return truth;
}

double World::SampleWatchTime(int32_t video, const ImpressionTruth& truth, Rng& rng) const {
  return videos_[video].duration * std::min(1.0, 2.0 * truth.engagement * rng.Uniform());
}

}  // namespace vrec
