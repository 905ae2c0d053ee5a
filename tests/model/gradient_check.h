// Central finite-difference gradient checks in double precision.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/random.h"

namespace vrec::model::gradcheck {

// One parameter block to check: `n` scalars at `param`, whose analytic
// gradient is at `analytic`.
struct GradBlock {
  std::string name;
  double* param;
  const double* analytic;
  int64_t n;
};

// For up to `max_per_block` coordinates of each block (all when fewer;
// otherwise a seeded random subset), compares (f(p + h) - f(p - h)) / 2h with
// the analytic gradient: |numeric - analytic| <= atol + rtol * max(|.|).
// Returns the number of coordinates checked; failures are reported via
// ADD_FAILURE naming the block and coordinate.
inline int CheckGradients(const std::function<double()>& loss, const std::vector<GradBlock>& blocks,
                          int max_per_block = 1 << 30, uint64_t seed = 1, double h = 1e-6,
                          double atol = 1e-7, double rtol = 1e-5) {
  Rng rng(seed, 77);
  int checked = 0;
  for (const GradBlock& b : blocks) {
    std::vector<int64_t> coords;
    if (b.n <= max_per_block) {
      for (int64_t k = 0; k < b.n; ++k) coords.push_back(k);
    } else {
      for (int k = 0; k < max_per_block; ++k) coords.push_back(rng.UniformInt(b.n));
    }
    for (int64_t k : coords) {
      const double saved = b.param[k];
      b.param[k] = saved + h;
      const double up = loss();
      b.param[k] = saved - h;
      const double down = loss();
      b.param[k] = saved;
      const double numeric = (up - down) / (2 * h);
      const double analytic = b.analytic[k];
      const double tol = atol + rtol * std::max(std::abs(numeric), std::abs(analytic));
      if (!(std::abs(numeric - analytic) <= tol)) {
        ADD_FAILURE() << b.name << "[" << k << "]: numeric " << numeric << " analytic " << analytic;
      }
      ++checked;
    }
  }
  return checked;
}

}  // namespace vrec::model::gradcheck
