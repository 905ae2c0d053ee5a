#include "data/example_builder.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/random.h"

namespace vrec {
namespace {

constexpr double kMsPerDay = 86400.0 * 1000.0;
constexpr float kNeverWatchedTopicDays = 365.0f;  // as the generator

double Days(int64_t ms) { return static_cast<double>(ms) / kMsPerDay; }

bool SameEvent(const LogEvent& a, const uint64_t* ta, const LogEvent& b, const uint64_t* tb) {
  if (a.kind != b.kind || a.time_ms != b.time_ms) return false;
  if (a.kind == LogEvent::kSearch) return a.tokens == b.tokens && std::equal(ta, ta + a.tokens, tb);
  return a.item == b.item;
}

}  // namespace

std::string ToString(TestSplit split) {
  switch (split) {
    case TestSplit::kLastWatch:
      return "last_watch";
    case TestSplit::kLastDay:
      return "last_day";
    case TestSplit::kUsers:
      return "users";
  }
  return "?";
}

StatusOr<TestSplit> ParseTestSplit(std::string_view text) {
  for (TestSplit s : {TestSplit::kLastWatch, TestSplit::kLastDay, TestSplit::kUsers}) {
    if (text == ToString(s)) return s;
  }
  return absl::InvalidArgumentError(absl::StrCat("test split '", std::string(text),
                                                 "' is not one of last_watch, last_day, users"));
}

ExampleBuilder::ExampleBuilder(const ExampleOptions& options, const InteractionLog* log)
    : options_(options), log_(log) {}

bool ExampleBuilder::IsWatch(const LogEvent& e) const {
  return e.kind == LogEvent::kWatch ||
         (e.kind == LogEvent::kClick && options_.clicks_are_watches && e.watch_seconds > 0);
}

bool ExampleBuilder::HeldOutUser(uint32_t user) const {
  return options_.split != TestSplit::kUsers ||
         (options_.test_users != nullptr && options_.test_users->contains(log_->user_ids[user]));
}

void ExampleBuilder::Prepare(const UserEvents& user, bool count) {
  events_.clear();
  event_tokens_.clear();
  watches_.clear();
  // Duplicates: events of the same instant are neighbours.
  size_t group = 0;  // first event of the current instant in events_
  for (const LogEvent& e : user.events) {
    const uint64_t* tokens = user.tokens.data() + (e.tokens > 0 ? e.item : 0);
    if (!events_.empty() && events_.back().time_ms != e.time_ms) group = events_.size();
    bool repeat = false;
    for (size_t j = group; j < events_.size() && !repeat; ++j) {
      const LogEvent& o = events_[j];
      repeat = SameEvent(o, event_tokens_.data() + (o.tokens > 0 ? o.item : 0), e, tokens);
    }
    if (repeat && count) ++counts_.duplicate_events;
    if (repeat && options_.drop_duplicates) continue;
    LogEvent copy = e;
    if (e.tokens > 0) {
      copy.item = static_cast<uint32_t>(event_tokens_.size());
      event_tokens_.insert(event_tokens_.end(), tokens, tokens + e.tokens);
    }
    if (IsWatch(copy)) watches_.push_back(events_.size());
    events_.push_back(copy);
  }
}

std::optional<int64_t> ExampleBuilder::LatestTrainingWatch(const UserEvents& user) {
  Prepare(user, /*count=*/false);
  const size_t n = watches_.size();
  if (n == 0) return std::nullopt;
  // Held out: as Build decides; labelled: from label_from_ms on.
  if (events_[watches_[n - 1]].time_ms < options_.label_from_ms) return std::nullopt;
  switch (options_.split) {
    case TestSplit::kLastDay: {
      std::optional<int64_t> latest;
      for (size_t w : watches_) {
        const int64_t t = events_[w].time_ms;
        if (t < options_.test_from_ms && t >= options_.label_from_ms) latest = t;
      }
      return latest;
    }
    case TestSplit::kUsers:
    case TestSplit::kLastWatch:
      // A single watch trains nothing but is part of the training window.
    {
      const size_t last = HeldOutUser(user.user) && n >= 2 ? n - 2 : n - 1;
      if (events_[watches_[last]].time_ms < options_.label_from_ms) return std::nullopt;
      return events_[watches_[last]].time_ms;
    }
  }
  return std::nullopt;
}

void ExampleBuilder::LabelImpressions(const UserEvents& user) {
  impression_watch_.assign(events_.size(), -1.0f);
  open_impressions_.clear();
  const auto answers = [&](const LogEvent& e) {
    return options_.labels_from_watches ? IsWatch(e) : e.kind == LogEvent::kClick;
  };
  for (size_t i = 0; i < events_.size(); ++i) {
    const LogEvent& e = events_[i];
    if (e.kind == LogEvent::kImpression) {
      open_impressions_[e.item].push_back(i);
      continue;
    }
    if (!answers(e)) continue;
    // The latest unanswered impression of the item within the session.
    auto it = open_impressions_.find(e.item);
    std::vector<size_t>* open = it == open_impressions_.end() ? nullptr : &it->second;
    while (open != nullptr && !open->empty() &&
           events_[open->front()].time_ms < e.time_ms - options_.session_ms) {
      open->erase(open->begin());  // too old for this and every later answer
    }
    if (open == nullptr || open->empty()) {
      if (e.kind == LogEvent::kClick) ++counts_.unanswered_clicks;
      continue;
    }
    const size_t taken = open->back();
    open->pop_back();
    float watched = e.watch_seconds;
    if (watched <= 0 && !options_.labels_from_watches) {
      // A click without watch time: a watch of the item soon after says it.
      for (size_t j = i + 1;
           j < events_.size() && events_[j].time_ms <= e.time_ms + options_.session_ms; ++j) {
        if (events_[j].item == e.item && IsWatch(events_[j]) && events_[j].watch_seconds > 0 &&
            events_[j].kind == LogEvent::kWatch) {
          watched = events_[j].watch_seconds;
          break;
        }
      }
    }
    impression_watch_[taken] = std::max(watched, 0.0f);
  }
}

void ExampleBuilder::FillHistory(size_t watches_before, size_t tokens_before,
                                 google::protobuf::RepeatedField<uint64_t>* watches,
                                 google::protobuf::RepeatedField<uint64_t>* tokens) const {
  const size_t h = static_cast<size_t>(options_.max_history);
  const size_t w0 = watches_before > h ? watches_before - h : 0;
  watches->Add(history_.begin() + w0, history_.begin() + watches_before);
  const size_t t0 = tokens_before > h ? tokens_before - h : 0;
  tokens->Add(tokens_.begin() + t0, tokens_.begin() + tokens_before);
}

Status ExampleBuilder::Build(const UserEvents& user, double t_max_days, ExampleSink* sink) {
  Prepare(user, /*count=*/true);
  LabelImpressions(user);
  const uint32_t u = user.user;
  const uint64_t user_id = log_->user_ids[u];
  const bool held_out_user = HeldOutUser(u);
  const size_t n = watches_.size();
  counts_.watches += n;
  if (n > 0) ++counts_.first_watches;
  if (n == 1) ++counts_.single_watch_users;

  // Which watches are candidate examples, and which of them test ones.
  auto labelled = [&](size_t k) { return events_[watches_[k]].time_ms >= options_.label_from_ms; };
  auto is_test_watch = [&](size_t k) {  // k-th watch, k >= 1
    if (!labelled(k)) return false;
    if (options_.split == TestSplit::kLastDay) {
      return events_[watches_[k]].time_ms >= options_.test_from_ms;
    }
    return held_out_user && k == n - 1;
  };
  // Ranking test examples start at this instant.
  int64_t ranking_test_from = std::numeric_limits<int64_t>::max();
  if (options_.split == TestSplit::kLastDay) {
    ranking_test_from = options_.test_from_ms;
  } else if (options_.split == TestSplit::kUsers) {
    if (held_out_user) ranking_test_from = std::numeric_limits<int64_t>::min();
  } else if (n >= 2) {
    ranking_test_from = events_[watches_[n - 1]].time_ms;
  }

  // Training watches kept: selection sampling, want of m, in time order.
  size_t m = 0;
  for (size_t k = 1; k < n; ++k) m += labelled(k) && !is_test_watch(k);
  const uint64_t cap = static_cast<uint64_t>(options_.max_examples_per_user);
  uint64_t want = (cap > 0 && m > cap) ? cap : m;
  counts_.subsampled_out += m - want;
  Rng rng(options_.seed, user_id);
  uint64_t seen_train = 0;

  const float age = log_->user_age.empty() ? 0.0f : log_->user_age[u];
  const float gender = log_->user_gender.empty() ? 0.5f : log_->user_gender[u];
  const float logged_in = log_->user_logged_in.empty() ? 0.0f : log_->user_logged_in[u];
  const uint32_t home_region = log_->user_region.empty() ? 0 : log_->user_region[u];

  history_.clear();
  history_topic_.clear();
  tokens_.clear();
  topic_last_watch_.clear();
  shown_.clear();
  watched_.clear();
  std::vector<uint32_t> page_items;  // impressions of the current instant
  int64_t page_time = std::numeric_limits<int64_t>::min();
  auto close_page = [&]() {
    for (uint32_t item : page_items) ++shown_[item];
    page_items.clear();
  };

  size_t k = 0;  // watches seen
  for (size_t i = 0; i < events_.size(); ++i) {
    const LogEvent& e = events_[i];
    if (e.time_ms != page_time) close_page();
    const uint32_t region = e.region != 0 ? e.region : home_region;
    if (e.kind == LogEvent::kSearch) {
      const uint64_t* t = event_tokens_.data() + e.item;
      tokens_.insert(tokens_.end(), t, t + e.tokens);
      ++counts_.searches;
      continue;
    }
    if (e.kind == LogEvent::kImpression) {
      if (e.time_ms < options_.label_from_ms) {  // history only
        page_items.push_back(e.item);
        page_time = e.time_ms;
        continue;
      }
      ++counts_.impressions;
      const bool test = e.time_ms >= ranking_test_from;
      const uint32_t topic = log_->item_topic[e.item];
      RankingExample& r = ranking_;
      r.Clear();
      r.set_example_id(next_example_id_++);
      r.set_user_id(user_id);
      r.set_page_id(HashCombine(user_id, static_cast<uint64_t>(e.time_ms)) | 1);
      const double time = Days(e.time_ms);
      r.set_time(time);
      r.set_impression_video(log_->item_ids[e.item]);
      r.set_video_topic(topic);
      r.set_region(region);
      r.set_device(e.device);
      FillHistory(history_.size(), tokens_.size(), r.mutable_watch_history(),
                  r.mutable_search_tokens());
      const auto last = topic == 0 ? topic_last_watch_.end() : topic_last_watch_.find(topic);
      r.set_time_since_last_watch(last == topic_last_watch_.end()
                                      ? kNeverWatchedTopicDays
                                      : static_cast<float>(time - Days(last->second)));
      const auto shown = shown_.find(e.item);
      r.set_previous_impressions(shown == shown_.end() ? 0.0f : static_cast<float>(shown->second));
      const double upload =
          log_->item_upload_time.empty() ? NAN : log_->item_upload_time[e.item];
      r.set_video_age(std::isnan(upload) ? 0.0f : static_cast<float>(std::max(0.0, time - upload)));
      const size_t h = static_cast<size_t>(options_.max_history);
      const size_t h0 = history_.size() > h ? history_.size() - h : 0;
      size_t same = 0;
      if (topic != 0) {
        for (size_t j = h0; j < history_.size(); ++j) same += history_topic_[j] == topic;
      }
      const size_t window = history_.size() - h0;
      r.set_topic_watch_share(window ? static_cast<float>(same) / window : 0.0f);
      r.set_age(age);
      r.set_gender(gender);
      const bool clicked = impression_watch_[i] >= 0;
      r.set_clicked(clicked);
      r.set_watch_time(clicked ? impression_watch_[i] : 0.0f);
      counts_.clicked_impressions += clicked;
      VREC_RETURN_IF_ERROR(sink->AddRanking(r, test));
      ++(test ? counts_.ranking_test : counts_.ranking_train);
      page_items.push_back(e.item);
      page_time = e.time_ms;
      continue;
    }
    if (!IsWatch(e)) continue;
    if (k >= 1 && e.time_ms >= options_.label_from_ms) {
      const bool test = is_test_watch(k);
      bool keep = test;
      if (!test) {
        const uint64_t remaining = m - seen_train++;
        keep = want > 0 && (want >= remaining || rng.UniformInt(remaining) < want);
        if (keep) --want;
      }
      if (keep) {
        CandidateExample& c = candidate_;
        c.Clear();
        c.set_example_id(next_example_id_++);
        c.set_user_id(user_id);
        FillHistory(history_.size(), tokens_.size(), c.mutable_watch_history(),
                    c.mutable_search_tokens());
        c.set_region(region);
        c.set_device(e.device);
        c.set_age(age);
        c.set_gender(gender);
        c.set_logged_in(logged_in);
        const double time = Days(e.time_ms);
        c.set_example_age(static_cast<float>(std::max(0.0, t_max_days - time)));
        c.set_time(time);
        c.set_label_video(log_->item_ids[e.item]);
        VREC_RETURN_IF_ERROR(sink->AddCandidate(c, test));
        ++(test ? counts_.candidate_test : counts_.candidate_train);
      }
    }
    ++k;
    if (!watched_.insert(e.item).second) ++counts_.rewatches;
    history_.push_back(log_->item_ids[e.item]);
    const uint32_t topic = log_->item_topic[e.item];
    history_topic_.push_back(topic);
    if (topic != 0) topic_last_watch_[topic] = e.time_ms;
  }
  return absl::OkStatus();
}

}  // namespace vrec
