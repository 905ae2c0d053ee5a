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

uint64_t StepToSee(uint64_t step, int64_t max_staleness) {
  const uint64_t lag = 1 + static_cast<uint64_t>(max_staleness < 0 ? 0 : max_staleness);
  return step > lag ? step - lag : 0;
}

bool MayPull(uint64_t step, int64_t max_staleness, uint64_t own_finished,
             uint64_t slowest_finished) {
  if (max_staleness < 0) return true;
  const uint64_t need = StepToSee(step, max_staleness);
  return own_finished >= need && slowest_finished >= need;
}

void PipelinedWorker::Restore(const WorkerProgress& progress) {
  const int32_t worker = progress_.worker();
  progress_ = progress;
  progress_.set_worker(worker);
  progress_.set_done(false);
  progress_.set_paused(false);
  progress_.clear_error_code();
  progress_.clear_error();
  examples_read_ = progress.examples() + progress.skipped();
  batches_read_ = progress.steps();
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
  const int64_t staleness = options.max_staleness;
  const bool bounded = staleness >= 0;
  auto last_report = start;
  int last_epoch = Position().epoch();
  std::FILE* log = nullptr;
  if (!options.example_log.empty()) {
    log = std::fopen(options.example_log.c_str(), "a");
    if (log == nullptr) return ErrnoStatus(errno, "opening example log " + options.example_log);
  }
  std::vector<uint64_t> ids;
  // The steps whose pushes the servers have acknowledged: all the trained
  // ones after a restore (a checkpoint holds their effect).
  uint64_t finished = progress_.steps();
  auto snapshot = [&] {
    progress_.set_seconds(seconds_before + Since(start));
    *progress_.mutable_position() = Position();
  };
  auto finish = [&](Status status) {
    Status s = WaitPushes();
    if (status.ok()) status = s;
    if (bounded) {
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
  auto pause_requested = [&] { return options.pause_requested && options.pause_requested(); };
  auto read = [&](int slot) -> StatusOr<bool> {
    StatusOr<bool> have = ReadSlot(slot);
    if (have.ok() && *have) ++batches_read_;
    return have;
  };
  // Whether the pulls of `step` (the one after the next to compute) may go
  // now, before the next step computes: always when asynchronous; under
  // bounded staleness, when the clock already allows it.
  auto may_pull_ahead = [&](uint64_t step) -> StatusOr<bool> {
    if (!bounded) return true;
    if (StepToSee(step, staleness) > progress_.steps()) return false;  // this worker first
    if (finished < progress_.steps()) {
      VREC_RETURN_IF_ERROR(WaitPushes());  // Compute waits for them anyway
      finished = progress_.steps();
    }
    VREC_ASSIGN_OR_RETURN(uint64_t slowest, client->ReportClock(finished));
    return MayPull(step, staleness, finished, slowest);
  };
  // The next batch, when it was not read ahead: waits for this worker's
  // pushes, pauses if asked to, waits until every worker has finished the
  // steps the pulls of `step` must see (pausing if asked to meanwhile: a
  // paused worker keeps its place on the clock, and the others pause before
  // they need it to move), then reads the batch into `slot` and sends its
  // pulls. False when the data has ended or the worker is stopping.
  auto read_and_pull = [&](int slot, uint64_t step, bool pausing) -> StatusOr<bool> {
    VREC_RETURN_IF_ERROR(WaitPushes());
    finished = progress_.steps();
    bool asked = false;
    auto give_up = [&] {
      asked = pause_requested();
      return asked || stopping();
    };
    while (true) {
      if (pausing) {
        snapshot();
        progress_.set_paused(true);
        Status s = options.paused(progress_);
        progress_.set_paused(false);
        VREC_RETURN_IF_ERROR(s);
      }
      if (stopping()) return false;
      if (!bounded) break;
      VREC_ASSIGN_OR_RETURN(bool reached,
                            client->WaitForClock(finished, StepToSee(step, staleness), give_up));
      if (reached) break;
      pausing = asked;
    }
    VREC_ASSIGN_OR_RETURN(bool have, read(slot));
    if (have) PullSlot(slot);
    return have;
  };

  int current = 0;
  StatusOr<bool> have = read_and_pull(current, progress_.steps() + 1, false);
  if (!have.ok()) return finish(have.status());
  while (*have) {
    const uint64_t step = progress_.steps() + 1;  // the one the current batch trains
    const bool pausing = pause_requested();
    // The next batch is read and pulled ahead, overlapping this step, when
    // the consistency model allows it already.
    bool ahead = false;
    StatusOr<bool> have_next = false;
    if (!pausing && !stopping()) {
      StatusOr<bool> may = may_pull_ahead(step + 1);
      if (!may.ok()) return finish(may.status());
      ahead = *may;
      if (ahead) {
        have_next = read(1 - current);
        if (!have_next.ok()) return finish(have_next.status());
        if (*have_next) PullSlot(1 - current);
      }
    }
    double loss = 0;
    int examples = 0;
    if (Status s = ComputeSlot(current, &loss, &examples); !s.ok()) return finish(s);
    progress_.set_examples(progress_.examples() + static_cast<uint64_t>(examples));
    progress_.set_steps(step);
    progress_.set_loss_sum(progress_.loss_sum() + loss);
    client->set_step(step);
    if (log != nullptr) {
      ExampleIds(current, &ids);
      std::string line = absl::StrCat(progress_.worker(), " ", step);
      for (uint64_t id : ids) absl::StrAppend(&line, " ", id);
      line.push_back('\n');
      std::fwrite(line.data(), 1, line.size(), log);
      std::fflush(log);
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
    if (!ahead) {
      have_next = read_and_pull(1 - current, step + 1, pausing);
      if (!have_next.ok()) return finish(have_next.status());
    }
    current = 1 - current;
    have = have_next;
  }
  return finish(absl::OkStatus());
}

}  // namespace vrec::train
