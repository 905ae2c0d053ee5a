#include "cli/common_flags.h"

DEFINE_string(out, "", "Output dataset folder (created if needed)");
DEFINE_uint64(seed, 1, "Random seed; the output is a function of the seed and the flags");
DEFINE_int32(shards, 4, "Training shard files per example kind; users are spread over them");
DEFINE_int32(max_history, 50, "Most recent earlier watches (and search tokens) kept per example");
DEFINE_int32(max_examples_per_user, 0,
             "Keep at most this many training examples per user, sampled uniformly (0 = all)");
DEFINE_double(progress_seconds, 2.0, "Seconds between progress lines on stderr (0 = none)");
