// ModelSpec: a model as the parameter servers hold it.
//
// Every parameter lives in a PS table (proto/model.proto TableConfig):
//   candidate model  "video" (watch-history embeddings), "token", "region",
//                    "device" (sparse, keyed by the example's ids) and
//                    "video_out" (the softmax's [w_v | b_v], output_dim + 1
//                    floats, keyed by video id);
//   ranking model    one sparse table per RankingModelOptions::Table;
//   both             one dense table per model::DenseParameters block
//                    ("<kind>/<block>", e.g. "cand/hidden0/w"): weight
//                    matrices Glorot-uniform with the layer's fans, biases 0.
// A worker gathers the dense tables into the model's flat buffer (Gather)
// and splits the flat gradient back (Scatter).
//
// Thread safety: immutable after construction.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "model/dense_parameters.h"
#include "proto/model.pb.h"
#include "proto/train.pb.h"
#include "vrec/status.h"

namespace vrec::models {

// The model kinds' names (ModelSpec::kind, TrainedModel.kind).
inline constexpr char kCandidateKind[] = "candidate";
inline constexpr char kRankingKind[] = "ranking";

struct ModelSpec {
  std::string kind;  // the model kind's name: kCandidateKind or kRankingKind
  ModelConfig config;
  std::vector<DenseTableInfo> dense;  // in layout order
  // (fan_in, fan_out) of each Glorot dense table, for ps::ServerStorage.
  std::map<std::string, std::pair<uint64_t, uint64_t>> glorot_fans;
  // Ranking only: the continuous features' quantiles, fitted on the
  // training data before training (empty until then).
  std::vector<QuantileInfo> quantiles;

  // Index of `table` in config.tables (the PS table index), or -1.
  int TableIndex(const std::string& table) const;
  const TableConfig& Table(int index) const { return config.tables(index); }
  // Floats of the model's flat dense buffer.
  uint64_t DenseSize() const;
  // kInvalidArgument unless this is a model of kind `kind`.
  Status ExpectKind(const char* kind) const;
};

// Adds a sparse table: rows of `dim` floats from U(-scale, scale).
void AddSparseTable(ModelConfig* config, const std::string& name, uint32_t dim, float scale,
                    const OptimizerConfig& optimizer);

// Adds one dense table per block of `layout`, named "<prefix>/<block>":
// weight matrices ("/w") Glorot-uniform with the block's (rows, cols) as
// fans, everything else zeros.
void AddDenseTables(const model::DenseParameters& layout, const std::string& prefix,
                    const OptimizerConfig& optimizer, ModelSpec* spec);

// Dense tables are split in blocks of this many floats (ps::ServerStorage's
// dense_block_floats): a dense table of n floats has keys 0 .. ceil(n/B)-1.
inline constexpr uint32_t kDenseBlockFloats = 4096;
inline uint64_t DenseBlocks(uint64_t size) {
  return (size + kDenseBlockFloats - 1) / kDenseBlockFloats;
}

}  // namespace vrec::models
