// Initial values of parameters, as pure functions of (seed, table, key).
//
// A sparse row's initial weights depend only on the model seed, the table id
// and the row's key: not on which server holds the row, when it is first
// touched, or what else was created before. A dense table's element i
// depends only on (seed, table, i), so changing the block size or the number
// of servers does not change the initial tower weights.
//
// Thread safety: Initializer is immutable after construction; share freely.
#pragma once

#include <cstdint>

#include "proto/model.pb.h"
#include "vrec/status.h"

namespace vrec::ps {

class Initializer {
 public:
  // `fan_in`/`fan_out` are used only by GLOROT_UNIFORM (dense tables), which
  // draws from U(-sqrt(6/(fan_in+fan_out)), +sqrt(...)).
  // kInvalidArgument for a negative/non-finite scale, GLOROT_UNIFORM without
  // fans, or an unknown kind.
  static StatusOr<Initializer> Create(const InitializerConfig& config, uint64_t seed,
                                      uint64_t table_id, uint64_t fan_in = 0, uint64_t fan_out = 0);

  // Writes the `dim` initial weights of sparse row `key` to out[0..dim).
  void InitRow(uint64_t key, uint32_t dim, float* out) const;

  // Writes elements [begin, begin+count) of a dense table to out[0..count).
  void InitDense(uint64_t begin, uint64_t count, float* out) const;

  InitializerConfig::Kind kind() const { return kind_; }
  float scale() const { return scale_; }

 private:
  Initializer(InitializerConfig::Kind kind, float scale, uint64_t stream)
      : kind_(kind), scale_(scale), stream_(stream) {}

  InitializerConfig::Kind kind_;
  float scale_;      // half-width (UNIFORM, GLOROT) or standard deviation (NORMAL)
  uint64_t stream_;  // HashCombine(seed, table_id)
};

}  // namespace vrec::ps
