// The `vrec` executable is a set of subcommands. Each one is a function that
// runs after gflags has parsed its flags; only these functions (and main) read
// FLAGS_*, the libraries take Options structs.
#pragma once

#include <vector>

namespace vrec::cli {

struct Command {
  const char* name;     // "datagen"
  const char* summary;  // one line for `vrec help`
  const char* usage;    // shown by `vrec CMD --help`, may span lines
  // Flags whose defining source path contains one of these substrings are the
  // ones `vrec CMD --help` lists (nullptr-terminated). "FILE:a,b" limits a
  // file to the flags named a and b (for the shared common_flags.cc).
  const char* flag_sources[4];
  // argv[0] is "vrec CMD"; flags are already parsed and removed, so argv holds
  // only positional arguments. Returns the process exit code.
  int (*run)(int argc, char** argv);
};

// Every subcommand, in the order `vrec help` lists them.
const std::vector<Command>& Commands();

// Exit codes shared by all subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work failed (bad data, I/O, ...)
inline constexpr int kExitUsage = 2;    // bad flags or arguments

int RunDatagen(int argc, char** argv);
int RunConvert(int argc, char** argv);
int RunInspect(int argc, char** argv);
int RunBench(int argc, char** argv);
int RunTrain(int argc, char** argv);
int RunEval(int argc, char** argv);
int RunExport(int argc, char** argv);
int RunServe(int argc, char** argv);
int RunSupervise(int argc, char** argv);

}  // namespace vrec::cli
