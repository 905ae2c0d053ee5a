#include "train/model_spec.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vrec::train {
void AddSparseTable(ModelConfig* config, const std::string& name, uint32_t dim, float scale,
                    const OptimizerConfig& optimizer) {
  TableConfig* t = config->add_tables();
  t->set_name(name);
  t->set_dim(dim);
  t->mutable_initializer()->set_kind(InitializerConfig::UNIFORM);
  t->mutable_initializer()->set_scale(scale);
  *t->mutable_optimizer() = optimizer;
}

void AddDenseTables(const model::DenseParameters& layout, const std::string& prefix,
                    const OptimizerConfig& optimizer, ModelSpec* spec) {
  for (const auto& b : layout.blocks()) {
    if (b.size() == 0) continue;
    TableConfig* t = spec->config.add_tables();
    t->set_name(absl::StrCat(prefix, "/", b.name));
    t->set_dense(true);
    t->set_dense_size(static_cast<uint64_t>(b.size()));
    t->set_dim(static_cast<uint32_t>(std::min<uint64_t>(kDenseBlockFloats, b.size())));
    *t->mutable_optimizer() = optimizer;
    if (absl::EndsWith(b.name, "/w")) {
      t->mutable_initializer()->set_kind(InitializerConfig::GLOROT_UNIFORM);
      spec->glorot_fans[t->name()] = {static_cast<uint64_t>(b.rows), static_cast<uint64_t>(b.cols)};
    } else {
      t->mutable_initializer()->set_kind(InitializerConfig::ZEROS);
    }
    DenseTableInfo info;
    info.set_table(t->name());
    info.set_block(b.name);
    info.set_offset(static_cast<uint64_t>(b.offset));
    info.set_size(static_cast<uint64_t>(b.size()));
    info.set_fan_in(static_cast<uint64_t>(b.rows));
    info.set_fan_out(static_cast<uint64_t>(b.cols));
    spec->dense.push_back(info);
  }
}

int ModelSpec::TableIndex(const std::string& table) const {
  for (int i = 0; i < config.tables_size(); ++i) {
    if (config.tables(i).name() == table) return i;
  }
  return -1;
}

uint64_t ModelSpec::DenseSize() const {
  uint64_t size = 0;
  for (const auto& d : dense) size = std::max(size, d.offset() + d.size());
  return size;
}

StatusOr<ModelSpec> CandidateSpec(const CandidateSpecOptions& options) {
  const model::CandidateModelOptions& m = options.model;
  VREC_RETURN_IF_ERROR(m.Validate());
  VREC_ASSIGN_OR_RETURN(auto probe, model::CandidateModel<float>::Create(m));
  ModelSpec spec;
  spec.kind = "candidate";
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
  const float scale = options.embedding_init_scale;
  AddSparseTable(&spec.config, kVideoTable, m.embedding_dim, scale, options.optimizer);
  AddSparseTable(&spec.config, kTokenTable, m.embedding_dim, scale, options.optimizer);
  AddSparseTable(&spec.config, kRegionTable, m.region_dim, scale, options.optimizer);
  AddSparseTable(&spec.config, kDeviceTable, m.device_dim, scale, options.optimizer);
  AddSparseTable(&spec.config, kVideoOutTable, m.output_dim + 1, scale, options.optimizer);
  AddDenseTables(probe.layout(), "cand", options.optimizer, &spec);
  return spec;
}

StatusOr<model::CandidateModelOptions> CandidateOptionsFromSpec(const ModelSpec& spec) {
  if (spec.kind != "candidate") {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a candidate-generation model, got kind '", spec.kind, "'"));
  }
  return model::CandidateModelOptions::FromConfig(spec.config.candidate());
}

}  // namespace vrec::train
