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
       {"datagen_command.cc",
        "common_flags.cc:out,seed,shards,max_history,max_examples_per_user,progress_seconds",
        nullptr},
       RunDatagen},
      {"convert",
       "convert an interaction log (MovieLens CSV, or your own events) into examples",
       "vrec convert --csv=FILE --out=DIR  |  vrec convert --events=FILE --out=DIR\n"
       "  --csv: columns by header name: userId, movieId, timestamp required; rating,\n"
       "  title, genres optional. --events: your own log, CSV or JSON Lines, string\n"
       "  ids (docs/data_format.md). Either may be gzip. Each user's last watch\n"
       "  becomes a test example. The last stdout line is a JSON summary.",
       {"convert_command.cc",
        "common_flags.cc:out,seed,shards,max_history,max_examples_per_user,progress_seconds",
        nullptr},
       RunConvert},
      {"inspect",
       "validate record files and print their first examples",
       "vrec inspect PATH [PATH...]\n"
       "  PATH is a record file or a dataset folder. Every CRC is checked; a bad\n"
       "  file exits non-zero naming the file and the offset.",
       {"inspect_command.cc", nullptr},
       RunInspect},
      {"train",
       "train a model on a dataset (in this process, or under mpirun)",
       "vrec train --data=DIR [--model_dir=M] [--workers=W --servers=S] [model flags]\n"
       "  Trains the candidate-generation model with parameter servers and\n"
       "  asynchronous workers; prints a progress line every --progress_seconds,\n"
       "  saves the model into --model_dir, evaluates it on the held-out examples\n"
       "  and prints a JSON summary as the last stdout line. Ctrl-C stops cleanly\n"
       "  (the model is still saved). See docs/training.md.",
       {"train_command.cc",
        "common_flags.cc:seed,max_history,progress_seconds,servers,server_threads,optimizer,"
        "spill_dir,workers,staleness",
        nullptr},
       RunTrain},
      {"supervise",
       "run a training job and restart it from its newest checkpoint when it fails",
       "vrec supervise [--restarts=3] -- COMMAND...\n"
       "  Runs COMMAND (e.g. mpirun ... vrec train ... --checkpoint_dir=C\n"
       "  --checkpoint_every=10m). When it fails (a rank lost, frozen or killed), runs\n"
       "  it again with --resume, up to --restarts times: training continues from the\n"
       "  newest complete checkpoint, no example trained twice or skipped. Ctrl-C or\n"
       "  SIGTERM stop the job and the supervision. Exits with the job's last code.\n"
       "  See docs/operations.md.",
       {"supervise_command.cc", nullptr},
       RunSupervise},
      {"eval",
       "evaluate a trained model on a dataset's held-out examples",
       "vrec eval --model_dir=M --data=DIR [--exclude_watched] [--eval_examples=N]\n"
       "          [--dump=FILE [--dump_top=10]]\n"
       "  Candidate generation: recall@{1,10,50,100} and MAP over the whole corpus,\n"
       "  beside the popularity baseline and (generated data) the oracle. The last\n"
       "  stdout line is one JSON object. --dump writes each held-out example's\n"
       "  label rank and top videos, in the dataset's own ids.",
       {"train_command.cc", nullptr},
       RunEval},
      {"export",
       "export a trained model into a serving bundle (models, corpus, ANN index)",
       "vrec export --checkpoint=D [--ranking=R] --out=E [--data=DIR] [--index=auto]\n"
       "  D and R: a checkpoint folder, a --checkpoint_dir (its newest complete\n"
       "  checkpoint) or a trained-model folder. Writes E with the tower weights and\n"
       "  embeddings, the corpus, a faiss inner-product index (its recall@100\n"
       "  against exact search measured on held-out users and recorded) and a\n"
       "  manifest, then prints the manifest as JSON. See docs/serving.md.",
       {"export_command.cc", "train_command.cc:data,model_dir", "common_flags.cc:out", nullptr},
       RunExport},
      {"serve",
       "serve recommendations over HTTP/JSON from an exported bundle",
       "vrec serve --model=E [--port=8080] [--host=127.0.0.1]\n"
       "  POST /v1/recommend {\"watch_history\": [ids, oldest first], \"search_tokens\": [...],\n"
       "  \"region\", \"device\", \"age\" (years), \"gender\" (0..1), \"num\"} returns\n"
       "  {\"items\": [{\"video\", \"score\", \"expected_watch_time\"}, ...]} best first;\n"
       "  GET /healthz; GET /metrics (Prometheus). A new bundle written into E is\n"
       "  loaded without a restart. See docs/serving.md.",
       {"serve_command.cc", nullptr},
       RunServe},
      {"bench",
       "run a benchmark: vrec bench NAME (datagen, ...)",
       "vrec bench NAME [flags]\n"
       "  Prints one JSON object per result, with the commit and the machine.",
       {"benchmarks/",
        "common_flags.cc:servers,server_threads,optimizer,spill_dir,workers,staleness,seconds",
        nullptr},
       RunBench},
  };
  return kCommands;
}

}  // namespace vrec::cli
