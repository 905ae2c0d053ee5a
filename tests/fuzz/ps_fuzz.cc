// Fuzzes the parameter server's request handler, ps::PsService::Handle: what
// arrives from the network (a header frame and data frames, ps_fuzz_input.h)
// against fresh tables every input: "video" (dim 4, SGD) and "token" (dim 8,
// Adagrad, rows admitted at their second pull), step clocks of 3 workers.
//
// Checked beyond the sanitizers: every reply carries a header that parses;
// a successful pull returns num_keys x dim floats; the stores' stats still
// serialize afterwards.
#include <cstdint>
#include <memory>
#include <vector>

#include "fuzz_util.h"
#include "glog/logging.h"
#include "proto/ps.pb.h"
#include "ps/embedding_store.h"
#include "ps/optimizer.h"
#include "ps/ps_server.h"
#include "ps/ps_wire.h"
#include "ps/slot_router.h"
#include "ps_fuzz_input.h"

namespace vrec::fuzz {
namespace {

std::unique_ptr<ps::EmbeddingStore> MakeStore(const std::string& name, uint32_t dim,
                                              OptimizerConfig::Kind optimizer,
                                              uint32_t admission_min_count) {
  OptimizerConfig config;
  config.set_kind(optimizer);
  config.set_learning_rate(0.5f);
  ps::EmbeddingStoreOptions o;
  o.table_name = name;
  o.table_id = ps::TableId(name);
  o.dim = dim;
  o.optimizer = std::shared_ptr<const ps::Optimizer>(ps::Optimizer::Create(config).value());
  o.init = [dim](uint64_t key, float* w) {
    for (uint32_t d = 0; d < dim; ++d) w[d] = static_cast<float>(key % 97) * 0.01f + d;
  };
  o.admission_min_count = admission_min_count;
  o.num_partitions = 4;
  return ps::EmbeddingStore::Create(std::move(o)).value();
}

}  // namespace
}  // namespace vrec::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FLAGS_minloglevel = 2;  // rejected requests are the point; keep the log quiet
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vrec;
  std::vector<std::unique_ptr<ps::EmbeddingStore>> stores;
  stores.push_back(fuzz::MakeStore("video", 4, OptimizerConfig::SGD, 0));
  stores.push_back(fuzz::MakeStore("token", 8, OptimizerConfig::ADAGRAD, 2));
  ps::PsService service({stores[0].get(), stores[1].get()}, /*num_workers=*/3);
  for (net::Message& request : fuzz::DecodeRequests(data, size)) {
    PsHeader asked;
    const bool parsed = asked.ParseFromString(request.header);
    net::Message reply = service.Handle(std::move(request));
    PsHeader h;
    VREC_FUZZ_CHECK(h.ParseFromString(reply.header), "the reply header does not parse");
    VREC_FUZZ_CHECK(h.version() == ps::kPsWireVersion, h.DebugString());
    if (h.status_code() != 0) {
      VREC_FUZZ_CHECK(reply.frames.empty() && !h.error().empty(), h.DebugString());
      continue;
    }
    VREC_FUZZ_CHECK(parsed, "a header that does not parse was served");
    if (asked.op() == PsHeader::PULL) {
      const uint32_t dim = stores[asked.table()]->dim();
      VREC_FUZZ_CHECK(h.num_keys() == asked.num_keys(), h.DebugString());
      const size_t want = asked.num_keys() * dim * sizeof(float);
      VREC_FUZZ_CHECK(want == 0 ? reply.frames.size() <= 1
                                : reply.frames.size() == 1 && reply.frames[0].size() == want,
                      h.DebugString());
    }
  }
  VREC_FUZZ_CHECK(!service.StatsJson().empty(), "no stats");
  return 0;
}
