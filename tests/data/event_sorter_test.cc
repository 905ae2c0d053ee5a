#include "data/event_sorter.h"

#include <algorithm>
#include <fstream>
#include <tuple>
#include <vector>

#include "common/file_util.h"
#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

// A user's events as the test sees them: (time, kind, item or tokens, the
// order added).
using Seen = std::vector<std::tuple<uint32_t, int64_t, int, std::vector<uint64_t>, float>>;

struct Log {
  std::vector<uint64_t> user_ids;
  std::vector<LogEvent> events;
  std::vector<std::vector<uint64_t>> tokens;  // per event
};

// Random events of `users` users over few distinct instants (many ties).
Log RandomLog(uint64_t seed, int users, int events) {
  Log log;
  Rng rng(seed, 1);
  for (int u = 0; u < users; ++u) log.user_ids.push_back(rng() | 1);
  for (int i = 0; i < events; ++i) {
    LogEvent e;
    e.user = static_cast<uint32_t>(rng.UniformInt(users));
    e.time_ms = static_cast<int64_t>(rng.UniformInt(20)) * 1000 - 5000;  // negative too
    e.kind = static_cast<uint8_t>(rng.UniformInt(4));
    e.watch_seconds = static_cast<float>(i);  // identifies the event
    std::vector<uint64_t> t;
    if (e.kind == LogEvent::kSearch) {
      t.resize(rng.UniformInt(4));
      for (auto& x : t) x = rng();
      e.tokens = static_cast<uint8_t>(t.size());
    } else {
      e.item = static_cast<uint32_t>(rng.UniformInt(50));
    }
    log.events.push_back(e);
    log.tokens.push_back(t);
  }
  return log;
}

// What ForEachUser gives, flattened: users in order, each user's events.
StatusOr<std::vector<std::pair<uint32_t, Seen>>> Drain(EventSorter* sorter) {
  std::vector<std::pair<uint32_t, Seen>> out;
  Status s = sorter->ForEachUser([&](const UserEvents& u) -> Status {
    Seen seen;
    for (const LogEvent& e : u.events) {
      if (e.user != u.user) return absl::InternalError("a user's group holds another user");
      std::vector<uint64_t> t;
      if (e.tokens > 0) t.assign(u.tokens.begin() + e.item, u.tokens.begin() + e.item + e.tokens);
      seen.emplace_back(e.kind == LogEvent::kSearch ? 0 : e.item, e.time_ms, e.kind, t,
                        e.watch_seconds);
    }
    out.emplace_back(u.user, std::move(seen));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

// The expected order: users by HashCombine(seed, id) then index, each
// user's events by time, ties in the order added.
std::vector<std::pair<uint32_t, Seen>> Expected(const Log& log, uint64_t seed) {
  std::vector<size_t> order(log.events.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key = [&](size_t i) {
    const LogEvent& e = log.events[i];
    return std::make_tuple(HashCombine(seed, log.user_ids[e.user]), e.user, e.time_ms, i);
  };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  std::vector<std::pair<uint32_t, Seen>> out;
  for (size_t i : order) {
    const LogEvent& e = log.events[i];
    if (out.empty() || out.back().first != e.user) out.emplace_back(e.user, Seen{});
    out.back().second.emplace_back(e.kind == LogEvent::kSearch ? 0 : e.item, e.time_ms, e.kind,
                                   log.tokens[i], e.watch_seconds);
  }
  return out;
}

class EventSorterTest : public ::testing::TestWithParam<size_t> {};

// In memory or in runs on disk (the parameter: the budget), the sorter gives
// users in the seeded order and each user's events by time, ties in the
// order added, with their tokens; twice in a row.
TEST_P(EventSorterTest, GroupsByUserInTimeOrderTiesInOrderAdded) {
  const uint64_t seed = testing::TestSeed(7);
  const Log log = RandomLog(seed, 60, 20000);
  testing::ScratchDir dir;
  const std::string spill = dir.File("runs");
  {
    EventSorter sorter(GetParam(), spill, &log.user_ids, 42);
    for (size_t i = 0; i < log.events.size(); ++i) {
      ASSERT_OK(sorter.Add(log.events[i], log.tokens[i]));
    }
    ASSERT_OK(sorter.Finish());
    EXPECT_EQ(sorter.events(), log.events.size());
    if (GetParam() < (1u << 20)) {
      EXPECT_GT(sorter.runs(), 4);
    } else {
      EXPECT_EQ(sorter.runs(), 0);
    }
    const auto want = Expected(log, 42);
    ASSERT_OK_AND_ASSIGN(auto first, Drain(&sorter));
    EXPECT_TRUE(first == want);
    ASSERT_OK_AND_ASSIGN(auto second, Drain(&sorter));
    EXPECT_TRUE(second == want);
  }
  EXPECT_FALSE(PathExists(spill)) << "the runs are removed with the sorter";
}

INSTANTIATE_TEST_SUITE_P(Budgets, EventSorterTest,
                         ::testing::Values(size_t{64} << 10, size_t{64} << 20));

TEST(EventSorterErrorsTest, ACutRunIsDataLoss) {
  const Log log = RandomLog(3, 10, 8000);
  testing::ScratchDir dir;
  EventSorter sorter(64 << 10, dir.File("runs"), &log.user_ids, 1);
  for (size_t i = 0; i < log.events.size(); ++i) {
    ASSERT_OK(sorter.Add(log.events[i], log.tokens[i]));
  }
  ASSERT_OK(sorter.Finish());
  ASSERT_GT(sorter.runs(), 1);
  ASSERT_OK_AND_ASSIGN(auto files, ListFiles(dir.File("runs"), ".events"));
  ASSERT_FALSE(files.empty());
  const std::string run = files[0];
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFileToString(run));
  std::ofstream(run, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 5);
  EXPECT_THAT(Drain(&sorter).status(),
              StatusIs(absl::StatusCode::kDataLoss, "is cut short"));
}

TEST(EventSorterErrorsTest, MisuseIsRefused) {
  std::vector<uint64_t> users = {1};
  testing::ScratchDir dir;
  EventSorter sorter(1 << 20, dir.File("runs"), &users, 1);
  LogEvent search;
  search.kind = LogEvent::kSearch;
  search.tokens = 2;
  const uint64_t one[] = {5};
  EXPECT_FALSE(sorter.Add(search, one).ok());
  EXPECT_FALSE(sorter.ForEachUser([](const UserEvents&) { return absl::OkStatus(); }).ok());
  ASSERT_OK(sorter.Finish());
  EXPECT_FALSE(sorter.Add(LogEvent{}).ok());
}

}  // namespace
}  // namespace vrec
