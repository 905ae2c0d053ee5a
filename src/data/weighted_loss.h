// The ranking metric of Covington et al. (2016): weighted per-user loss.
//
// For each page (the impressions shown to one user at one time), every pair
// of a clicked impression i and an unclicked impression j is scored; when the
// unclicked one scores higher, i's watch time counts as mispredicted (a tie
// counts half). The loss is the mispredicted watch time as a fraction of the
// total watch time over all such pairs (each clicked impression's watch time
// counts once per unclicked impression it is paired with). Pages without both
// a clicked and an unclicked impression contribute nothing.
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <vector>

namespace vrec {

struct ScoredImpression {
  double score = 0;  // the ranker's score; higher ranks first
  bool clicked = false;
  double watch_time = 0;  // seconds, >= 0; only used when clicked
};

// Sums over pages; Merge() adds another accumulator (order-independent up to
// floating-point rounding).
struct WeightedLoss {
  double mispredicted_watch_time = 0;
  double total_watch_time = 0;
  int64_t pages = 0;  // pages that had at least one pair
  int64_t pairs = 0;

  void AddPage(const std::vector<ScoredImpression>& page);
  void Merge(const WeightedLoss& other);
  // mispredicted / total; 0 when there is no pair with positive watch time.
  double Loss() const;
};

// One-shot form: the loss over `pages`.
double WeightedPerUserLoss(const std::vector<std::vector<ScoredImpression>>& pages);

}  // namespace vrec
