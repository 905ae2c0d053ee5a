#include "models/saved_model.h"

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/run_info.h"
#include "data/record_reader.h"
#include "data/record_writer.h"
#include "google/protobuf/util/json_util.h"
#include "ps/slot_router.h"

namespace vrec::models {

TrainedModel MakeTrainedModel(const ModelSpec& spec, const std::string& data_dir, int num_servers,
                              uint64_t examples, uint64_t steps, double seconds) {
  TrainedModel m;
  m.set_format_version(kTrainedModelFormatVersion);
  m.set_kind(spec.kind);
  *m.mutable_config() = spec.config;
  for (int s = 0; s < num_servers; ++s) m.add_table_files(ServerTablesFile(s));
  for (const auto& d : spec.dense) *m.add_dense() = d;
  for (const auto& q : spec.quantiles) *m.add_quantiles() = q;
  m.set_examples_trained(examples);
  m.set_steps(steps);
  m.set_train_seconds(seconds);
  m.set_dataset(data_dir);
  m.set_commit(RunInfo().value("commit", ""));
  return m;
}

namespace {
constexpr size_t kRowsPerChunk = 4096;
}  // namespace

std::string ServerTablesFile(int server) {
  return absl::StrFormat("tables/server-%05d.rec", server);
}

StatusOr<uint64_t> SaveServerTables(const ps::ServerStorage& storage, const std::string& dir,
                                    int server) {
  VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "tables")));
  const std::string path = JoinPath(dir, ServerTablesFile(server));
  VREC_ASSIGN_OR_RETURN(auto writer, RecordWriter::Create(path));
  uint64_t rows = 0;
  for (const std::string& name : storage.table_names()) {
    ps::EmbeddingStore* store = storage.Find(name);
    const uint32_t dim = store->dim();
    TableRows chunk;
    Status write_status;
    auto flush = [&] {
      if (chunk.keys_size() == 0 || !write_status.ok()) return;
      write_status = writer->WriteMessage(chunk);
      chunk.clear_keys();
      chunk.clear_values();
    };
    chunk.set_table(name);
    chunk.set_dim(dim);
    VREC_RETURN_IF_ERROR(store->ForEachRow([&](uint64_t key, const float* row, const ps::RowMeta&) {
      chunk.add_keys(key);
      for (uint32_t d = 0; d < dim; ++d) chunk.add_values(row[d]);
      ++rows;
      if (static_cast<size_t>(chunk.keys_size()) >= kRowsPerChunk) flush();
    }));
    flush();
    VREC_RETURN_IF_ERROR(write_status);
  }
  VREC_RETURN_IF_ERROR(writer->Close());
  return rows;
}

Status WriteTrainedModel(const std::string& dir, const TrainedModel& model) {
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(model, &json, o).ok()) {
    return absl::InternalError("cannot print the model manifest as JSON");
  }
  VREC_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "model.json"), json));
  return WriteFileAtomic(JoinPath(dir, "model.pb"), model.SerializeAsString());
}

StatusOr<TrainedModel> ReadTrainedModel(const std::string& dir) {
  const std::string path = JoinPath(dir, "model.pb");
  if (!PathExists(path)) {
    return absl::NotFoundError(absl::StrCat(
        dir,
        " is not a trained model folder (no model.pb: training did not finish, or this is "
        "not the --model_dir of vrec train)"));
  }
  VREC_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  TrainedModel m;
  if (!m.ParseFromString(bytes)) return absl::DataLossError(absl::StrCat(path, ": does not parse"));
  if (m.format_version() != kTrainedModelFormatVersion) {
    return absl::DataLossError(absl::StrCat(path, ": unknown format version ", m.format_version()));
  }
  return m;
}

StatusOr<ModelSpec> SpecOf(const TrainedModel& model) {
  ModelSpec spec;
  spec.kind = model.kind();
  spec.config = model.config();
  spec.dense.assign(model.dense().begin(), model.dense().end());
  for (const TableConfig& t : spec.config.tables()) {
    if (!t.dense() || t.initializer().kind() != InitializerConfig::GLOROT_UNIFORM) continue;
    std::pair<uint64_t, uint64_t> fans = {t.dense_size(), 1};  // folders before fans were kept
    for (const DenseTableInfo& d : spec.dense) {
      if (d.table() == t.name() && d.fan_in() + d.fan_out() > 0) fans = {d.fan_in(), d.fan_out()};
    }
    spec.glorot_fans[t.name()] = fans;
  }
  spec.quantiles.assign(model.quantiles().begin(), model.quantiles().end());
  return spec;
}

StatusOr<std::unique_ptr<SavedModel>> SavedModel::Open(const std::string& dir) {
  std::unique_ptr<SavedModel> m(new SavedModel());
  VREC_ASSIGN_OR_RETURN(m->info_, ReadTrainedModel(dir));
  VREC_ASSIGN_OR_RETURN(m->spec_, SpecOf(m->info_));
  const ModelConfig& config = m->spec_.config;
  m->tables_.resize(config.tables_size());
  for (int i = 0; i < config.tables_size(); ++i) {
    const TableConfig& t = config.tables(i);
    Table& table = m->tables_[i];
    table.dim = t.dim();
    if (!t.dense()) {
      VREC_ASSIGN_OR_RETURN(auto init, ps::Initializer::Create(t.initializer(), config.seed(),
                                                               ps::TableId(t.name())));
      table.init = std::make_unique<ps::Initializer>(init);
    }
  }
  for (const std::string& file : m->info_.table_files()) {
    const std::string path = JoinPath(dir, file);
    VREC_ASSIGN_OR_RETURN(auto reader, RecordReader::Open(path));
    TableRows chunk;
    while (true) {
      VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&chunk));
      if (!more) break;
      const int index = m->spec_.TableIndex(chunk.table());
      if (index < 0 || chunk.dim() != m->tables_[index].dim ||
          static_cast<uint64_t>(chunk.values_size()) !=
              static_cast<uint64_t>(chunk.keys_size()) * chunk.dim()) {
        return absl::DataLossError(absl::StrCat(
            path, ": a chunk of table '", chunk.table(), "' does not match the model (dim ",
            chunk.dim(), ", ", chunk.keys_size(), " keys, ", chunk.values_size(), " values)"));
      }
      Table& table = m->tables_[index];
      const uint64_t first_row = table.values.size() / table.dim;
      for (int k = 0; k < chunk.keys_size(); ++k) {
        const uint64_t row = first_row + static_cast<uint64_t>(k);
        if (!table.index.emplace(chunk.keys(k), row).second) {
          return absl::DataLossError(absl::StrCat(path, ": key ", chunk.keys(k), " of table '",
                                                  chunk.table(), "' appears twice"));
        }
      }
      table.values.insert(table.values.end(), chunk.values().begin(), chunk.values().end());
    }
  }
  return m;
}

Status SavedModel::Pull(int table, absl::Span<const uint64_t> keys, float* out) {
  if (table < 0 || table >= static_cast<int>(tables_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no table ", table));
  }
  const Table& t = tables_[table];
  for (size_t i = 0; i < keys.size(); ++i) {
    float* dst = out + i * t.dim;
    if (auto it = t.index.find(keys[i]); it != t.index.end()) {
      std::memcpy(dst, t.values.data() + it->second * t.dim, t.dim * sizeof(float));
    } else if (t.init != nullptr) {
      t.init->InitRow(keys[i], t.dim, dst);
    } else {
      return absl::DataLossError(
          absl::StrCat("dense table '", spec_.Table(table).name(), "' lacks block ", keys[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace vrec::models
