// Fuzzes `vrec convert --events` (data/events_reader.h, data/event_sorter.h,
// data/example_builder.h): the input is an events table. Its first byte
// picks how it is read and converted: CSV or JSON Lines, the held-out split,
// whether clicks are watches; the rest is the file.
//
// Checked beyond the sanitizers: the conversion succeeds or fails with
// kInvalidArgument (a bad table); a success converts under a 1 MB sort
// budget and keeps its counts consistent (examples never outnumber the
// events they come from).
#include <cstdint>
#include <string>

#include "data/csv_converter.h"
#include "fuzz_util.h"
#include "glog/logging.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FLAGS_minloglevel = 2;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vrec;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  static const std::string csv = fuzz::ScratchPath("events.csv");
  static const std::string jsonl = fuzz::ScratchPath("events.jsonl");
  static const std::string held_out = fuzz::ScratchPath("held_out.txt");
  static const std::string out_dir = fuzz::ScratchPath("events-dataset");
  const std::string& path = (mode & 1) ? jsonl : csv;
  fuzz::WriteFileOrDie(path, data + 1, size - 1);
  static const char kUsers[] = "u1\nuser 2\n\n";
  fuzz::WriteFileOrDie(held_out, reinterpret_cast<const uint8_t*>(kUsers), sizeof(kUsers) - 1);

  ConvertOptions o;
  o.events_path = path;
  o.out_dir = out_dir;
  o.shards = 2;
  o.skip_bad_rows = true;
  o.progress_interval_s = 0;
  o.sort_memory_mb = 1;
  o.clicks_are_watches = (mode & 2) != 0;
  o.max_examples_per_user = (mode & 4) ? 2 : 0;
  switch ((mode >> 3) % 3) {
    case 0:
      o.test_split = TestSplit::kLastWatch;
      break;
    case 1:
      o.test_split = TestSplit::kLastDay;
      break;
    default:
      o.test_split = TestSplit::kUsers;
      o.test_users_path = held_out;
  }
  StatusOr<ConvertSummary> s = ConvertCsv(o);
  if (!s.ok()) {
    VREC_FUZZ_CHECK(absl::IsInvalidArgument(s.status()), s.status().ToString());
    return 0;
  }
  const std::string json = ConvertSummaryJson(*s);
  VREC_FUZZ_CHECK(s->impressions + s->clicks + s->searches <= s->rows, json);
  VREC_FUZZ_CHECK(s->interactions <= s->rows, json);
  VREC_FUZZ_CHECK(s->train_examples + s->test_examples <= s->interactions, json);
  VREC_FUZZ_CHECK(s->ranking_train_examples + s->ranking_test_examples <= s->impressions, json);
  VREC_FUZZ_CHECK(s->clicked_impressions <= s->ranking_train_examples + s->ranking_test_examples,
                  json);
  VREC_FUZZ_CHECK(s->users >= 1 && s->users <= s->rows, json);
  return 0;
}
