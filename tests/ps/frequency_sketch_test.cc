#include "ps/frequency_sketch.h"

#include <vector>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

TEST(FrequencySketchTest, NeverUndercountsAndRarelyOvercountsMuch) {
  const uint64_t n = 10000;
  FrequencySketch sketch(n);
  Rng rng(testing::TestSeed(5));
  std::vector<uint32_t> truth(n);
  // Fewer increments than one aging period (10 n): counts are exact bounds.
  for (int i = 0; i < 5 * static_cast<int>(n); ++i) {
    const uint64_t k = rng.Bernoulli(0.2) ? rng.UniformInt(100) : rng.UniformInt(n);
    if (truth[k] < 15) ++truth[k];
    sketch.Increment(k * 7919 + 3);
  }
  ASSERT_EQ(sketch.agings(), 0u);
  double over = 0;
  for (uint64_t k = 0; k < n; ++k) {
    const uint32_t est = sketch.Estimate(k * 7919 + 3);
    ASSERT_GE(est, truth[k]) << "key " << k;
    over += est - truth[k];
  }
  EXPECT_LT(over / n, 0.25);  // mean overcount
  EXPECT_EQ(sketch.Estimate(123456789), 0u);
}

TEST(FrequencySketchTest, CountsSaturateAndAgingHalvesThem) {
  const uint64_t n = 1000;
  FrequencySketch sketch(n);
  for (int i = 0; i < 300; ++i) sketch.Increment(42);
  EXPECT_EQ(sketch.Estimate(42), 15u);
  for (int i = 0; i < 12; ++i) sketch.Increment(7);
  EXPECT_EQ(sketch.Estimate(7), 12u);
  // Other keys until one period (10 n increments) has passed: one halving.
  Rng rng(1);
  while (sketch.agings() == 0) sketch.Increment(1000000 + rng.UniformInt(1 << 20));
  EXPECT_EQ(sketch.agings(), 1u);
  EXPECT_GE(sketch.Estimate(7), 6u);
  EXPECT_LE(sketch.Estimate(7), 8u);  // 6 plus collisions since
  EXPECT_GE(sketch.Estimate(42), 7u);
  EXPECT_LE(sketch.Estimate(42), 9u);
}

TEST(FrequencySketchTest, MemoryIsEightToSixteenBytesAKey) {
  for (uint64_t n : {uint64_t{1}, uint64_t{1000}, uint64_t{406000}}) {
    FrequencySketch sketch(n);
    EXPECT_GE(sketch.MemoryBytes(), 8 * n);
    EXPECT_LE(sketch.MemoryBytes(), std::max<uint64_t>(64, 16 * n));
  }
}

}  // namespace
}  // namespace vrec::ps
