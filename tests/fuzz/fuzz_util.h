// Helpers shared by the libFuzzer targets in tests/fuzz (README.md there).
//
// Thread safety: the targets are single-threaded; so are these.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace vrec::fuzz {

// A finding that is not a sanitizer report (a reply that breaks the
// contract, two readers that disagree): printed, then abort(), which
// libFuzzer records as a crash with its input.
#define VREC_FUZZ_CHECK(cond, what)                                                         \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s: %s\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                              \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

// A scratch path of this process for `name`, removed (with what is under
// it) when the process exits normally: in $VREC_FUZZ_SCRATCH (run.sh makes
// one and removes it after the run), else in /dev/shm when it exists (a
// file rewritten every input should not touch a disk), else in $TMPDIR or
// /tmp.
inline std::string ScratchPath(const std::string& name) {
  static auto* paths = new std::vector<std::string>();
  if (paths->empty()) {
    std::atexit([] {
      std::error_code ignored;
      for (const std::string& p : *paths) std::filesystem::remove_all(p, ignored);
    });
  }
  std::string dir = "/tmp";
  if (const char* scratch = std::getenv("VREC_FUZZ_SCRATCH")) {
    dir = scratch;
  } else if (access("/dev/shm", W_OK) == 0) {
    dir = "/dev/shm";
  } else if (const char* tmp = std::getenv("TMPDIR")) {
    dir = tmp;
  }
  paths->push_back(dir + "/vrec-fuzz-" + std::to_string(getpid()) + "-" + name);
  return paths->back();
}

// Replaces the file at `path` with `size` bytes of `data`; aborts on failure
// (the machine, not the input, is at fault).
inline void WriteFileOrDie(const std::string& path, const uint8_t* data, size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  VREC_FUZZ_CHECK(fd >= 0, path);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    VREC_FUZZ_CHECK(n > 0, path);
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace vrec::fuzz
