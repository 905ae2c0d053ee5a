// `vrec inspect PATH [PATH...]`: validates record files and shows their first
// records. PATH is a record file or a dataset folder (then every shard its
// manifest lists is checked against the listed record count and size).
// Exit 0 when every file is good, 1 when any is bad, 2 on bad usage.
#include <gflags/gflags.h>
#include <google/protobuf/message.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "data/record_reader.h"
#include "proto/data.pb.h"

DEFINE_string(type, "auto",
              "Message type of the records: candidate, ranking, video, raw, or auto (from the "
              "folder: candidate/ and ranking/ shards, videos.rec; raw otherwise)");
DEFINE_int32(show, 3, "Records to print per file, as one-line protobuf text (0 = none)");
DEFINE_bool(json, false,
            "Print one JSON object per file ({file, records, bytes, ok, error}) instead of text");

namespace vrec::cli {
namespace {

enum class Kind { kAuto, kCandidate, kRanking, kVideo, kRaw };

std::optional<Kind> ParseKind(const std::string& s) {
  if (s == "auto") return Kind::kAuto;
  if (s == "candidate") return Kind::kCandidate;
  if (s == "ranking") return Kind::kRanking;
  if (s == "video") return Kind::kVideo;
  if (s == "raw") return Kind::kRaw;
  return std::nullopt;
}

Kind KindFromPath(const std::string& path) {
  const std::filesystem::path p(path);
  if (p.filename() == "videos.rec") return Kind::kVideo;
  const std::string parent = p.parent_path().filename().string();
  if (parent == "candidate") return Kind::kCandidate;
  if (parent == "ranking") return Kind::kRanking;
  return Kind::kRaw;
}

std::unique_ptr<google::protobuf::Message> NewMessage(Kind kind) {
  switch (kind) {
    case Kind::kCandidate:
      return std::make_unique<CandidateExample>();
    case Kind::kRanking:
      return std::make_unique<RankingExample>();
    case Kind::kVideo:
      return std::make_unique<VideoInfo>();
    default:
      return nullptr;
  }
}

// One file to check; `expected` is set for shards listed in a manifest.
struct Target {
  std::string path;
  Kind kind = Kind::kRaw;
  std::optional<ShardInfo> expected;
  std::string manifest;  // the manifest that lists it, if any
};

struct Report {
  std::string file;
  std::string type = "raw";
  uint64_t records = 0;
  uint64_t bytes = 0;
  bool ok = true;
  std::string error;
  std::vector<std::string> shown;
};

constexpr uint64_t kProgressMinBytes = 256ull << 20;

Report InspectFile(const Target& t, int show) {
  Report r;
  r.file = t.path;
  std::unique_ptr<google::protobuf::Message> message = NewMessage(t.kind);
  if (message != nullptr) r.type = message->GetTypeName();
  auto fail = [&r](std::string error) {
    r.ok = false;
    r.error = std::move(error);
    return r;
  };
  if (!PathExists(t.path)) {
    return fail(t.manifest.empty() ? "no such file"
                                   : absl::StrCat("missing, but listed in ", t.manifest));
  }
  RecordReaderOptions options;
  options.buffer_bytes = 4 << 20;
  auto opened = RecordReader::Open(t.path, options);
  if (!opened.ok()) return fail(std::string(opened.status().message()));
  RecordReader& reader = **opened;
  struct stat st;
  if (::stat(t.path.c_str(), &st) == 0) r.bytes = static_cast<uint64_t>(st.st_size);

  const bool progress = r.bytes >= kProgressMinBytes && !FLAGS_json;
  auto last_progress = std::chrono::steady_clock::now();
  std::string payload;
  for (;;) {
    StatusOr<bool> got =
        message != nullptr ? reader.NextMessage(message.get()) : reader.Next(&payload);
    if (!got.ok()) {
      r.records = reader.records_read();
      if (got.status().code() == absl::StatusCode::kDataLoss &&
          !reader.corruption_reason().empty()) {
        return fail(absl::StrCat("corrupt record at offset ", reader.offset(), ": ",
                                 reader.corruption_reason()));
      }
      return fail(std::string(got.status().message()));
    }
    if (!*got) break;
    if (r.shown.size() < static_cast<size_t>(show)) {
      if (message != nullptr) {
        r.shown.push_back(message->ShortDebugString());
      } else {
        constexpr size_t kMaxShown = 64;
        r.shown.push_back(absl::StrCat(payload.size(), " bytes: \"",
                                       absl::CHexEscape(payload.substr(0, kMaxShown)),
                                       payload.size() > kMaxShown ? "\"..." : "\""));
      }
    }
    if (progress && reader.records_read() % 4096 == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_progress > std::chrono::seconds(2)) {
        last_progress = now;
        std::cerr << "vrec inspect: " << t.path << ": " << (100 * reader.offset() / r.bytes)
                  << "% (" << reader.records_read() << " records)\n";
      }
    }
  }
  r.records = reader.records_read();
  if (t.expected.has_value()) {
    if (t.expected->records() != r.records) {
      return fail(absl::StrCat("has ", r.records, " records, ", t.manifest, " says ",
                               t.expected->records()));
    }
    if (t.expected->bytes() != 0 && t.expected->bytes() != r.bytes) {
      return fail(
          absl::StrCat("has ", r.bytes, " bytes, ", t.manifest, " says ", t.expected->bytes()));
    }
  }
  return r;
}

// The files of a dataset folder, or an error about its manifest.
StatusOr<std::vector<Target>> DatasetTargets(const std::string& dir, Kind forced) {
  VREC_ASSIGN_OR_RETURN(DatasetManifest m, ReadManifest(dir));
  const std::string manifest = JoinPath(dir, "manifest.pb");
  std::vector<Target> out;
  auto add = [&](const google::protobuf::RepeatedPtrField<ShardInfo>& shards, Kind kind) {
    for (const ShardInfo& s : shards) {
      Target t;
      t.path = JoinPath(dir, s.path());
      t.kind = forced == Kind::kAuto ? kind : forced;
      t.expected = s;
      t.manifest = manifest;
      out.push_back(std::move(t));
    }
  };
  add(m.candidate_train(), Kind::kCandidate);
  add(m.candidate_test(), Kind::kCandidate);
  add(m.ranking_train(), Kind::kRanking);
  add(m.ranking_test(), Kind::kRanking);
  add(m.ranking_train_sample(), Kind::kRanking);
  if (!m.videos().empty()) {
    Target t;
    t.path = JoinPath(dir, m.videos());
    t.kind = forced == Kind::kAuto ? Kind::kVideo : forced;
    t.manifest = manifest;
    out.push_back(std::move(t));
  }
  return out;
}

void Print(const Report& r) {
  if (FLAGS_json) {
    nlohmann::json j = {{"file", r.file}, {"records", r.records}, {"bytes", r.bytes},
                        {"ok", r.ok},     {"error", r.error},     {"type", r.type}};
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << r.file << ": " << r.records << " records, " << r.bytes << " bytes, " << r.type
            << ": " << (r.ok ? "OK" : "BAD") << "\n";
  for (size_t i = 0; i < r.shown.size(); ++i) std::cout << "  [" << i << "] " << r.shown[i] << "\n";
  std::cout.flush();
  if (!r.ok) std::cerr << "vrec inspect: " << r.file << ": " << r.error << "\n";
}

}  // namespace

int RunInspect(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: vrec inspect [--type=auto|candidate|ranking|video|raw] [--show=N] "
                 "[--json] PATH [PATH...]\n";
    return kExitUsage;
  }
  const std::optional<Kind> forced = ParseKind(FLAGS_type);
  if (!forced.has_value()) {
    std::cerr << "vrec inspect: --type=" << FLAGS_type
              << " is not one of auto, candidate, ranking, video, raw\n";
    return kExitUsage;
  }
  if (FLAGS_show < 0) {
    std::cerr << "vrec inspect: --show=" << FLAGS_show << " must be >= 0\n";
    return kExitUsage;
  }

  uint64_t files = 0, bad = 0, records = 0, bytes = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string path = argv[i];
    std::vector<Target> targets;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      auto listed = DatasetTargets(path, *forced);
      if (!listed.ok()) {
        Report r;
        r.file = path;
        r.type = "dataset";
        r.ok = false;
        r.error = std::string(listed.status().message());
        Print(r);
        ++files;
        ++bad;
        continue;
      }
      targets = std::move(*listed);
    } else {
      Target t;
      t.path = path;
      t.kind = *forced == Kind::kAuto ? KindFromPath(path) : *forced;
      targets.push_back(std::move(t));
    }
    for (const Target& t : targets) {
      const Report r = InspectFile(t, FLAGS_show);
      Print(r);
      ++files;
      bad += r.ok ? 0 : 1;
      records += r.records;
      bytes += r.bytes;
    }
  }
  if (!FLAGS_json) {
    std::cout << files << " files, " << records << " records, " << bytes
              << " bytes: " << (bad == 0 ? "all OK" : absl::StrCat(bad, " bad")) << "\n";
  }
  return bad == 0 ? kExitOk : kExitFailure;
}

}  // namespace vrec::cli
