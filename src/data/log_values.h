// The values of a team's log tables as vrec reads them
// (docs/data_format.md): pure functions, each returning kInvalidArgument
// with what was wrong (the caller adds the file and line).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vrec/status.h"

namespace vrec {

// Seconds since 1970-01-01 UTC: a number (`1700000000`, `1700000000.25`), or
// ISO 8601 / RFC 3339 (`2026-12-03T10:15:00Z`, `2026-12-03T10:15:00.5+01:00`,
// `2026-12-03 10:15:00` taken as UTC, `2026-12-03`).
StatusOr<double> ParseTimestamp(std::string_view text);

// The kinds of events.
enum class EventKind { kWatch, kImpression, kClick, kSearch };
// `watch` (also the default for an absent column: the caller's), `impression`,
// `click`, `search`; case-insensitive.
StatusOr<EventKind> ParseEventKind(std::string_view text);

// A number in [0, 1], or `m`/`male` (0), `f`/`female` (1), anything else
// non-empty 0.5 (unknown or other).
StatusOr<double> ParseGender(std::string_view text);

// A finite number >= min_value.
StatusOr<double> ParseNumber(std::string_view text, double min_value);

// Search text to tokens: lower-cased (ASCII), split on every byte that is
// not an ASCII letter or digit (bytes >= 0x80, i.e. UTF-8 letters, stay in
// tokens), empty tokens dropped, at most `max_tokens` (the last ones).
std::vector<std::string> QueryTokens(std::string_view query, size_t max_tokens = 50);

}  // namespace vrec
