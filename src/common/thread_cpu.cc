#include "common/thread_cpu.h"

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace vrec {

void SetThreadName(pthread_t thread, const std::string& name) {
  pthread_setname_np(thread, name.substr(0, 15).c_str());
}

std::map<std::string, double> CpuSecondsByThreadName() {
  std::map<std::string, double> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr || ticks <= 0) {
    if (dir != nullptr) closedir(dir);
    return out;
  }
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(in, line)) continue;  // the thread has exited
    // "tid (comm) state ppid ...": comm may hold spaces and parentheses, so
    // it ends at the last ')'; utime and stime are fields 14 and 15.
    const size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    const std::string name = line.substr(open + 1, close - open - 1);
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    out[name] += static_cast<double>(utime + stime) / ticks;
  }
  closedir(dir);
  return out;
}

double ThisThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

}  // namespace vrec
