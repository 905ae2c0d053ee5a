// `vrec bench NAME`: the system benchmarks. Each prints one JSON object per
// result on stdout (common/run_info.h adds the commit and the machine);
// progress goes to stderr.
#pragma once

#include <vector>

namespace vrec::bench {

struct Bench {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] = "vrec bench NAME"
};

const std::vector<Bench>& Benches();

int RunDatagenBench(int argc, char** argv);
int RunModelBench(int argc, char** argv);
int RunPsBench(int argc, char** argv);
int RunTrainBench(int argc, char** argv);
int RunServeBench(int argc, char** argv);

}  // namespace vrec::bench
