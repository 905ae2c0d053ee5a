// Placeholder until the datagen command lands: exits with a clear message.
#include <iostream>

#include "cli/command.h"

namespace vrec::cli {

int RunDatagen(int argc, char** argv) {
  std::cerr << "vrec datagen: not built yet\n";
  return kExitFailure;
}

}  // namespace vrec::cli
