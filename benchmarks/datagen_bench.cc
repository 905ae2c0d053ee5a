// Placeholder until the generator lands.
#include <iostream>

#include "bench.h"

namespace vrec::bench {

int RunDatagenBench(int argc, char** argv) {
  std::cerr << "vrec bench datagen: not built yet\n";
  return 1;
}

}  // namespace vrec::bench
