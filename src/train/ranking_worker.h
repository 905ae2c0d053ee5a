// The ranking worker: streams its slice of the impressions, and for each
// batch pulls the rows it needs, runs the ranking model's forward and backward
// pass (weighted logistic regression) and pushes the gradients; the loop, its
// pipelining and its consistency model are PipelinedWorker's (worker_loop.h).
//
// Thread safety: a RankingWorker is used by one thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "data/example_source.h"
#include "model/ranking_model.h"
#include "models/model_spec.h"
#include "ps/ps_client.h"
#include "train/worker_loop.h"

namespace vrec::train {

struct RankingWorkerOptions {
  int worker = 0;
  int batch_size = 512;
  uint64_t max_examples = 0;
  WorkerLoopOptions loop;
};

class RankingWorker : public PipelinedWorker {
 public:
  static StatusOr<std::unique_ptr<RankingWorker>> Create(const models::ModelSpec* spec,
                                                         ps::PsClient* client,
                                                         const RankingWorkerOptions& options);
  ~RankingWorker() override;
  Status Run(ExampleSource<RankingExample>* stream, const std::atomic<bool>* stop,
             const std::function<void(const WorkerProgress&)>& report);

 private:
  struct Step;
  RankingWorker() = default;
  StatusOr<bool> ReadSlot(int slot) override;
  void PullSlot(int slot) override;
  Status ComputeSlot(int slot, double* loss, int* examples) override;
  SourcePosition Position() const override { return stream_->Position(); }
  void ExampleIds(int slot, std::vector<uint64_t>* ids) const override;

  const models::ModelSpec* spec_ = nullptr;
  ps::PsClient* client_ = nullptr;
  RankingWorkerOptions options_;
  std::unique_ptr<model::RankingModel<float>> model_;
  std::vector<int> table_index_;  // model table -> spec table
  model::RankingGradients<float> grads_;
  ExampleSource<RankingExample>* stream_ = nullptr;
  std::unique_ptr<Step> steps_[2];
};

}  // namespace vrec::train
