#include "common/run_info.h"

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <thread>

#include "common/build_info.h"
#include "common/malloc_tuning.h"

namespace vrec {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      if (pos != std::string::npos) return line.substr(pos + 2);
    }
  }
  return "unknown";
}

}  // namespace

nlohmann::json RunInfo() {
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  return {{"commit", VREC_GIT_COMMIT},
          {"build_type", VREC_BUILD_TYPE},
          {"host", host},
          {"cpu", CpuModel()},
          {"cores", std::thread::hardware_concurrency()},
          {"glibc_tunables", MallocTunables()}};
}

void PrintBenchResult(const std::string& bench, nlohmann::json result) {
  nlohmann::json line = {{"bench", bench}};
  line.update(result);
  line.update(RunInfo());
  std::cout << line.dump() << std::endl;
}

}  // namespace vrec
