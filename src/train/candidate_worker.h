// The candidate-generation worker: streams its slice of the training data,
// and for each batch pulls the rows it needs from the parameter servers,
// runs the model's forward and backward pass, and pushes the gradients.
//
// One step, for a batch of B examples:
//   1. ids per table are deduplicated (history videos, search tokens,
//      region, device); S negatives are drawn from the corpus by the sampler
//      and joined with the labels into the softmax's candidate rows;
//   2. those rows and every dense block are pulled, straight into the
//      batch's matrices (a server in this process writes them there);
//   3. TrainStep, while the servers apply the previous step's pushes;
//   4. the gradients are pushed: the embedding bags' as the bags' own
//      gradients and each row's uses (the servers form each row's gradient
//      as they apply the optimizer), the softmax's output rows and the dense
//      blocks from the matrices the model wrote.
// The next batch is read and deduplicated before the current one is
// computed, and its pulls issued then too when the consistency model allows
// (always when asynchronous, the default; worker_loop.h), so the network
// overlaps the arithmetic. Examples whose label is not in the corpus are
// skipped and counted.
//
// Thread safety: a CandidateWorker is used by one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/example_source.h"
#include "model/batch_builder.h"
#include "model/candidate_model.h"
#include "model/negative_sampler.h"
#include "models/model_spec.h"
#include "ps/ps_client.h"
#include "train/dense_exchange.h"
#include "train/worker_loop.h"

namespace vrec::train {

struct CandidateWorkerOptions {
  int worker = 0;
  int num_workers = 1;
  int batch_size = 512;
  uint64_t max_examples = 0;  // this worker's share; 0 = no limit
  uint64_t seed = 1;          // negatives of batch b: Rng(seed, (worker, b))
  // The task is to recommend unwatched videos: each example's watched
  // videos (its history) are left out of its softmax's negatives, as they
  // are out of the ranking when evaluated with exclude_watched.
  bool exclude_watched = false;
  // The embedding bags' row gradients are formed by the servers from the
  // bags' own gradients as they apply their optimizer (PsClient::PushPooled;
  // no gradient row is written, zeroed or read anywhere). false: the worker
  // scatters them into gradient rows and pushes those (PushRows), the
  // earlier way, which trains to the same numbers bit for bit
  // (tests/train/worker_step_test.cc).
  bool pooled_pushes = true;
  WorkerLoopOptions loop;  // time limit, staleness, reports, checkpoints
};

class CandidateWorker : public PipelinedWorker {
 public:
  // `spec`, `corpus`, `sampler`, `client` must outlive the worker.
  static StatusOr<std::unique_ptr<CandidateWorker>> Create(const models::ModelSpec* spec,
                                                           const Corpus* corpus,
                                                           const model::NegativeSampler* sampler,
                                                           ps::PsClient* client,
                                                           const CandidateWorkerOptions& options);

  // Trains until the stream ends, a limit is reached or *stop becomes true;
  // calls report() about every report_seconds and once at the end (done).
  Status Run(ExampleSource<CandidateExample>* stream, const std::atomic<bool>* stop,
             const std::function<void(const WorkerProgress&)>& report);

 private:
  struct Step;
  CandidateWorker() = default;

 public:
  ~CandidateWorker() override;

 private:
  StatusOr<bool> ReadSlot(int slot) override;
  void PullSlot(int slot) override;
  Status ComputeSlot(int slot, double* loss, int* examples) override;
  SourcePosition Position() const override { return stream_->Position(); }
  void ExampleIds(int slot, std::vector<uint64_t>* ids) const override;
  // Reads up to batch_size examples into *step and finds the keys to pull;
  // false when the stream had nothing left.
  StatusOr<bool> Read(ExampleSource<CandidateExample>* stream, Step* step);
  // Issues the pulls of a step Read filled.
  void Pull(Step* step);
  Status Compute(Step* step, double* loss);
  // Fills step->batch.masked: for each of the step's n examples, the
  // negative slots holding a video of its history (but its label).
  void MaskWatched(int n, Step* step) const;

  const models::ModelSpec* spec_ = nullptr;
  const Corpus* corpus_ = nullptr;
  const model::NegativeSampler* sampler_ = nullptr;
  ps::PsClient* client_ = nullptr;
  CandidateWorkerOptions options_;
  std::unique_ptr<model::CandidateModel<float>> model_;
  int num_negatives_ = 0;
  int video_, token_, region_, device_, video_out_;  // spec table indices
  std::unique_ptr<DenseExchange> dense_exchange_;
  Rng rng_;
  ExampleSource<CandidateExample>* stream_ = nullptr;
  std::unique_ptr<Step> steps_[2];
};

}  // namespace vrec::train
