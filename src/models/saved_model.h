// A trained model folder (proto/train.proto): writing it from the parameter
// servers and reading it back as a ParameterSource.
//
//   M/tables/server-00000.rec ...   TableRows chunks: every row each server
//                                   held (weights only, no optimizer state)
//   M/model.pb (+ model.json)       TrainedModel, written last, atomically
//
// A key that no server ever created reads as the table's initial value
// (ps::Initializer), exactly what a pull from the servers would return.
//
// Thread safety: SaveServerTables must not run while pushes are in flight
// (ForEachRow is not a snapshot). SavedModel is immutable and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "models/model_spec.h"
#include "models/parameters.h"
#include "proto/train.pb.h"
#include "ps/initializer.h"
#include "ps/server_storage.h"

namespace vrec::models {

inline constexpr uint32_t kTrainedModelFormatVersion = 1;

// "tables/server-00003.rec"
std::string ServerTablesFile(int server);

// Writes every table of `storage` to dir/ServerTablesFile(server).
// Returns the rows written.
StatusOr<uint64_t> SaveServerTables(const ps::ServerStorage& storage, const std::string& dir,
                                    int server);

// The manifest of a model trained on `data_dir` by a job of `num_servers`
// servers (one table file per server); a checkpoint keeps it too, less the
// files.
TrainedModel MakeTrainedModel(const ModelSpec& spec, const std::string& data_dir, int num_servers,
                              uint64_t examples, uint64_t steps, double seconds);

// Writes model.json then model.pb, each atomically.
Status WriteTrainedModel(const std::string& dir, const TrainedModel& model);
StatusOr<TrainedModel> ReadTrainedModel(const std::string& dir);

// The spec a trained model was built from.
StatusOr<ModelSpec> SpecOf(const TrainedModel& model);

class SavedModel : public ParameterSource {
 public:
  // kNotFound if dir/model.pb is missing (an incomplete or foreign folder);
  // kDataLoss for a corrupt file, naming it.
  static StatusOr<std::unique_ptr<SavedModel>> Open(const std::string& dir);

  const TrainedModel& info() const { return info_; }
  const ModelSpec& spec() const { return spec_; }
  uint64_t rows(int table) const { return tables_[table].index.size(); }

  Status Pull(int table, absl::Span<const uint64_t> keys, float* out) override;

 private:
  struct Table {
    uint32_t dim = 0;
    absl::flat_hash_map<uint64_t, uint64_t> index;  // key -> row
    std::vector<float> values;
    std::unique_ptr<ps::Initializer> init;
  };
  SavedModel() = default;
  TrainedModel info_;
  ModelSpec spec_;
  std::vector<Table> tables_;  // spec table order
};

}  // namespace vrec::models
