#include "common/malloc_tuning.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace vrec {

std::optional<std::string> TrainingHeapTunables(const char* current, const std::string& thp_mode) {
  const bool thp = thp_mode.find("[always]") != std::string::npos ||
                   thp_mode.find("[madvise]") != std::string::npos;
  const std::string now = current == nullptr ? "" : current;
  std::string out = now;
  for (absl::string_view setting : absl::StrSplit(kTrainingHeapTunables, ':')) {
    const absl::string_view name = setting.substr(0, setting.find('='));
    if (name == "glibc.malloc.hugetlb" && !thp) continue;
    if (now.find(std::string(name) + "=") != std::string::npos) continue;  // the caller's
    if (!out.empty()) out += ':';
    out.append(setting.data(), setting.size());
  }
  if (out == now) return std::nullopt;
  return out;
}

bool SetsMemoryBudget(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    const size_t dashes = arg.rfind("--", 0) == 0 ? 2 : (arg.rfind('-', 0) == 0 ? 1 : 0);
    if (dashes == 0) continue;
    arg = arg.substr(dashes);
    std::string value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[i + 1];
    }
    if (arg != "budget_mb" && arg != "server_memory_mb") continue;
    if (value.find_first_not_of("0") != std::string::npos) return true;
  }
  return false;
}

void ReexecWithMallocTuning(int argc, char** argv) {
  const char* off = std::getenv("VREC_MALLOC_TUNING");
  if (off != nullptr && std::strcmp(off, "0") == 0) return;
  if (SetsMemoryBudget(argc, argv)) return;
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::stringstream mode;
  mode << in.rdbuf();
  const char* current = std::getenv("GLIBC_TUNABLES");
  const std::string before = current == nullptr ? "" : current;
  std::optional<std::string> want = TrainingHeapTunables(current, mode.str());
  if (!want) return;
  if (::setenv("GLIBC_TUNABLES", want->c_str(), 1) != 0) return;
  // By the binary's real path when it can be read: the kernel names a
  // process after the file it executes, and an operator's `pgrep -x vrec`
  // must find it (exec of /proc/self/exe would make it "exe").
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n > 0) {
    path[n] = '\0';
    ::execv(path, argv);
  }
  ::execv("/proc/self/exe", argv);
  // exec failed (no /proc, say): carry on as started, environment restored.
  if (current == nullptr) {
    ::unsetenv("GLIBC_TUNABLES");
  } else {
    ::setenv("GLIBC_TUNABLES", before.c_str(), 1);
  }
}

std::string MallocTunables() {
  const char* v = std::getenv("GLIBC_TUNABLES");
  return v == nullptr ? "" : v;
}

}  // namespace vrec
