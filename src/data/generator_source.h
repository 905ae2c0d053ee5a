// Training examples simulated on the fly from a generated dataset's world,
// for runs larger than the disk (`vrec train --stream`).
//
// A dataset written by `vrec datagen` describes its world and generator in
// truth.json ("world", "generator"); GeneratedWorld rebuilds both, and each
// worker's GeneratorSource simulates users w, w + W, w + 2W, ... with
// data::UserSimulator, keeping their training examples (test examples stay
// in the dataset's files, for evaluation). A user's simulation depends only
// on (seed, user), so a pass over every user yields exactly the examples
// datagen wrote to the training files, in another order; the next epoch
// repeats it. Nothing is written to disk.
//
// Thread safety: a GeneratedWorld is immutable and shared by all sources of
// a process; a GeneratorSource is used by one thread.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "data/example_source.h"
#include "data/generator.h"
#include "data/world.h"

namespace vrec {

struct GeneratedWorld {
  std::unique_ptr<World> world;
  GeneratorOptions generator;
  std::vector<bool> test_users;

  // kNotFound if the dataset has no truth.json (it was not generated);
  // kDataLoss if truth.json lacks the world's description.
  static StatusOr<std::shared_ptr<const GeneratedWorld>> Load(const std::string& data_dir,
                                                              const DatasetManifest& manifest);
};

template <typename Example>
class GeneratorSource : public ExampleSource<Example> {
 public:
  GeneratorSource(std::shared_ptr<const GeneratedWorld> world, int worker, int num_workers,
                  int epochs);
  ~GeneratorSource() override;
  StatusOr<bool> Next(Example* example) override;
  int epoch() const override { return epoch_; }
  SourcePosition Position() const override;
  Status Seek(const SourcePosition& position) override;

 private:
  class Sink;
  std::shared_ptr<const GeneratedWorld> world_;
  std::unique_ptr<UserSimulator> simulator_;
  std::unique_ptr<Sink> sink_;
  int64_t first_user_, step_;
  int64_t next_user_;
  int epochs_, epoch_ = 0;
};

}  // namespace vrec
