// Placeholder until the convert command lands: exits with a clear message.
#include <iostream>

#include "cli/command.h"

namespace vrec::cli {

int RunConvert(int argc, char** argv) {
  std::cerr << "vrec convert: not built yet\n";
  return kExitFailure;
}

}  // namespace vrec::cli
