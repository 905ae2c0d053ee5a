#include "train/liveness.h"

#include <atomic>
#include <thread>

#include "net/fault_proxy.h"
#include "testutil/testutil.h"

namespace vrec::train {
namespace {

using std::chrono::milliseconds;

LivenessOptions Fast(std::atomic<int>* calls) {
  LivenessOptions o;
  o.interval_seconds = 0.05;
  o.timeout_seconds = 0.5;
  o.on_lost = [calls](const Status&) { calls->fetch_add(1); };
  return o;
}

TEST(LivenessTest, AnsweringPeersAreNotLostAndASilentOneIsNamed) {
  ASSERT_OK_AND_ASSIGN(net::DataPlaneKeys keys, net::GenerateDataPlaneKeys());
  ASSERT_OK_AND_ASSIGN(auto a, LivenessEndpoint::Start("tcp://127.0.0.1:*", keys, "worker 0"));
  ASSERT_OK_AND_ASSIGN(auto b, LivenessEndpoint::Start("tcp://127.0.0.1:*", keys, "server 0"));
  std::atomic<int> calls{0};
  ASSERT_OK_AND_ASSIGN(
      auto watch, LivenessWatch::Start({{"worker 0 (rank 2 on host h)", a->endpoint()},
                                        {"parameter server 0 (rank 1 on host h)", b->endpoint()}},
                                       keys, Fast(&calls)));
  std::this_thread::sleep_for(milliseconds(1200));  // over twice the timeout
  EXPECT_OK(watch->lost());
  EXPECT_EQ(calls.load(), 0);

  b.reset();  // the server's process gone
  for (int i = 0; i < 100 && watch->lost().ok(); ++i) std::this_thread::sleep_for(milliseconds(20));
  EXPECT_THAT(watch->lost(), StatusIs(absl::StatusCode::kDeadlineExceeded,
                                      "parameter server 0 (rank 1 on host h) has not answered"));
  std::this_thread::sleep_for(milliseconds(600));
  EXPECT_EQ(calls.load(), 1) << "on_lost is called once";
}

// A peer that never answered (nothing at its endpoint), or one with another
// job's keys, is lost too.
TEST(LivenessTest, APeerWithoutTheJobsKeysIsLost) {
  ASSERT_OK_AND_ASSIGN(net::DataPlaneKeys keys, net::GenerateDataPlaneKeys());
  ASSERT_OK_AND_ASSIGN(net::DataPlaneKeys other, net::GenerateDataPlaneKeys());
  ASSERT_OK_AND_ASSIGN(auto stranger,
                       LivenessEndpoint::Start("tcp://127.0.0.1:*", other, "a stranger"));
  std::atomic<int> calls{0};
  ASSERT_OK_AND_ASSIGN(
      auto watch, LivenessWatch::Start({{"worker 3", stranger->endpoint()}}, keys, Fast(&calls)));
  for (int i = 0; i < 100 && watch->lost().ok(); ++i) std::this_thread::sleep_for(milliseconds(20));
  EXPECT_THAT(watch->lost(), StatusIs(absl::StatusCode::kDeadlineExceeded, "worker 3"));
  EXPECT_EQ(calls.load(), 1);
}

// A peer whose process is frozen keeps its connections; nothing comes back
// (net::FaultProxy's silence). Slow answers within the timeout are not a loss.
TEST(LivenessTest, ASlowPeerIsAliveAndAFrozenOneIsLost) {
  ASSERT_OK_AND_ASSIGN(auto peer,
                       LivenessEndpoint::Start("tcp://127.0.0.1:*", net::DataPlaneKeys{}, "w"));
  net::FaultOptions slow;
  slow.delay = milliseconds(150);  // each way: 0.3 s of the 0.5 s timeout
  ASSERT_OK_AND_ASSIGN(auto proxy, net::FaultProxy::Start(peer->endpoint(), slow));
  std::atomic<int> calls{0};
  ASSERT_OK_AND_ASSIGN(auto watch, LivenessWatch::Start({{"worker 1", proxy->endpoint()}},
                                                        net::DataPlaneKeys{}, Fast(&calls)));
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_OK(watch->lost());
  net::FaultOptions frozen;
  frozen.silent = true;
  proxy->set_options(frozen);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100 && watch->lost().ok(); ++i) std::this_thread::sleep_for(milliseconds(20));
  EXPECT_THAT(watch->lost(), StatusIs(absl::StatusCode::kDeadlineExceeded, "worker 1"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1500));
}

}  // namespace
}  // namespace vrec::train
