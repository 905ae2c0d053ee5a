// ParameterSource: where a worker or an evaluator reads a model's rows.
//
// Two implementations: PsParameters pulls from the parameter servers
// (training, evaluation during training); a SavedModel (saved_model.h) reads
// a model folder (`vrec eval`). Both return, for a key the model never
// trained, the table's initial value, so evaluation of a saved model equals
// evaluation against the servers it was saved from.
//
// Thread safety: PsParameters is as thread-safe as its PsClient (one per
// thread); SavedModel is immutable and thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "ps/ps_client.h"
#include "train/model_spec.h"
#include "vrec/status.h"

namespace vrec::train {

class ParameterSource {
 public:
  virtual ~ParameterSource() = default;
  // Rows of `keys` (unique) of spec table `table` into out[i*dim ..).
  virtual Status Pull(int table, absl::Span<const uint64_t> keys, float* out) = 0;
};

// The PsTable a client addresses for spec table `index`.
ps::PsTable PsTableOf(const ModelSpec& spec, int index);

class PsParameters : public ParameterSource {
 public:
  PsParameters(const ModelSpec* spec, ps::PsClient* client) : spec_(spec), client_(client) {}
  Status Pull(int table, absl::Span<const uint64_t> keys, float* out) override;

 private:
  const ModelSpec* spec_;
  ps::PsClient* client_;
};

// The model's flat dense buffer (spec.DenseSize() floats) from its dense
// tables. Gather pulls every block synchronously.
Status GatherDense(const ModelSpec& spec, ParameterSource* source, std::vector<float>* dense);

// Dense-table traffic of one step, prepared once and reused: the block keys
// of every dense table and scratch for the blocks.
class DenseExchange {
 public:
  explicit DenseExchange(const ModelSpec& spec);
  // Issues the pulls of every dense table (asynchronous).
  void StartPull(ps::PsClient* client);
  // Waits for StartPull's replies and copies them into *dense.
  Status FinishPull(std::vector<float>* dense);
  // Pushes the flat gradient `grad` (spec.DenseSize() floats), asynchronous:
  // the returned requests must be waited on.
  std::vector<ps::PsRequest> Push(ps::PsClient* client, absl::Span<const float> grad);

 private:
  struct Table {
    ps::PsTable ps;
    uint64_t offset = 0, size = 0;
    std::vector<uint64_t> keys;
    std::vector<float> scratch;  // keys.size() * dim
    ps::PsRequest pending;
  };
  std::vector<Table> tables_;
  std::vector<float> grad_scratch_;
};

}  // namespace vrec::train
