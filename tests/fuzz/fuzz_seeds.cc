// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/TARGET/),
// built with the real encoders: PS requests as PsClient frames them, record
// files written by RecordWriter, CSV files in `vrec convert`'s layout, HTTP
// requests as docs/serving.md shows them. Small valid inputs, and a few
// near misses; the fuzzer finds the rest.
//
//   fuzz_seeds OUT_DIR     (tests/fuzz/run.sh --seeds rewrites tests/fuzz/corpus)
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "data/record_writer.h"
#include "proto/data.pb.h"
#include "proto/ps.pb.h"
#include "ps/ps_wire.h"
#include "ps_fuzz_input.h"

namespace vrec::fuzz {
namespace {

void Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(dir);
  Status s = WriteFileAtomic(dir + "/" + name, bytes);
  if (!s.ok()) {
    std::fprintf(stderr, "fuzz_seeds: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

// ---- HTTP: "METHOD PATH\nBODY"
void HttpSeeds(const std::string& dir) {
  Write(dir, "recommend-full",
        "POST /v1/recommend\n{\"watch_history\": [3, 17, 42], \"search_tokens\": [5, 9], "
        "\"region\": 2, \"device\": 1, \"age\": 30, \"gender\": 1, \"num\": 5}");
  Write(dir, "recommend-empty", "POST /v1/recommend\n{}");
  Write(dir, "recommend-many", "POST /v1/recommend\n{\"num\": 1000, \"watch_history\": [1, 1, 2]}");
  Write(dir, "recommend-bad-age", "POST /v1/recommend\n{\"age\": 7}");
  Write(dir, "recommend-not-object", "POST /v1/recommend\n[1, 2]");
  Write(dir, "healthz", "GET /healthz\n");
  Write(dir, "metrics", "GET /metrics\n");
  Write(dir, "head-healthz", "HEAD /healthz\n");
  Write(dir, "reload", "POST /v1/reload\n");
  Write(dir, "not-found", "GET /v2/%FF\n");
}

// ---- PS: requests as PsClient builds them (ps_client.cc), table 0 has
// dim 4, table 1 dim 8 (ps_fuzz.cc).
net::Message Request(PsHeader::Op op, uint32_t table, uint32_t dim, std::vector<uint64_t> keys,
                     std::vector<float> grads = {}) {
  PsHeader h;
  h.set_version(ps::kPsWireVersion);
  h.set_op(op);
  h.set_table(table);
  h.set_dim(dim);
  h.set_num_keys(keys.size());
  h.set_worker(1);
  h.set_worker_step(3);
  net::Message m = ps::MessageWithHeader(h);
  m.frames.push_back(net::FrameFromVector(std::move(keys)));
  if (op == PsHeader::PUSH) m.frames.push_back(net::FrameFromVector(std::move(grads)));
  return m;
}

net::Message Clock(uint32_t worker, uint64_t step, bool set) {
  PsHeader h;
  h.set_version(ps::kPsWireVersion);
  h.set_op(PsHeader::CLOCK);
  h.set_worker(worker);
  h.set_worker_step(step);
  h.set_set_step(set);
  return ps::MessageWithHeader(h);
}

void PsSeeds(const std::string& dir) {
  auto one = [&](const std::string& name, net::Message m) {
    std::vector<net::Message> v;
    v.push_back(std::move(m));
    Write(dir, name, EncodeRequests(v));
  };
  one("pull", Request(PsHeader::PULL, 0, 4, {1, 2, 99}));
  one("push", Request(PsHeader::PUSH, 0, 4, {7, 8}, std::vector<float>(8, 0.25f)));
  one("push-nan", Request(PsHeader::PUSH, 1, 8, {7},
                          std::vector<float>(8, std::numeric_limits<float>::quiet_NaN())));
  one("clock", Clock(2, 10, false));
  PsHeader stats;
  stats.set_version(ps::kPsWireVersion);
  stats.set_op(PsHeader::STATS);
  one("stats", ps::MessageWithHeader(stats));
  // A session: pull (admission counts a first sighting), pull again (admitted),
  // push, pull, clocks, stats.
  std::vector<net::Message> v;
  v.push_back(Request(PsHeader::PULL, 1, 8, {5, 6}));
  v.push_back(Request(PsHeader::PULL, 1, 8, {5, 6}));
  v.push_back(Request(PsHeader::PUSH, 1, 8, {5, 6}, std::vector<float>(16, -1.f)));
  v.push_back(Request(PsHeader::PULL, 1, 8, {6}));
  v.push_back(Clock(0, 4, false));
  v.push_back(Clock(1, 2, true));
  v.push_back(ps::MessageWithHeader(stats));
  Write(dir, "session", EncodeRequests(v));
}

// ---- Record files
template <typename M>
std::string RecordFile(const std::string& scratch, const std::vector<M>& messages) {
  auto writer = RecordWriter::Create(scratch).value();
  for (const M& m : messages) (void)writer->WriteMessage(m);
  (void)writer->Close();
  return ReadFileToString(scratch).value();
}

void RecordSeeds(const std::string& dir, const std::string& scratch) {
  std::vector<CandidateExample> examples(3);
  for (int i = 0; i < 3; ++i) {
    examples[i].set_example_id(i + 1);
    examples[i].set_user_id(100 + i);
    for (int j = 0; j <= i; ++j) examples[i].add_watch_history(10 * j + 1);
    examples[i].add_search_tokens(7);
    examples[i].set_label_video(55);
    examples[i].set_time(3.5);
    examples[i].set_age(0.25f);
  }
  const std::string candidates = RecordFile(scratch, examples);
  Write(dir, "candidate-examples", candidates);
  std::vector<VideoInfo> videos(2);
  videos[0].set_video_id(1);
  videos[0].set_topic(3);
  videos[1].set_video_id(2);
  videos[1].set_upload_time(-12.5);
  Write(dir, "videos", RecordFile(scratch, videos));
  Write(dir, "empty", "");
  std::string flipped = candidates;
  flipped[20] ^= 0x40;  // the first payload: skip mode resynchronises on the second
  Write(dir, "candidate-examples-flipped", flipped);
  Write(dir, "candidate-examples-truncated", candidates.substr(0, candidates.size() - 3));
}

// ---- CSV files in `vrec convert`'s layout (docs/convert.md)
void CsvSeeds(const std::string& dir) {
  Write(dir, "ratings",
        "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n1,20,2.0,964982800\n"
        "1,30,5.0,964982900\n2,10,3.5,964983000\n2,30,1.0,964983100\n");
  Write(dir, "genres-quoted",
        "\xEF\xBB\xBFuserId,movieId,title,genres,timestamp\r\n"
        "7,1,\"Toy Story (1995)\",Adventure|Animation,100\r\n"
        "7,2,\"Heat, \"\"the\"\" (1995)\",Action|Crime,200\r\n"
        "7,3,\"two\nlines\",(no genres listed),300\r\n\r\n"
        "8,1,\"x\",Comedy,50\r\n");
  Write(dir, "bad-rows",
        "userId,movieId,timestamp\n1,2,3\n1,x,4\n\"1\",\"3\"\"\",5\n1,4\n2,2,+9\n2,3,-1\n");
}

// An events table's seeds: the first byte is the fuzz target's mode (bit 0:
// JSON Lines; bit 1: clicks are watches; bit 2: two examples a user; bits
// 3+: the split), the rest the file.
void EventsSeeds(const std::string& dir) {
  const std::string csv =
      "user,item,timestamp,event,watch_seconds,query,position,device,region\n"
      "u1,v1,100.5,watch,,,,phone,eu\n"
      "u1,,150,search,,Funny Cats 2,,phone,eu\n"
      "u1,v2,200,impression,,,0,phone,eu\n"
      "u1,v3,200,impression,,,1,phone,eu\n"
      "u1,v2,230,click,41.5,,,phone,eu\n"
      "u1,v2,240,watch,,,,phone,eu\n"
      "user 2,v1,2026-12-03T10:15:00Z,watch,,,,tv,\n"
      "user 2,v3,2026-12-04,watch,,,,tv,\n"
      "u1,v9,999999,click,,,,,\n";
  Write(dir, "events-csv-last-watch", std::string(1, '\x00') + csv);
  Write(dir, "events-csv-last-day", std::string(1, '\x0a') + csv);
  Write(dir, "events-csv-users", std::string(1, '\x16') + csv);
  Write(dir, "events-jsonl",
        std::string(1, '\x01') +
            "{\"user\": \"u1\", \"item\": \"v1\", \"timestamp\": 10}\n"
            "{\"user\": \"u1\", \"item\": \"v2\", \"timestamp\": 20, \"event\": \"impression\","
            " \"position\": 3}\n"
            "{\"user\": \"u1\", \"item\": \"v2\", \"timestamp\": 25, \"event\": \"click\", "
            "\"watch_seconds\": 9}\n"
            "{\"user\": \"u1\", \"timestamp\": 30, \"event\": \"search\", \"query\": \"x y\"}\n"
            "{\"user\": \"u1\", \"item\": \"v3\", \"timestamp\": \"1970-01-01T00:01:00Z\"}\n");
}

}  // namespace
}  // namespace vrec::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT_DIR\n");
    return 2;
  }
  const std::string out = argv[1];
  const std::string scratch = out + "/.scratch.rec";
  vrec::fuzz::HttpSeeds(out + "/http");
  vrec::fuzz::PsSeeds(out + "/ps");
  vrec::fuzz::RecordSeeds(out + "/record", scratch);
  vrec::fuzz::CsvSeeds(out + "/csv");
  vrec::fuzz::EventsSeeds(out + "/events");
  std::filesystem::remove(scratch);
  return 0;
}
