// Where example producers (the generator's simulator, the log conversion's
// builder) put their examples.
//
// Thread safety: implementations say.
#pragma once

#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec {

class ExampleSink {
 public:
  virtual ~ExampleSink() = default;
  virtual Status AddCandidate(const CandidateExample& example, bool test) = 0;
  virtual Status AddRanking(const RankingExample& example, bool test) = 0;
};

}  // namespace vrec
