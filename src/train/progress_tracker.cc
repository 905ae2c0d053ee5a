#include "train/progress_tracker.h"

#include <algorithm>
#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "glog/logging.h"
#include "net/transport.h"
#include "ps/ps_client.h"
#include "ps/slot_router.h"

namespace vrec::train {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string Human(double x) {
  if (x >= 1e6) return absl::StrFormat("%.2fM", x / 1e6);
  if (x >= 1e3) return absl::StrFormat("%.1fk", x / 1e3);
  return absl::StrFormat("%.0f", x);
}

std::string Duration(double s) {
  if (s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return absl::StrFormat("%dh%02dm", t / 3600, (t / 60) % 60);
  if (t >= 60) return absl::StrFormat("%dm%02ds", t / 60, t % 60);
  return absl::StrFormat("%ds", t);
}

}  // namespace

ProgressTracker::ProgressTracker(const ProgressTrackerOptions& options, int num_workers,
                                 const CheckpointManifest* resumed)
    : options_(options),
      workers_(num_workers),
      start_(Clock::now()),
      last_(start_),
      last_worker_examples_(num_workers, 0) {
  for (int w = 0; w < num_workers; ++w) workers_[w].set_worker(w);
  const std::string& path = options.metrics_file;
  if (resumed != nullptr) {
    for (const WorkerProgress& w : resumed->workers()) {
      if (w.worker() < 0 || w.worker() >= num_workers) continue;
      workers_[w.worker()] = w;
      workers_[w.worker()].set_done(false);
      last_worker_examples_[w.worker()] = w.examples();
    }
    last_examples_ = examples();
    last_steps_ = steps();
    for (const auto& w : workers_) last_loss_sum_ += w.loss_sum();
    seconds_before_ = resumed->model().train_seconds();
  }
  if (path.empty()) return;
  if (resumed != nullptr) {
    // The curve carries on from the checkpoint: records written after it
    // (by the run that stopped) are dropped.
    std::string kept;
    if (StatusOr<std::string> old = ReadFileToString(path); old.ok()) {
      size_t start = 0;
      while (start < old->size()) {
        size_t end = old->find('\n', start);
        if (end == std::string::npos) end = old->size();
        const std::string line = old->substr(start, end - start);
        start = end + 1;
        nlohmann::json rec = nlohmann::json::parse(line, nullptr, false);
        if (rec.is_discarded() || !rec.is_object()) continue;  // a torn last line
        if (rec.value("examples", uint64_t{0}) <= resumed->model().examples_trained()) {
          absl::StrAppend(&kept, line, "\n");
        }
      }
    }
    if (Status st = WriteFileAtomic(path, kept); !st.ok()) LOG(WARNING) << st;
    metrics_.open(path, std::ios::out | std::ios::app);
    return;
  }
  metrics_.open(path, std::ios::out | std::ios::trunc);
}

void ProgressTracker::Update(const WorkerProgress& p) {
  if (p.worker() < 0 || p.worker() >= static_cast<int>(workers_.size())) return;
  WorkerProgress& w = workers_[p.worker()];
  w = p;
  w.set_paused(false);
}

bool ProgressTracker::AllDone() const {
  for (const auto& w : workers_) {
    if (!w.done()) return false;
  }
  return true;
}

uint64_t ProgressTracker::examples() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w.examples();
  return n;
}

uint64_t ProgressTracker::steps() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w.steps();
  return n;
}

double ProgressTracker::seconds() const { return seconds_before_ + Since(start_); }

void ProgressTracker::MaybeReport(bool force) {
  double dt = Since(last_);
  if (!force && dt < options_.progress_seconds) return;
  const double t = seconds();
  // The final line after a short tail reports the whole run's rates (a
  // rate over a fraction of a second says nothing).
  if (force && dt < 1.0) {
    dt = t;
    last_examples_ = 0;
    std::fill(last_worker_examples_.begin(), last_worker_examples_.end(), 0);
  }
  const uint64_t ex = examples(), st = steps();
  double loss_sum = 0;
  for (const auto& w : workers_) loss_sum += w.loss_sum();
  if (st > last_steps_) recent_loss_ = (loss_sum - last_loss_sum_) / (st - last_steps_);
  const double rate = dt > 0 ? (ex - last_examples_) / dt : 0;
  std::string per_worker;
  nlohmann::json worker_rates = nlohmann::json::array();
  for (size_t w = 0; w < workers_.size(); ++w) {
    const double r = dt > 0 ? (workers_[w].examples() - last_worker_examples_[w]) / dt : 0;
    worker_rates.push_back(r);
    if (workers_.size() <= 8) absl::StrAppend(&per_worker, w ? " " : "", Human(r));
    last_worker_examples_[w] = workers_[w].examples();
  }
  double eta = -1;
  if (options_.target_examples > 0 && rate > 0) {
    eta = (static_cast<double>(options_.target_examples) - ex) / rate;
  }
  if (options_.max_seconds > 0) {
    // --max_seconds bounds this launch (a resumed run gets it anew), t
    // counts the runs before too.
    const double left = options_.max_seconds - Since(start_);
    eta = eta < 0 ? left : std::min(eta, left);
  }
  std::string line = absl::StrFormat("[train] %6.1fs  examples %s", t, Human(ex));
  if (options_.target_examples > 0) {
    absl::StrAppend(&line, absl::StrFormat(" (%.0f%%)", 100.0 * ex / options_.target_examples));
  }
  absl::StrAppend(&line, "  ", Human(rate), " ex/s");
  if (!per_worker.empty() && workers_.size() > 1) absl::StrAppend(&line, " [", per_worker, "]");
  absl::StrAppend(&line, absl::StrFormat("  loss %.4f", recent_loss_));
  if (eta >= 0) absl::StrAppend(&line, "  ETA ", Duration(eta));
  std::cerr << line << std::endl;
  if (metrics_.is_open()) {
    nlohmann::json rec = {{"time_s", t},          {"examples", ex},
                          {"steps", st},          {"examples_per_s", rate},
                          {"loss", recent_loss_}, {"worker_examples_per_s", worker_rates}};
    metrics_ << rec.dump() << "\n";
    metrics_.flush();
  }
  last_ = Clock::now();
  last_examples_ = ex;
  last_steps_ = st;
  last_loss_sum_ = loss_sum;
}

void ProgressTracker::RecordPsStats(const nlohmann::json& stats) {
  if (!metrics_.is_open()) return;
  nlohmann::json rec = {{"time_s", seconds()}, {"examples", examples()}, {"ps", stats}};
  metrics_ << rec.dump() << "\n";
  metrics_.flush();
}

void LogPsStats(const net::ServerSet& servers_at, ProgressTracker* tracker,
                nlohmann::json* previous) {
  auto transport = net::Client::Connect(servers_at);
  if (!transport.ok()) return;
  auto router = ps::SlotRouter::Contiguous(static_cast<uint32_t>(servers_at.size()));
  if (!router.ok()) return;
  ps::PsClient client(transport->get(), *router, 0);
  auto stats = client.Stats();
  if (!stats.ok()) {
    LOG(WARNING) << "parameter-server stats: " << stats.status();
    return;
  }
  nlohmann::json all = nlohmann::json::array();
  const double now = tracker->seconds();
  for (size_t s = 0; s < stats->size(); ++s) {
    nlohmann::json tables = nlohmann::json::parse((*stats)[s], nullptr, false);
    if (tables.is_discarded()) continue;
    uint64_t mem = 0, disk = 0, hits = 0, misses = 0, pulls = 0, pushes = 0, bytes = 0;
    std::vector<std::pair<uint64_t, std::string>> hot;
    for (const auto& t : tables) {
      mem += t.value("rows_in_memory", uint64_t{0});
      disk += t.value("rows_on_disk", uint64_t{0});
      hits += t.value("memory_hits", uint64_t{0});
      misses += t.value("disk_hits", uint64_t{0});
      pulls += t.value("pull_keys", uint64_t{0});
      pushes += t.value("push_keys", uint64_t{0});
      bytes += t.value("memory_bytes", uint64_t{0});
      for (const auto& h : t.value("hot_keys", nlohmann::json::array())) {
        hot.emplace_back(
            h.value("count", uint64_t{0}),
            absl::StrCat(t.value("table", std::string()), ":", h.value("key", uint64_t{0})));
      }
    }
    double pull_rate = 0, push_rate = 0;
    if (previous->is_array() && s < previous->size()) {
      const nlohmann::json& p = (*previous)[s];
      const double dt = now - p.value("time_s", 0.0);
      if (dt > 0) {
        pull_rate = (pulls - p.value("pull_keys", uint64_t{0})) / dt;
        push_rate = (pushes - p.value("push_keys", uint64_t{0})) / dt;
      }
    }
    std::sort(hot.rbegin(), hot.rend());
    std::string hottest;
    for (size_t i = 0; i < std::min<size_t>(3, hot.size()); ++i) {
      absl::StrAppend(&hottest, i ? " " : "", hot[i].second);
    }
    const double hit_rate = hits + misses > 0 ? static_cast<double>(hits) / (hits + misses) : 1.0;
    std::cerr << absl::StrFormat(
                     "[ps]    server %d: %s rows in memory (%.0f MB), %s on disk, memory hits "
                     "%.1f%%, %s keys/s pulled, %s pushed; hottest %s",
                     s, Human(mem), bytes / 1e6, Human(disk), 100 * hit_rate, Human(pull_rate),
                     Human(push_rate), hottest.empty() ? "-" : hottest)
              << std::endl;
    all.push_back({{"server", s},
                   {"time_s", now},
                   {"rows_in_memory", mem},
                   {"rows_on_disk", disk},
                   {"memory_bytes", bytes},
                   {"memory_hit_rate", hit_rate},
                   {"pull_keys", pulls},
                   {"push_keys", pushes},
                   {"pull_keys_per_s", pull_rate},
                   {"push_keys_per_s", push_rate},
                   {"tables", tables}});
  }
  tracker->RecordPsStats(all);
  *previous = all;
}

void ProgressTracker::Record(const char* key, const nlohmann::json& value) {
  if (!metrics_.is_open()) return;
  nlohmann::json rec = {{"time_s", seconds()}, {"examples", examples()}, {key, value}};
  metrics_ << rec.dump() << "\n";
  metrics_.flush();
}

void ProgressTracker::RecordEval(const nlohmann::json& eval) { Record("eval", eval); }

void ProgressTracker::RecordValidation(const nlohmann::json& validation) {
  Record("validation", validation);
}

}  // namespace vrec::train
