#include "train/progress_tracker.h"

#include "testutil/testutil.h"

namespace vrec::train {
namespace {

// --max_seconds bounds this launch, as the workers count it: after a resume
// of a run that trained 1,000 s, a 120 s limit leaves about 120 s, not a
// negative time (issue 20: "--max_seconds and the ETA agree after a resume").
TEST(ProgressTrackerTest, TheEtaOfAResumedRunCountsMaxSecondsFromThisLaunch) {
  CheckpointManifest resumed;
  resumed.mutable_model()->set_train_seconds(1000);
  WorkerProgress* w = resumed.add_workers();
  w->set_worker(0);
  w->set_examples(5000);
  ProgressTrackerOptions o;
  o.max_seconds = 120;
  ProgressTracker tracker(o, 1, &resumed);
  EXPECT_GE(tracker.seconds(), 1000.0);  // the elapsed time still counts the runs before
  WorkerProgress p = *w;
  p.set_examples(6000);
  tracker.Update(p);
  ::testing::internal::CaptureStderr();
  tracker.MaybeReport(/*force=*/true);
  const std::string line = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(line, ::testing::HasSubstr("ETA 2m00s")) << line;
}

}  // namespace
}  // namespace vrec::train
