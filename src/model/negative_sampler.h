// NegativeSampler: draws the shared negatives of the sampled softmax from a
// background distribution Q over class ids 0..V-1, and reports log Q for the
// logQ correction.
//
// Q is uniform, or proportional to max(count, 1)^power ("unigram"; power
// 0.75 is customary; the floor of 1 keeps every class reachable so that a
// label's log Q is finite). Draws are with replacement, in O(1) each, from
// Walker's alias table (Vose's construction), and depend only on the Rng.
//
// Thread safety: immutable after construction; Sample may be called
// concurrently with different Rngs.
#pragma once

#include <cstdint>
#include <vector>

#include "common/random.h"
#include "proto/model.pb.h"
#include "vrec/status.h"

namespace vrec::model {

class NegativeSampler {
 public:
  // kInvalidArgument if num_classes <= 0 or > 2^31 - 1.
  static StatusOr<NegativeSampler> Uniform(int64_t num_classes);
  // Q(v) proportional to max(counts[v], 1)^power. kInvalidArgument for an
  // empty or oversized list, a negative or non-finite count (names its
  // index), or power < 0 or non-finite.
  static StatusOr<NegativeSampler> FromCounts(const std::vector<double>& counts, double power);
  // UNIFORM ignores `counts` except for its size; UNIGRAM uses config.power().
  static StatusOr<NegativeSampler> FromConfig(const SamplerConfig& config,
                                              const std::vector<double>& counts);

  int64_t num_classes() const { return static_cast<int64_t>(log_q_.size()); }
  // log Q(id). REQUIRES: 0 <= id < num_classes().
  double LogQ(int64_t id) const { return log_q_[id]; }
  double Probability(int64_t id) const;

  // Replaces *ids and *log_q with n independent draws and their log Q.
  template <typename S>
  void Sample(int n, Rng* rng, std::vector<int64_t>* ids, std::vector<S>* log_q) const {
    ids->resize(n);
    log_q->resize(n);
    for (int k = 0; k < n; ++k) {
      const int64_t v = Draw(rng);
      (*ids)[k] = v;
      (*log_q)[k] = static_cast<S>(log_q_[v]);
    }
  }

  int64_t Draw(Rng* rng) const {
    const uint64_t bucket = rng->UniformInt(accept_.size());
    return rng->Uniform() < accept_[bucket] ? static_cast<int64_t>(bucket) : alias_[bucket];
  }

 private:
  explicit NegativeSampler(const std::vector<double>& probabilities);

  std::vector<double> accept_;  // probability of keeping the bucket's own class
  std::vector<int32_t> alias_;  // the other class of the bucket
  std::vector<double> log_q_;
};

}  // namespace vrec::model
