// Placeholder until the inspect command lands: exits with a clear message.
#include <iostream>

#include "cli/command.h"

namespace vrec::cli {

int RunInspect(int argc, char** argv) {
  std::cerr << "vrec inspect: not built yet\n";
  return kExitFailure;
}

}  // namespace vrec::cli
