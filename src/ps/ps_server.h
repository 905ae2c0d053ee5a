// PsService: the parameter server's request handler (the ps-lite KVServer of
// this system).
//
// It serves a list of tables (EmbeddingStore) over the transport (src/net):
// a request is a PsHeader (proto/ps.proto) plus raw frames (ps_wire.h).
// Every request is validated before it touches a store — header parses,
// known version, table index, dim, key and value frame sizes — and a bad one
// is answered with an error reply naming what was wrong; the server carries
// on; so is one that makes a handler throw (std::bad_alloc for a request too
// large for the machine). A request from a thread of this process (an
// "inproc://" endpoint) may name the worker's row matrix by address: the
// server then writes pulled rows into it, or applies the optimizer reading
// gradients from it, with no copy in between; one that names an address
// from anywhere else is refused. It also keeps the workers' step clock for bounded
// staleness (CLOCK requests) and answers STATS. The worker side is PsClient
// (ps_client.h).
//
// Thread safety: PsService is thread-safe (called by the transport's handler
// threads).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/transport.h"
#include "proto/ps.pb.h"
#include "ps/embedding_store.h"
#include "ps/mutex.h"
#include "vrec/status.h"

namespace vrec::ps {

class PsService : public net::Handler {
 public:
  // Table i of requests is tables[i]; the stores are not owned.
  // `num_workers` sizes the step clock used for bounded staleness (only
  // server 0's clock is consulted).
  explicit PsService(std::vector<EmbeddingStore*> tables, uint32_t num_workers = 0);

  net::Message Handle(net::Message request) override;
  net::Message ErrorReply(const Status& status) override;

  // JSON array of per-table stats (what a STATS request returns).
  std::string StatsJson() const;

 private:
  StatusOr<net::Message> Serve(const PsHeader& header, net::Message& request);
  // A PULL or PUSH that names the sender's row matrix by address
  // (proto/ps.proto): only from an in-process endpoint.
  StatusOr<net::Message> ServeLocal(const PsHeader& header, net::Message& request,
                                    EmbeddingStore* table);
  // PUSH_POOLED, from frames or (in-process) the sender's pooled matrix.
  StatusOr<net::Message> ServePooled(const PsHeader& header, net::Message& request,
                                     EmbeddingStore* table);

  StatusOr<net::Message> Clock(const PsHeader& header);

  const std::vector<EmbeddingStore*> tables_;
  Mutex clock_mu_;
  std::vector<uint64_t> worker_steps_ ABSL_GUARDED_BY(clock_mu_);
};

}  // namespace vrec::ps
