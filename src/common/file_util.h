// Small file-system helpers that return Status instead of throwing.
//
// Thread safety: all functions are thread-compatible (no shared state).
#pragma once

#include <string>
#include <vector>

#include "vrec/status.h"

namespace vrec {

// Reads the whole file. kNotFound if it does not exist.
StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes `contents` to `path` atomically: a temporary file in the same
// folder is written, fsync'ed and renamed over `path`, so a reader sees either
// the old file or the new one, never a partial file.
Status WriteFileAtomic(const std::string& path, const std::string& contents);

// mkdir -p.
Status MakeDirs(const std::string& path);

bool PathExists(const std::string& path);

// Joins two path parts with exactly one '/'.
std::string JoinPath(const std::string& a, const std::string& b);

// Regular files directly in `dir` whose names end with `suffix`, sorted.
StatusOr<std::vector<std::string>> ListFiles(const std::string& dir, const std::string& suffix);

// Status for a failed system call: the message names `what` and strerror.
Status ErrnoStatus(int err, const std::string& what);

// Opens `path` read-only for a reader that needs a regular file; sets *size.
// The descriptor is the caller's to close. kNotFound when it does not exist,
// kInvalidArgument naming it when it is a pipe, a device or a folder.
StatusOr<int> OpenRegularFile(const std::string& path, uint64_t* size);

}  // namespace vrec
