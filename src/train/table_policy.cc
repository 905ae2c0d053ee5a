#include "train/table_policy.h"

#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vrec::train {
namespace {

constexpr char kRankingPrefix[] = "rank/";

// The index of the table `name` names in `config` (full name, or a ranking
// table without its prefix), or -1.
int FindTable(const ModelConfig& config, const std::string& name) {
  for (int i = 0; i < config.tables_size(); ++i) {
    if (config.tables(i).name() == name) return i;
  }
  for (int i = 0; i < config.tables_size(); ++i) {
    if (config.tables(i).name() == absl::StrCat(kRankingPrefix, name)) return i;
  }
  return -1;
}

std::string SparseTables(const ModelConfig& config) {
  std::vector<std::string> names;
  for (const TableConfig& t : config.tables()) {
    if (!t.dense()) names.push_back(t.name());
  }
  return absl::StrJoin(names, ", ");
}

// Sets `value` on table `name` as `flag` says.
Status SetPolicy(const std::string& flag, const std::string& name, uint64_t value,
                 ModelConfig* config) {
  const int i = FindTable(*config, name);
  if (i < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": the model has no table '", name, "'; its sparse tables: ", SparseTables(*config)));
  }
  TableConfig* t = config->mutable_tables(i);
  if (t->dense()) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": table '", t->name(),
        "' is a dense table (tower weights): admission and expiry are for sparse tables (",
        SparseTables(*config), ")"));
  }
  if (flag == "--min_count") {
    if (value > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": ", value, " for table '", t->name(), "' is too large"));
    }
    t->mutable_storage()->set_admission_min_count(static_cast<uint32_t>(value));
  } else {
    t->mutable_storage()->set_expiry_steps(value);
  }
  return absl::OkStatus();
}

Status Apply(const std::string& flag, const PerTableValue& v,
             const std::vector<std::string>& growing, ModelConfig* config) {
  if (v.growing) {
    for (const std::string& name : growing) {
      VREC_RETURN_IF_ERROR(SetPolicy(flag, name, *v.growing, config));
    }
  }
  for (const auto& [name, value] : v.tables) {
    VREC_RETURN_IF_ERROR(SetPolicy(flag, name, value, config));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<PerTableValue> ParsePerTable(const std::string& text, const std::string& flag) {
  PerTableValue out;
  const std::string form = " (give a number, or TABLE:NUMBER,... e.g. video:3,token:5)";
  if (text.empty()) return out;
  uint64_t n = 0;
  if (absl::SimpleAtoi(text, &n)) {
    out.growing = n;
    return out;
  }
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    const size_t colon = part.rfind(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, "=", text, ": '", part, "' is not TABLE:NUMBER", form));
    }
    const std::string table(absl::StripAsciiWhitespace(part.substr(0, colon)));
    if (!absl::SimpleAtoi(part.substr(colon + 1), &n)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, "=", text, ": '", part.substr(colon + 1),
                                                     "' (table ", table,
                                                     ") is not a whole number >= 0", form));
    }
    out.tables.emplace_back(table, n);
  }
  return out;
}

Status ApplyTablePolicies(const TablePolicies& policies, const std::vector<std::string>& growing,
                          models::ModelSpec* spec) {
  VREC_RETURN_IF_ERROR(Apply("--min_count", policies.min_count, growing, &spec->config));
  return Apply("--expire_after", policies.expire_after, growing, &spec->config);
}

std::string DescribeTablePolicies(const ModelConfig& config) {
  std::vector<std::string> parts;
  for (const TableConfig& t : config.tables()) {
    std::vector<std::string> p;
    if (t.storage().admission_min_count() > 1) {
      p.push_back(absl::StrCat("min_count ", t.storage().admission_min_count()));
    }
    if (t.storage().expiry_steps() > 0) {
      p.push_back(absl::StrCat("expire_after ", t.storage().expiry_steps()));
    }
    if (!p.empty()) parts.push_back(absl::StrCat(t.name(), ": ", absl::StrJoin(p, ", ")));
  }
  return absl::StrJoin(parts, "; ");
}

}  // namespace vrec::train
