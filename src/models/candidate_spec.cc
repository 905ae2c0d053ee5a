#include "models/candidate_spec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/quantile_normalizer.h"

namespace vrec::models {

StatusOr<ModelSpec> CandidateSpec(const CandidateSpecOptions& options) {
  const model::CandidateModelOptions& m = options.model;
  VREC_RETURN_IF_ERROR(m.Validate());
  VREC_ASSIGN_OR_RETURN(auto probe, model::CandidateModel<float>::Create(m));
  ModelSpec spec;
  spec.kind = kCandidateKind;
  spec.config.set_seed(options.seed);
  CandidateModelConfig* c = spec.config.mutable_candidate();
  c->set_max_history(m.max_history);
  c->set_max_tokens(m.max_tokens);
  c->set_embedding_dim(m.embedding_dim);
  for (int w : m.tower) c->add_tower(w);
  c->set_output_dim(m.output_dim);
  c->set_use_example_age(m.use_example_age);
  c->set_region_dim(m.region_dim);
  c->set_device_dim(m.device_dim);
  *c->mutable_sampler() = options.sampler;
  // The input embeddings start at zero: an id training never updated (a
  // video or token unseen in training) reads as the zero embedding, as the
  // paper maps out-of-vocabulary values, instead of its random start.
  // Measured neutral on movielens-dev and a generated world
  // (docs/quality.md). Output rows start random (symmetry of the softmax).
  const float scale = options.embedding_init_scale;
  for (const auto& [name, dim] : {std::pair<const char*, int>{kVideoTable, m.embedding_dim},
                                  {kTokenTable, m.embedding_dim},
                                  {kRegionTable, m.region_dim},
                                  {kDeviceTable, m.device_dim}}) {
    AddSparseTable(&spec.config, name, static_cast<uint32_t>(dim), 0.0f, options.optimizer);
    InitializerConfig* init = spec.config.mutable_tables()->rbegin()->mutable_initializer();
    init->set_kind(InitializerConfig::ZEROS);
  }
  AddSparseTable(&spec.config, kVideoOutTable, m.output_dim + 1, scale, options.optimizer);
  AddDenseTables(probe.layout(), "cand", options.optimizer, &spec);
  return spec;
}

StatusOr<model::CandidateModelOptions> CandidateOptionsFromSpec(const ModelSpec& spec) {
  VREC_RETURN_IF_ERROR(spec.ExpectKind(kCandidateKind));
  VREC_ASSIGN_OR_RETURN(model::CandidateModelOptions o,
                        model::CandidateModelOptions::FromConfig(spec.config.candidate()));
  for (const QuantileInfo& q : spec.quantiles) {
    if (q.feature() == kExampleAgeFeature) {
      o.example_age_quantiles.assign(q.quantiles().begin(), q.quantiles().end());
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("candidate model: quantiles of an unknown feature '", q.feature(), "'"));
    }
  }
  return o;
}

void CandidateInputs::Build(absl::Span<const CandidateExample> examples,
                            const model::CandidateModelOptions& options,
                            model::CandidateBatch<float>* batch) {
  model::CandidateBatch<float>& b = *batch;
  video.Clear();
  token.Clear();
  region.Clear();
  device.Clear();
  b.history.Clear();
  b.search.Clear();
  b.region.Clear();
  b.device.Clear();
  const int n = static_cast<int>(examples.size());
  b.batch_size = n;
  b.demographics.resize(n, 3);
  b.example_age.resize(n);
  for (int j = 0; j < n; ++j) {
    const CandidateExample& e = examples[j];
    const int h0 = std::max(0, e.watch_history_size() - options.max_history);
    for (int i = h0; i < e.watch_history_size(); ++i) {
      b.history.indices.push_back(video.Add(static_cast<int64_t>(e.watch_history(i))));
    }
    b.history.offsets.push_back(static_cast<int32_t>(b.history.indices.size()));
    const int t0 = std::max(0, e.search_tokens_size() - options.max_tokens);
    for (int i = t0; i < e.search_tokens_size(); ++i) {
      b.search.indices.push_back(token.Add(static_cast<int64_t>(e.search_tokens(i))));
    }
    b.search.offsets.push_back(static_cast<int32_t>(b.search.indices.size()));
    if (e.region() != 0) b.region.indices.push_back(region.Add(e.region()));
    b.region.offsets.push_back(static_cast<int32_t>(b.region.indices.size()));
    if (e.device() != 0) b.device.indices.push_back(device.Add(e.device()));
    b.device.offsets.push_back(static_cast<int32_t>(b.device.indices.size()));
    b.demographics(j, 0) = e.age();
    b.demographics(j, 1) = e.gender();
    b.demographics(j, 2) = e.logged_in();
    b.example_age[j] = e.example_age();
  }
  b.video_rows.resize(static_cast<int64_t>(video.ids().size()), options.embedding_dim);
  b.token_rows.resize(static_cast<int64_t>(token.ids().size()), options.embedding_dim);
  b.region_rows.resize(static_cast<int64_t>(region.ids().size()), options.region_dim);
  b.device_rows.resize(static_cast<int64_t>(device.ids().size()), options.device_dim);
}

StatusOr<QuantileInfo> FitExampleAgeQuantiles(ExampleSource<CandidateExample>* source,
                                              uint64_t max_examples, int num_quantiles,
                                              uint64_t seed) {
  ExampleAgeFit fit(num_quantiles, seed);
  CandidateExample e;
  uint64_t n = 0;
  while (max_examples == 0 || n < max_examples) {
    VREC_ASSIGN_OR_RETURN(bool more, source->Next(&e));
    if (!more || source->epoch() > 0) break;
    VREC_RETURN_IF_ERROR(fit.Add(e));
    ++n;
  }
  return fit.Build();
}

Status ExampleAgeFit::Add(const CandidateExample& e) {
  Status s = builder_.Add(e.example_age());
  if (s.ok()) return s;
  return Status(s.code(),
                absl::StrCat("example age of example ", e.example_id(), ": ", s.message()));
}

StatusOr<QuantileInfo> ExampleAgeFit::Build() const {
  StatusOr<model::QuantileNormalizer> fitted = builder_.Build();
  if (!fitted.ok()) {
    return absl::FailedPreconditionError(
        "no candidate training examples to fit the example age's quantiles on");
  }
  QuantileInfo q;
  q.set_feature(kExampleAgeFeature);
  for (double v : fitted->quantiles()) q.add_quantiles(v);
  q.set_count(static_cast<uint64_t>(builder_.count()));
  return q;
}

}  // namespace vrec::models
