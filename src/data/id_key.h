// The team's own ids (any bytes) as the 64-bit keys vrec's tables use
// (docs/data_format.md, "String ids"), and the table of ids a dataset keeps
// so that every output can name an item by the team's id again.
//
//   key = Mix64(FNV-1a-64(bytes)), and 0 becomes 1
//
// (Mix64 is SplitMix64, common/random.h.) Stable: any language computes it,
// and the same id has the same key in every dataset and every day.
//
// Thread safety: IdKey is a pure function; IdTable is thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "vrec/status.h"

namespace vrec {

uint64_t IdKey(std::string_view id);

// Keys and the ids they came from, one table per kind of id ("item",
// "user"). Add() refuses a second id with a key already taken (a hash
// collision), naming both.
class IdTable {
 public:
  explicit IdTable(std::string kind) : kind_(std::move(kind)) {}

  // The key of `id`, recording it. kAlreadyExists when another id has it.
  StatusOr<uint64_t> Add(std::string_view id);
  // The same with a key given (tests, and keys computed elsewhere).
  Status AddWithKey(uint64_t key, std::string_view id);
  // The id of `key`; nullptr when the table has none.
  const std::string* Find(uint64_t key) const;
  size_t size() const { return ids_.size(); }

  // One line per id, in key order: the key in hex, a tab, the id escaped
  // (\\, \t, \n, \r and bytes outside printable ASCII as \xHH), so that any
  // bytes survive a text file.
  Status Write(const std::string& path) const;
  // Reads what Write wrote; kInvalidArgument "PATH:LINE: reason" otherwise.
  static StatusOr<IdTable> Read(const std::string& path, std::string kind);

 private:
  std::string kind_;
  absl::flat_hash_map<uint64_t, std::string> ids_;
};

// The escaping of IdTable files, exposed for tests.
std::string EscapeId(std::string_view id);
StatusOr<std::string> UnescapeId(std::string_view text);

}  // namespace vrec
