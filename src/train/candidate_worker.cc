#include "train/candidate_worker.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "model/batch_builder.h"
#include "models/candidate_spec.h"
#include "models/parameters.h"

namespace vrec::train {
namespace {

// Keys for the PS from deduplicated ids.
void KeysOf(const model::IdDeduplicator& d, std::vector<uint64_t>* keys) {
  keys->assign(d.ids().begin(), d.ids().end());
}

}  // namespace

struct CandidateWorker::Step {
  explicit Step(const models::ModelSpec& spec) : dense_exchange(spec) {}
  model::CandidateBatch<float> batch;
  models::CandidateInputs inputs;
  std::vector<CandidateExample> examples;
  std::vector<int64_t> labels, negatives;
  absl::flat_hash_map<int64_t, std::vector<int32_t>> negative_slots;  // class -> slots
  std::vector<int32_t> masked;                                        // one example's masked slots
  std::vector<uint64_t> video_keys, token_keys, region_keys, device_keys, out_keys;
  std::vector<ps::PsRequest> pulls;
  DenseExchange dense_exchange;
  model::AlignedVector<float> dense;
  // This step's gradients: its pushes read them until they are acknowledged,
  // while the next step trains into the other slot's.
  model::CandidateGradients<float> grads;
  // Per bag table (video, token, region, device): the uses of each of the
  // batch's rows, with which the servers scatter the bag gradients
  // (PsClient::PushPooled).
  struct Uses {
    std::vector<uint32_t> offsets, examples;
    std::vector<float> weights;
    ps::PooledUses View() const { return {offsets, examples, weights}; }
  };
  Uses video_uses, token_uses, region_uses, device_uses;
};

CandidateWorker::~CandidateWorker() = default;

StatusOr<std::unique_ptr<CandidateWorker>> CandidateWorker::Create(
    const models::ModelSpec* spec, const Corpus* corpus, const model::NegativeSampler* sampler,
    ps::PsClient* client, const CandidateWorkerOptions& options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", options.batch_size));
  }
  VREC_ASSIGN_OR_RETURN(auto model_options, models::CandidateOptionsFromSpec(*spec));
  VREC_ASSIGN_OR_RETURN(auto model, model::CandidateModel<float>::Create(model_options));
  if (sampler->num_classes() != static_cast<int64_t>(corpus->ids.size())) {
    return absl::InvalidArgumentError("the sampler's classes are not the corpus");
  }
  std::unique_ptr<CandidateWorker> w(new CandidateWorker());
  w->spec_ = spec;
  w->corpus_ = corpus;
  w->sampler_ = sampler;
  w->client_ = client;
  w->options_ = options;
  w->model_ = std::make_unique<model::CandidateModel<float>>(std::move(model));
  w->num_negatives_ = static_cast<int>(spec->config.candidate().sampler().num_negatives());
  if (w->num_negatives_ < 1) {
    return absl::InvalidArgumentError("the sampler draws no negatives (num_negatives 0)");
  }
  w->video_ = spec->TableIndex(models::kVideoTable);
  w->token_ = spec->TableIndex(models::kTokenTable);
  w->region_ = spec->TableIndex(models::kRegionTable);
  w->device_ = spec->TableIndex(models::kDeviceTable);
  w->video_out_ = spec->TableIndex(models::kVideoOutTable);
  if (std::min({w->video_, w->token_, w->region_, w->device_, w->video_out_}) < 0) {
    return absl::InvalidArgumentError("the model spec lacks a candidate-generation table");
  }
  w->progress_.set_worker(options.worker);
  for (auto& step : w->steps_) step = std::make_unique<Step>(*spec);
  return w;
}

StatusOr<bool> CandidateWorker::Read(ExampleSource<CandidateExample>* stream, Step* step) {
  const model::CandidateModelOptions& mo = model_->options();
  int want = options_.batch_size;
  if (options_.max_examples > 0) {
    // Counted when read, not when trained: the next batch is read before
    // the current one is computed.
    if (examples_read_ >= options_.max_examples) return false;
    want = static_cast<int>(std::min<uint64_t>(want, options_.max_examples - examples_read_));
  }
  model::CandidateBatch<float>& b = step->batch;
  step->labels.clear();
  step->examples.resize(static_cast<size_t>(want));
  int n = 0;
  while (n < want) {
    CandidateExample& e = step->examples[n];
    VREC_ASSIGN_OR_RETURN(bool more, stream->Next(&e));
    if (!more) break;
    ++examples_read_;
    const int32_t label = corpus_->IndexOf(static_cast<int64_t>(e.label_video()));
    if (label < 0) {
      progress_.set_skipped(progress_.skipped() + 1);
      continue;
    }
    step->labels.push_back(label);
    ++n;
  }
  if (n == 0) return false;
  step->inputs.Build(absl::MakeConstSpan(step->examples.data(), static_cast<size_t>(n)), mo, &b);

  // The softmax's candidates: labels and shared negatives (class indices),
  // drawn from a stream of this batch's own, so a resumed worker draws what
  // it would have drawn.
  rng_ = Rng(options_.seed,
             HashCombine(0x3a11 + static_cast<uint64_t>(options_.worker), batches_read_));
  std::vector<float> neg_log_q;
  sampler_->Sample(num_negatives_, &rng_, &step->negatives, &neg_log_q);
  model::OutputCandidates out = model::BuildOutputCandidates(step->labels, step->negatives);
  b.labels = std::move(out.label_rows);
  b.negatives = std::move(out.negative_rows);
  b.masked.Clear();
  if (options_.exclude_watched) MaskWatched(n, step);
  b.negative_log_q.assign(neg_log_q.begin(), neg_log_q.end());
  b.label_log_q.resize(n);
  for (int i = 0; i < n; ++i)
    b.label_log_q[i] = static_cast<float>(sampler_->LogQ(step->labels[i]));
  step->out_keys.resize(out.ids.size());
  for (size_t i = 0; i < out.ids.size(); ++i) {
    step->out_keys[i] = static_cast<uint64_t>(corpus_->ids[out.ids[i]]);
  }

  // The keys to pull.
  KeysOf(step->inputs.video, &step->video_keys);
  KeysOf(step->inputs.token, &step->token_keys);
  KeysOf(step->inputs.region, &step->region_keys);
  KeysOf(step->inputs.device, &step->device_keys);
  b.output_rows.resize(static_cast<int64_t>(step->out_keys.size()), mo.output_dim + 1);
  auto uses = [](const model::IndexLists& lists, size_t rows, Step::Uses* u) {
    model::EmbeddingBagUses(lists, static_cast<int>(rows), &u->offsets, &u->examples, &u->weights);
  };
  uses(b.history, step->video_keys.size(), &step->video_uses);
  uses(b.search, step->token_keys.size(), &step->token_uses);
  uses(b.region, step->region_keys.size(), &step->region_uses);
  uses(b.device, step->device_keys.size(), &step->device_uses);
  step->dense.resize(spec_->DenseSize());
  return true;
}

void CandidateWorker::Pull(Step* step) {
  model::CandidateBatch<float>& b = step->batch;
  step->pulls.clear();
  auto pull = [&](int table, const std::vector<uint64_t>& keys, model::RowMatrix<float>* rows) {
    step->pulls.push_back(client_->Pull(models::PsTableOf(*spec_, table), keys, rows->data()));
  };
  pull(video_, step->video_keys, &b.video_rows);
  pull(token_, step->token_keys, &b.token_rows);
  pull(region_, step->region_keys, &b.region_rows);
  pull(device_, step->device_keys, &b.device_rows);
  pull(video_out_, step->out_keys, &b.output_rows);
  step->dense_exchange.StartPull(client_, absl::MakeSpan(step->dense));
}

void CandidateWorker::MaskWatched(int n, Step* step) const {
  step->negative_slots.clear();
  for (size_t j = 0; j < step->negatives.size(); ++j) {
    step->negative_slots[step->negatives[j]].push_back(static_cast<int32_t>(j));
  }
  model::IndexLists& masked = step->batch.masked;
  for (int i = 0; i < n; ++i) {
    step->masked.clear();
    for (uint64_t id : step->examples[i].watch_history()) {
      const int32_t c = corpus_->IndexOf(static_cast<int64_t>(id));
      if (c < 0 || c == step->labels[i]) continue;  // a rewatch stays a positive
      auto it = step->negative_slots.find(c);
      if (it != step->negative_slots.end()) {
        step->masked.insert(step->masked.end(), it->second.begin(), it->second.end());
      }
    }
    // A video watched twice in the history masks its slots once.
    std::sort(step->masked.begin(), step->masked.end());
    step->masked.erase(std::unique(step->masked.begin(), step->masked.end()), step->masked.end());
    masked.Append(step->masked.begin(), step->masked.end());
  }
}

Status CandidateWorker::Compute(Step* step, double* loss) {
  Status pulled;
  for (ps::PsRequest& r : step->pulls) {
    Status s = r.Wait();
    if (!s.ok() && pulled.ok()) pulled = s;
  }
  Status dense = step->dense_exchange.FinishPull(absl::MakeSpan(step->dense));
  VREC_RETURN_IF_ERROR(pulled);
  VREC_RETURN_IF_ERROR(dense);

  // The step trains while the servers still apply the previous step's
  // pushes (they read the other slot's gradients).
  // The embedding bags' row gradients are left to the servers: the model
  // stops at the bags' own gradients (BagGradients::kPooled), and each
  // server forms its rows' gradients from them as it applies its optimizer.
  model::CandidateGradients<float>& g = step->grads;
  const bool pooled = options_.pooled_pushes;
  VREC_ASSIGN_OR_RETURN(
      float l, model_->TrainStep(step->dense, step->batch, &g,
                                 pooled ? model::BagGradients::kPooled : model::BagGradients::kRows));
  *loss = l;
  // The previous step's pushes must have landed before this one's go out.
  VREC_RETURN_IF_ERROR(WaitPushes());
  auto span = [](const model::RowMatrix<float>& m) {
    return absl::MakeConstSpan(m.data(), static_cast<size_t>(m.size()));
  };
  auto push_pooled = [&](int table, const std::vector<uint64_t>& keys, const Step::Uses& uses,
                         const model::RowMatrix<float>& bags) {
    if (keys.empty()) return;
    pushes_.push_back(
        client_->PushPooled(models::PsTableOf(*spec_, table), keys, uses.View(), span(bags)));
  };
  auto push_rows = [&](int table, const std::vector<uint64_t>& keys,
                       const model::RowMatrix<float>& rows) {
    if (keys.empty()) return;
    pushes_.push_back(client_->PushRows(models::PsTableOf(*spec_, table), keys, span(rows)));
  };
  if (pooled) {
    push_pooled(video_, step->video_keys, step->video_uses, g.history_bags);
    push_pooled(token_, step->token_keys, step->token_uses, g.search_bags);
    push_pooled(region_, step->region_keys, step->region_uses, g.region_bags);
    push_pooled(device_, step->device_keys, step->device_uses, g.device_bags);
  } else {
    push_rows(video_, step->video_keys, g.video_rows);
    push_rows(token_, step->token_keys, g.token_rows);
    push_rows(region_, step->region_keys, g.region_rows);
    push_rows(device_, step->device_keys, g.device_rows);
  }
  // The softmax's output rows: gradients from the matrix the model wrote
  // (PushRows: the keys are the batch's distinct rows; nothing is copied
  // for a server in this process, which applies its optimizer reading them
  // where they are).
  push_rows(video_out_, step->out_keys, g.output_rows);
  for (ps::PsRequest& r : step->dense_exchange.Push(client_, g.dense)) {
    pushes_.push_back(std::move(r));
  }
  return absl::OkStatus();
}

Status CandidateWorker::Run(ExampleSource<CandidateExample>* stream, const std::atomic<bool>* stop,
                            const std::function<void(const WorkerProgress&)>& report) {
  stream_ = stream;
  return RunLoop(options_.loop, client_, stop, report);
}

StatusOr<bool> CandidateWorker::ReadSlot(int slot) { return Read(stream_, steps_[slot].get()); }

void CandidateWorker::PullSlot(int slot) { Pull(steps_[slot].get()); }

Status CandidateWorker::ComputeSlot(int slot, double* loss, int* examples) {
  *examples = steps_[slot]->batch.batch_size;
  return Compute(steps_[slot].get(), loss);
}

void CandidateWorker::ExampleIds(int slot, std::vector<uint64_t>* ids) const {
  const Step& step = *steps_[slot];
  ids->clear();
  for (int i = 0; i < step.batch.batch_size; ++i) ids->push_back(step.examples[i].example_id());
}

}  // namespace vrec::train
