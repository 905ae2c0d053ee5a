// What every benchmark line carries: the commit and the machine, so that a
// figure can be traced to the code and hardware that produced it.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace vrec {

// {"commit": ..., "build_type": ..., "host": ..., "cpu": ..., "cores": N}
nlohmann::json RunInfo();

// Prints `result` merged with RunInfo() as one JSON line on stdout, flushed.
void PrintBenchResult(const std::string& bench, nlohmann::json result);

}  // namespace vrec
