// DenseExchange: a worker's traffic of the model's dense tables, prepared
// once and reused every step (block keys and scratch per table).
//
// Thread safety: used by one worker thread.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "models/model_spec.h"
#include "ps/ps_client.h"
#include "vrec/status.h"

namespace vrec::train {

// Dense-table traffic of one step, prepared once and reused: the block keys
// of every dense table and scratch for the blocks.
class DenseExchange {
 public:
  explicit DenseExchange(const models::ModelSpec& spec);
  // Issues the pulls of every dense table (asynchronous).
  void StartPull(ps::PsClient* client);
  // Waits for StartPull's replies and copies them into `dense`
  // (spec.DenseSize() floats).
  Status FinishPull(absl::Span<float> dense);
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
