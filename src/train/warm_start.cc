#include "train/warm_start.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "data/record_reader.h"
#include "glog/logging.h"
#include "model/quantile_normalizer.h"
#include "models/saved_model.h"
#include "ps/slot_router.h"

namespace vrec::train {
namespace {

// What of a config the parameters do not depend on, cleared: what a warm
// start may change. The optimizer's kind stays when its state is carried.
ModelConfig ParameterLayout(ModelConfig c, bool optimizer_state) {
  for (TableConfig& t : *c.mutable_tables()) {
    t.clear_storage();
    t.clear_initializer();  // a checkpoint's are taken; a model folder's rows are whole
    const OptimizerConfig::Kind kind = t.optimizer().kind();
    t.clear_optimizer();
    if (optimizer_state) t.mutable_optimizer()->set_kind(kind);
  }
  if (!optimizer_state) c.clear_seed();  // it decides only the rows not in the folder
  c.mutable_candidate()->clear_sampler();
  c.mutable_candidate()->clear_max_history();
  c.mutable_candidate()->clear_max_tokens();
  c.mutable_ranking()->clear_max_history();
  c.mutable_ranking()->clear_weighted();
  return c;
}

// Why the parameters of `from` cannot start a job of `spec`, or OK.
Status CheckFits(const WarmStart& warm, const models::ModelSpec& spec) {
  const ModelConfig& was = warm.model.config();
  const ModelConfig& now = spec.config;
  auto refuse = [&](const std::string& what) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot warm start from ", warm.source, ": ", what,
                     ". Pass the model flags it was trained with (see its ",
                     warm.has_optimizer_state() ? "manifest.json" : "model.json",
                     ", \"config\"); the learning rate, sampler, history length, --min_count and "
                     "--expire_after may change"));
  };
  if (warm.model.kind() != spec.kind) {
    return refuse(absl::StrCat("it holds a ", warm.model.kind(),
                               " model, this job trains --model=", spec.kind));
  }
  for (const TableConfig& t : now.tables()) {
    const TableConfig* old = nullptr;
    for (const TableConfig& o : was.tables()) {
      if (o.name() == t.name()) old = &o;
    }
    if (old == nullptr) return refuse(absl::StrCat("it has no table '", t.name(), "'"));
    if (old->dim() != t.dim() || old->dense() != t.dense() || old->dense_size() != t.dense_size()) {
      return refuse(absl::StrCat(
          "table '", t.name(), "' has ",
          old->dense() ? absl::StrCat(old->dense_size(), " dense floats")
                       : absl::StrCat("dim ", old->dim()),
          ", this job's has ",
          t.dense() ? absl::StrCat(t.dense_size(), " dense floats") : absl::StrCat("dim ", t.dim()),
          " (--embedding_dim, --tower, --output_dim)"));
    }
    if (warm.has_optimizer_state() && old->optimizer().kind() != t.optimizer().kind()) {
      return refuse(absl::StrCat("table '", t.name(), "' was trained with another --optimizer (",
                                 OptimizerConfig::Kind_Name(old->optimizer().kind()), ", this job ",
                                 OptimizerConfig::Kind_Name(t.optimizer().kind()),
                                 "): its optimizer state does not fit; warm start from a model "
                                 "folder instead, whose optimizer state starts fresh"));
    }
  }
  if (was.tables_size() != now.tables_size()) {
    return refuse(
        absl::StrCat("it has ", was.tables_size(), " tables, this job ", now.tables_size()));
  }
  if (warm.has_optimizer_state() && was.seed() != now.seed()) {
    return refuse(absl::StrCat("it was trained with --seed=", was.seed(), ", this job has ",
                               now.seed(), " (rows never updated are kept as the seed's values)"));
  }
  if (ParameterLayout(was, warm.has_optimizer_state()).SerializeAsString() !=
      ParameterLayout(now, warm.has_optimizer_state()).SerializeAsString()) {
    return refuse("its model options differ from this job's");
  }
  return absl::OkStatus();
}

StatusOr<WarmStart> FromModelFolder(const std::string& path, const std::string& folder) {
  WarmStart w;
  w.path = path;
  w.source = folder;
  VREC_ASSIGN_OR_RETURN(w.model, models::ReadTrainedModel(folder));
  return w;
}

StatusOr<WarmStart> Find(const std::string& path, const std::string& kind, bool verify_files) {
  if (PathExists(JoinPath(path, "BUNDLE"))) {  // a serving bundle: its model of this kind
    const std::string folder = JoinPath(path, kind);
    if (!PathExists(JoinPath(folder, "model.pb"))) {
      return absl::NotFoundError(absl::StrCat("--init_from=", path,
                                              " is a serving bundle without a ", kind,
                                              " model (no ", folder, "/model.pb)"));
    }
    return FromModelFolder(path, folder);
  }
  if (PathExists(JoinPath(path, "model.pb"))) return FromModelFolder(path, path);
  StatusOr<models::FoundCheckpoint> found = verify_files || !PathExists(JoinPath(path, "MANIFEST"))
                                                ? models::FindCheckpoint(path)
                                                : models::ReadCheckpoint(path, false);
  if (absl::IsNotFound(found.status())) {
    return absl::NotFoundError(absl::StrCat(
        "--init_from=", path,
        " is neither a checkpoint (folder or --checkpoint_dir), a trained-model folder (no "
        "model.pb) nor a serving bundle (no BUNDLE): ",
        found.status().message()));
  }
  VREC_RETURN_IF_ERROR(found.status());
  WarmStart w;
  w.path = path;
  w.source = found->dir;
  w.model = found->manifest.model();
  w.checkpoint = std::move(*found);
  return w;
}

}  // namespace

std::string WarmStart::Describe() const {
  const std::string examples = absl::StrCat(examples_before(), " examples trained before");
  if (has_optimizer_state()) {
    return absl::StrCat("warm start from checkpoint ", source, " (", examples,
                        "): rows, optimizer state, step clocks and admission counts");
  }
  return absl::StrCat("warm start from model folder ", source, " (", examples,
                      "): rows' weights only; the optimizer state starts fresh (as a new row's), "
                      "step clocks at 0, no admission counts");
}

StatusOr<WarmStart> FindWarmStart(const std::string& path, models::ModelSpec* spec,
                                  bool verify_files) {
  if (path.empty()) return absl::InvalidArgumentError("--init_from: no path");
  VREC_ASSIGN_OR_RETURN(WarmStart w, Find(path, spec->kind, verify_files));
  VREC_RETURN_IF_ERROR(CheckFits(w, *spec));
  if (w.has_optimizer_state()) {  // its rows' records hold its initializers' values
    for (TableConfig& t : *spec->config.mutable_tables()) {
      for (const TableConfig& saved : w.model.config().tables()) {
        if (saved.name() == t.name()) *t.mutable_initializer() = saved.initializer();
      }
    }
  }
  return w;
}

StatusOr<std::unique_ptr<ps::ServerStorage>> WarmStartStorage(const models::ModelSpec& spec,
                                                              ps::ServerStorageOptions options,
                                                              const WarmStart& warm, int server,
                                                              int num_servers) {
  if (warm.checkpoint) {
    return models::RestoreServerStorage(spec.config, std::move(options), *warm.checkpoint, server,
                                        num_servers);
  }
  options.fresh = true;
  VREC_ASSIGN_OR_RETURN(std::unique_ptr<ps::ServerStorage> storage,
                        ps::ServerStorage::Create(spec.config, options));
  VREC_ASSIGN_OR_RETURN(ps::SlotRouter router,
                        ps::SlotRouter::Contiguous(static_cast<uint32_t>(num_servers)));
  std::vector<uint64_t> keys;
  std::vector<float> weights;
  for (const std::string& file : warm.model.table_files()) {
    const std::string path = JoinPath(warm.source, file);
    VREC_ASSIGN_OR_RETURN(auto reader, RecordReader::Open(path));
    TableRows chunk;
    while (true) {
      VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&chunk));
      if (!more) break;
      ps::EmbeddingStore* store = storage->Find(chunk.table());
      if (store == nullptr || chunk.dim() != store->dim() ||
          static_cast<uint64_t>(chunk.values_size()) !=
              static_cast<uint64_t>(chunk.keys_size()) * chunk.dim()) {
        return absl::DataLossError(absl::StrCat(
            path, ": a chunk of table '", chunk.table(), "' does not fit the model (dim ",
            chunk.dim(), ", ", chunk.keys_size(), " keys, ", chunk.values_size(), " values)"));
      }
      keys.clear();
      weights.clear();
      for (int k = 0; k < chunk.keys_size(); ++k) {
        if (router.Server(store->table_id(), chunk.keys(k)) != static_cast<uint32_t>(server)) {
          continue;
        }
        keys.push_back(chunk.keys(k));
        const float* row = chunk.values().data() + static_cast<size_t>(k) * chunk.dim();
        weights.insert(weights.end(), row, row + chunk.dim());
      }
      Status s = store->ImportRows(keys, weights);
      if (!s.ok()) return Status(s.code(), absl::StrCat(path, ": ", s.message()));
    }
  }
  return storage;
}

StatusOr<std::vector<QuantileInfo>> MergeQuantiles(const std::vector<QuantileInfo>& before,
                                                   const std::vector<QuantileInfo>& fitted) {
  std::vector<QuantileInfo> out;
  for (const QuantileInfo& now : fitted) {
    const QuantileInfo* old = nullptr;
    for (const QuantileInfo& b : before) {
      if (b.feature() == now.feature()) old = &b;
    }
    if (old == nullptr) {
      LOG(WARNING) << "warm start: the earlier model has no normaliser of feature " << now.feature()
                   << "; it is fitted on the new data alone";
      out.push_back(now);
      continue;
    }
    auto normalizer = [](const QuantileInfo& q) {
      return model::QuantileNormalizer::FromQuantiles(
          std::vector<double>(q.quantiles().begin(), q.quantiles().end()));
    };
    StatusOr<model::QuantileNormalizer> a = normalizer(*old);
    if (!a.ok()) {
      return Status(a.status().code(), absl::StrCat("the warm start's normaliser of ",
                                                    old->feature(), ": ", a.status().message()));
    }
    VREC_ASSIGN_OR_RETURN(model::QuantileNormalizer b, normalizer(now));
    const uint64_t old_count = old->count() > 0 ? old->count() : now.count();
    // Counts of 0 on both sides (never from a fit): weigh them alike.
    const bool none = old_count == 0 && now.count() == 0;
    VREC_ASSIGN_OR_RETURN(
        model::QuantileNormalizer mixed,
        model::QuantileNormalizer::Mixture({{&*a, none ? 1.0 : static_cast<double>(old_count)},
                                            {&b, none ? 1.0 : static_cast<double>(now.count())}},
                                           b.num_quantiles()));
    QuantileInfo q;
    q.set_feature(now.feature());
    for (double v : mixed.quantiles()) q.add_quantiles(v);
    q.set_count(old_count + now.count());
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace vrec::train
