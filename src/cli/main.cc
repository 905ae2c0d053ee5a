// vrec: train, evaluate and serve the two-stage YouTube DNN recommender.
//
//   vrec help                 list the subcommands
//   vrec CMD --help           what CMD does and its flags
//   vrec CMD [flags] [args]   run CMD
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <malloc.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "common/build_info.h"
#include "common/malloc_tuning.h"

namespace vrec::cli {
namespace {

void PrintOverview(std::ostream& os) {
  os << "vrec " << VREC_VERSION << " (" << VREC_GIT_COMMIT << ")\n"
     << "Trains, evaluates and serves the two-stage deep video recommender of\n"
     << "Covington, Adams and Sargin (RecSys 2016).\n\n"
     << "usage: vrec COMMAND [flags] [args]\n\ncommands:\n";
  for (const Command& c : Commands()) {
    std::string name = c.name;
    name.resize(10, ' ');
    os << "  " << name << c.summary << "\n";
  }
  os << "  help      this list; `vrec help COMMAND` or `vrec COMMAND --help` for one\n";
}

bool FlagBelongsTo(const gflags::CommandLineFlagInfo& flag, const Command& c) {
  for (const char* const* src = c.flag_sources; *src != nullptr; ++src) {
    const std::string entry = *src;
    const size_t colon = entry.find(':');
    if (flag.filename.find(entry.substr(0, colon)) == std::string::npos) continue;
    if (colon == std::string::npos) return true;
    const std::string names = "," + entry.substr(colon + 1) + ",";
    if (names.find("," + flag.name + ",") != std::string::npos) return true;
  }
  return false;
}

void PrintCommandHelp(const Command& c, std::ostream& os) {
  os << "usage: " << c.usage << "\n\nflags:\n";
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const auto& f : flags) {
    if (!FlagBelongsTo(f, c)) continue;
    os << "  --" << f.name << " (" << f.type << ", default "
       << (f.type == "string" ? "\"" + f.default_value + "\"" : f.default_value) << ")\n      "
       << f.description << "\n";
  }
  os << "\nlogging: --v=N for verbose logs; logs go to stderr.\n";
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0 ||
        std::strcmp(argv[i], "-help") == 0 || std::strcmp(argv[i], "--helpfull") == 0) {
      return true;
    }
    if (std::strcmp(argv[i], "--") == 0) break;
  }
  return false;
}

int Main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "help") == 0 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    if (argc >= 3 && std::strcmp(argv[1], "help") == 0) {
      const Command* c = FindCommand(argv[2]);
      if (c == nullptr) {
        std::cerr << "vrec: unknown command '" << argv[2] << "'; `vrec help` lists them\n";
        return kExitUsage;
      }
      PrintCommandHelp(*c, std::cout);
      return kExitOk;
    }
    PrintOverview(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0) {
    std::cout << "vrec " << VREC_VERSION << " " << VREC_GIT_COMMIT << " " << VREC_BUILD_TYPE
              << "\n";
    return kExitOk;
  }
  const Command* c = FindCommand(argv[1]);
  if (c == nullptr) {
    std::cerr << "vrec: unknown command '" << argv[1] << "'; `vrec help` lists them\n";
    return kExitUsage;
  }
  // Shift so that the command sees argv[0] = "vrec CMD".
  std::string prog = std::string("vrec ") + c->name;
  std::vector<char*> args;
  args.push_back(prog.data());
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  int sub_argc = static_cast<int>(args.size());
  if (WantsHelp(sub_argc, args.data())) {
    PrintCommandHelp(*c, std::cout);
    return kExitOk;
  }
  args.push_back(nullptr);
  char** sub_argv = args.data();
  FLAGS_logtostderr = true;
  gflags::SetUsageMessage(c->usage);
  gflags::SetVersionString(VREC_VERSION);
  gflags::ParseCommandLineFlags(&sub_argc, &sub_argv, /*remove_flags=*/true);
  google::InitGoogleLogging(prog.c_str());
  return c->run(sub_argc, sub_argv);
}

}  // namespace
}  // namespace vrec::cli

int main(int argc, char** argv) {
  // Transparent huge pages for malloc'd memory (src/common/malloc_tuning.h):
  // re-executes once with GLIBC_TUNABLES extended (not under a memory
  // budget); `vrec bench train` runs 2x faster. Before anything else: glibc
  // reads tunables at start-up.
  vrec::ReexecWithMallocTuning(argc, argv);
  // Training and serving move tens of MB per step through short-lived
  // buffers (pulled rows, gradients, messages). By default glibc serves such
  // sizes with mmap and unmaps them on free, so every step page-faults and
  // zeroes them again: `vrec bench train` ran 3x slower. Keep them in the
  // heap instead (up to 32 MiB, the largest threshold glibc accepts; larger
  // buffers are still mapped per use), and give back only large idle tops.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  return vrec::cli::Main(argc, argv);
}
