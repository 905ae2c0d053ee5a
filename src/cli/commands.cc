#include "cli/command.h"

namespace vrec::cli {

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"datagen",
       "generate a synthetic world that knows its own truth",
       "vrec datagen --out=DIR [--seed=N] [size flags]\n"
       "  Writes candidate-generation and ranking examples (train and test),\n"
       "  videos.rec, truth.json and manifest.pb/json into DIR. The last stdout\n"
       "  line is a JSON summary with the oracle's recall@K and weighted\n"
       "  per-user loss.",
       {"datagen_command.cc", "common_flags.cc", nullptr},
       RunDatagen},
      {"convert",
       "convert an interaction CSV (MovieLens layout) into examples",
       "vrec convert --csv=FILE --out=DIR\n"
       "  Columns by header name: userId, movieId, timestamp required; rating,\n"
       "  title, genres optional. Each user's last interaction becomes a test\n"
       "  example. The last stdout line is a JSON summary.",
       {"convert_command.cc", "common_flags.cc", nullptr},
       RunConvert},
      {"inspect",
       "validate record files and print their first examples",
       "vrec inspect PATH [PATH...]\n"
       "  PATH is a record file or a dataset folder. Every CRC is checked; a bad\n"
       "  file exits non-zero naming the file and the offset.",
       {"inspect_command.cc", nullptr},
       RunInspect},
      {"bench",
       "run a benchmark: vrec bench NAME (datagen, ...)",
       "vrec bench NAME [flags]\n"
       "  Prints one JSON object per result, with the commit and the machine.",
       {"benchmarks/", nullptr},
       RunBench},
  };
  return kCommands;
}

}  // namespace vrec::cli
