// Warm starts: `vrec train --init_from=PATH --data=NEW_DAY` trains on new
// data with every parameter starting where an earlier job left it, instead
// of at its initializer (docs/training.md, "Day after day").
//
// PATH is one of
//   a checkpoint folder, or a --checkpoint_dir (its newest complete
//     checkpoint that reads back whole): every table's rows with their
//     optimizer state (Adam moments, Adagrad sums ...) and the step each was
//     last seen, each table's step clock and admission counts, the dense
//     tower and its optimizer state, the normalisers;
//   a trained-model folder (--model_dir: model.pb), or a serving bundle
//     (`vrec export --out`: its candidate/ or ranking/ model, whichever
//     --model trains): the rows' weights and the normalisers only. The
//     optimizer state of every row starts as a new row's, the step clocks
//     at 0, admission counts empty.
// Unlike --resume, the data are new (another dataset is expected), and the
// data positions, epochs, early stopping and progress start afresh; the step
// clocks continue, so expiry keeps counting across days. The parameter
// servers may be more or fewer than the earlier job's: rows go to the
// server their key's slot maps to (as for --resume).
//
// The normalisers (the candidate model's example age, the ranking model's
// continuous features) are the earlier model's merged with the new data's:
// the mixture of the two distributions weighted by the examples each was
// fitted on (QuantileInfo.count; model::QuantileNormalizer::Mixture), i.e.
// an estimate of the distribution over every day trained on.
//
// Thread safety: functions are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/checkpoint.h"
#include "models/model_spec.h"
#include "proto/train.pb.h"
#include "ps/server_storage.h"
#include "vrec/status.h"

namespace vrec::train {

struct WarmStart {
  std::string path;    // as given (--init_from)
  std::string source;  // the folder read: a checkpoint folder or a trained-model folder
  std::optional<models::FoundCheckpoint> checkpoint;  // set: a checkpoint (with optimizer state)
  TrainedModel model;  // its model: config, dense layout, normalisers, examples
  bool has_optimizer_state() const { return checkpoint.has_value(); }
  // Examples the model has been trained on, every earlier day together.
  uint64_t examples_before() const { return model.examples_before() + model.examples_trained(); }
  // One line for the log: what it is and what it carries.
  std::string Describe() const;
};

// The warm start at `path` for a job of `spec` (its kind and model flags).
// kNotFound when `path` holds none of the forms above (saying what it
// holds); kDataLoss for a damaged checkpoint (as FindCheckpoint);
// kFailedPrecondition when it holds another kind of model or its
// parameters do not fit the model flags (naming the difference: tables and
// their dims, tower, seed with a checkpoint, optimizer kind with a
// checkpoint; learning rate, sampler, history length, admission and expiry
// may change). With a checkpoint, *spec takes its tables' initializers (a
// row never updated is kept as its initializer's value).
// `verify_files` = false: `path` is the source another rank of the job has
// just found and verified (a checkpoint's files are not read again).
StatusOr<WarmStart> FindWarmStart(const std::string& path, models::ModelSpec* spec,
                                  bool verify_files = true);

// The storage of server `server` of `num_servers` holding the warm start's
// rows that the job's router gives it (options.spill_path is emptied first).
StatusOr<std::unique_ptr<ps::ServerStorage>> WarmStartStorage(const models::ModelSpec& spec,
                                                              ps::ServerStorageOptions options,
                                                              const WarmStart& warm, int server,
                                                              int num_servers);

// The job's normalisers: each of `fitted` (the new data's) mixed with the
// one of the same feature in `before` (the warm start's), weighted by their
// counts (a count of 0, from before counts were kept, weighs as much as the
// new data), with fitted's number of quantiles; a feature `before` lacks
// keeps its fitted normaliser. Counts add up.
StatusOr<std::vector<QuantileInfo>> MergeQuantiles(const std::vector<QuantileInfo>& before,
                                                   const std::vector<QuantileInfo>& fitted);

}  // namespace vrec::train
