// What training reads besides the parameters: the video corpus of a dataset
// and each worker's stream of examples.
//
// Corpus: the videos a candidate model ranks: DIR/videos.rec (written by
// `vrec datagen` and `vrec convert`), in file order; a video's class index
// is its position. Label counts (the unigram sampler's background and the
// popularity baseline) come from one pass over the training examples.
//
// ExampleStream: worker w of W reads the training files i with i % W == w
// when there are at least W files; otherwise every worker reads every file
// and keeps records r with r % W == w. Either way the slices are disjoint
// and cover the data. At the end of the data the stream starts the next
// epoch, up to `epochs` (0 = without end).
//
// Positions: every source reports where it stands (Position(): the next
// example it would return) and can be put back there (Seek()), so that a
// checkpointed worker resumes with exactly the examples it had not trained.
//
// Thread safety: Corpus is immutable after loading; a stream is used by one
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "data/record_reader.h"
#include "proto/checkpoint.pb.h"
#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec {

struct Corpus {
  std::vector<int64_t> ids;                     // class index -> video id
  absl::flat_hash_map<int64_t, int32_t> index;  // video id -> class index
  std::vector<double> label_counts;             // per class; empty unless counted
  uint64_t train_examples = 0;                  // counted with the labels

  int32_t IndexOf(int64_t id) const {
    auto it = index.find(id);
    return it == index.end() ? -1 : it->second;
  }
};

// kNotFound if the dataset has no videos.rec; kDataLoss for a corrupt file
// or duplicate video ids (naming the file). `visit`, if given, is called
// with every training example of the label-counting pass (count_labels, a
// dataset with training files), so that a caller needing its own pass over
// them need not read them again; its error ends the load.
StatusOr<Corpus> LoadCorpus(const std::string& data_dir, const DatasetManifest& manifest,
                            bool count_labels,
                            const std::function<Status(const CandidateExample&)>& visit = nullptr);

// Where a worker's examples come from.
template <typename Example>
class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  // The next example; false when the source is exhausted.
  virtual StatusOr<bool> Next(Example* example) = 0;
  virtual int epoch() const = 0;  // 0-based pass being read
  // Where the source stands: Seek(Position()) changes nothing.
  virtual SourcePosition Position() const = 0;
  // Continues from `position` (taken from a source over the same data, worker
  // slice and epochs). kInvalidArgument for a position this source cannot
  // have produced; I/O errors as Next.
  virtual Status Seek(const SourcePosition& position) = 0;
};

template <typename Example>
class ExampleStream : public ExampleSource<Example> {
 public:
  static StatusOr<std::unique_ptr<ExampleStream>> Open(std::vector<std::string> files, int worker,
                                                       int num_workers, int epochs);
  // The next example of this worker's slice; false once `epochs` are done.
  StatusOr<bool> Next(Example* example) override;
  int epoch() const override { return epoch_; }
  SourcePosition Position() const override;
  Status Seek(const SourcePosition& position) override;

 private:
  ExampleStream() = default;
  Status Restart();

  std::vector<std::string> files_;
  int keep_every_ = 1, keep_offset_ = 0;
  int epochs_ = 0, epoch_ = 0;
  uint64_t record_ = 0;
  std::unique_ptr<ShardedReader> reader_;
};

// Another source less the examples whose example_id is in `skip` (a
// validation slice carved out of the training data). Its position is the
// inner source's: seeking there and reading on skips the same examples.
template <typename Example>
class SkippingSource : public ExampleSource<Example> {
 public:
  // `skip` must outlive the source.
  SkippingSource(std::unique_ptr<ExampleSource<Example>> inner,
                 const absl::flat_hash_set<uint64_t>* skip)
      : inner_(std::move(inner)), skip_(skip) {}
  StatusOr<bool> Next(Example* example) override {
    while (true) {
      VREC_ASSIGN_OR_RETURN(bool more, inner_->Next(example));
      if (!more || !skip_->contains(example->example_id())) return more;
    }
  }
  int epoch() const override { return inner_->epoch(); }
  SourcePosition Position() const override { return inner_->Position(); }
  Status Seek(const SourcePosition& position) override { return inner_->Seek(position); }

 private:
  std::unique_ptr<ExampleSource<Example>> inner_;
  const absl::flat_hash_set<uint64_t>* skip_;
};

// Examples held in memory, cycled without end (benchmarks): worker w of W
// reads examples w, w + W, ...
template <typename Example>
class MemoryExamples : public ExampleSource<Example> {
 public:
  // `examples` must outlive the source. REQUIRES: non-empty, 0 <= w < W.
  MemoryExamples(const std::vector<Example>* examples, int worker, int num_workers)
      : examples_(examples), next_(static_cast<size_t>(worker)), step_(num_workers) {}
  StatusOr<bool> Next(Example* example) override {
    if (examples_->empty()) return false;
    if (next_ >= examples_->size()) {
      next_ %= examples_->size();
      ++epoch_;
    }
    *example = (*examples_)[next_];
    next_ += step_;
    return true;
  }
  int epoch() const override { return epoch_; }
  SourcePosition Position() const override {
    SourcePosition p;
    p.set_epoch(epoch_);
    p.set_next_index(next_);
    return p;
  }
  Status Seek(const SourcePosition& p) override {
    if (p.epoch() < 0 || p.next_index() >= examples_->size() + step_) {
      return absl::InvalidArgumentError(
          absl::StrCat("position ", p.next_index(), " is beyond ", examples_->size(), " examples"));
    }
    epoch_ = p.epoch();
    next_ = p.next_index();
    return absl::OkStatus();
  }

 private:
  const std::vector<Example>* examples_;
  size_t next_;
  size_t step_;
  int epoch_ = 0;
};

}  // namespace vrec
