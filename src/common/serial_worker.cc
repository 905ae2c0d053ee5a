#include "common/serial_worker.h"

#include <utility>

#include "common/thread_cpu.h"

namespace vrec {

SerialWorker::SerialWorker(const std::string& name) : thread_([this] { Run(); }) {
  SetThreadName(thread_.native_handle(), name);
}

SerialWorker::~SerialWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

void SerialWorker::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
    ++submitted_;
  }
  work_cv_.notify_one();
}

void SerialWorker::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = submitted_;
  done_cv_.wait(lock, [&] { return finished_ >= target; });
}

uint64_t SerialWorker::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return submitted_ - finished_;
}

void SerialWorker::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything has run
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // release what it captured before reporting it done
    lock.lock();
    ++finished_;
    done_cv_.notify_all();
  }
}

}  // namespace vrec
