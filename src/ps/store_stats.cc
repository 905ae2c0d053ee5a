#include "ps/store_stats.h"

namespace vrec::ps {

StoreRates RatesBetween(const StoreStats& before, const StoreStats& after) {
  StoreRates r;
  const double dt = (after.timestamp_ns - before.timestamp_ns) * 1e-9;
  if (dt <= 0) return r;
  r.pull_requests_per_s = (after.pull_requests - before.pull_requests) / dt;
  r.push_requests_per_s = (after.push_requests - before.push_requests) / dt;
  r.pull_keys_per_s = (after.pull_keys - before.pull_keys) / dt;
  r.push_keys_per_s = (after.push_keys - before.push_keys) / dt;
  return r;
}

}  // namespace vrec::ps
