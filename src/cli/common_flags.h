// Flags shared by several subcommands. gflags has one global namespace, so a
// flag used by more than one command is defined once, in common_flags.cc, and
// declared here; `vrec CMD --help` lists these for the commands that name
// "common_flags.cc" in their flag_sources.
#pragma once

#include <gflags/gflags.h>

DECLARE_string(out);
DECLARE_uint64(seed);
DECLARE_int32(shards);
DECLARE_int32(max_history);
DECLARE_int32(max_examples_per_user);
DECLARE_double(progress_seconds);
DECLARE_int32(servers);
DECLARE_int32(server_threads);
DECLARE_string(optimizer);
DECLARE_string(spill_dir);
DECLARE_int32(workers);
DECLARE_int64(staleness);
DECLARE_double(seconds);
