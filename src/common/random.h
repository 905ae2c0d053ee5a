// Small, fast, seedable random number generation and hashing.
//
// Everything random in vrec is a pure function of explicit seeds, so that a
// world, an initial embedding row or a negative sample can be reproduced
// anywhere (on any server, in any thread) from (seed, stream) alone.
//
// Thread safety: Rng is a value type; use one per thread.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace vrec {

// SplitMix64 finaliser: a bijective, well-mixed 64-bit hash.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Hash of several 64-bit values, order-sensitive.
inline uint64_t HashCombine(uint64_t a, uint64_t b) {
  return Mix64(a ^ (Mix64(b) + 0x632be59bd9b4e019ULL + (a << 6) + (a >> 2)));
}

// xoshiro256** seeded through SplitMix64. Satisfies UniformRandomBitGenerator.
class Rng {
 public:
  using result_type = uint64_t;

  explicit Rng(uint64_t seed = 0, uint64_t stream = 0) {
    uint64_t x = HashCombine(seed, stream);
    for (auto& s : s_) {
      x += 0x9e3779b97f4a7c15ULL;
      s = Mix64(x);
    }
  }

  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return std::numeric_limits<uint64_t>::max(); }

  uint64_t operator()() { return Next(); }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 bits of precision.
  double Uniform() { return (Next() >> 11) * 0x1.0p-53; }

  // Uniform integer in [0, n). REQUIRES: n > 0. Lemire's multiply-shift
  // (bias < n / 2^64, negligible for our n).
  uint64_t UniformInt(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

  bool Bernoulli(double p) { return Uniform() < p; }

  // Standard normal (Box-Muller; one value per call, simple over fast).
  double Normal() {
    double u1 = Uniform();
    while (u1 <= 0.0) u1 = Uniform();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  double Exponential(double mean) {
    double u = Uniform();
    while (u <= 0.0) u = Uniform();
    return -mean * std::log(u);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace vrec
