#include "data/log_values.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace vrec {
namespace {

absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

StatusOr<double> ParseNumber(std::string_view text, double min_value) {
  double v = 0;
  if (!absl::SimpleAtod(A(text), &v) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(absl::StrCat("'", A(text), "' is not a number"));
  }
  if (v < min_value) {
    return absl::InvalidArgumentError(absl::StrCat(v, " is below ", min_value));
  }
  return v;
}

StatusOr<double> ParseTimestamp(std::string_view text) {
  double seconds = 0;
  if (absl::SimpleAtod(A(text), &seconds)) {
    if (!std::isfinite(seconds)) {
      return absl::InvalidArgumentError(absl::StrCat("timestamp '", A(text), "' is not finite"));
    }
    return seconds;
  }
  std::string s(text);
  if (s.size() == 10) s += "T00:00:00Z";           // a date alone
  if (s.size() > 10 && s[10] == ' ') s[10] = 'T';  // "date time"
  const char last = s.empty() ? 0 : s.back();
  const bool zoned = last == 'Z' || last == 'z' ||
                     (s.size() > 6 && (s[s.size() - 6] == '+' || s[s.size() - 6] == '-') &&
                      s[s.size() - 3] == ':');
  if (!zoned) s += "Z";  // no zone: UTC
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "timestamp '", A(text),
        "' is neither seconds since 1970 nor ISO 8601 (e.g. 2026-12-03T10:15:00Z): ", err));
  }
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

StatusOr<EventKind> ParseEventKind(std::string_view text) {
  const std::string e = absl::AsciiStrToLower(A(text));
  if (e == "watch") return EventKind::kWatch;
  if (e == "impression") return EventKind::kImpression;
  if (e == "click") return EventKind::kClick;
  if (e == "search") return EventKind::kSearch;
  return absl::InvalidArgumentError(
      absl::StrCat("event '", A(text), "' is none of watch, impression, click, search"));
}

StatusOr<double> ParseGender(std::string_view text) {
  double v = 0;
  if (absl::SimpleAtod(A(text), &v)) {
    if (!(v >= 0 && v <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat("gender ", v, " is outside [0, 1]"));
    }
    return v;
  }
  const std::string g = absl::AsciiStrToLower(A(text));
  if (g == "m" || g == "male") return 0.0;
  if (g == "f" || g == "female") return 1.0;
  if (g.empty()) return absl::InvalidArgumentError("gender is empty");
  return 0.5;
}

std::vector<std::string> QueryTokens(std::string_view query, size_t max_tokens) {
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) tokens.push_back(std::move(current));
    current.clear();
  };
  for (unsigned char c : query) {
    if (c >= 0x80 || std::isalnum(c)) {
      current.push_back(static_cast<char>(c >= 0x80 ? c : std::tolower(c)));
    } else {
      flush();
    }
  }
  flush();
  if (tokens.size() > max_tokens) tokens.erase(tokens.begin(), tokens.end() - max_tokens);
  return tokens;
}

}  // namespace vrec
