#include "data/example_source.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/dataset.h"

namespace vrec {

StatusOr<Corpus> LoadCorpus(const std::string& data_dir, const DatasetManifest& manifest,
                            bool count_labels,
                            const std::function<Status(const CandidateExample&)>& visit) {
  if (manifest.videos().empty()) {
    return absl::NotFoundError(absl::StrCat("dataset ", data_dir,
                                            " lists no videos file; regenerate it with vrec "
                                            "datagen or vrec convert"));
  }
  Corpus corpus;
  const std::string path = JoinPath(data_dir, manifest.videos());
  // A dataset without training files (datagen --write_train=false) keeps its
  // label counts in videos.rec.
  const bool counts_in_videos = count_labels && manifest.train_streamed();
  if (counts_in_videos) corpus.train_examples = manifest.candidate_train_examples();
  {
    VREC_ASSIGN_OR_RETURN(auto reader, RecordReader::Open(path));
    VideoInfo v;
    while (true) {
      VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&v));
      if (!more) break;
      const int64_t id = static_cast<int64_t>(v.video_id());
      if (!corpus.index.emplace(id, static_cast<int32_t>(corpus.ids.size())).second) {
        return absl::DataLossError(absl::StrCat(path, ": video id ", id, " appears twice"));
      }
      corpus.ids.push_back(id);
      if (counts_in_videos) {
        corpus.label_counts.push_back(static_cast<double>(v.train_label_count()));
      }
    }
  }
  if (corpus.ids.empty()) return absl::DataLossError(absl::StrCat(path, ": no videos"));
  if (count_labels && !counts_in_videos) {
    corpus.label_counts.assign(corpus.ids.size(), 0.0);
    VREC_ASSIGN_OR_RETURN(auto reader,
                          ShardedReader::Open(ShardPaths(data_dir, manifest.candidate_train())));
    CandidateExample e;
    while (true) {
      VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&e));
      if (!more) break;
      ++corpus.train_examples;
      const int32_t k = corpus.IndexOf(static_cast<int64_t>(e.label_video()));
      if (k >= 0) corpus.label_counts[k] += 1;
      if (visit) VREC_RETURN_IF_ERROR(visit(e));
    }
  }
  return corpus;
}

template <typename Example>
StatusOr<std::unique_ptr<ExampleStream<Example>>> ExampleStream<Example>::Open(
    std::vector<std::string> files, int worker, int num_workers, int epochs) {
  if (num_workers < 1 || worker < 0 || worker >= num_workers) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker ", worker, " of ", num_workers, " is out of range"));
  }
  if (files.empty()) return absl::InvalidArgumentError("no training files");
  std::unique_ptr<ExampleStream> s(new ExampleStream());
  if (static_cast<int>(files.size()) >= num_workers) {
    s->files_ = FilesForWorker(files, worker, num_workers);
  } else {
    s->files_ = std::move(files);
    s->keep_every_ = num_workers;
    s->keep_offset_ = worker;
  }
  s->epochs_ = epochs;
  VREC_RETURN_IF_ERROR(s->Restart());
  return s;
}

template <typename Example>
Status ExampleStream<Example>::Restart() {
  VREC_ASSIGN_OR_RETURN(reader_, ShardedReader::Open(files_));
  record_ = 0;
  return absl::OkStatus();
}

template <typename Example>
StatusOr<bool> ExampleStream<Example>::Next(Example* example) {
  bool restarted = false;
  while (true) {
    if (epochs_ > 0 && epoch_ >= epochs_) return false;
    VREC_ASSIGN_OR_RETURN(bool more, reader_->NextMessage(example));
    if (!more) {
      if (restarted) return false;  // an empty slice: nothing to train on
      ++epoch_;
      if (epochs_ > 0 && epoch_ >= epochs_) return false;
      VREC_RETURN_IF_ERROR(Restart());
      restarted = true;
      continue;
    }
    const uint64_t r = record_++;
    if (static_cast<int>(r % keep_every_) == keep_offset_) return true;
  }
}

template <typename Example>
SourcePosition ExampleStream<Example>::Position() const {
  SourcePosition p;
  p.set_epoch(epoch_);
  const DataPosition d = reader_->position();
  p.set_shard(d.shard);
  p.set_offset(d.offset);
  p.set_record(record_);
  return p;
}

template <typename Example>
Status ExampleStream<Example>::Seek(const SourcePosition& p) {
  if (p.epoch() < 0 || p.shard() > files_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("data position (epoch ", p.epoch(), ", file ",
                                                   p.shard(), ") is outside this worker's ",
                                                   files_.size(), " files"));
  }
  VREC_ASSIGN_OR_RETURN(reader_, ShardedReader::Open(files_, DataPosition{p.shard(), p.offset()}));
  epoch_ = p.epoch();
  record_ = p.record();
  return absl::OkStatus();
}

template class ExampleStream<CandidateExample>;
template class ExampleStream<RankingExample>;

}  // namespace vrec
