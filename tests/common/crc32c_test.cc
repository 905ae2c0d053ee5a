#include "common/crc32c.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

using crc32c_internal::Crc32cHardware;
using crc32c_internal::Crc32cPortable;
using crc32c_internal::HardwareAvailable;

TEST(Crc32cTest, StandardCheckValue) {
  const char* s = "123456789";
  EXPECT_EQ(Crc32c(s, 9), 0xE3069283u);
  EXPECT_EQ(Crc32cPortable(0, s, 9), 0xE3069283u);
  if (HardwareAvailable()) {
    EXPECT_EQ(Crc32cHardware(0, s, 9), 0xE3069283u);
  }
}

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 (iSCSI) B.4 test vectors.
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  for (auto fn : {&Crc32cPortable, &Crc32cHardware}) {
    if (fn == &Crc32cHardware && !HardwareAvailable()) continue;
    EXPECT_EQ(fn(0, zeros.data(), 32), 0x8A9136AAu);
    EXPECT_EQ(fn(0, ones.data(), 32), 0x62A8AB43u);
    EXPECT_EQ(fn(0, inc.data(), 32), 0x46DD794Eu);
    EXPECT_EQ(fn(0, dec.data(), 32), 0x113FDB5Cu);
    EXPECT_EQ(fn(0, nullptr, 0), 0u);
  }
  EXPECT_EQ(Crc32c(zeros.data(), 32), 0x8A9136AAu);
}

TEST(Crc32cTest, PathsAgreeOnEveryLengthAndAlignment) {
  if (!HardwareAvailable()) GTEST_SKIP() << "CPU has no SSE4.2; only the portable path exists";
  Rng rng(testing::TestSeed(17));
  std::vector<uint8_t> buf(300 + 16);
  for (auto& b : buf) b = static_cast<uint8_t>(rng.Next());
  for (size_t len = 0; len <= 300; ++len) {
    for (size_t align = 0; align < 8; ++align) {
      const uint32_t init = static_cast<uint32_t>(rng.Next());
      const uint8_t* p = buf.data() + align;
      ASSERT_EQ(Crc32cPortable(init, p, len), Crc32cHardware(init, p, len))
          << "len " << len << " align " << align;
    }
  }
}

TEST(Crc32cTest, ExtendInPiecesEqualsOneShot) {
  Rng rng(testing::TestSeed(23));
  std::string data(5000, '\0');
  for (auto& c : data) c = static_cast<char>(rng.Next());
  const uint32_t whole = Crc32c(data.data(), data.size());
  for (int trial = 0; trial < 200; ++trial) {
    uint32_t crc = 0;
    size_t pos = 0;
    while (pos < data.size()) {
      const size_t piece = std::min<size_t>(data.size() - pos, rng.UniformInt(100));
      crc = Crc32cExtend(crc, data.data() + pos, piece);
      pos += piece;
    }
    ASSERT_EQ(crc, whole) << "trial " << trial;
  }
  // Splits through each path too.
  EXPECT_EQ(
      Crc32cPortable(Crc32cPortable(0, data.data(), 1234), data.data() + 1234, data.size() - 1234),
      whole);
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  std::string data = "the quick brown fox jumps over the lazy dog";
  const uint32_t crc = Crc32c(data.data(), data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] ^= static_cast<char>(1 << bit);
      EXPECT_NE(Crc32c(data.data(), data.size()), crc) << i << ":" << bit;
      data[i] ^= static_cast<char>(1 << bit);
    }
  }
}

TEST(Crc32cTest, MaskRoundTrip) {
  Rng rng(testing::TestSeed(5));
  for (uint32_t c : {0u, 1u, 0xffffffffu, 0xE3069283u, 0xa282ead8u}) {
    EXPECT_EQ(UnmaskCrc(MaskCrc(c)), c);
  }
  for (int i = 0; i < 10000; ++i) {
    const uint32_t c = static_cast<uint32_t>(rng.Next());
    ASSERT_EQ(UnmaskCrc(MaskCrc(c)), c);
  }
  // TFRecord's mask: rotate right by 15, then add the constant.
  EXPECT_EQ(MaskCrc(0x00008000u), 0x00000001u + 0xa282ead8u);
  EXPECT_EQ(MaskCrc(0x00000001u), 0x00020000u + 0xa282ead8u);
  EXPECT_EQ(MaskCrc(0u), 0xa282ead8u);
}

}  // namespace
}  // namespace vrec
