// Training checkpoints on disk (docs/checkpoints.md).
//
//   D/ckpt-00000007/server-00000/        server 0's RocksDB checkpoint: every row
//                                        with its optimizer state and expiry step
//   D/ckpt-00000007/server-00000.state   ServerState (step clocks, admission counts)
//   D/ckpt-00000007/MANIFEST             CheckpointManifest, written last and
//   D/ckpt-00000007/manifest.json        atomically (the JSON is for people);
//                                        lists the servers' files with size, CRC32C
//
// A checkpoint is complete exactly when its MANIFEST exists. How one is taken:
// the coordinator asks every worker to pause (each finishes its step, waits
// for its pushes and reports its progress and data position), then every
// server writes its part (ServerStorage::Checkpoint), then the coordinator
// writes the MANIFEST and deletes all but the newest `keep` complete
// checkpoints and every incomplete one, then the workers go on.
//
// Thread safety: functions are thread-compatible; one job writes a folder.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/model_spec.h"
#include "proto/checkpoint.pb.h"
#include "ps/server_storage.h"
#include "ps/slot_router.h"
#include "vrec/status.h"

namespace vrec::models {

inline constexpr uint32_t kCheckpointFormatVersion = 1;

// "ckpt-00000007"
std::string CheckpointName(uint64_t sequence);
// "server-00003" and "server-00003.state", inside a checkpoint folder.
std::string ServerCheckpointDir(int server);
std::string ServerStateFile(int server);

// When to checkpoint: --checkpoint_every=30s, 10m, 2h (wall clock) or a
// plain count of examples (all workers together), e.g. 200000.
struct CheckpointEvery {
  double seconds = 0;
  uint64_t examples = 0;
  bool enabled() const { return seconds > 0 || examples > 0; }
};
// "" = never. kInvalidArgument naming `flag` and the text otherwise.
StatusOr<CheckpointEvery> ParseCheckpointEvery(const std::string& text,
                                               const std::string& flag = "--checkpoint_every");

// Server side: writes server `server`'s rows and state into the checkpoint
// folder `dir` (storage quiescent). Returns the state (rows counted).
StatusOr<ServerState> WriteServerCheckpoint(ps::ServerStorage* storage, const std::string& dir,
                                            int server);

// Coordinator side: writes `manifest` into root/CheckpointName(sequence)
// (MANIFEST last, atomically), listing in it the size and CRC32C of every
// file of the servers' parts (manifest.files; each byte read once), then
// prunes the folder to the newest `keep` complete checkpoints. Returns the
// checkpoint's folder. REQUIRES: every server has written its part.
StatusOr<std::string> CommitCheckpoint(const std::string& root, const CheckpointManifest& manifest,
                                       int keep);

struct FoundCheckpoint {
  std::string dir;  // the checkpoint's folder
  CheckpointManifest manifest;
};
// The checkpoint in `path`: a checkpoint folder (verified; its damage is the
// error), or a root of them (its newest complete one that ReadCheckpoint
// accepts: a damaged one is passed over with a warning naming what is wrong,
// for the one before it). kNotFound when there is none, kDataLoss naming the
// checkpoint when every complete one is damaged.
StatusOr<FoundCheckpoint> FindCheckpoint(const std::string& path);

// The checkpoint folder `dir`, verified: the MANIFEST's checksum, every
// server's rows folder present, every file the manifest lists present with
// its size and CRC32C (reading the whole checkpoint once; the cost is logged
// when over a second), every server state parsing. kDataLoss naming the
// folder, the file and what is wrong otherwise. A manifest without the file
// list (written before it was kept) skips the per-file checks.
// verify_files=false skips reading the files' bytes (their CRC32C) for a
// checkpoint another process has just verified (the ranks of one job).
StatusOr<FoundCheckpoint> ReadCheckpoint(const std::string& dir, bool verify_files = true);
// The sequence number the next checkpoint in `root` gets.
uint64_t NextCheckpointSequence(const std::string& root);

// The server storage of server `server` of `num_servers`, restored from
// `checkpoint` (written by any number of servers).
StatusOr<std::unique_ptr<ps::ServerStorage>> RestoreServerStorage(const ModelConfig& config,
                                                                  ps::ServerStorageOptions options,
                                                                  const FoundCheckpoint& checkpoint,
                                                                  int server, int num_servers);

// Why a job with these settings cannot continue `manifest`, or OK.
Status CheckResumable(const CheckpointManifest& manifest, const ModelSpec& spec, int num_workers,
                      int batch_size, int epochs, uint64_t max_examples, bool stream);

}  // namespace vrec::models
