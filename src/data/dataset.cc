#include "data/dataset.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/random.h"

namespace vrec {
namespace {

constexpr char kManifestPb[] = "manifest.pb";
constexpr char kManifestJson[] = "manifest.json";

Status CheckShards(const std::string& file, const char* field,
                   const google::protobuf::RepeatedPtrField<ShardInfo>& shards) {
  for (int i = 0; i < shards.size(); ++i) {
    if (shards[i].path().empty()) {
      return absl::DataLossError(
          absl::StrCat("manifest ", file, ": ", field, "[", i, "] has an empty path"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string ShardFileName(const std::string& prefix, int index, int count) {
  char digits[64];
  std::snprintf(digits, sizeof(digits), "-%05d-of-%05d.rec", index, count);
  return prefix + digits;
}

Status WriteManifest(const std::string& dir, const DatasetManifest& manifest) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(manifest, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot render the manifest of ", dir, " as JSON: ", status.ToString()));
  }
  std::string binary;
  if (!manifest.SerializeToString(&binary)) {
    return absl::InternalError(absl::StrCat("cannot serialize the manifest of ", dir));
  }
  // The JSON first: manifest.pb is the commit point of the dataset.
  VREC_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, kManifestJson), json));
  return WriteFileAtomic(JoinPath(dir, kManifestPb), binary);
}

uint64_t DatasetFingerprint(const DatasetManifest& manifest) {
  std::string bytes;
  google::protobuf::io::StringOutputStream raw(&bytes);
  {
    google::protobuf::io::CodedOutputStream out(&raw);
    out.SetSerializationDeterministic(true);
    manifest.SerializeToCodedStream(&out);
  }
  uint64_t h = 0x76726563'64617461ULL;  // "vrecdata"
  for (size_t i = 0; i < bytes.size(); i += 8) {
    uint64_t chunk = 0;
    std::memcpy(&chunk, bytes.data() + i, std::min<size_t>(8, bytes.size() - i));
    h = HashCombine(h, chunk);
  }
  h = HashCombine(h, bytes.size());
  return h == 0 ? 1 : h;
}

StatusOr<DatasetManifest> ReadManifest(const std::string& dir) {
  const std::string file = JoinPath(dir, kManifestPb);
  if (!PathExists(file)) {
    return absl::NotFoundError(absl::StrCat(
        "no ", file, ": ", dir,
        " is not a dataset, or an incomplete one (its writer has not finished or died)"));
  }
  VREC_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(file));
  DatasetManifest manifest;
  if (!manifest.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat("manifest ", file, " (", bytes.size(), " bytes) does not parse"));
  }
  if (manifest.format_version() != kDatasetFormatVersion) {
    return absl::DataLossError(absl::StrCat("manifest ", file, " has format_version ",
                                            manifest.format_version(), "; this vrec reads ",
                                            kDatasetFormatVersion));
  }
  VREC_RETURN_IF_ERROR(CheckShards(file, "candidate_train", manifest.candidate_train()));
  VREC_RETURN_IF_ERROR(CheckShards(file, "candidate_test", manifest.candidate_test()));
  VREC_RETURN_IF_ERROR(CheckShards(file, "ranking_train", manifest.ranking_train()));
  VREC_RETURN_IF_ERROR(CheckShards(file, "ranking_test", manifest.ranking_test()));
  VREC_RETURN_IF_ERROR(CheckShards(file, "ranking_train_sample", manifest.ranking_train_sample()));
  if (manifest.train_streamed() &&
      (manifest.candidate_train_size() > 0 || manifest.ranking_train_size() > 0)) {
    return absl::DataLossError(absl::StrCat("manifest ", file,
                                            " says its training examples are streamed, yet lists "
                                            "training files"));
  }
  return manifest;
}

std::vector<std::string> ShardPaths(const std::string& dir,
                                    const google::protobuf::RepeatedPtrField<ShardInfo>& shards) {
  std::vector<std::string> out;
  out.reserve(shards.size());
  for (const ShardInfo& s : shards) out.push_back(JoinPath(dir, s.path()));
  return out;
}

Status CheckShardSizes(const std::string& dir,
                       const google::protobuf::RepeatedPtrField<ShardInfo>& shards) {
  for (const ShardInfo& s : shards) {
    if (s.bytes() == 0) continue;
    const std::string path = JoinPath(dir, s.path());
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) {
      return absl::NotFoundError(
          absl::StrCat(path, ": ", ec.message(), " (the dataset's manifest lists it)"));
    }
    if (size != s.bytes()) {
      return absl::DataLossError(absl::StrCat(
          path, " holds ", size, " bytes, but the dataset's manifest says ", s.bytes(), " (",
          s.records(), " records): the file was ", size < s.bytes() ? "cut short" : "changed",
          " after it was written; restore it or regenerate the dataset (vrec inspect ", dir,
          " checks every file)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace vrec
