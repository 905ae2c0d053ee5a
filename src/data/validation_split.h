// The validation slice of a training job: examples carved out of the
// training data (never the held-out test examples) on which training is
// judged while it runs (early stopping, keeping the best model).
//
// The rule, the same for every dataset and in benchmarks/quality_peer.py:
//   - users are ranked by key = Mix64(user_id ^ Mix64(seed)) (common/random.h)
//     and the `max_users` users with the smallest keys are considered (all
//     users when there are fewer);
//   - of those, each user with at least two training examples gives up their
//     last one: the greatest (time, example_id). It is not trained on.
// Like the test split (each user's last watch), the slice asks "what does
// this user watch next", one step earlier in time, for a sample of users that
// does not depend on the order of the files.
//
// One pass, memory bounded by max_users examples: the candidates are the
// bottom-`max_users` keys seen so far, and a user pushed out of them never
// comes back (keys only get smaller at the top).
//
// Thread safety: not thread-safe; one Add per example, then Take.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "common/random.h"

namespace vrec {

// Example: a proto with user_id(), time() and example_id()
// (CandidateExample, RankingExample).
template <typename Example>
class ValidationSplit {
 public:
  ValidationSplit(uint64_t max_users, uint64_t seed) : max_users_(max_users), salt_(Mix64(seed)) {}

  static uint64_t UserKey(uint64_t user_id, uint64_t seed) { return Mix64(user_id ^ Mix64(seed)); }

  void Add(const Example& e) {
    if (max_users_ == 0) return;
    const uint64_t key = Mix64(e.user_id() ^ salt_);
    auto it = users_.find(key);
    if (it == users_.end()) {
      if (users_.size() >= max_users_) {
        auto top = std::prev(users_.end());
        if (key > top->first) return;  // not among the smallest keys
        users_.erase(top);
      }
      users_.emplace(key, Entry{1, e});
      return;
    }
    Entry& u = it->second;
    ++u.count;
    if (e.time() > u.last.time() ||
        (e.time() == u.last.time() && e.example_id() > u.last.example_id())) {
      u.last = e;
    }
  }

  // The slice, in key order; the split is left empty.
  std::vector<Example> Take() {
    std::vector<Example> out;
    for (auto& [key, u] : users_) {
      if (u.count >= 2) out.push_back(std::move(u.last));
    }
    users_.clear();
    return out;
  }

 private:
  struct Entry {
    uint64_t count = 0;
    Example last;
  };
  uint64_t max_users_;
  uint64_t salt_;
  std::map<uint64_t, Entry> users_;  // key -> the user's count and last example
};

}  // namespace vrec
