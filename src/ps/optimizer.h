// Server-side optimizers applied to pushed gradients, one row at a time.
//
// A row of a table is `dim` weights followed by state_floats(dim) floats of
// optimizer state, stored together so that weights and their optimizer
// state are always spilled, reloaded and checkpointed as one unit.
//
//   SGD       w -= lr * g                                  (no state)
//   Adagrad   a += g^2; w -= lr * g / (sqrt(a) + eps)        state: a[dim]
//   Adam      lazy, per row: t += 1; m, v moments; bias-corrected with the
//             row's own t (a row's moments advance only when it is pushed)
//                                                            state: m[dim] v[dim] t
//   FTRL      FTRL-proximal (McMahan et al., KDD 2013), per coordinate:
//             sigma = (sqrt(n + g^2) - sqrt(n)) / alpha; z += g - sigma * w;
//             n += g^2; w = 0 if |z| <= l1 else
//             -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)
//                                                            state: z[dim] n[dim]
// Adam's step counter t is a uint32 stored bit-for-bit in one float slot.
//
// Thread safety: optimizers are immutable after construction; Apply on
// different rows may run concurrently; callers serialise access to a row.
#pragma once

#include <cstdint>
#include <memory>

#include "proto/model.pb.h"
#include "vrec/status.h"

namespace vrec::ps {

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // Builds the optimizer named by `config`, filling proto3 zero defaults
  // (Adagrad initial accumulator 0.1, beta1 0.9, beta2 0.999, eps 1e-8;
  // FTRL alpha defaults to learning_rate, beta to 1). kInvalidArgument for
  // a non-positive learning rate, betas outside [0, 1), negative l1/l2.
  static StatusOr<std::unique_ptr<Optimizer>> Create(const OptimizerConfig& config);

  // Extra floats of state stored after the `dim` weights of a row.
  virtual uint32_t StateFloats(uint32_t dim) const = 0;

  // Writes the initial state for weights w[0..dim) to state[0..StateFloats).
  virtual void InitState(const float* weights, uint32_t dim, float* state) const = 0;

  // One update of weights[0..dim) and state with gradient grad[0..dim).
  virtual void Apply(float* weights, float* state, const float* grad, uint32_t dim) const = 0;

  const OptimizerConfig& config() const { return config_; }

 protected:
  explicit Optimizer(const OptimizerConfig& config) : config_(config) {}
  OptimizerConfig config_;  // with defaults filled in
};

}  // namespace vrec::ps
