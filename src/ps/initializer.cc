#include "ps/initializer.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/random.h"

namespace vrec::ps {

StatusOr<Initializer> Initializer::Create(const InitializerConfig& config, uint64_t seed,
                                          uint64_t table_id, uint64_t fan_in, uint64_t fan_out) {
  const uint64_t stream = HashCombine(seed, table_id);
  const float scale = config.scale();
  if (!std::isfinite(scale) || scale < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("initializer scale must be finite and >= 0, got ", scale));
  }
  switch (config.kind()) {
    case InitializerConfig::ZEROS:
    case InitializerConfig::UNIFORM:
    case InitializerConfig::NORMAL:
      return Initializer(config.kind(), scale, stream);
    case InitializerConfig::GLOROT_UNIFORM:
      if (fan_in + fan_out == 0) {
        return absl::InvalidArgumentError("GLOROT_UNIFORM needs fan_in + fan_out > 0");
      }
      return Initializer(config.kind(),
                         static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out))),
                         stream);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown initializer kind ", static_cast<int>(config.kind())));
  }
}

void Initializer::InitRow(uint64_t key, uint32_t dim, float* out) const {
  if (kind_ == InitializerConfig::ZEROS || scale_ == 0.0f) {
    std::fill(out, out + dim, 0.0f);
    return;
  }
  Rng rng(stream_, key);
  if (kind_ == InitializerConfig::NORMAL) {
    for (uint32_t i = 0; i < dim; ++i) out[i] = static_cast<float>(scale_ * rng.Normal());
  } else {
    for (uint32_t i = 0; i < dim; ++i) {
      out[i] = static_cast<float>(scale_ * (2.0 * rng.Uniform() - 1.0));
    }
  }
}

void Initializer::InitDense(uint64_t begin, uint64_t count, float* out) const {
  if (kind_ == InitializerConfig::ZEROS || scale_ == 0.0f) {
    std::fill(out, out + count, 0.0f);
    return;
  }
  // One cheap generator per element: a Mix64 chain, so element i is a pure
  // function of (stream, i) whatever the block boundaries.
  for (uint64_t j = 0; j < count; ++j) {
    const uint64_t h1 = HashCombine(stream_, begin + j);
    const double u1 = ((h1 >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
    if (kind_ == InitializerConfig::NORMAL) {
      const double u2 = (Mix64(h1) >> 11) * 0x1.0p-53;
      out[j] = static_cast<float>(scale_ * std::sqrt(-2.0 * std::log(u1)) *
                                  std::cos(6.283185307179586 * u2));
    } else {
      out[j] = static_cast<float>(scale_ * (2.0 * u1 - 1.0));
    }
  }
}

}  // namespace vrec::ps
