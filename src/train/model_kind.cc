#include "train/model_kind.h"

#include "absl/strings/str_cat.h"
#include "data/dataset.h"

namespace vrec::train {

StatusOr<const ModelKind*> FindModelKind(const std::string& name) {
  for (const ModelKind* kind : {&CandidateKind(), &RankingKind()}) {
    if (name == kind->name()) return kind;
  }
  return absl::InvalidArgumentError(absl::StrCat("--model=", name, ": use ", CandidateKind().name(),
                                                 " or ", RankingKind().name()));
}

template <typename Example>
StatusOr<std::unique_ptr<ExampleSource<Example>>> OpenWorkerSource(
    const WorkerRun& run, const google::protobuf::RepeatedPtrField<ShardInfo>& shards) {
  std::unique_ptr<ExampleSource<Example>> source;
  const int epochs = run.options->epochs;
  if (run.data->world != nullptr) {
    source = std::make_unique<GeneratorSource<Example>>(run.data->world, run.worker,
                                                        run.num_workers, epochs);
  } else {
    VREC_ASSIGN_OR_RETURN(
        source, ExampleStream<Example>::Open(ShardPaths(run.data->dir, shards), run.worker,
                                             run.num_workers, epochs));
  }
  if (run.data->held_out != nullptr && !run.data->held_out->empty()) {
    source = std::make_unique<SkippingSource<Example>>(std::move(source), run.data->held_out.get());
  }
  if (run.resume != nullptr) VREC_RETURN_IF_ERROR(source->Seek(run.resume->position()));
  return source;
}

template StatusOr<std::unique_ptr<ExampleSource<CandidateExample>>> OpenWorkerSource(
    const WorkerRun&, const google::protobuf::RepeatedPtrField<ShardInfo>&);
template StatusOr<std::unique_ptr<ExampleSource<RankingExample>>> OpenWorkerSource(
    const WorkerRun&, const google::protobuf::RepeatedPtrField<ShardInfo>&);

}  // namespace vrec::train
