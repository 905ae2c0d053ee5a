// vrec supervise: runs a training job and, when it fails, runs it again
// from its newest complete checkpoint (--resume), up to --restarts times,
// with no person involved (docs/operations.md, "When a rank fails").
#include <gflags/gflags.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"

DEFINE_int32(restarts, 3,
             "How many times a failed job is started again (with --resume appended, so it "
             "continues from the newest complete checkpoint of its --checkpoint_dir)");
DEFINE_double(restart_delay_seconds, 5,
              "Seconds between a failed attempt and the next (ports and files settle)");

namespace vrec::cli {
namespace {

std::atomic<pid_t> g_child{0};
std::atomic<int> g_signal{0};

// SIGINT and SIGTERM go to the job, and end the supervision: a person (or
// the scheduler) asked the job to stop.
void Forward(int sig) {
  g_signal = sig;
  const pid_t child = g_child.load();
  if (child > 0) kill(child, sig);
}

struct Outcome {
  int code;         // the exit code; 128 + N when killed by signal N; -1: not started
  std::string how;  // "exited 1", "was killed by signal 9"
};

// Runs args to their end.
Outcome RunOnce(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return {-1, absl::StrCat("could not start: ", std::strerror(errno))};
  if (pid == 0) {
    execvp(argv[0], argv.data());
    std::cerr << "vrec supervise: cannot run " << args[0] << ": " << std::strerror(errno) << "\n";
    _exit(127);
  }
  g_child = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  if (WIFEXITED(status)) {
    return {WEXITSTATUS(status), absl::StrFormat("exited %d", WEXITSTATUS(status))};
  }
  if (WIFSIGNALED(status)) {
    return {128 + WTERMSIG(status), absl::StrFormat("was killed by signal %d", WTERMSIG(status))};
  }
  return {1, "ended"};
}

}  // namespace

int RunSupervise(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "vrec supervise: give the job's command after --, e.g.\n"
                 "  vrec supervise --restarts=3 -- mpirun -np 8 vrec train --data=D "
                 "--checkpoint_dir=C --checkpoint_every=10m\n";
    return kExitUsage;
  }
  if (FLAGS_restarts < 0 || FLAGS_restart_delay_seconds < 0) {
    std::cerr << "vrec supervise: --restarts and --restart_delay_seconds must be >= 0\n";
    return kExitUsage;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::string joined = absl::StrJoin(args, " ");
  if (joined.find("--checkpoint_dir") == std::string::npos) {
    std::cerr << "vrec supervise: the job has no --checkpoint_dir, so a restart would start "
                 "from scratch; give it one (and --checkpoint_every)\n";
    return kExitUsage;
  }
  bool resumes = false;
  for (const std::string& a : args) resumes |= a == "--resume" || a == "--resume=true";
  signal(SIGINT, Forward);
  signal(SIGTERM, Forward);
  const int attempts = FLAGS_restarts + 1;
  int code = 1;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    const auto start = std::chrono::steady_clock::now();
    const Outcome outcome = RunOnce(args);
    code = outcome.code;
    const std::string& how = outcome.how;
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (code == 0) {
      if (attempt > 1) {
        std::cerr << absl::StrFormat("[supervise] the job finished on attempt %d of %d\n", attempt,
                                     attempts);
      }
      return kExitOk;
    }
    if (g_signal != 0) {
      std::cerr << absl::StrFormat("[supervise] stopped by signal %d; the job %s; no restart\n",
                                   g_signal.load(), how);
      return code > 0 ? code : kExitFailure;
    }
    if (code == kExitUsage || code == 127 || code < 0) {
      std::cerr << absl::StrFormat(
          "[supervise] the job %s (bad flags or command): a restart would fail the same way\n",
          how);
      return code > 0 ? code : kExitFailure;
    }
    if (attempt == attempts) {
      std::cerr << absl::StrFormat(
          "[supervise] the job %s after %.0f s on attempt %d of %d; no "
          "restarts left (--restarts=%d)\n",
          how, took, attempt, attempts, FLAGS_restarts);
      break;
    }
    std::cerr << absl::StrFormat(
        "[supervise] the job %s after %.0f s (attempt %d of %d); restarting it in %.0f s from "
        "the newest complete checkpoint (--resume)\n",
        how, took, attempt, attempts, FLAGS_restart_delay_seconds);
    if (!resumes) {
      args.push_back("--resume");
      resumes = true;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_restart_delay_seconds));
    if (g_signal != 0) return kExitFailure;
  }
  return code > 0 && code < 256 ? code : kExitFailure;
}

}  // namespace vrec::cli
