// SerialWorker: one background thread that runs submitted tasks one at a
// time, in the order they were submitted.
//
// Used where work must leave a latency-critical thread but keep its order
// (the parameter server's spill writes: a newer record of a row must never
// land before an older one). Tasks must not throw and must not call
// Submit/Drain on the worker that runs them.
//
// The destructor runs every task already submitted, then joins the thread.
//
// Thread safety: Submit and Drain may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace vrec {

class SerialWorker {
 public:
  // `name` is the thread's name as tools show it (at most 15 characters).
  explicit SerialWorker(const std::string& name);
  ~SerialWorker();
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  void Submit(std::function<void()> task);

  // Returns once every task submitted before the call has finished.
  void Drain();

  // Tasks submitted and not yet finished.
  uint64_t pending() const;

 private:
  void Run();

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // a task arrived, or stopping
  std::condition_variable done_cv_;  // a task finished
  std::deque<std::function<void()>> queue_;
  uint64_t submitted_ = 0, finished_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vrec
