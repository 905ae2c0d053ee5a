#include "models/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "glog/logging.h"
#include "google/protobuf/util/json_util.h"

namespace vrec::models {
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kManifestJson[] = "manifest.json";
constexpr char kPrefix[] = "ckpt-";
// Files are checksummed in pieces of this size: a checkpoint's files can be
// gigabytes, and never need to be in memory whole.
constexpr size_t kChecksumChunkBytes = 1 << 20;
// Checksumming that takes longer than this is logged with its cost.
constexpr double kLogChecksumSeconds = 1.0;

// Sequence numbers of the checkpoint folders in root, with completeness.
std::vector<std::pair<uint64_t, bool>> ListCheckpoints(const std::string& root) {
  std::vector<std::pair<uint64_t, bool>> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    uint64_t seq = 0;
    if (!entry.is_directory() || name.rfind(kPrefix, 0) != 0 ||
        !absl::SimpleAtoi(name.substr(sizeof(kPrefix) - 1), &seq)) {
      continue;
    }
    out.emplace_back(seq, PathExists(JoinPath(entry.path().string(), kManifest)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// MANIFEST is the serialized CheckpointManifest followed by an 8-byte
// trailer: the masked CRC32C of those bytes (little-endian) and kTrailerMagic.
// A MANIFEST without the trailer (written before it existed) is read as is.
constexpr char kTrailerMagic[4] = {'v', 'c', 'k', '\x01'};

std::string WithTrailer(const std::string& bytes) {
  const uint32_t crc = MaskCrc(Crc32c(bytes.data(), bytes.size()));
  std::string out = bytes;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  out.append(kTrailerMagic, 4);
  return out;
}

StatusOr<CheckpointManifest> ReadManifestIn(const std::string& dir) {
  const std::string path = JoinPath(dir, kManifest);
  VREC_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  if (bytes.size() >= 8 && bytes.compare(bytes.size() - 4, 4, kTrailerMagic, 4) == 0) {
    uint32_t stored = 0;
    for (int i = 0; i < 4; ++i) {
      stored |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[bytes.size() - 8 + i]))
                << (8 * i);
    }
    bytes.resize(bytes.size() - 8);
    if (UnmaskCrc(stored) != Crc32c(bytes.data(), bytes.size())) {
      return absl::DataLossError(absl::StrCat(path, ": checksum mismatch (the file was damaged)"));
    }
  }
  CheckpointManifest m;
  if (!m.ParseFromString(bytes)) return absl::DataLossError(absl::StrCat(path, ": does not parse"));
  if (m.format_version() != kCheckpointFormatVersion) {
    return absl::DataLossError(absl::StrCat(path, ": unknown format version ", m.format_version()));
  }
  return m;
}

// The size and CRC32C of the file at `path` (its path left unset), read once.
StatusOr<CheckpointFile> ChecksumFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot open ", path));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> chunk(kChecksumChunkBytes);
  uint32_t crc = 0;
  uint64_t size = 0;
  for (;;) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(err, absl::StrCat("cannot read ", path));
    }
    crc = Crc32cExtend(crc, chunk.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  CheckpointFile file;
  file.set_size(size);
  file.set_crc32c(crc);
  return file;
}

// Logs what checksumming `bytes` in `files` files cost, when it took long
// (or always, with --v=1).
void LogChecksumCost(const std::string& what, const std::string& dir, size_t files, uint64_t bytes,
                     absl::Time start) {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (seconds < kLogChecksumSeconds && !VLOG_IS_ON(1)) return;
  const double mb = static_cast<double>(bytes) / (1 << 20);
  LOG(INFO) << absl::StrFormat("%s checkpoint %s: %d files, %.1f MB in %.2f s (%.0f MB/s)", what,
                               dir, files, mb, seconds, mb / seconds);
}

// The checkpoint's files, relative to `dir`, as `m` names its parts: every
// file under each server's rows folder and each server's state file, sorted.
StatusOr<std::vector<std::string>> PartFiles(const std::string& dir, const CheckpointManifest& m) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& server_dir : m.server_dirs()) {
    std::error_code ec;
    fs::recursive_directory_iterator it(JoinPath(dir, server_dir), ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;  // the overload that throws is not for us
      if (it->is_regular_file(type_ec)) {
        files.push_back(it->path().lexically_relative(dir).generic_string());
      }
    }
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", dir, ": cannot list server folder ", server_dir, ": ", ec.message()));
    }
  }
  for (const std::string& state : m.server_states()) files.push_back(state);
  std::sort(files.begin(), files.end());
  return files;
}

// Sets m->files to the size and CRC32C of each of the checkpoint's files.
Status ListFileChecksums(const std::string& dir, CheckpointManifest* m) {
  const absl::Time start = absl::Now();
  VREC_ASSIGN_OR_RETURN(std::vector<std::string> paths, PartFiles(dir, *m));
  m->clear_files();
  uint64_t bytes = 0;
  for (const std::string& path : paths) {
    VREC_ASSIGN_OR_RETURN(CheckpointFile file, ChecksumFile(JoinPath(dir, path)));
    file.set_path(path);
    bytes += file.size();
    *m->add_files() = std::move(file);
  }
  LogChecksumCost("checksummed", dir, paths.size(), bytes, start);
  return absl::OkStatus();
}

// Damage seen without reading contents: a server's rows folder missing, or a
// listed file missing or of another size.
Status CheckFilesPresent(const std::string& dir, const CheckpointManifest& m) {
  for (int s = 0; s < m.server_dirs_size(); ++s) {
    if (!PathExists(JoinPath(dir, m.server_dirs(s)))) {
      return absl::DataLossError(absl::StrCat("checkpoint ", dir, ": server ", s, "'s rows folder ",
                                              m.server_dirs(s), " is missing"));
    }
  }
  for (const CheckpointFile& file : m.files()) {
    struct stat st;
    if (::stat(JoinPath(dir, file.path()).c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return absl::DataLossError(
            absl::StrCat("checkpoint ", dir, ": file ", file.path(), " is missing"));
      }
      return ErrnoStatus(errno, absl::StrCat("checkpoint ", dir, ": cannot stat ", file.path()));
    }
    if (static_cast<uint64_t>(st.st_size) != file.size()) {
      return absl::DataLossError(absl::StrCat("checkpoint ", dir, ": file ", file.path(),
                                              " has size ", st.st_size, ", expected ",
                                              file.size()));
    }
  }
  return absl::OkStatus();
}

// Every listed file's CRC32C: each byte of the checkpoint read once.
Status CheckFileChecksums(const std::string& dir, const CheckpointManifest& m) {
  const absl::Time start = absl::Now();
  uint64_t bytes = 0;
  for (const CheckpointFile& listed : m.files()) {
    StatusOr<CheckpointFile> read = ChecksumFile(JoinPath(dir, listed.path()));
    if (!read.ok()) {  // vanished or unreadable since CheckFilesPresent
      return absl::DataLossError(absl::StrCat("checkpoint ", dir, ": file ", listed.path(),
                                              " cannot be read: ", read.status().message()));
    }
    if (read->size() != listed.size() || read->crc32c() != listed.crc32c()) {
      return absl::DataLossError(absl::StrFormat(
          "checkpoint %s: file %s: checksum mismatch (CRC32C %08x of %d bytes, expected %08x of "
          "%d)",
          dir, listed.path(), read->crc32c(), read->size(), listed.crc32c(), listed.size()));
    }
    bytes += read->size();
  }
  LogChecksumCost("verified", dir, m.files_size(), bytes, start);
  return absl::OkStatus();
}

// Each server's state file parses.
Status CheckServerStates(const std::string& dir, const CheckpointManifest& m) {
  for (int s = 0; s < m.server_states_size(); ++s) {
    const std::string state_path = JoinPath(dir, m.server_states(s));
    StatusOr<std::string> bytes = ReadFileToString(state_path);
    ServerState state;
    if (!bytes.ok() || !state.ParseFromString(*bytes)) {
      return absl::DataLossError(absl::StrCat("checkpoint ", dir, ": server ", s, "'s state ",
                                              state_path, " is missing or does not parse"));
    }
  }
  return absl::OkStatus();
}

Status WriteManifestJson(const std::string& dir, const CheckpointManifest& manifest) {
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  CheckpointManifest readable = manifest;
  readable.clear_slot_router();  // binary
  if (!google::protobuf::util::MessageToJsonString(readable, &json, o).ok()) {
    return absl::InternalError("cannot print the checkpoint manifest as JSON");
  }
  return WriteFileAtomic(JoinPath(dir, kManifestJson), json);
}

// Deletes every incomplete checkpoint in `root` and the complete ones beyond
// the newest `keep`.
void PruneCheckpoints(const std::string& root, int keep) {
  const auto all = ListCheckpoints(root);
  int complete_seen = 0;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const bool complete = it->second;
    if (complete && ++complete_seen <= std::max(1, keep)) continue;
    std::error_code ec;
    std::filesystem::remove_all(JoinPath(root, CheckpointName(it->first)), ec);
    if (ec) LOG(WARNING) << "could not remove old checkpoint " << it->first << ": " << ec.message();
  }
}

}  // namespace

std::string CheckpointName(uint64_t sequence) {
  return absl::StrFormat("%s%08d", kPrefix, sequence);
}
std::string ServerCheckpointDir(int server) { return absl::StrFormat("server-%05d", server); }
std::string ServerStateFile(int server) { return absl::StrFormat("server-%05d.state", server); }

StatusOr<CheckpointEvery> ParseCheckpointEvery(const std::string& text, const std::string& flag) {
  CheckpointEvery every;
  if (text.empty()) return every;
  const char unit = text.back();
  double value = 0;
  const bool timed = unit == 's' || unit == 'm' || unit == 'h';
  const std::string number = timed ? text.substr(0, text.size() - 1) : text;
  if (!absl::SimpleAtod(number, &value) || value <= 0 || (!timed && value != std::floor(value))) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", text,
                     ": give a time (30s, 10m, 2h) or a whole number of examples (e.g. 200000)"));
  }
  if (timed) {
    every.seconds = value * (unit == 'h' ? 3600 : unit == 'm' ? 60 : 1);
  } else {
    every.examples = static_cast<uint64_t>(value);
  }
  return every;
}

StatusOr<ServerState> WriteServerCheckpoint(ps::ServerStorage* storage, const std::string& dir,
                                            int server) {
  VREC_RETURN_IF_ERROR(MakeDirs(dir));
  const std::string db = JoinPath(dir, ServerCheckpointDir(server));
  if (PathExists(db)) {  // left by a run that died while writing this checkpoint
    std::error_code ec;
    std::filesystem::remove_all(db, ec);
  }
  VREC_ASSIGN_OR_RETURN(ServerState state, storage->Checkpoint(db));
  state.set_server(server);
  VREC_RETURN_IF_ERROR(
      WriteFileAtomic(JoinPath(dir, ServerStateFile(server)), state.SerializeAsString()));
  return state;
}

StatusOr<std::string> CommitCheckpoint(const std::string& root, const CheckpointManifest& manifest,
                                       int keep) {
  const std::string dir = JoinPath(root, CheckpointName(manifest.sequence()));
  for (int s = 0; s < static_cast<int>(manifest.num_servers()); ++s) {
    if (!PathExists(JoinPath(dir, ServerStateFile(s)))) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint ", dir, " lacks server ", s, "'s part"));
    }
  }
  CheckpointManifest complete = manifest;
  VREC_RETURN_IF_ERROR(ListFileChecksums(dir, &complete));
  VREC_RETURN_IF_ERROR(WriteManifestJson(dir, complete));
  VREC_RETURN_IF_ERROR(
      WriteFileAtomic(JoinPath(dir, kManifest), WithTrailer(complete.SerializeAsString())));
  PruneCheckpoints(root, keep);
  return dir;
}

StatusOr<FoundCheckpoint> ReadCheckpoint(const std::string& dir, bool verify_files) {
  FoundCheckpoint found;
  found.dir = dir;
  VREC_ASSIGN_OR_RETURN(found.manifest, ReadManifestIn(dir));
  const CheckpointManifest& m = found.manifest;
  if (m.server_dirs_size() != static_cast<int>(m.num_servers()) ||
      m.server_states_size() != static_cast<int>(m.num_servers())) {
    return absl::DataLossError(absl::StrCat("checkpoint ", dir, ": the manifest lists ",
                                            m.server_dirs_size(), " server folders for ",
                                            m.num_servers(), " servers"));
  }
  // The cheap checks first: a missing file is named without reading gigabytes.
  VREC_RETURN_IF_ERROR(CheckFilesPresent(dir, m));
  if (verify_files && m.files_size() == 0) {
    LOG(INFO) << "checkpoint " << dir
              << " predates per-file checksums: its rows folders are not verified";
  }
  if (verify_files) VREC_RETURN_IF_ERROR(CheckFileChecksums(dir, m));
  VREC_RETURN_IF_ERROR(CheckServerStates(dir, m));
  return found;
}

StatusOr<FoundCheckpoint> FindCheckpoint(const std::string& path) {
  if (PathExists(JoinPath(path, kManifest))) {
    StatusOr<FoundCheckpoint> found = ReadCheckpoint(path);
    if (found.ok()) return found;
    return Status(found.status().code(),
                  absl::StrCat(found.status().message(),
                               " (a checkpoint folder given itself: no older checkpoint is tried; "
                               "give the folder holding it to fall back to the one before)"));
  }
  const auto all = ListCheckpoints(path);
  // The newest complete checkpoint that reads back whole; a damaged one is
  // passed over (logged) for the one before it.
  std::vector<std::string> damaged;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (!it->second) continue;
    StatusOr<FoundCheckpoint> found = ReadCheckpoint(JoinPath(path, CheckpointName(it->first)));
    if (found.ok()) {
      if (!damaged.empty()) {
        LOG(WARNING) << "using checkpoint " << found->dir
                     << ", the newest that reads back whole (passed over: "
                     << absl::StrJoin(damaged, "; ") << ")";
      }
      return found;
    }
    LOG(WARNING) << "passing over a damaged checkpoint: " << found.status().message();
    damaged.push_back(std::string(found.status().message()));
  }
  if (!damaged.empty()) {
    return absl::DataLossError(absl::StrCat("every complete checkpoint in ", path,
                                            " is damaged; the newest: ", damaged.front()));
  }
  return absl::NotFoundError(absl::StrCat(
      "no complete checkpoint in ", path,
      all.empty() ? " (no ckpt-* folders)" : " (only incomplete ckpt-* folders, no MANIFEST)"));
}

uint64_t NextCheckpointSequence(const std::string& root) {
  const auto all = ListCheckpoints(root);
  return all.empty() ? 1 : all.back().first + 1;
}

StatusOr<std::unique_ptr<ps::ServerStorage>> RestoreServerStorage(const ModelConfig& config,
                                                                  ps::ServerStorageOptions options,
                                                                  const FoundCheckpoint& checkpoint,
                                                                  int server, int num_servers) {
  const CheckpointManifest& m = checkpoint.manifest;
  VREC_ASSIGN_OR_RETURN(ps::SlotRouter old_router, ps::SlotRouter::Deserialize(m.slot_router()));
  VREC_ASSIGN_OR_RETURN(
      ps::SlotRouter router,
      ps::SlotRouter::Contiguous(static_cast<uint32_t>(num_servers), old_router.num_slots()));
  if (m.server_dirs_size() != static_cast<int>(m.num_servers()) ||
      m.server_states_size() != static_cast<int>(m.num_servers())) {
    return absl::DataLossError(absl::StrCat(checkpoint.dir, ": the manifest lists ",
                                            m.server_dirs_size(), " server folders for ",
                                            m.num_servers(), " servers"));
  }
  std::vector<ps::CheckpointShard> shards(m.num_servers());
  for (int s = 0; s < static_cast<int>(m.num_servers()); ++s) {
    shards[s].db_dir = JoinPath(checkpoint.dir, m.server_dirs(s));
    const std::string state_path = JoinPath(checkpoint.dir, m.server_states(s));
    VREC_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(state_path));
    if (!shards[s].state.ParseFromString(bytes)) {
      return absl::DataLossError(absl::StrCat(state_path, ": does not parse"));
    }
  }
  return ps::ServerStorage::Restore(config, std::move(options), shards, old_router, router,
                                    static_cast<uint32_t>(server));
}

Status CheckResumable(const CheckpointManifest& m, const ModelSpec& spec, int num_workers,
                      int batch_size, int epochs, uint64_t max_examples, bool stream) {
  auto differs = [&](const std::string& what, const std::string& was, const std::string& now) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot resume: the checkpoint was trained with ", what, "=", was, ", this run has ", now,
        "; pass the same setting (the data positions and the model depend on it)"));
  };
  if (m.model().kind() != spec.kind) return differs("--model", m.model().kind(), spec.kind);
  if (m.workers_size() != num_workers) {
    return differs("workers", absl::StrCat(m.workers_size()), absl::StrCat(num_workers));
  }
  if (m.batch_size() != batch_size) {
    return differs("--batch_size", absl::StrCat(m.batch_size()), absl::StrCat(batch_size));
  }
  if (m.epochs() != epochs)
    return differs("--epochs", absl::StrCat(m.epochs()), absl::StrCat(epochs));
  if (m.max_examples() != max_examples) {
    return differs("--max_examples", absl::StrCat(m.max_examples()), absl::StrCat(max_examples));
  }
  if (m.stream() != stream) {
    return differs("--stream", m.stream() ? "true" : "false", stream ? "true" : "false");
  }
  if (m.model().config().SerializeAsString() != spec.config.SerializeAsString()) {
    return absl::FailedPreconditionError(
        "cannot resume: the model flags (tables, tower, optimizer, sampler, seed) differ from "
        "the checkpoint's (see its manifest.json, \"config\"); pass the same model flags");
  }
  return absl::OkStatus();
}

}  // namespace vrec::models
