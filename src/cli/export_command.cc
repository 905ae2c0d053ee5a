// `vrec export`: a trained model (checkpoint or model folder) into a serving
// bundle (src/serve/bundle.h, docs/serving.md). The last stdout line is the
// bundle's manifest as JSON.
#include <gflags/gflags.h>

#include <iostream>

#include "cli/command.h"
#include "google/protobuf/util/json_util.h"
#include "serve/bundle.h"

DECLARE_string(data);
DECLARE_string(model_dir);
DECLARE_string(out);  // shared (common_flags.cc): the bundle folder, replaced atomically
DEFINE_string(checkpoint, "",
              "The candidate-generation model: a checkpoint folder, a --checkpoint_dir (its "
              "newest complete checkpoint) or a trained-model folder (--model_dir works too)");
DEFINE_string(ranking, "",
              "The ranking model, in any of the same forms (optional: without it candidates are "
              "ranked by their retrieval score)");
DEFINE_string(index, "auto",
              "Index over the video vectors: auto (exact up to 20k videos, IVF beyond), flat, hnsw "
              "or ivf");
DEFINE_uint64(recall_queries, 1000,
              "Held-out users whose recall@100 against exact search is measured and recorded");

namespace vrec::cli {

int RunExport(int argc, char** argv) {
  if (argc > 1) {
    std::cerr << "vrec export: unexpected argument '" << argv[1] << "'; see `vrec export --help`\n";
    return kExitUsage;
  }
  serve::ExportOptions o;
  o.candidate = !FLAGS_checkpoint.empty() ? FLAGS_checkpoint : FLAGS_model_dir;
  o.ranking = FLAGS_ranking;
  o.data_dir = FLAGS_data;
  o.out = FLAGS_out;
  o.index = FLAGS_index;
  o.recall_queries = FLAGS_recall_queries;
  if (o.candidate.empty() || o.out.empty()) {
    std::cerr << "vrec export: --checkpoint (or --model_dir) and --out are required; see "
                 "`vrec export --help`\n";
    return kExitUsage;
  }
  auto bundle = serve::ExportBundle(o);
  if (!bundle.ok()) {
    std::cerr << "vrec export: " << bundle.status() << "\n";
    return absl::IsInvalidArgument(bundle.status()) ? kExitUsage : kExitFailure;
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions jo;
  jo.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(*bundle, &json, jo);
  std::cout << json << std::endl;
  return kExitOk;
}

}  // namespace vrec::cli
