#include "data/event_sorter.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/random.h"

namespace vrec {
namespace {

constexpr size_t kRunBufferBytes = 256 << 10;  // stdio buffer of each run file

// A file opened for a run, closed on destruction.
struct File {
  FILE* f = nullptr;
  std::string path;
  ~File() {
    if (f != nullptr) fclose(f);
  }
  Status Open(const std::string& p, const char* mode) {
    path = p;
    f = fopen(p.c_str(), mode);
    if (f == nullptr) return ErrnoStatus(errno, absl::StrCat("cannot open sort run ", p));
    setvbuf(f, nullptr, _IOFBF, kRunBufferBytes);
    return absl::OkStatus();
  }
  Status Write(const void* data, size_t bytes) {
    if (bytes > 0 && fwrite(data, 1, bytes, f) != bytes) {
      return ErrnoStatus(errno, absl::StrCat("cannot write sort run ", path));
    }
    return absl::OkStatus();
  }
  // false at a clean end; an error for a cut file.
  StatusOr<bool> Read(void* data, size_t bytes) {
    const size_t got = fread(data, 1, bytes, f);
    if (got == bytes) return true;
    if (ferror(f)) return ErrnoStatus(errno, absl::StrCat("cannot read sort run ", path));
    if (got == 0) return false;
    return absl::DataLossError(absl::StrCat("sort run ", path, " is cut short"));
  }
  Status Close() {
    const int rc = fclose(f);
    f = nullptr;
    if (rc != 0) return ErrnoStatus(errno, absl::StrCat("cannot write sort run ", path));
    return absl::OkStatus();
  }
};

}  // namespace

// A run being merged: its next event (and that event's tokens).
struct EventSorter::Run {
  File file;
  LogEvent next;
  std::vector<uint64_t> next_tokens;
  StatusOr<bool> Advance() {
    VREC_ASSIGN_OR_RETURN(const bool more, file.Read(&next, sizeof(next)));
    if (!more) return false;
    next_tokens.resize(next.tokens);
    if (next.tokens > 0) {
      VREC_ASSIGN_OR_RETURN(const bool whole,
                            file.Read(next_tokens.data(), next.tokens * sizeof(uint64_t)));
      if (!whole) {
        return absl::DataLossError(absl::StrCat("sort run ", file.path, " is cut short"));
      }
    }
    return true;
  }
};

EventSorter::EventSorter(size_t memory_bytes, std::string spill_dir,
                         const std::vector<uint64_t>* user_ids, uint64_t seed)
    : memory_bytes_(std::max<size_t>(memory_bytes, 1 << 16)),
      spill_dir_(std::move(spill_dir)),
      user_ids_(user_ids),
      seed_(seed) {}

EventSorter::~EventSorter() {
  for (const std::string& run : runs_) ::unlink(run.c_str());
  if (!runs_.empty()) ::rmdir(spill_dir_.c_str());
}

bool EventSorter::Before(const LogEvent& a, const LogEvent& b) const {
  if (a.user != b.user) {
    const uint64_t ka = order_key_[a.user], kb = order_key_[b.user];
    return ka != kb ? ka < kb : a.user < b.user;
  }
  return a.time_ms < b.time_ms;
}

Status EventSorter::Add(const LogEvent& event, absl::Span<const uint64_t> tokens) {
  if (finished_) return absl::FailedPreconditionError("EventSorter::Add after Finish");
  if (tokens.size() != event.tokens) {
    return absl::InvalidArgumentError("EventSorter::Add: event.tokens != tokens.size()");
  }
  LogEvent e = event;
  if (e.tokens > 0) {
    e.item = static_cast<uint32_t>(tokens_.size());
    tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  }
  buffer_.push_back(e);
  ++events_;
  max_time_ms_ = std::max(max_time_ms_, e.time_ms);
  if (buffer_.size() * sizeof(LogEvent) + tokens_.size() * sizeof(uint64_t) >= memory_bytes_ ||
      tokens_.size() >= UINT32_MAX - 256) {
    return Spill();
  }
  return absl::OkStatus();
}

void EventSorter::SortBuffer() {
  for (size_t u = order_key_.size(); u < user_ids_->size(); ++u) {
    order_key_.push_back(HashCombine(seed_, (*user_ids_)[u]));
  }
  std::stable_sort(buffer_.begin(), buffer_.end(),
                   [this](const LogEvent& a, const LogEvent& b) { return Before(a, b); });
}

Status EventSorter::Spill() {
  if (buffer_.empty()) return absl::OkStatus();
  SortBuffer();
  if (runs_.empty()) VREC_RETURN_IF_ERROR(MakeDirs(spill_dir_));
  File file;
  VREC_RETURN_IF_ERROR(
      file.Open(JoinPath(spill_dir_, absl::StrCat("run-", runs_.size(), ".events")), "wb"));
  runs_.push_back(file.path);
  for (const LogEvent& e : buffer_) {
    VREC_RETURN_IF_ERROR(file.Write(&e, sizeof(e)));
    VREC_RETURN_IF_ERROR(file.Write(tokens_.data() + (e.tokens > 0 ? e.item : 0),
                                    e.tokens * sizeof(uint64_t)));
    spilled_bytes_ += sizeof(e) + e.tokens * sizeof(uint64_t);
  }
  VREC_RETURN_IF_ERROR(file.Close());
  buffer_.clear();
  tokens_.clear();
  return absl::OkStatus();
}

Status EventSorter::Finish() {
  if (finished_) return absl::OkStatus();
  finished_ = true;
  if (!runs_.empty()) {
    VREC_RETURN_IF_ERROR(Spill());
    buffer_.shrink_to_fit();
    tokens_.shrink_to_fit();
  } else {
    SortBuffer();
  }
  return absl::OkStatus();
}

Status EventSorter::ForEachUser(const std::function<Status(const UserEvents&)>& fn) {
  if (!finished_) return absl::FailedPreconditionError("EventSorter::ForEachUser before Finish");
  std::vector<LogEvent> events;
  std::vector<uint64_t> tokens;
  auto take = [&](const LogEvent& e, const uint64_t* t) {
    LogEvent copy = e;
    if (e.tokens > 0) {
      copy.item = static_cast<uint32_t>(tokens.size());
      tokens.insert(tokens.end(), t, t + e.tokens);
    }
    events.push_back(copy);
  };
  auto flush = [&]() -> Status {
    if (events.empty()) return absl::OkStatus();
    const Status s = fn({events.front().user, events, tokens});
    events.clear();
    tokens.clear();
    return s;
  };

  if (runs_.empty()) {  // all in memory
    for (const LogEvent& e : buffer_) {
      if (!events.empty() && events.front().user != e.user) VREC_RETURN_IF_ERROR(flush());
      take(e, tokens_.data() + (e.tokens > 0 ? e.item : 0));
    }
    return flush();
  }

  // k-way merge; ties between runs by run index, which is file order.
  std::vector<std::unique_ptr<Run>> runs;
  for (const std::string& path : runs_) {
    auto run = std::make_unique<Run>();
    VREC_RETURN_IF_ERROR(run->file.Open(path, "rb"));
    runs.push_back(std::move(run));
  }
  auto later = [&](int a, int b) {
    const LogEvent& x = runs[a]->next;
    const LogEvent& y = runs[b]->next;
    if (Before(y, x)) return true;
    if (Before(x, y)) return false;
    return a > b;
  };
  std::priority_queue<int, std::vector<int>, decltype(later)> heap(later);
  for (size_t i = 0; i < runs.size(); ++i) {
    VREC_ASSIGN_OR_RETURN(const bool more, runs[i]->Advance());
    if (more) heap.push(static_cast<int>(i));
  }
  while (!heap.empty()) {
    const int i = heap.top();
    heap.pop();
    Run& run = *runs[i];
    if (!events.empty() && events.front().user != run.next.user) VREC_RETURN_IF_ERROR(flush());
    take(run.next, run.next_tokens.data());
    VREC_ASSIGN_OR_RETURN(const bool more, run.Advance());
    if (more) heap.push(i);
  }
  return flush();
}

}  // namespace vrec
