#include "data/generated_logs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace vrec {
namespace {

constexpr size_t kBufferBytes = 1 << 20;
constexpr double kSecondsPerDay = 86400.0;
constexpr char kEventsHeader[] =
    "user,item,timestamp,event,watch_seconds,query,position,device,region\n";
constexpr char kItemsHeader[] = "item,upload_time,topic,duration\n";
constexpr char kUsersHeader[] = "user,age,gender,region,logged_in\n";
constexpr const char* kTables[] = {"events.csv", "users.csv", "test_users.txt"};

}  // namespace

// A text file written through a buffer; errors name the file. Not
// thread-safe.
class LogTextFile {
 public:
  static StatusOr<std::unique_ptr<LogTextFile>> Create(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus(errno, "create " + path);
    return std::unique_ptr<LogTextFile>(new LogTextFile(path, fd));
  }
  ~LogTextFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view text) {
    buffer_.append(text.data(), text.size());
    return buffer_.size() >= kBufferBytes ? Flush() : absl::OkStatus();
  }

  // Appends the whole of file `path`.
  Status AppendFile(const std::string& path) {
    VREC_RETURN_IF_ERROR(Flush());
    uint64_t size = 0;
    VREC_ASSIGN_OR_RETURN(const int in, OpenRegularFile(path, &size));
    std::vector<char> chunk(kBufferBytes);
    Status status;
    while (status.ok()) {
      const ssize_t n = ::read(in, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = ErrnoStatus(errno, "read " + path);
      } else if (n == 0) {
        break;
      } else {
        status = WriteFully(chunk.data(), static_cast<size_t>(n));
      }
    }
    ::close(in);
    return status;
  }

  Status Close(bool sync) {
    VREC_RETURN_IF_ERROR(Flush());
    if (sync && ::fsync(fd_) != 0) return ErrnoStatus(errno, "fsync " + path_);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoStatus(errno, "close " + path_);
    return absl::OkStatus();
  }

 private:
  LogTextFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {
    buffer_.reserve(kBufferBytes + 4096);
  }
  Status Flush() {
    VREC_RETURN_IF_ERROR(WriteFully(buffer_.data(), buffer_.size()));
    buffer_.clear();
    return absl::OkStatus();
  }
  Status WriteFully(const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus(errno, "write " + path_);
      data += w;
      n -= static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }

  const std::string path_;
  int fd_;
  std::string buffer_;
};

namespace {

std::string ShellQuote(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of(
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789_./=+-:,@%") == std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

std::string LogUserName(uint64_t user_id) { return absl::StrCat("u", user_id); }
std::string LogItemName(uint64_t video_id) { return absl::StrCat("v", video_id); }
std::string LogTokenName(uint64_t token_id) { return absl::StrCat("w", token_id); }
std::string LogRegionName(uint32_t region) { return absl::StrCat("r", region); }
std::string LogDeviceName(uint32_t device) { return absl::StrCat("d", device); }
std::string LogTopicName(uint32_t topic) { return absl::StrCat("topic", topic); }

std::string FormatLogSeconds(double days) {
  const long long ms = std::llround(days * kSecondsPerDay * 1000.0);
  const unsigned long long abs_ms =
      ms < 0 ? 0ULL - static_cast<unsigned long long>(ms) : static_cast<unsigned long long>(ms);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%s%llu.%03llu", ms < 0 ? "-" : "", abs_ms / 1000, abs_ms % 1000);
  return buf;
}

std::string FormatLogNumber(double value) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, ec == std::errc() ? end : buf);
}

void AppendCsvField(std::string_view field, std::string* row) {
  const bool quote = field.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!field.empty() && (field.front() == ' ' || field.back() == ' '));
  if (!quote) {
    row->append(field.data(), field.size());
    return;
  }
  row->push_back('"');
  for (char c : field) {
    if (c == '"') row->push_back('"');
    row->push_back(c);
  }
  row->push_back('"');
}

void GeneratedLogCounts::Merge(const GeneratedLogCounts& o) {
  events += o.events;
  searches += o.searches;
  impressions += o.impressions;
  clicks += o.clicks;
  watches += o.watches;
  users += o.users;
  test_users += o.test_users;
  items += o.items;
}

nlohmann::json GeneratedLogCounts::ToJson() const {
  return {{"events", events},         {"searches", searches}, {"impressions", impressions},
          {"clicks", clicks},         {"watches", watches},   {"users", users},
          {"test_users", test_users}, {"items", items}};
}

std::string LogPartPath(const std::string& dir, const std::string& table, int shard) {
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".part-%05d", shard);
  return JoinPath(dir, table + suffix);
}

StatusOr<std::unique_ptr<LogShardWriter>> LogShardWriter::Open(const std::string& dir, int shard) {
  auto writer = std::unique_ptr<LogShardWriter>(new LogShardWriter);
  std::unique_ptr<LogTextFile>* parts[3] = {&writer->events_, &writer->users_,
                                            &writer->test_users_};
  for (int i = 0; i < 3; ++i) {
    VREC_ASSIGN_OR_RETURN(*parts[i], LogTextFile::Create(LogPartPath(dir, kTables[i], shard)));
  }
  return writer;
}

LogShardWriter::~LogShardWriter() = default;

Status LogShardWriter::BeginUser(const UserProfile& user, bool test) {
  user_ = LogUserName(user.id);
  device_ = LogDeviceName(user.device);
  region_ = LogRegionName(user.region);
  row_.clear();
  AppendCsvField(user_, &row_);
  // Years from the scaled age (0 = 13y, 1 = 80y), digits enough that the
  // converter's (years - 13) / 67 gives the same float back.
  row_ += ',';
  row_ += FormatLogNumber(13.0 + 67.0 * static_cast<double>(user.age));
  row_ += ',';
  row_ += FormatLogNumber(user.gender);
  row_ += ',';
  AppendCsvField(region_, &row_);
  row_ += ',';
  row_ += user.logged_in > 0.5f ? '1' : '0';
  row_ += '\n';
  VREC_RETURN_IF_ERROR(users_->Append(row_));
  ++counts_.users;
  if (test) {
    VREC_RETURN_IF_ERROR(test_users_->Append(user_ + "\n"));
    ++counts_.test_users;
  }
  return absl::OkStatus();
}

Status LogShardWriter::AddEvent(std::string_view item, double time, std::string_view event,
                                std::string_view watch_seconds, std::string_view query,
                                std::string_view position) {
  row_.clear();
  AppendCsvField(user_, &row_);
  row_ += ',';
  AppendCsvField(item, &row_);
  row_ += ',';
  row_ += FormatLogSeconds(time);
  row_ += ',';
  AppendCsvField(event, &row_);
  row_ += ',';
  AppendCsvField(watch_seconds, &row_);
  row_ += ',';
  AppendCsvField(query, &row_);
  row_ += ',';
  AppendCsvField(position, &row_);
  row_ += ',';
  AppendCsvField(device_, &row_);
  row_ += ',';
  AppendCsvField(region_, &row_);
  row_ += '\n';
  ++counts_.events;
  return events_->Append(row_);
}

Status LogShardWriter::Search(double time, const uint64_t* token_ids, size_t n) {
  std::string query;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) query += ' ';
    query += LogTokenName(token_ids[i]);
  }
  ++counts_.searches;
  return AddEvent("", time, "search", "", query, "");
}

Status LogShardWriter::Page(double time, const PageImpression* impressions, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    VREC_RETURN_IF_ERROR(AddEvent(LogItemName(impressions[i].video_id), time, "impression", "", "",
                                  std::to_string(i)));
    ++counts_.impressions;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!impressions[i].clicked) continue;
    // The float's exact value: parsed as a double and narrowed, it is the
    // same float again.
    VREC_RETURN_IF_ERROR(AddEvent(LogItemName(impressions[i].video_id), time, "click",
                                  FormatLogNumber(impressions[i].watch_time), "", ""));
    ++counts_.clicks;
  }
  return absl::OkStatus();
}

Status LogShardWriter::Watch(double time, uint64_t video_id) {
  ++counts_.watches;
  return AddEvent(LogItemName(video_id), time, "watch", "", "", "");
}

Status LogShardWriter::Close() {
  VREC_RETURN_IF_ERROR(events_->Close(false));
  VREC_RETURN_IF_ERROR(users_->Close(false));
  return test_users_->Close(false);
}

Status StartGeneratedLogs(const std::string& dir) {
  VREC_RETURN_IF_ERROR(MakeDirs(dir));
  const std::string readme = JoinPath(dir, "README");
  if (::unlink(readme.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "remove " + readme);
  }
  return absl::OkStatus();
}

std::string GeneratedLogsConvertCommand(const GeneratorOptions& options, const World& world,
                                        const std::string& out) {
  const std::string& dir = options.logs_dir;
  std::string command = absl::StrCat(
      "vrec convert --events=", ShellQuote(JoinPath(dir, "events.csv")),
      " --items=", ShellQuote(JoinPath(dir, "items.csv")),
      " --users=", ShellQuote(JoinPath(dir, "users.csv")),
      " --test_split=users --held_out_users=", ShellQuote(JoinPath(dir, "test_users.txt")),
      " --clicks_are_watches=false --window_end=",
      static_cast<int64_t>(world.options().num_days) * 86400, " --max_examples_per_user=0");
  // The converter's default history is datagen's; another one must be said.
  if (options.max_history != 50) absl::StrAppend(&command, " --max_history=", options.max_history);
  absl::StrAppend(&command, " --out=", ShellQuote(out));
  return command;
}

Status FinishGeneratedLogs(const World& world, const GeneratorOptions& options, int shards,
                           GeneratedLogCounts* counts) {
  const std::string& dir = options.logs_dir;
  // items.csv: every video, in the world's order.
  {
    const std::string path = JoinPath(dir, "items.csv");
    VREC_ASSIGN_OR_RETURN(auto file, LogTextFile::Create(path));
    VREC_RETURN_IF_ERROR(file->Append(kItemsHeader));
    std::string row;
    counts->items = 0;
    for (const Video& v : world.videos()) {
      row.clear();
      AppendCsvField(LogItemName(v.id), &row);
      row += ',';
      row += FormatLogSeconds(v.upload_time);
      row += ',';
      AppendCsvField(LogTopicName(v.topic + 1), &row);
      row += ',';
      row += FormatLogNumber(v.duration);
      row += '\n';
      VREC_RETURN_IF_ERROR(file->Append(row));
      ++counts->items;
    }
    VREC_RETURN_IF_ERROR(file->Close(options.sync));
  }
  const char* headers[3] = {kEventsHeader, kUsersHeader, ""};
  for (int t = 0; t < 3; ++t) {
    const std::string path = JoinPath(dir, kTables[t]);
    VREC_ASSIGN_OR_RETURN(auto file, LogTextFile::Create(path));
    VREC_RETURN_IF_ERROR(file->Append(headers[t]));
    for (int s = 0; s < shards; ++s)
      VREC_RETURN_IF_ERROR(file->AppendFile(LogPartPath(dir, kTables[t], s)));
    VREC_RETURN_IF_ERROR(file->Close(options.sync));
    for (int s = 0; s < shards; ++s) {
      const std::string part = LogPartPath(dir, kTables[t], s);
      if (::unlink(part.c_str()) != 0) return ErrnoStatus(errno, "remove " + part);
    }
  }
  const std::string readme = absl::StrCat(
      "The generated world of `vrec datagen` (seed ", world.options().seed, ", ",
      world.options().num_users, " users, ", world.options().num_videos, " videos, ",
      world.options().num_days,
      " days) as a team's log tables (docs/data_format.md, \"Generated logs\"):\n"
      "  events.csv      user,item,timestamp,event,watch_seconds,query,position,device,region\n"
      "  items.csv       item,upload_time,topic,duration\n"
      "  users.csv       user,age,gender,region,logged_in\n"
      "  test_users.txt  the held-out users\n"
      "Day d of the world is unix time d*86400 s. Users u<id>, items v<id>, search tokens "
      "w<id>,\nregions r<n>, devices d<n>, topics topic<k>.\n\n"
      "The native split back from the tables (OUT: the dataset folder to write):\n  ",
      GeneratedLogsConvertCommand(options, world, "OUT"),
      "\nIts examples are datagen's own (up to the ids) when datagen ran with "
      "--max_examples_per_user=0\nand without --random_labels: the native training examples "
      "are otherwise a sample, or\nrandomly held-out labels, drawn from the simulator's random "
      "stream.\n");
  return WriteFileAtomic(JoinPath(dir, "README"), readme);
}

}  // namespace vrec
