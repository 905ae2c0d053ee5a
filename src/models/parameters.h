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
#include "models/model_spec.h"
#include "ps/ps_client.h"
#include "vrec/status.h"

namespace vrec::models {

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

}  // namespace vrec::models
