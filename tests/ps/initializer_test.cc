#include "ps/initializer.h"

#include <cmath>
#include <vector>

#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

InitializerConfig Config(InitializerConfig::Kind kind, float scale) {
  InitializerConfig c;
  c.set_kind(kind);
  c.set_scale(scale);
  return c;
}

TEST(InitializerTest, RowDependsOnlyOnSeedTableKey) {
  ASSERT_OK_AND_ASSIGN(Initializer a,
                       Initializer::Create(Config(InitializerConfig::UNIFORM, 0.1f), 7, 3));
  ASSERT_OK_AND_ASSIGN(Initializer b,
                       Initializer::Create(Config(InitializerConfig::UNIFORM, 0.1f), 7, 3));
  // Same keys in opposite orders from two independent objects: same rows.
  std::vector<std::vector<float>> forward, backward(100);
  for (uint64_t k = 0; k < 100; ++k) {
    std::vector<float> row(16);
    a.InitRow(k * 977, 16, row.data());
    forward.push_back(row);
  }
  for (int k = 99; k >= 0; --k) {
    backward[k].resize(16);
    b.InitRow(k * 977, 16, backward[k].data());
  }
  EXPECT_EQ(forward, backward);
  EXPECT_NE(forward[0], forward[1]);
  ASSERT_OK_AND_ASSIGN(Initializer other_seed,
                       Initializer::Create(Config(InitializerConfig::UNIFORM, 0.1f), 8, 3));
  ASSERT_OK_AND_ASSIGN(Initializer other_table,
                       Initializer::Create(Config(InitializerConfig::UNIFORM, 0.1f), 7, 4));
  std::vector<float> x(16), y(16);
  other_seed.InitRow(0, 16, x.data());
  other_table.InitRow(0, 16, y.data());
  EXPECT_NE(x, forward[0]);
  EXPECT_NE(y, forward[0]);
}

TEST(InitializerTest, UniformAndNormalMoments) {
  ASSERT_OK_AND_ASSIGN(Initializer u,
                       Initializer::Create(Config(InitializerConfig::UNIFORM, 0.5f), 1, 1));
  ASSERT_OK_AND_ASSIGN(Initializer n,
                       Initializer::Create(Config(InitializerConfig::NORMAL, 2.0f), 1, 1));
  double su = 0, su2 = 0, sn = 0, sn2 = 0;
  const int rows = 4000, dim = 32, total = rows * dim;
  std::vector<float> r(dim);
  for (int k = 0; k < rows; ++k) {
    u.InitRow(k, dim, r.data());
    for (float v : r) {
      ASSERT_GE(v, -0.5f);
      ASSERT_LE(v, 0.5f);
      su += v;
      su2 += v * v;
    }
    n.InitRow(k, dim, r.data());
    for (float v : r) {
      sn += v;
      sn2 += v * v;
    }
  }
  EXPECT_NEAR(su / total, 0.0, 0.005);
  EXPECT_NEAR(su2 / total, 0.25 / 3, 0.002);  // var of U(-a,a) = a^2/3
  EXPECT_NEAR(sn / total, 0.0, 0.03);
  EXPECT_NEAR(sn2 / total, 4.0, 0.08);
}

TEST(InitializerTest, ZerosAndGlorot) {
  ASSERT_OK_AND_ASSIGN(Initializer z,
                       Initializer::Create(Config(InitializerConfig::ZEROS, 1.0f), 1, 1));
  std::vector<float> r(8, 5.0f);
  z.InitRow(3, 8, r.data());
  EXPECT_EQ(r, std::vector<float>(8, 0.0f));
  EXPECT_THAT(Initializer::Create(Config(InitializerConfig::GLOROT_UNIFORM, 0), 1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "fan_in"));
  ASSERT_OK_AND_ASSIGN(
      Initializer g,
      Initializer::Create(Config(InitializerConfig::GLOROT_UNIFORM, 0), 1, 1, 100, 50));
  const float limit = std::sqrt(6.0f / 150);
  EXPECT_NEAR(g.scale(), limit, 1e-6);
  std::vector<float> d(5000);
  g.InitDense(0, d.size(), d.data());
  float max_abs = 0;
  for (float v : d) max_abs = std::max(max_abs, std::fabs(v));
  EXPECT_LE(max_abs, limit);
  EXPECT_GT(max_abs, 0.95f * limit);
  EXPECT_THAT(Initializer::Create(Config(InitializerConfig::NORMAL, -1), 1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "scale"));
}

TEST(InitializerTest, DenseElementsIndependentOfBlocking) {
  for (auto kind : {InitializerConfig::UNIFORM, InitializerConfig::NORMAL}) {
    ASSERT_OK_AND_ASSIGN(Initializer g, Initializer::Create(Config(kind, 0.3f), 9, 2));
    std::vector<float> whole(1000);
    g.InitDense(0, whole.size(), whole.data());
    std::vector<float> pieces(1000);
    for (uint64_t b = 0; b < 1000; b += 37) {
      g.InitDense(b, std::min<uint64_t>(37, 1000 - b), pieces.data() + b);
    }
    EXPECT_EQ(whole, pieces);
  }
}

}  // namespace
}  // namespace vrec::ps
