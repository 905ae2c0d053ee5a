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
// of every dense table. A table's whole blocks are pulled straight into the
// worker's dense buffer and pushed straight from its gradient (no copies;
// for a server in this process none at all, ps_client.h); only the
// zero-padded last block of a table goes through a scratch block.
class DenseExchange {
 public:
  explicit DenseExchange(const models::ModelSpec& spec);
  // Issues the pulls of every dense table into `dense` (spec.DenseSize()
  // floats), asynchronous: `dense` must stay valid until FinishPull.
  void StartPull(ps::PsClient* client, absl::Span<float> dense);
  // Waits for StartPull's replies; `dense` then holds every table.
  Status FinishPull(absl::Span<float> dense);
  // Pushes the flat gradient `grad` (spec.DenseSize() floats), asynchronous:
  // `grad` must stay valid and unchanged until the returned requests have
  // been waited on.
  std::vector<ps::PsRequest> Push(ps::PsClient* client, absl::Span<const float> grad);

 private:
  struct Table {
    ps::PsTable ps;
    uint64_t offset = 0, size = 0;
    std::vector<uint64_t> keys;       // the whole blocks
    std::vector<uint64_t> tail_key;   // the zero-padded last block, if any
    std::vector<float> pull_tail, push_tail;  // one block each
    ps::PsRequest pending, pending_tail;
  };
  std::vector<Table> tables_;
};

}  // namespace vrec::train
