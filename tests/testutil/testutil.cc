#include "testutil/testutil.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

namespace vrec::testing {

ScratchDir::ScratchDir() {
  static std::atomic<int> counter{0};
  const char* base = std::getenv("TEST_TMPDIR");
  std::string root = base ? base : "/tmp";
  path_ = root + "/vrec_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

uint64_t TestSeed(uint64_t fallback) {
  const char* env = std::getenv("VREC_TEST_SEED");
  uint64_t seed = env ? std::strtoull(env, nullptr, 10) : fallback;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::cout << "[ seed     ] " << seed << " (rerun with VREC_TEST_SEED=" << seed << ")\n";
  return seed;
}

}  // namespace vrec::testing
