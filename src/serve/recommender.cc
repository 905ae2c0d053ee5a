#include "serve/recommender.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "models/candidate_tower.h"
#include "models/ranking_scorer.h"

namespace vrec::serve {

using Clock = std::chrono::steady_clock;

struct Recommender::Scorer {
  std::unique_ptr<models::UserTower> tower;
  std::unique_ptr<models::RankingScorer> ranking;
  model::RowMatrix<float> users;
  std::vector<float> query, scores, logits;
  std::vector<int64_t> labels;
  std::vector<int32_t> candidates;
  std::vector<models::RankingImpression> impressions;
};

Recommender::~Recommender() = default;

StatusOr<std::unique_ptr<Recommender>> Recommender::Create(
    std::shared_ptr<const LoadedBundle> bundle, const RecommenderOptions& options) {
  if (options.num_candidates < 1) {
    return absl::InvalidArgumentError("num_candidates must be >= 1");
  }
  std::unique_ptr<Recommender> r(new Recommender());
  r->bundle_ = std::move(bundle);
  r->options_ = options;
  r->max_busy_ = options.max_concurrent > 0
                     ? options.max_concurrent
                     : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  VREC_ASSIGN_OR_RETURN(auto scorer, r->NewScorer());  // fails early on a bad bundle
  r->pool_.push_back(std::move(scorer));
  return r;
}

StatusOr<std::unique_ptr<Recommender::Scorer>> Recommender::NewScorer() const {
  auto s = std::make_unique<Scorer>();
  VREC_ASSIGN_OR_RETURN(
      s->tower, models::UserTower::Create(bundle_->candidate()->spec(), bundle_->candidate()));
  if (bundle_->ranking() != nullptr) {
    VREC_ASSIGN_OR_RETURN(
        s->ranking, models::RankingScorer::Create(bundle_->ranking()->spec(), bundle_->ranking()));
  }
  return s;
}

CandidateExample Recommender::UserExample(const RecommendRequest& q) const {
  CandidateExample e;
  for (int64_t v : q.watch_history) e.add_watch_history(static_cast<uint64_t>(v));
  for (int64_t t : q.search_tokens) e.add_search_tokens(static_cast<uint64_t>(t));
  e.set_region(q.region);
  e.set_device(q.device);
  e.set_age(q.age);
  e.set_gender(q.gender);
  e.set_logged_in(q.watch_history.empty() && q.search_tokens.empty() ? 0.f : 1.f);
  e.set_example_age(0);
  return e;
}

RankingExample Recommender::RankingUser(const RecommendRequest& q) const {
  RankingExample e;
  e.set_region(q.region);
  e.set_device(q.device);
  for (int64_t h : q.watch_history) e.add_watch_history(static_cast<uint64_t>(h));
  for (int64_t t : q.search_tokens) e.add_search_tokens(static_cast<uint64_t>(t));
  e.set_age(q.age);
  e.set_gender(q.gender);
  return e;
}

void Recommender::PageImpressions(const RecommendRequest& q, const std::vector<int32_t>& candidates,
                                  std::vector<models::RankingImpression>* out) const {
  const auto& videos = bundle_->videos();
  // The history's topics (the last 50), most recent last.
  const size_t h0 = q.watch_history.size() > 50 ? q.watch_history.size() - 50 : 0;
  absl::flat_hash_map<uint32_t, int> topic_count;
  int known = 0;
  for (size_t i = h0; i < q.watch_history.size(); ++i) {
    const int32_t k = bundle_->IndexOf(q.watch_history[i]);
    if (k < 0) continue;
    ++topic_count[videos[k].topic];
    ++known;
  }
  const double now = bundle_->manifest().now_days();
  out->clear();
  out->reserve(candidates.size());
  for (int32_t c : candidates) {
    const Video& v = videos[c];
    models::RankingImpression& e = out->emplace_back();
    e.video = static_cast<uint64_t>(v.id);
    e.topic = v.topic;
    auto it = topic_count.find(v.topic);
    const int in_topic = it == topic_count.end() ? 0 : it->second;
    e.time_since_last_watch = in_topic > 0 ? 1.f : 365.f;
    e.previous_impressions = 0;
    e.video_age = static_cast<float>(std::max(0.0, now - v.upload_time));
    e.topic_watch_share = known > 0 ? static_cast<float>(in_topic) / known : 0.f;
  }
}

std::vector<RankingExample> Recommender::Impressions(const RecommendRequest& q,
                                                     const std::vector<int32_t>& candidates) const {
  const RankingExample user = RankingUser(q);
  std::vector<models::RankingImpression> page;
  PageImpressions(q, candidates, &page);
  std::vector<RankingExample> out;
  out.reserve(page.size());
  for (const models::RankingImpression& i : page) out.push_back(models::ImpressionExample(user, i));
  return out;
}

StatusOr<std::vector<RecommendItem>> Recommender::Recommend(const RecommendRequest& q,
                                                            RecommendProfile* profile) const {
  if (q.num < 1) return absl::InvalidArgumentError("num must be >= 1");
  if (q.age < 0 || q.age > 1 || q.gender < 0 || q.gender > 1 || !std::isfinite(q.age) ||
      !std::isfinite(q.gender)) {
    return absl::InvalidArgumentError("age and gender must be in [0, 1]");
  }
  std::unique_ptr<Scorer> s;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return busy_ < max_busy_; });
    ++busy_;
    if (!pool_.empty()) {
      s = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  // The slot and the scorer go back on every way out, an exception included:
  // a slot lost would hold back every later request.
  absl::Cleanup give_back = [&] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
      if (s != nullptr) pool_.push_back(std::move(s));
    }
    cv_.notify_one();
  };
  if (s == nullptr) {
    StatusOr<std::unique_ptr<Scorer>> fresh = NewScorer();
    if (!fresh.ok()) return fresh.status();
    s = std::move(fresh).value();
  }
  // Stage times, only when asked for.
  Clock::time_point mark = profile != nullptr ? Clock::now() : Clock::time_point();
  auto lap = [&](double RecommendProfile::*stage) {
    if (profile == nullptr) return;
    const Clock::time_point now = Clock::now();
    profile->*stage += std::chrono::duration<double>(now - mark).count();
    mark = now;
  };

  // 1. Candidates.
  const CandidateExample user = UserExample(q);
  if (Status st = s->tower->UserVectors(absl::MakeConstSpan(&user, 1), true, &s->users); !st.ok()) {
    return st;
  }
  const int64_t d = s->users.cols();
  s->query.assign(s->users.data(), s->users.data() + d);
  s->query.push_back(1.f);
  lap(&RecommendProfile::user_tower);
  absl::flat_hash_set<int64_t> watched;
  if (options_.exclude_watched) watched.insert(q.watch_history.begin(), q.watch_history.end());
  const int64_t want =
      std::max<int64_t>(options_.num_candidates, q.num) + static_cast<int64_t>(watched.size());
  if (Status st = bundle_->Search(s->query.data(), 1, want, &s->labels, &s->scores,
                                  profile != nullptr ? &profile->index_rows : nullptr);
      !st.ok()) {
    return st;
  }
  std::vector<int32_t>& candidates = s->candidates;
  candidates.clear();
  std::vector<RecommendItem> items;
  items.reserve(s->labels.size());
  for (size_t i = 0; i < s->labels.size(); ++i) {
    const int64_t c = s->labels[i];
    if (c < 0) continue;  // fewer videos than asked for
    const int64_t id = bundle_->videos()[c].id;
    if (watched.contains(id)) continue;
    candidates.push_back(static_cast<int32_t>(c));
    RecommendItem& it = items.emplace_back();
    it.video = id;
    it.retrieval_score = it.score = s->scores[i];
    if (static_cast<int>(candidates.size()) >= std::max(options_.num_candidates, q.num)) break;
  }
  lap(&RecommendProfile::search);

  // 2. Ranking: the candidates as one page of impressions for this user.
  if (s->ranking != nullptr && !candidates.empty()) {
    PageImpressions(q, candidates, &s->impressions);
    model::RankingPageProfile model_profile;
    if (Status st = s->ranking->PageLogits(RankingUser(q), s->impressions, &s->logits,
                                           profile != nullptr ? &model_profile : nullptr);
        !st.ok()) {
      return st;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      items[i].score = s->logits[i];
      items[i].expected_watch_time = std::exp(s->logits[i]);
    }
    if (profile != nullptr) {
      lap(&RecommendProfile::ranking_input);
      profile->ranking_input -= model_profile.first_layer + model_profile.other_layers;
      profile->first_layer += model_profile.first_layer;
      profile->other_layers += model_profile.other_layers;
    }
  }
  std::move(give_back).Invoke();
  std::stable_sort(items.begin(), items.end(), [](const RecommendItem& a, const RecommendItem& b) {
    return a.score > b.score;
  });
  if (static_cast<int>(items.size()) > q.num) items.resize(q.num);
  lap(&RecommendProfile::order);
  return items;
}

}  // namespace vrec::serve
