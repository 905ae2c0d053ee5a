#include "ps/heavy_hitters.h"

#include <algorithm>

namespace vrec::ps {

void SpaceSaving::Offer(uint64_t key, uint64_t weight) {
  total_ += weight;
  auto it = index_.find(key);
  if (it != index_.end()) {
    counters_[it->second].count += weight;
    return;
  }
  if (counters_.size() < capacity_) {
    index_.emplace(key, static_cast<uint32_t>(counters_.size()));
    counters_.push_back({key, weight, 0});
    return;
  }
  // Replace the minimum: the newcomer inherits its count as error. A linear
  // scan is fine for the small capacities used here (tens of counters).
  size_t min_i = 0;
  for (size_t i = 1; i < counters_.size(); ++i) {
    if (counters_[i].count < counters_[min_i].count) min_i = i;
  }
  HeavyHitter& c = counters_[min_i];
  index_.erase(c.key);
  index_.emplace(key, static_cast<uint32_t>(min_i));
  c = {key, c.count + weight, c.count};
}

std::vector<HeavyHitter> MergeTop(std::vector<HeavyHitter> all, size_t n) {
  std::sort(all.begin(), all.end(), [](const HeavyHitter& a, const HeavyHitter& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
  if (all.size() > n) all.resize(n);
  return all;
}

std::vector<HeavyHitter> SpaceSaving::Top(size_t n) const { return MergeTop(counters_, n); }

}  // namespace vrec::ps
