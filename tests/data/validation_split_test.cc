#include "data/validation_split.h"

#include <algorithm>

#include "proto/data.pb.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

CandidateExample Example(uint64_t id, uint64_t user, double time) {
  CandidateExample e;
  e.set_example_id(id);
  e.set_user_id(user);
  e.set_time(time);
  return e;
}

std::vector<uint64_t> Ids(const std::vector<CandidateExample>& examples) {
  std::vector<uint64_t> ids;
  for (const auto& e : examples) ids.push_back(e.example_id());
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(ValidationSplitTest, TakesEachUsersLastExampleInAnyOrderAndSkipsSingleExampleUsers) {
  ValidationSplit<CandidateExample> split(100, 1);
  // User 1: last at time 5 (example 12); user 2: a tie at time 3 goes to the
  // larger example id (22); user 3 has one example only.
  for (const auto& e : {Example(11, 1, 2), Example(12, 1, 5), Example(13, 1, 4), Example(22, 2, 3),
                        Example(21, 2, 3), Example(20, 2, 1), Example(31, 3, 9)}) {
    split.Add(e);
  }
  EXPECT_THAT(Ids(split.Take()), ::testing::ElementsAre(12, 22));
}

TEST(ValidationSplitTest, KeepsTheUsersWithTheSmallestKeysWhateverTheOrder) {
  const uint64_t seed = 7;
  std::vector<uint64_t> users;
  for (uint64_t u = 1; u <= 200; ++u) users.push_back(u);
  // The expected users: the 10 smallest keys.
  std::vector<uint64_t> by_key = users;
  std::sort(by_key.begin(), by_key.end(), [&](uint64_t a, uint64_t b) {
    return ValidationSplit<CandidateExample>::UserKey(a, seed) <
           ValidationSplit<CandidateExample>::UserKey(b, seed);
  });
  std::vector<uint64_t> want;
  for (int i = 0; i < 10; ++i) want.push_back(by_key[i] * 1000 + 1);  // each one's last example
  std::sort(want.begin(), want.end());
  for (bool reversed : {false, true}) {
    ValidationSplit<CandidateExample> split(10, seed);
    std::vector<CandidateExample> all;
    for (uint64_t u : users) {
      all.push_back(Example(u * 1000, u, 1));
      all.push_back(Example(u * 1000 + 1, u, 2));
    }
    if (reversed) std::reverse(all.begin(), all.end());
    for (const auto& e : all) split.Add(e);
    EXPECT_EQ(Ids(split.Take()), want) << "reversed " << reversed;
  }
}

TEST(ValidationSplitTest, ZeroUsersMeansNoSlice) {
  ValidationSplit<CandidateExample> split(0, 1);
  split.Add(Example(1, 1, 1));
  split.Add(Example(2, 1, 2));
  EXPECT_TRUE(split.Take().empty());
}

}  // namespace
}  // namespace vrec
