#include "train/ranking_worker.h"

#include "absl/strings/str_cat.h"
#include "models/parameters.h"
#include "models/ranking_spec.h"
#include "train/dense_exchange.h"

namespace vrec::train {

struct RankingWorker::Step {
  explicit Step(const models::ModelSpec& spec) : dense_exchange(spec) {}
  std::vector<RankingExample> examples;
  models::RankingInputs inputs;
  model::RankingBatch<float> batch;
  std::vector<std::vector<uint64_t>> keys;
  std::vector<ps::PsRequest> pulls;
  DenseExchange dense_exchange;
  model::AlignedVector<float> dense;
};

RankingWorker::~RankingWorker() = default;

StatusOr<std::unique_ptr<RankingWorker>> RankingWorker::Create(
    const models::ModelSpec* spec, ps::PsClient* client, const RankingWorkerOptions& options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", options.batch_size));
  }
  VREC_ASSIGN_OR_RETURN(auto mo, models::RankingOptionsFromSpec(*spec));
  VREC_ASSIGN_OR_RETURN(auto model, model::RankingModel<float>::Create(mo));
  std::unique_ptr<RankingWorker> w(new RankingWorker());
  w->spec_ = spec;
  w->client_ = client;
  w->options_ = options;
  w->model_ = std::make_unique<model::RankingModel<float>>(std::move(model));
  VREC_ASSIGN_OR_RETURN(w->table_index_, models::RankingTableIndices(*spec, w->model_->options()));
  w->progress_.set_worker(options.worker);
  for (auto& step : w->steps_) step = std::make_unique<Step>(*spec);
  return w;
}

Status RankingWorker::Run(ExampleSource<RankingExample>* stream, const std::atomic<bool>* stop,
                          const std::function<void(const WorkerProgress&)>& report) {
  stream_ = stream;
  return RunLoop(options_.loop, client_, stop, report);
}

StatusOr<bool> RankingWorker::ReadSlot(int slot) {
  Step& step = *steps_[slot];
  int want = options_.batch_size;
  if (options_.max_examples > 0) {
    if (examples_read_ >= options_.max_examples) return false;
    want = static_cast<int>(std::min<uint64_t>(want, options_.max_examples - examples_read_));
  }
  step.examples.resize(static_cast<size_t>(want));
  int n = 0;
  while (n < want) {
    VREC_ASSIGN_OR_RETURN(bool more, stream_->Next(&step.examples[n]));
    if (!more) break;
    ++examples_read_;
    ++n;
  }
  if (n == 0) return false;
  const model::RankingModelOptions& mo = model_->options();
  step.inputs.Build(absl::MakeConstSpan(step.examples.data(), static_cast<size_t>(n)), mo,
                    &step.batch);
  step.keys.resize(mo.tables.size());
  for (size_t t = 0; t < mo.tables.size(); ++t) {
    const auto& ids = step.inputs.tables[t].ids();
    step.keys[t].assign(ids.begin(), ids.end());
  }
  step.dense.resize(spec_->DenseSize());
  return true;
}

void RankingWorker::PullSlot(int slot) {
  Step& step = *steps_[slot];
  step.pulls.clear();
  for (size_t t = 0; t < step.keys.size(); ++t) {
    step.pulls.push_back(client_->Pull(models::PsTableOf(*spec_, table_index_[t]), step.keys[t],
                                       step.batch.table_rows[t].data()));
  }
  step.dense_exchange.StartPull(client_, absl::MakeSpan(step.dense));
}

Status RankingWorker::ComputeSlot(int slot, double* loss, int* examples) {
  Step& step = *steps_[slot];
  Status pulled;
  for (ps::PsRequest& r : step.pulls) {
    Status s = r.Wait();
    if (!s.ok() && pulled.ok()) pulled = s;
  }
  Status dense = step.dense_exchange.FinishPull(absl::MakeSpan(step.dense));
  VREC_RETURN_IF_ERROR(pulled);
  VREC_RETURN_IF_ERROR(dense);
  // The previous step's pushes read grads_ until they are acknowledged.
  VREC_RETURN_IF_ERROR(WaitPushes());
  VREC_ASSIGN_OR_RETURN(float l, model_->TrainStep(step.dense, step.batch, &grads_));
  *loss = l;
  *examples = step.batch.batch_size;
  for (size_t t = 0; t < step.keys.size(); ++t) {
    if (step.keys[t].empty()) continue;
    const auto& g = grads_.table_rows[t];
    pushes_.push_back(client_->PushRows(
        models::PsTableOf(*spec_, table_index_[t]), step.keys[t],
        absl::MakeConstSpan(g.data(), static_cast<size_t>(g.size()))));
  }
  for (ps::PsRequest& r : step.dense_exchange.Push(client_, grads_.dense)) {
    pushes_.push_back(std::move(r));
  }
  return absl::OkStatus();
}

void RankingWorker::ExampleIds(int slot, std::vector<uint64_t>* ids) const {
  const Step& step = *steps_[slot];
  ids->clear();
  for (int i = 0; i < step.batch.batch_size; ++i) ids->push_back(step.examples[i].example_id());
}

}  // namespace vrec::train
