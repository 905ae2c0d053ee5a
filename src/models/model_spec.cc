#include "models/model_spec.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vrec::models {
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

Status ModelSpec::ExpectKind(const char* expected) const {
  if (kind == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("expected a ", expected, " model, got kind '", kind, "'"));
}

}  // namespace vrec::models
