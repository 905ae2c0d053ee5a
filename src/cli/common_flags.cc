#include "cli/common_flags.h"

DEFINE_string(out, "",
              "Output folder: the dataset (datagen, convert) or the serving bundle (export)");
DEFINE_uint64(seed, 1, "Random seed; the output is a function of the seed and the flags");
DEFINE_int32(shards, 4, "Training shard files per example kind; users are spread over them");
DEFINE_int32(max_history, 50, "Most recent earlier watches (and search tokens) kept per example");
DEFINE_int32(max_examples_per_user, 0,
             "Keep at most this many training examples per user, sampled uniformly (0 = all)");
DEFINE_double(progress_seconds, 2.0, "Seconds between progress lines on stderr (0 = none)");
DEFINE_int32(servers, 1,
             "Parameter servers: vrec bench ps and vrec train without mpirun run them in this "
             "process, each on its own port; under mpirun ranks 1..N serve");
DEFINE_int32(server_threads, 1,
             "Handler threads per parameter server (1 is fastest on 2 cores: see "
             "docs/benchmarks.md)");
DEFINE_string(optimizer, "adagrad",
              "Server-side optimizer of every table: sgd, adagrad, adam, ftrl (vrec train "
              "uses adam unless this is given)");
DEFINE_string(spill_dir, "",
              "Folder for the servers' RocksDB spill stores (default: vrec train uses "
              "MODEL_DIR/spill, vrec bench ps /tmp/vrec_ps_bench)");
DEFINE_int32(workers, 1,
             "Worker threads (vrec train without mpirun, vrec bench train; under mpirun every "
             "rank after the servers is a worker)");
DEFINE_int64(staleness, -1,
             "Bounded staleness S (vrec train, vrec bench train): the pulls of step t see every "
             "worker's pushes of steps <= t-1-S (-1 = asynchronous, no bound; 0 = synchronous: "
             "every worker's step t-1; docs/training.md)");
DEFINE_double(seconds, 3,
              "Measured seconds (vrec bench ps: per op, dim and batch; vrec bench train: after "
              "the warm-up)");
