#include "ps/pooled_gradients.h"

#include <cmath>
#include <limits>
#include <vector>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

struct Case {
  std::vector<uint32_t> offsets, rows;
  std::vector<float> weights;
  PooledUses View() const { return {offsets, rows, weights}; }
};

// Against a double-precision reference: key i's gradient is the weighted
// sum of its pooled rows.
TEST(PooledGradientsTest, EachKeyIsTheWeightedSumOfItsUses) {
  const uint64_t seed = testing::TestSeed(9);
  Rng rng(seed, 0);
  constexpr uint32_t kDim = 37, kPooled = 20, kKeys = 50;
  std::vector<float> pooled(kPooled * kDim);
  for (float& x : pooled) x = static_cast<float>(rng.Uniform() - 0.5);
  Case c;
  c.offsets.push_back(0);
  for (uint32_t i = 0; i < kKeys; ++i) {
    const int uses = static_cast<int>(rng.UniformInt(5));  // some keys have none
    for (int u = 0; u < uses; ++u) {
      c.rows.push_back(static_cast<uint32_t>(rng.UniformInt(kPooled)));
      c.weights.push_back(static_cast<float>(rng.Uniform()));
    }
    c.offsets.push_back(static_cast<uint32_t>(c.rows.size()));
  }
  ASSERT_OK(CheckPooled(kKeys, c.View(), pooled.data(), kPooled, kDim));
  std::vector<float> g(kDim, -1.f);
  for (uint32_t i = 0; i < kKeys; ++i) {
    PooledGradient(c.View(), i, pooled.data(), kDim, g.data());
    for (uint32_t d = 0; d < kDim; ++d) {
      double want = 0;
      for (uint32_t u = c.offsets[i]; u < c.offsets[i + 1]; ++u) {
        want += static_cast<double>(c.weights[u]) * pooled[c.rows[u] * kDim + d];
      }
      ASSERT_NEAR(g[d], want, 1e-5) << "key " << i << " element " << d;
    }
  }
}

TEST(PooledGradientsTest, MalformedUsesAndNonFiniteValuesAreRefused) {
  constexpr uint32_t kDim = 4;
  std::vector<float> pooled(2 * kDim, 0.5f);
  auto check = [&](const Case& c, size_t keys = 2) {
    return CheckPooled(keys, c.View(), pooled.data(), 2, kDim);
  };
  const Case good{{0, 1, 3}, {0, 1, 0}, {0.5f, 0.5f, 1.f}};
  ASSERT_OK(check(good));
  EXPECT_THAT(check(good, 3), StatusIs(absl::StatusCode::kInvalidArgument, "3 use offsets for 3"));
  EXPECT_THAT(check({{1, 1, 3}, {0, 1, 0}, {1, 1, 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "from 0"));
  EXPECT_THAT(check({{0, 2, 1}, {0}, {1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "decrease at key index 1"));
  EXPECT_THAT(check({{0, 1, 3}, {0, 1}, {1, 1, 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "3 uses, but 2 rows"));
  EXPECT_THAT(check({{0, 1, 3}, {0, 2, 0}, {1, 1, 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "pooled row 2 of 2"));
  EXPECT_THAT(check({{0, 1, 3}, {0, 1, 0}, {1, std::nanf(""), 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "non-finite weight"));
  pooled[5] = std::numeric_limits<float>::infinity();
  EXPECT_THAT(check(good), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "non-finite pooled gradient inf at row 1, element 1"));
  // Finite everywhere, but a key's sum could overflow a float.
  pooled[5] = 3e38f;
  EXPECT_THAT(check({{0, 1, 3}, {0, 1, 1}, {1, 1, 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "could overflow"));
}

}  // namespace
}  // namespace vrec::ps
