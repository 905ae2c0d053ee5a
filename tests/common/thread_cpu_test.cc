#include "common/thread_cpu.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

namespace vrec {
namespace {

// Spins until the calling thread has used `seconds` of CPU.
void Burn(double seconds) {
  volatile uint64_t sink = 0;
  do {
    for (int i = 0; i < 100000; ++i) sink = sink + i;
  } while (ThisThreadCpuSeconds() < seconds);
}

TEST(ThreadCpuTest, NamesThreadsAsProcShowsThem) {
  std::thread t([] {
    NameThisThread("a-rather-long-thread-name");
    char name[32] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    EXPECT_STREQ(name, "a-rather-long-t");  // the kernel keeps 15 bytes
  });
  t.join();
}

TEST(ThreadCpuTest, SumsCpuTimeByName) {
  if (!std::ifstream("/proc/self/stat").good()) {
    GTEST_SKIP() << "no /proc";
  }
  std::atomic<int> ready{0};
  std::atomic<bool> done{false};
  auto worker = [&](double seconds) {
    NameThisThread("cpu-test (x)");  // a name with a space and parentheses
    Burn(seconds);
    ready.fetch_add(1);
    while (!done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  std::thread a(worker, 0.15), b(worker, 0.15);
  std::thread idle([&] {
    NameThisThread("cpu-test-idle");
    ready.fetch_add(1);
    while (!done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  while (ready.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::map<std::string, double> cpu = CpuSecondsByThreadName();
  done = true;
  a.join();
  b.join();
  idle.join();
  ASSERT_TRUE(cpu.count("cpu-test (x)")) << "threads of one name are summed under it";
  // Two threads of 0.15 s each, in clock ticks (10 ms): at least 0.25 s.
  EXPECT_GE(cpu.at("cpu-test (x)"), 0.25);
  EXPECT_LT(cpu.at("cpu-test (x)"), 5.0);
  ASSERT_TRUE(cpu.count("cpu-test-idle"));
  EXPECT_LT(cpu.at("cpu-test-idle"), cpu.at("cpu-test (x)"));
}

}  // namespace
}  // namespace vrec
