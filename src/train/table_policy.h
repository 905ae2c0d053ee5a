// Per-table storage policies of a training job: admission (`vrec train
// --min_count`) and expiry (`--expire_after`) of the parameter servers'
// sparse tables (ps/embedding_store.h; docs/training.md, "Day after day").
//
// A flag's value is one number, for the model's growing tables (those keyed
// by open-ended ids: ModelKind::GrowingTables, the candidate model's video,
// token and video_out, the ranking model's rank/video and rank/token), or a
// comma list of TABLE:NUMBER ("video:3,token:5"; a ranking table by its
// full name or without "rank/"). A later entry for the same table wins. ""
// leaves every table as the model declares it; a number 0 (or a min_count
// of 1) turns the policy off for the tables it names.
//
//   min_count N     a row is created at the N-th pull of its key; until
//                   then it reads as its initial value and its updates are
//                   dropped (StoragePolicy.admission_min_count)
//   expire_after S  a row not pulled or pushed for S steps of its table's
//                   clock is removed (StoragePolicy.expiry_steps). The clock
//                   of a table on a server advances once per push request it
//                   serves: about once per training step of any worker (the
//                   job summary's "steps"), and it continues across --resume
//                   and --init_from.
//
// Both are part of the model's config (TableConfig.storage), so a
// checkpoint records them and --resume must pass the same ones.
//
// Thread safety: functions are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/model_spec.h"
#include "vrec/status.h"

namespace vrec::train {

// One flag's value.
struct PerTableValue {
  std::optional<uint64_t> growing;                       // the bare number
  std::vector<std::pair<std::string, uint64_t>> tables;  // TABLE:NUMBER, in order
  bool empty() const { return !growing && tables.empty(); }
};

// Parses `text` as above; kInvalidArgument naming `flag`, the text and the
// part that is wrong.
StatusOr<PerTableValue> ParsePerTable(const std::string& text, const std::string& flag);

struct TablePolicies {
  PerTableValue min_count;     // --min_count
  PerTableValue expire_after;  // --expire_after
};

// Sets the storage policy of the tables `policies` name in spec->config
// (`growing`: the tables a bare number applies to). kInvalidArgument naming
// the flag and the table for a table the model lacks (listing its sparse
// tables) or a dense one, or a min_count beyond 2^32-1.
Status ApplyTablePolicies(const TablePolicies& policies, const std::vector<std::string>& growing,
                          models::ModelSpec* spec);

// "video: min_count 3, expire_after 50000; token: ..." for the tables with
// a policy; "" when none has one.
std::string DescribeTablePolicies(const ModelConfig& config);

}  // namespace vrec::train
