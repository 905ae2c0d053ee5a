#include "data/id_key.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/random.h"

namespace vrec {
namespace {

absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

uint64_t IdKey(std::string_view id) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a-64
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  const uint64_t key = Mix64(h);
  return key == 0 ? 1 : key;
}

StatusOr<uint64_t> IdTable::Add(std::string_view id) {
  const uint64_t key = IdKey(id);
  VREC_RETURN_IF_ERROR(AddWithKey(key, id));
  return key;
}

Status IdTable::AddWithKey(uint64_t key, std::string_view id) {
  auto [it, inserted] = ids_.try_emplace(key, id);
  if (inserted || it->second == id) return absl::OkStatus();
  return absl::AlreadyExistsError(absl::StrFormat(
      "the %s ids \"%s\" and \"%s\" have the same key %016x (a hash collision, about one in "
      "2^64 per pair): rename one of them",
      kind_, EscapeId(it->second), EscapeId(id), key));
}

const std::string* IdTable::Find(uint64_t key) const {
  auto it = ids_.find(key);
  return it == ids_.end() ? nullptr : &it->second;
}

std::string EscapeId(std::string_view id) {
  std::string out;
  out.reserve(id.size());
  for (unsigned char c : id) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

StatusOr<std::string> UnescapeId(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out.push_back(text[i]);
      continue;
    }
    if (++i == text.size()) return absl::InvalidArgumentError("a lone \\ at the end");
    switch (text[i]) {
      case '\\':
        out.push_back('\\');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 'x': {
        uint32_t byte = 0;
        if (i + 2 >= text.size() || !absl::SimpleHexAtoi(A(text.substr(i + 1, 2)), &byte) ||
            byte > 0xff) {
          return absl::InvalidArgumentError("\\x needs two hex digits");
        }
        out.push_back(static_cast<char>(byte));
        i += 2;
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat("unknown escape \\", A(text.substr(i, 1))));
    }
  }
  return out;
}

Status IdTable::Write(const std::string& path) const {
  std::vector<uint64_t> keys;
  keys.reserve(ids_.size());
  for (const auto& [key, id] : ids_) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  std::string text;
  for (uint64_t key : keys) {
    absl::StrAppendFormat(&text, "%016x\t%s\n", key, EscapeId(ids_.at(key)));
  }
  return WriteFileAtomic(path, text);
}

StatusOr<IdTable> IdTable::Read(const std::string& path, std::string kind) {
  VREC_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  IdTable table(std::move(kind));
  int line = 0;
  for (absl::string_view row : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++line;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", why));
    };
    const size_t tab = row.find('\t');
    uint64_t key = 0;
    if (tab == absl::string_view::npos || !absl::SimpleHexAtoi(row.substr(0, tab), &key)) {
      return bad("expected KEY<tab>ID with a hex key");
    }
    const absl::string_view rest = row.substr(tab + 1);
    StatusOr<std::string> id = UnescapeId(std::string_view(rest.data(), rest.size()));
    if (!id.ok()) return bad(id.status().message());
    if (IdKey(*id) != key) {
      return bad(
          absl::StrFormat("the key %016x is not the key of its id (%016x)", key, IdKey(*id)));
    }
    if (Status s = table.AddWithKey(key, *id); !s.ok()) return bad(s.message());
  }
  return table;
}

}  // namespace vrec
