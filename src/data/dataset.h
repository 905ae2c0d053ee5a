// A dataset is a folder: record files of examples plus a manifest
// (proto/data.proto DatasetManifest) that lists them. The manifest is written
// last and atomically (manifest.pb; manifest.json beside it for people), so a
// dataset is complete exactly when manifest.pb exists.
//
// Layout written by `vrec datagen` and `vrec convert`:
//   DIR/candidate/train-00000-of-00008.rec ...   CandidateExample
//   DIR/candidate/test-00000-of-00001.rec        CandidateExample
//   DIR/ranking/train-*.rec, DIR/ranking/test-*.rec   RankingExample
//   DIR/videos.rec                               VideoInfo (generated worlds)
//   DIR/truth.json                               oracle figures (generated worlds)
//   DIR/manifest.pb, DIR/manifest.json
//
// Thread safety: free functions, thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec {

inline constexpr uint32_t kDatasetFormatVersion = 1;

// "train-00003-of-00008.rec"
std::string ShardFileName(const std::string& prefix, int index, int count);

// Writes manifest.json then manifest.pb, each atomically.
Status WriteManifest(const std::string& dir, const DatasetManifest& manifest);

// Reads DIR/manifest.pb. kNotFound with a message saying the dataset is
// incomplete or not a dataset if it is missing; kDataLoss if it does not parse
// or its format_version is unknown.
StatusOr<DatasetManifest> ReadManifest(const std::string& dir);

// A 64-bit fingerprint of the dataset a manifest describes (its every field:
// source, seed, shards with their record counts and sizes, ...): equal for
// the same dataset wherever it lies, different for another one or the same
// log converted differently. Never 0.
uint64_t DatasetFingerprint(const DatasetManifest& manifest);

// Checks that every listed shard is there with the size its manifest
// recorded (a file cut short on a record boundary reads as fewer, valid
// records: only its size tells). kNotFound for a missing file, kDataLoss
// naming the file and both sizes for another size. Shards without a recorded
// size are not checked.
Status CheckShardSizes(const std::string& dir,
                       const google::protobuf::RepeatedPtrField<ShardInfo>& shards);

// Absolute (dir-joined) paths of the listed shards.
std::vector<std::string> ShardPaths(const std::string& dir,
                                    const google::protobuf::RepeatedPtrField<ShardInfo>& shards);

}  // namespace vrec
