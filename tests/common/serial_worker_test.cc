#include "common/serial_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace vrec {
namespace {

TEST(SerialWorkerTest, RunsTasksInSubmissionOrderOnOneThread) {
  std::vector<int> order;  // touched only by the worker, read after Drain
  std::thread::id runner;
  bool one_thread = true;
  SerialWorker worker("test-worker");
  for (int i = 0; i < 1000; ++i) {
    worker.Submit([&, i] {
      if (i == 0) runner = std::this_thread::get_id();
      one_thread = one_thread && runner == std::this_thread::get_id();
      order.push_back(i);
    });
  }
  worker.Drain();
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[i], i);
  EXPECT_TRUE(one_thread);
  EXPECT_NE(runner, std::this_thread::get_id());
  EXPECT_EQ(worker.pending(), 0u);
}

TEST(SerialWorkerTest, DrainWaitsForATaskStillRunning) {
  SerialWorker worker("test-worker");
  std::atomic<bool> started{false}, finished{false};
  worker.Submit([&] {
    started = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished = true;
  });
  while (!started) std::this_thread::yield();
  EXPECT_EQ(worker.pending(), 1u);
  worker.Drain();
  EXPECT_TRUE(finished);
}

TEST(SerialWorkerTest, DestructorRunsEverythingSubmitted) {
  auto count = std::make_shared<std::atomic<int>>(0);
  {
    SerialWorker worker("test-worker");
    worker.Submit([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); });
    for (int i = 0; i < 100; ++i) worker.Submit([count] { ++*count; });
  }
  EXPECT_EQ(count->load(), 100);
}

TEST(SerialWorkerTest, SubmittersOnManyThreadsKeepTheirOwnOrder) {
  constexpr int kThreads = 4, kTasks = 500;
  std::vector<std::vector<int>> seen(kThreads);  // per submitter, written by the worker
  SerialWorker worker("test-worker");
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kTasks; ++i) worker.Submit([&, t, i] { seen[t].push_back(i); });
    });
  }
  for (auto& s : submitters) s.join();
  worker.Drain();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kTasks));
    for (int i = 0; i < kTasks; ++i) EXPECT_EQ(seen[t][i], i);
  }
}

}  // namespace
}  // namespace vrec
