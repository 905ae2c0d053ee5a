#include "data/generator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "data/generated_logs.h"
#include "data/record_writer.h"

namespace vrec {
namespace {

constexpr uint64_t kTrajectoryStream = 0x7472616a6563ULL;  // "trajec"
constexpr uint64_t kTestUserStream = 0x74657374ULL;        // "test"
// example_id = (user << kSeqBits) | sequence within the user.
constexpr int kSeqBits = 24;

Status Bad(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("generator option ", field, ": ", what));
}

}  // namespace

Status ValidateGeneratorOptions(const GeneratorOptions& o, const WorldOptions& w) {
  if (o.shards < 1 || o.shards > 100000) return Bad("shards", "must be in [1, 100000]");
  if (o.threads < 0) return Bad("threads", "must be >= 0 (0 = all cores)");
  if (o.max_examples_per_user < 0) {
    return Bad("max_examples_per_user", "must be >= 0 (0 = all)");
  }
  if (o.test_users < 0) return Bad("test_users", "must be >= 0");
  if (!(o.page_rate >= 0 && o.page_rate <= 1)) return Bad("page_rate", "must be in [0, 1]");
  if (o.page_size < 2 || o.page_size > 100) return Bad("page_size", "must be in [2, 100]");
  if (o.max_history < 1 || o.max_history > 1000) return Bad("max_history", "must be in [1, 1000]");
  if (w.num_users >= (int64_t{1} << (64 - kSeqBits))) {
    return Bad("num_users", "too many users for 64-bit example ids");
  }
  if (int64_t{w.max_actions_per_user} * o.page_size >= (int64_t{1} << (kSeqBits - 1))) {
    return Bad("max_actions_per_user", "times page_size must stay below 2^23 (example ids)");
  }
  return absl::OkStatus();
}

std::vector<bool> ChooseTestUsers(uint64_t seed, int64_t num_users, int64_t count) {
  count = std::min(count, num_users);
  std::vector<bool> chosen(num_users, false);
  Rng rng(seed, kTestUserStream);
  // Floyd: for j in [n - count, n): pick t in [0, j]; take t, or j if taken.
  for (int64_t j = num_users - count; j < num_users; ++j) {
    const auto t = static_cast<int64_t>(rng.UniformInt(j + 1));
    chosen[chosen[t] ? j : t] = true;
  }
  return chosen;
}

void GenerationCounts::Merge(const GenerationCounts& o) {
  users += o.users;
  watches += o.watches;
  searches += o.searches;
  candidate_train += o.candidate_train;
  candidate_test += o.candidate_test;
  pages += o.pages;
  ranking_train += o.ranking_train;
  ranking_test += o.ranking_test;
}

nlohmann::json GenerationCounts::ToJson() const {
  return {{"users", users},
          {"watches", watches},
          {"searches", searches},
          {"candidate_train", candidate_train},
          {"candidate_test", candidate_test},
          {"pages", pages},
          {"ranking_train", ranking_train},
          {"ranking_test", ranking_test}};
}

UserSimulator::UserSimulator(const World* world, const GeneratorOptions& options,
                             const std::vector<bool>* test_users)
    : world_(world), options_(options), test_users_(test_users), oracle_(world) {}

void UserSimulator::FillHistory(uint32_t watches_before, uint32_t tokens_before,
                                google::protobuf::RepeatedField<uint64_t>* watches,
                                google::protobuf::RepeatedField<uint64_t>* tokens) const {
  const uint32_t h = static_cast<uint32_t>(options_.max_history);
  const uint32_t w0 = watches_before > h ? watches_before - h : 0;
  watches->Add(watch_ids_.begin() + w0, watch_ids_.begin() + watches_before);
  const uint32_t t0 = tokens_before > h ? tokens_before - h : 0;
  tokens->Add(token_ids_.begin() + t0, token_ids_.begin() + tokens_before);
}

Status UserSimulator::Simulate(int64_t u, ExampleSink* sink, OracleStats* oracle,
                               GenerationCounts* counts, ActionSink* actions) {
  const WorldOptions& wo = world_->options();
  const UserProfile user = world_->MakeUser(u);
  const bool test = (*test_users_)[u];
  Rng rng(wo.seed, HashCombine(kTrajectoryStream, static_cast<uint64_t>(u)));
  page_counter_ = 0;
  int64_t sequence = 0;
  if (actions != nullptr) VREC_RETURN_IF_ERROR(actions->BeginUser(user, test));

  // Number of actions: lognormal with the requested mean, capped.
  const double sigma = wo.actions_sigma;
  const double draw =
      wo.mean_actions_per_user * std::exp(sigma * rng.Normal() - 0.5 * sigma * sigma);
  const int n = static_cast<int>(
      std::clamp(std::llround(draw), 1LL, static_cast<long long>(wo.max_actions_per_user)));
  // Sorted uniform times in [0, t_max): normalised cumulative exponentials.
  times_.resize(n);
  double acc = 0;
  for (int i = 0; i < n; ++i) {
    acc += rng.Exponential(1.0);
    times_[i] = acc;
  }
  const double scale = world_->t_max() / (acc + rng.Exponential(1.0));
  for (double& t : times_) t *= scale;

  watches_.clear();
  watch_ids_.clear();
  watch_topics_.clear();
  tokens_.clear();
  token_ids_.clear();
  events_.clear();
  impressions_.clear();
  topic_last_watch_.clear();
  int32_t last_video = -1, search_topic = -1;
  for (int i = 0; i < n; ++i) {
    const double t = times_[i];
    const int32_t day = world_->DayOf(t);
    if (rng.Bernoulli(wo.search_probability)) {
      const uint32_t topic = world_->SampleInterest(user, rng);
      const size_t before = tokens_.size();
      world_->SampleSearchTokens(topic, rng, &tokens_);
      for (size_t k = before; k < tokens_.size(); ++k)
        token_ids_.push_back(world_->TokenId(tokens_[k]));
      search_topic = static_cast<int32_t>(topic);
      if (actions != nullptr) {
        VREC_RETURN_IF_ERROR(
            actions->Search(t, token_ids_.data() + before, token_ids_.size() - before));
      }
      ++counts->searches;
      continue;
    }
    NextWatchState state;
    state.user = &user;
    state.last_video = last_video;
    state.search_topic = search_topic;
    state.day = day;
    const NextWatchMixture m = world_->Mixture(state);
    const int32_t v = world_->SampleNextWatch(m, rng);
    if (!watches_.empty()) {
      events_.push_back({t, v, last_video, search_topic, static_cast<uint32_t>(watches_.size()),
                         static_cast<uint32_t>(tokens_.size())});
    }
    if (options_.page_rate > 0 && rng.Bernoulli(options_.page_rate)) {
      VREC_RETURN_IF_ERROR(ShowPage(u, user, m, t, test, rng, sink, oracle, counts, actions));
    }
    if (actions != nullptr) VREC_RETURN_IF_ERROR(actions->Watch(t, world_->videos()[v].id));
    watches_.push_back(v);
    watch_ids_.push_back(world_->videos()[v].id);
    watch_topics_.push_back(world_->videos()[v].topic);
    topic_last_watch_[world_->videos()[v].topic] = t;
    last_video = v;
    search_topic = -1;
    ++counts->watches;
  }

  // Random labels see the user's whole sequence, except a held-out user's
  // test watch and what followed it (the future stays unseen).
  uint32_t end_watches = static_cast<uint32_t>(watches_.size());
  uint32_t end_tokens = static_cast<uint32_t>(tokens_.size());
  if (test && !events_.empty()) {
    end_watches = events_.back().watches_before;
    end_tokens = events_.back().tokens_before;
  }
  auto emit = [&](const WatchEvent& e, bool is_test) -> Status {
    CandidateExample& c = candidate_;
    c.Clear();
    c.set_example_id((static_cast<uint64_t>(u) << kSeqBits) | static_cast<uint64_t>(sequence++));
    c.set_user_id(user.id);
    if (options_.random_labels && !is_test) {
      // The label is watch e.watches_before; the history every other watch
      // before end_watches, the most recent max_history of them.
      const uint32_t h = static_cast<uint32_t>(options_.max_history);
      std::vector<uint64_t> others;
      for (uint32_t i = 0; i < end_watches; ++i) {
        if (i != e.watches_before) others.push_back(watch_ids_[i]);
      }
      const size_t w0 = others.size() > h ? others.size() - h : 0;
      c.mutable_watch_history()->Add(others.begin() + w0, others.end());
      const uint32_t t0 = end_tokens > h ? end_tokens - h : 0;
      c.mutable_search_tokens()->Add(token_ids_.begin() + t0, token_ids_.begin() + end_tokens);
    } else {
      FillHistory(e.watches_before, e.tokens_before, c.mutable_watch_history(),
                  c.mutable_search_tokens());
    }
    c.set_region(user.region);
    c.set_device(user.device);
    c.set_age(user.age);
    c.set_gender(user.gender);
    c.set_logged_in(user.logged_in);
    c.set_example_age(static_cast<float>(world_->t_max() - e.time));
    c.set_time(e.time);
    c.set_label_video(world_->videos()[e.video].id);
    return sink->AddCandidate(c, is_test);
  };
  if (test && !events_.empty()) {
    const WatchEvent e = events_.back();
    events_.pop_back();
    NextWatchState state;
    state.user = &user;
    state.last_video = e.last_video;
    state.search_topic = e.search_topic;
    state.day = world_->DayOf(e.time);
    oracle_.AddExample(world_->Mixture(state), e.video, oracle);
    VREC_RETURN_IF_ERROR(emit(e, true));
    ++counts->candidate_test;
  }
  // Selection sampling (Knuth's algorithm S): k of N uniformly, in time order.
  const size_t total = events_.size();
  size_t want = options_.max_examples_per_user == 0
                    ? total
                    : std::min<size_t>(total, options_.max_examples_per_user);
  for (size_t i = 0; i < total && want > 0; ++i) {
    if (static_cast<double>(total - i) * rng.Uniform() < static_cast<double>(want)) {
      VREC_RETURN_IF_ERROR(emit(events_[i], false));
      ++counts->candidate_train;
      --want;
    }
  }
  ++counts->users;
  return absl::OkStatus();
}

Status UserSimulator::ShowPage(int64_t u, const UserProfile& user, const NextWatchMixture& m,
                               double time, bool test, Rng& rng, ExampleSink* sink,
                               OracleStats* oracle, GenerationCounts* counts, ActionSink* actions) {
  const auto& videos = world_->videos();
  const int64_t num_videos = static_cast<int64_t>(videos.size());
  // Candidates: half from the user's true next-watch distribution, the rest
  // popular (global topic, then pop within it) or uniformly random uploads.
  page_.clear();
  for (int slot = 0; slot < options_.page_size; ++slot) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      const double r = rng.Uniform();
      int32_t v;
      if (r < 0.5) {
        v = world_->SampleNextWatch(m, rng);
      } else if (r < 0.8) {
        v = world_->SampleFromTopic(m.day, world_->SampleGlobalTopic(rng), rng);
      } else {
        v = static_cast<int32_t>(rng.UniformInt(num_videos));
        if (!world_->Available(v, m.day)) continue;
      }
      if (std::find(page_.begin(), page_.end(), v) == page_.end()) {
        page_.push_back(v);
        break;
      }
    }
  }
  const uint64_t page_id =
      (static_cast<uint64_t>(u) << kSeqBits) | static_cast<uint64_t>(page_counter_);
  // Topic counts over the last max_history watches (topic_watch_share).
  const size_t h0 = watches_.size() > static_cast<size_t>(options_.max_history)
                        ? watches_.size() - options_.max_history
                        : 0;
  const size_t window = watches_.size() - h0;
  page_watch_history_.Clear();
  page_search_tokens_.Clear();
  FillHistory(static_cast<uint32_t>(watches_.size()), static_cast<uint32_t>(tokens_.size()),
              &page_watch_history_, &page_search_tokens_);
  scored_.clear();
  logged_page_.clear();
  for (const int32_t& v : page_) {
    const Video& video = videos[v];
    const int prev = impressions_.count(v) ? impressions_[v] : 0;
    const ImpressionTruth truth = world_->Impression(user, m, v, prev);
    const bool clicked = rng.Bernoulli(truth.click_prob);
    const double watch = clicked ? world_->SampleWatchTime(v, truth, rng) : 0.0;
    RankingExample& r = ranking_;
    r.Clear();
    // Page ids and impression ids share the per-user sequence space.
    // Impressions use the upper half of the user's id space (candidate
    // examples the lower half).
    const uint64_t seq = (uint64_t{1} << (kSeqBits - 1)) +
                         static_cast<uint64_t>(page_counter_) * options_.page_size +
                         (&v - page_.data());
    r.set_example_id((static_cast<uint64_t>(u) << kSeqBits) | seq);
    r.set_user_id(user.id);
    r.set_page_id(page_id);
    r.set_time(time);
    r.set_impression_video(video.id);
    r.set_video_topic(video.topic + 1);
    r.set_region(user.region);
    r.set_device(user.device);
    *r.mutable_watch_history() = page_watch_history_;
    *r.mutable_search_tokens() = page_search_tokens_;
    const auto last = topic_last_watch_.find(video.topic);
    r.set_time_since_last_watch(
        last == topic_last_watch_.end() ? 365.0f : static_cast<float>(time - last->second));
    r.set_previous_impressions(static_cast<float>(prev));
    r.set_video_age(static_cast<float>(std::max(0.0, time - video.upload_time)));
    int same_topic = 0;
    for (size_t i = h0; i < watches_.size(); ++i) same_topic += watch_topics_[i] == video.topic;
    r.set_topic_watch_share(window ? static_cast<float>(same_topic) / window : 0.0f);
    r.set_age(user.age);
    r.set_gender(user.gender);
    r.set_clicked(clicked);
    r.set_watch_time(static_cast<float>(watch));
    r.set_true_click_prob(static_cast<float>(truth.click_prob));
    r.set_true_expected_watch_time(static_cast<float>(truth.expected_watch_time()));
    VREC_RETURN_IF_ERROR(sink->AddRanking(r, test));
    ++(test ? counts->ranking_test : counts->ranking_train);
    if (test) scored_.push_back({truth.expected_watch_time(), clicked, watch});
    if (actions != nullptr) logged_page_.push_back({video.id, clicked, r.watch_time()});
  }
  if (actions != nullptr) {
    VREC_RETURN_IF_ERROR(actions->Page(time, logged_page_.data(), logged_page_.size()));
  }
  for (int32_t v : page_) ++impressions_[v];
  if (test) {
    oracle->ranking.AddPage(scored_);
    oracle->ranking_impressions += static_cast<int64_t>(scored_.size());
  }
  ++page_counter_;
  ++counts->pages;
  return absl::OkStatus();
}

nlohmann::json GenerationSummary::ToJson() const {
  nlohmann::json j;
  j["oracle"] = oracle.ToJson();
  j["counts"] = counts.ToJson();
  j["generate_seconds"] = generate_seconds;
  j["threads"] = threads;
  j["examples_per_s"] = generate_seconds > 0
                            ? (counts.candidate_train + counts.candidate_test) / generate_seconds
                            : 0.0;
  if (!logs.is_null()) j["logs"] = logs;
  return j;
}

namespace {

// Calls f(name, field) for every field of WorldOptions: one list for both
// directions of the JSON mapping.
template <typename Options, typename F>
void VisitWorldOptions(Options& o, const F& f) {
  f("seed", o.seed);
  f("num_videos", o.num_videos);
  f("num_users", o.num_users);
  f("num_tokens", o.num_tokens);
  f("num_topics", o.num_topics);
  f("num_days", o.num_days);
  f("num_regions", o.num_regions);
  f("num_devices", o.num_devices);
  f("topic_zipf_exponent", o.topic_zipf_exponent);
  f("appeal_sigma", o.appeal_sigma);
  f("prewindow_fraction", o.prewindow_fraction);
  f("prewindow_days", o.prewindow_days);
  f("series_fraction", o.series_fraction);
  f("max_series_length", o.max_series_length);
  f("clickbait_fraction", o.clickbait_fraction);
  f("freshness_half_life_days", o.freshness_half_life_days);
  f("freshness_floor", o.freshness_floor);
  f("mean_duration_s", o.mean_duration_s);
  f("token_zipf_exponent", o.token_zipf_exponent);
  f("max_interests", o.max_interests);
  f("mean_actions_per_user", o.mean_actions_per_user);
  f("actions_sigma", o.actions_sigma);
  f("max_actions_per_user", o.max_actions_per_user);
  f("search_probability", o.search_probability);
  f("p_series", o.p_series);
  f("p_search", o.p_search);
  f("p_sticky", o.p_sticky);
}

}  // namespace

nlohmann::json WorldOptionsToJson(const WorldOptions& o) {
  nlohmann::json j = nlohmann::json::object();
  VisitWorldOptions(o, [&](const char* name, const auto& v) { j[name] = v; });
  return j;
}

StatusOr<WorldOptions> WorldOptionsFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("world options: not a JSON object");
  WorldOptions o;
  Status status;
  VisitWorldOptions(o, [&](const char* name, auto& v) {
    if (!status.ok()) return;
    auto it = j.find(name);
    if (it == j.end()) {
      status = absl::InvalidArgumentError(absl::StrCat("world options: no field '", name, "'"));
      return;
    }
    if (!it->is_number()) {
      status =
          absl::InvalidArgumentError(absl::StrCat("world options: '", name, "' is not a number"));
      return;
    }
    v = it->get<std::remove_reference_t<decltype(v)>>();
  });
  VREC_RETURN_IF_ERROR(status);
  return o;
}

namespace {

// One shard's record files: the held-out examples always; the training
// examples when they are written, otherwise their label counts and a
// uniform sample of the ranking ones (reservoir of `sample_size`).
class ShardFileSink : public ExampleSink {
 public:
  static StatusOr<std::unique_ptr<ShardFileSink>> Open(const std::string& dir, int shard,
                                                       int shards, bool sync, bool write_train,
                                                       int64_t sample_size, uint64_t seed) {
    auto sink = std::unique_ptr<ShardFileSink>(new ShardFileSink);
    sink->dir_ = dir;
    sink->write_train_ = write_train;
    sink->sample_size_ = sample_size;
    sink->rng_ = Rng(seed, 0x5a3b1e + static_cast<uint64_t>(shard));
    sink->options_.sync_on_close = sync;
    const std::string names[4] = {
        "candidate/" + ShardFileName("train", shard, shards),
        "candidate/" + ShardFileName("test", shard, shards),
        "ranking/" + ShardFileName(write_train ? "train" : "train-sample", shard, shards),
        "ranking/" + ShardFileName("test", shard, shards)};
    for (int i = 0; i < 4; ++i) {
      sink->relative_[i] = names[i];
      // Without training files, the ranking sample is written at Close.
      if (!write_train && (i == 0 || i == 2)) continue;
      VREC_ASSIGN_OR_RETURN(sink->writers_[i],
                            RecordWriter::Create(JoinPath(dir, names[i]), sink->options_));
    }
    return sink;
  }
  Status AddCandidate(const CandidateExample& e, bool test) override {
    if (!test) ++label_counts_[e.label_video()];
    if (!test && !write_train_) return absl::OkStatus();
    return writers_[test ? 1 : 0]->WriteMessage(e);
  }
  Status AddRanking(const RankingExample& e, bool test) override {
    if (test || write_train_) return writers_[test ? 3 : 2]->WriteMessage(e);
    ++ranking_seen_;
    if (static_cast<int64_t>(sample_.size()) < sample_size_) {
      sample_.push_back(e);
    } else if (const uint64_t j = rng_.UniformInt(ranking_seen_);
               j < static_cast<uint64_t>(sample_size_)) {
      sample_[j] = e;
    }
    return absl::OkStatus();
  }
  // Closes the files and describes them: out[0] candidate train (empty
  // without training files), out[1] candidate test, out[2] ranking train or
  // its sample, out[3] ranking test.
  Status Close(ShardInfo out[4]) {
    if (!write_train_) {
      VREC_ASSIGN_OR_RETURN(writers_[2],
                            RecordWriter::Create(JoinPath(dir_, relative_[2]), options_));
      for (const RankingExample& e : sample_) VREC_RETURN_IF_ERROR(writers_[2]->WriteMessage(e));
    }
    for (int i = 0; i < 4; ++i) {
      if (writers_[i] == nullptr) continue;
      VREC_RETURN_IF_ERROR(writers_[i]->Close());
      out[i].set_path(relative_[i]);
      out[i].set_records(writers_[i]->records());
      out[i].set_bytes(writers_[i]->offset());
    }
    return absl::OkStatus();
  }
  // The training label counts per video id, moved out (after Close).
  std::unordered_map<uint64_t, uint64_t> TakeLabelCounts() { return std::move(label_counts_); }

 private:
  std::string dir_;
  bool write_train_ = true;
  int64_t sample_size_ = 0;
  Rng rng_;
  RecordWriterOptions options_;
  std::unique_ptr<RecordWriter> writers_[4];
  std::string relative_[4];
  std::unordered_map<uint64_t, uint64_t> label_counts_;  // video id -> training labels
  std::vector<RankingExample> sample_;
  uint64_t ranking_seen_ = 0;
};

struct ShardResult {
  Status status;
  OracleStats oracle;
  GenerationCounts counts;
  ShardInfo files[4];
  std::unordered_map<uint64_t, uint64_t> label_counts;
  GeneratedLogCounts log_counts;
};

Status WriteVideos(const World& world, const std::unordered_map<uint64_t, uint64_t>& label_counts,
                   const std::string& path, bool sync) {
  RecordWriterOptions wo;
  wo.sync_on_close = sync;
  VREC_ASSIGN_OR_RETURN(auto writer, RecordWriter::Create(path, wo));
  VideoInfo info;
  for (const Video& v : world.videos()) {
    info.set_video_id(v.id);
    info.set_topic(v.topic + 1);  // as RankingExample.video_topic: 0 = unknown
    info.set_upload_time(v.upload_time);
    info.set_appeal(v.appeal);
    info.set_series_id(v.series);
    info.set_episode(v.episode);
    info.set_clickbait(v.clickbait);
    info.set_duration(v.duration);
    const auto it = label_counts.find(v.id);
    info.set_train_label_count(it == label_counts.end() ? 0 : it->second);
    VREC_RETURN_IF_ERROR(writer->WriteMessage(info));
  }
  return writer->Close();
}

}  // namespace

StatusOr<GenerationSummary> GenerateDataset(const World& world, const GeneratorOptions& options,
                                            const nlohmann::json& extra_truth) {
  VREC_RETURN_IF_ERROR(ValidateGeneratorOptions(options, world.options()));
  if (options.out_dir.empty()) return Bad("out_dir", "must not be empty");
  const std::string& dir = options.out_dir;
  VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "candidate")));
  VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "ranking")));
  const auto start = std::chrono::steady_clock::now();
  const WorldOptions& wo = world.options();
  const std::vector<bool> test_users = ChooseTestUsers(wo.seed, wo.num_users, options.test_users);
  if (!options.logs_dir.empty()) VREC_RETURN_IF_ERROR(StartGeneratedLogs(options.logs_dir));

  const int shards = options.shards;
  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min(threads, shards);
  std::vector<ShardResult> results(shards);
  std::atomic<int> next_shard{0};
  std::atomic<int64_t> users_done{0};
  std::atomic<bool> failed{false};
  std::atomic<int> running{threads};
  auto work = [&]() {
    UserSimulator sim(&world, options, &test_users);
    for (int s = next_shard++; s < shards && !failed; s = next_shard++) {
      ShardResult& res = results[s];
      auto sink = ShardFileSink::Open(dir, s, shards, options.sync, options.write_train,
                                      (kRankingTrainSample + shards - 1) / shards, wo.seed);
      if (!sink.ok()) {
        res.status = sink.status();
        failed = true;
        break;
      }
      std::unique_ptr<LogShardWriter> log;
      if (!options.logs_dir.empty()) {
        auto opened = LogShardWriter::Open(options.logs_dir, s);
        if (!opened.ok()) {
          res.status = opened.status();
          failed = true;
          break;
        }
        log = std::move(opened).value();
      }
      for (int64_t u = s; u < wo.num_users && res.status.ok(); u += shards) {
        res.status = sim.Simulate(u, sink->get(), &res.oracle, &res.counts, log.get());
        users_done.fetch_add(1, std::memory_order_relaxed);
      }
      if (res.status.ok()) res.status = (*sink)->Close(res.files);
      if (res.status.ok() && log != nullptr) {
        res.status = log->Close();
        res.log_counts = log->counts();
      }
      if (res.status.ok()) res.label_counts = (*sink)->TakeLabelCounts();
      if (!res.status.ok()) failed = true;
    }
    running.fetch_sub(1);
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  // The calling thread reports progress while the shards are written.
  auto last_report = start;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = std::chrono::steady_clock::now();
    if (options.progress_interval_s > 0 &&
        std::chrono::duration<double>(now - last_report).count() >= options.progress_interval_s) {
      last_report = now;
      const double secs = std::chrono::duration<double>(now - start).count();
      std::fprintf(stderr, "datagen: %lld/%lld users (%.0f%%) in %.1f s\n",
                   static_cast<long long>(users_done.load()), static_cast<long long>(wo.num_users),
                   100.0 * users_done.load() / wo.num_users, secs);
    }
  }
  for (auto& th : pool) th.join();

  GenerationSummary summary;
  summary.threads = threads;
  DatasetManifest manifest;
  for (int s = 0; s < shards; ++s) {
    ShardResult& res = results[s];
    if (!res.status.ok()) {
      return Status(res.status.code(),
                    absl::StrCat("datagen shard ", s, " of ", shards, ": ", res.status.message()));
    }
  }
  if (failed) return absl::InternalError("datagen: a shard failed without reporting why");
  std::unordered_map<uint64_t, uint64_t> label_counts;
  GeneratedLogCounts log_counts;
  for (int s = 0; s < shards; ++s) {
    const ShardResult& res = results[s];
    log_counts.Merge(res.log_counts);
    summary.oracle.Merge(res.oracle);
    summary.counts.Merge(res.counts);
    for (const auto& [id, n] : res.label_counts) label_counts[id] += n;
    if (options.write_train) {
      *manifest.add_candidate_train() = res.files[0];
      *manifest.add_ranking_train() = res.files[2];
    } else {
      *manifest.add_ranking_train_sample() = res.files[2];
    }
    *manifest.add_candidate_test() = res.files[1];
    *manifest.add_ranking_test() = res.files[3];
  }
  if (!options.write_train) {
    manifest.set_train_streamed(true);
    manifest.set_candidate_train_examples(static_cast<uint64_t>(summary.counts.candidate_train));
    manifest.set_ranking_train_examples(static_cast<uint64_t>(summary.counts.ranking_train));
  }
  summary.generate_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  VREC_RETURN_IF_ERROR(WriteVideos(world, label_counts, JoinPath(dir, "videos.rec"), options.sync));
  if (!options.logs_dir.empty()) {
    VREC_RETURN_IF_ERROR(FinishGeneratedLogs(world, options, shards, &log_counts));
    summary.logs = {
        {"dir", options.logs_dir},
        {"convert_command",
         GeneratedLogsConvertCommand(options, world, JoinPath(options.logs_dir, "converted"))},
        {"counts", log_counts.ToJson()}};
  }
  nlohmann::json truth = summary.ToJson();
  truth["world"] = WorldOptionsToJson(wo);
  truth["generator"] = {{"shards", options.shards},
                        {"max_examples_per_user", options.max_examples_per_user},
                        {"test_users", options.test_users},
                        {"page_rate", options.page_rate},
                        {"page_size", options.page_size},
                        {"max_history", options.max_history},
                        {"random_labels", options.random_labels},
                        {"write_train", options.write_train}};
  truth["t_max"] = world.t_max();
  if (extra_truth.is_object()) truth.update(extra_truth);
  VREC_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "truth.json"), truth.dump(2) + "\n"));

  manifest.set_format_version(kDatasetFormatVersion);
  manifest.set_source("datagen");
  manifest.set_seed(wo.seed);
  manifest.set_t_max(world.t_max());
  manifest.set_videos("videos.rec");
  manifest.set_truth("truth.json");
  manifest.set_num_users(wo.num_users);
  manifest.set_num_videos(wo.num_videos);
  manifest.set_num_tokens(wo.num_tokens);
  VREC_RETURN_IF_ERROR(WriteManifest(dir, manifest));
  return summary;
}

}  // namespace vrec
