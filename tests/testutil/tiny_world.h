// A tiny generated world and its dataset, for the tests that train models
// (training, serving): made once per set of options per test binary, in a
// scratch folder that lives as long as the binary.
#pragma once

#include <cstdint>
#include <string>

namespace vrec::testing {

struct TinyWorldOptions {
  uint64_t seed = 7;
  int videos = 600;
  int users = 800;
  int tokens = 300;
  int topics = 8;
  int days = 10;
  int shards = 3;
  int test_users = 150;
  int max_examples_per_user = 10;
};

// The dataset folder (as `vrec datagen` writes it) of the world `options`
// describe. Thread-safe; aborts if the world cannot be generated.
const std::string& TinyDataset(const TinyWorldOptions& options = {});

}  // namespace vrec::testing
