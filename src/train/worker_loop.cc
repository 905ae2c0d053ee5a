#include "train/worker_loop.h"

#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace vrec::train {
namespace {
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

void PipelinedWorker::Restore(const WorkerProgress& progress) {
  const int32_t worker = progress_.worker();
  progress_ = progress;
  progress_.set_worker(worker);
  progress_.set_done(false);
  progress_.set_paused(false);
  progress_.clear_error_code();
  progress_.clear_error();
  examples_read_ = progress.examples() + progress.skipped();
  batches_prepared_ = progress.steps();
}

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
  const double seconds_before = progress_.seconds();  // from a checkpoint
  auto last_report = start;
  int last_epoch = Position().epoch();
  std::FILE* log = nullptr;
  if (!options.example_log.empty()) {
    log = std::fopen(options.example_log.c_str(), "a");
    if (log == nullptr) return ErrnoStatus(errno, "opening example log " + options.example_log);
  }
  std::vector<uint64_t> ids;
  auto snapshot = [&] {
    progress_.set_seconds(seconds_before + Since(start));
    *progress_.mutable_position() = Position();
  };
  auto finish = [&](Status status) {
    Status s = WaitPushes();
    if (status.ok()) status = s;
    if (options.max_staleness >= 0) {
      s = client->LeaveClock();
      if (status.ok()) status = s;
    }
    if (log != nullptr) std::fclose(log);
    snapshot();
    progress_.set_done(true);
    if (!status.ok()) {
      progress_.set_error_code(static_cast<int32_t>(status.code()));
      progress_.set_error(std::string(status.message()));
    }
    report(progress_);
    return status;
  };
  auto stopping = [&] {
    return (stop != nullptr && stop->load(std::memory_order_relaxed)) ||
           (options.max_seconds > 0 && Since(start) >= options.max_seconds);
  };
  auto prepare = [&](int slot) -> StatusOr<bool> {
    StatusOr<bool> have = PrepareSlot(slot);
    if (have.ok() && *have) ++batches_prepared_;
    return have;
  };
  int current = 0;
  StatusOr<bool> have = stopping() ? StatusOr<bool>(false) : prepare(current);
  if (!have.ok()) return finish(have.status());
  while (*have) {
    const bool pausing = options.pause_requested && options.pause_requested();
    StatusOr<bool> have_next = stopping() || pausing ? StatusOr<bool>(false) : prepare(1 - current);
    if (!have_next.ok()) return finish(have_next.status());
    double loss = 0;
    int examples = 0;
    if (Status s = ComputeSlot(current, &loss, &examples); !s.ok()) return finish(s);
    progress_.set_examples(progress_.examples() + static_cast<uint64_t>(examples));
    progress_.set_steps(progress_.steps() + 1);
    progress_.set_loss_sum(progress_.loss_sum() + loss);
    client->set_step(progress_.steps());
    if (log != nullptr) {
      ExampleIds(current, &ids);
      std::string line = absl::StrCat(progress_.worker(), " ", progress_.steps());
      for (uint64_t id : ids) absl::StrAppend(&line, " ", id);
      line.push_back('\n');
      std::fwrite(line.data(), 1, line.size(), log);
      std::fflush(log);
    }
    if (options.max_staleness >= 0) {
      if (Status s = WaitPushes(); !s.ok()) return finish(s);
      Status w =
          client->WaitForStaleness(progress_.steps(), static_cast<uint64_t>(options.max_staleness));
      if (!w.ok()) return finish(w);
    }
    // About every report_seconds, and as soon as the data starts a new epoch
    // (the coordinator validates once per epoch).
    const int epoch = Position().epoch();
    if (Since(last_report) >= options.report_seconds || epoch != last_epoch) {
      last_report = Clock::now();
      last_epoch = epoch;
      snapshot();
      report(progress_);
    }
    if (pausing) {
      if (Status s = WaitPushes(); !s.ok()) return finish(s);
      if (options.max_staleness >= 0) {
        if (Status s = client->LeaveClock(); !s.ok()) return finish(s);
      }
      snapshot();
      progress_.set_paused(true);
      Status s = options.paused(progress_);
      progress_.set_paused(false);
      if (!s.ok()) return finish(s);
      if (options.max_staleness >= 0) {
        if (Status r = client->RejoinClock(progress_.steps()); !r.ok()) return finish(r);
      }
      have_next = stopping() ? StatusOr<bool>(false) : prepare(1 - current);
      if (!have_next.ok()) return finish(have_next.status());
    }
    current = 1 - current;
    have = have_next;
  }
  return finish(absl::OkStatus());
}

}  // namespace vrec::train
