#include <cstring>
#include <iostream>
#include <string>

#include "bench.h"
#include "cli/command.h"

namespace vrec::bench {

const std::vector<Bench>& Benches() {
  static const std::vector<Bench> kBenches = {
      {"datagen", "candidate examples/s of the world generator, one core", RunDatagenBench},
      {"model", "one training step of the paper-sized candidate tower vs sgemm", RunModelBench},
      {"ps", "parameter-server pull/push keys/s, GB/s and latency over loopback", RunPsBench},
      {"train", "examples/s of the paper-sized candidate model, W workers and S servers",
       RunTrainBench},
      {"serve", "one request's time by stage on a bundle, in process; the ranking page vs 300 examples",
       RunServeBench},
  };
  return kBenches;
}

}  // namespace vrec::bench

namespace vrec::cli {

int RunBench(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: vrec bench NAME [flags]\nbenchmarks:\n";
    for (const auto& b : bench::Benches()) std::cerr << "  " << b.name << "  " << b.summary << "\n";
    return kExitUsage;
  }
  for (const auto& b : bench::Benches()) {
    if (std::strcmp(argv[1], b.name) == 0) {
      std::string prog = std::string("vrec bench ") + b.name;
      argv[1] = prog.data();
      return b.run(argc - 1, argv + 1);
    }
  }
  std::cerr << "vrec bench: unknown benchmark '" << argv[1] << "'; `vrec bench` lists them\n";
  return kExitUsage;
}

}  // namespace vrec::cli
