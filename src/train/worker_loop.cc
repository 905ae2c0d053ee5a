#include "train/worker_loop.h"

#include <chrono>

namespace vrec::train {
namespace {
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

Status PipelinedWorker::WaitPushes() {
  Status first;
  for (ps::PsRequest& r : pushes_) {
    Status s = r.Wait();
    if (first.ok()) first = s;
  }
  pushes_.clear();
  return first;
}

Status PipelinedWorker::RunLoop(const WorkerLoopOptions& options, ps::PsClient* client,
                                const std::atomic<bool>* stop,
                                const std::function<void(const WorkerProgress&)>& report) {
  const auto start = Clock::now();
  auto last_report = start;
  auto finish = [&](Status status) {
    Status s = WaitPushes();
    if (status.ok()) status = s;
    if (options.max_staleness >= 0) {
      s = client->LeaveClock();
      if (status.ok()) status = s;
    }
    progress_.seconds = Since(start);
    progress_.epoch = Epoch();
    progress_.done = true;
    report(progress_);
    return status;
  };
  auto stopping = [&] {
    return (stop != nullptr && stop->load(std::memory_order_relaxed)) ||
           (options.max_seconds > 0 && Since(start) >= options.max_seconds);
  };
  int current = 0;
  StatusOr<bool> have = PrepareSlot(current);
  if (!have.ok()) return finish(have.status());
  while (*have) {
    StatusOr<bool> have_next = stopping() ? StatusOr<bool>(false) : PrepareSlot(1 - current);
    if (!have_next.ok()) return finish(have_next.status());
    double loss = 0;
    int examples = 0;
    if (Status s = ComputeSlot(current, &loss, &examples); !s.ok()) return finish(s);
    progress_.examples += static_cast<uint64_t>(examples);
    progress_.steps += 1;
    progress_.loss_sum += loss;
    client->set_step(progress_.steps);
    if (options.max_staleness >= 0) {
      if (Status s = WaitPushes(); !s.ok()) return finish(s);
      Status w =
          client->WaitForStaleness(progress_.steps, static_cast<uint64_t>(options.max_staleness));
      if (!w.ok()) return finish(w);
    }
    if (Since(last_report) >= options.report_seconds) {
      last_report = Clock::now();
      progress_.seconds = Since(start);
      progress_.epoch = Epoch();
      report(progress_);
    }
    current = 1 - current;
    have = have_next;
  }
  return finish(absl::OkStatus());
}

}  // namespace vrec::train
