// A stranger on the data plane, for tests/integration/stranger_test.sh: a
// process that speaks the parameter server's protocol (ps_wire.h) but holds
// none of the job's keys. It asks every `--seconds` for the server's stats
// and, when it learns a table's width, pushes +1.0 into its first rows: what
// an attacker on the network would do (a table's width it learns from the
// error a push of the wrong width gets). It connects twice: plain ZeroMQ, and
// CURVE with keys of its own (it cannot know the job's). Prints one JSON
// line: how many calls each way made and how many were answered.
//
//   ps_stranger ENDPOINT SECONDS
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "net/curve_auth.h"
#include "net/transport.h"
#include "nlohmann/json.hpp"
#include "ps/ps_wire.h"

namespace vrec {
namespace {

struct Tally {
  int calls = 0;
  int stats_replies = 0;
  int push_replies = 0;
};

// A PUSH of +1.0 into rows 1..64 of `table`, `dim` floats each: the reply's
// status, or the transport's error.
Status Push(net::Client* client, uint32_t table, uint32_t dim, std::chrono::milliseconds timeout) {
  std::vector<uint64_t> keys;
  for (uint64_t k = 1; k <= 64; ++k) keys.push_back(k);
  std::vector<float> values(keys.size() * dim, 1.0f);
  PsHeader p;
  p.set_version(ps::kPsWireVersion);
  p.set_op(PsHeader::PUSH);
  p.set_table(table);
  p.set_dim(dim);
  p.set_num_keys(keys.size());
  net::Message m = ps::MessageWithHeader(p);
  m.frames.push_back(net::FrameFromVector(std::move(keys)));
  m.frames.push_back(net::FrameFromVector(std::move(values)));
  StatusOr<net::Message> reply = client->Call(0, std::move(m), timeout).get();
  if (!reply.ok()) return reply.status();
  PsHeader rh;
  if (!rh.ParseFromString(reply->header)) return absl::DataLossError("unparseable reply");
  return ps::StatusFromHeader(rh);
}

// One round: STATS, then for every table the stats list a push of width 1,
// whose error names the table's width, then a push of that width.
void Round(net::Client* client, std::chrono::milliseconds timeout, Tally* tally) {
  PsHeader h;
  h.set_version(ps::kPsWireVersion);
  h.set_op(PsHeader::STATS);
  ++tally->calls;
  StatusOr<net::Message> reply = client->Call(0, ps::MessageWithHeader(h), timeout).get();
  if (!reply.ok()) return;
  ++tally->stats_replies;
  PsHeader rh;
  if (!rh.ParseFromString(reply->header)) return;
  nlohmann::json tables = nlohmann::json::parse(rh.stats_json(), nullptr, false);
  if (!tables.is_array()) return;
  for (uint32_t t = 0; t < tables.size(); ++t) {
    ++tally->calls;
    const Status probe = Push(client, t, 1, timeout);
    const std::string message(probe.message());
    const size_t at = message.find("has dim ");
    uint32_t dim = 0;
    if (at == std::string::npos ||
        !absl::SimpleAtoi(message.substr(at + 8, message.find(',', at) - at - 8), &dim)) {
      continue;
    }
    ++tally->calls;
    if (Push(client, t, dim, timeout).ok()) ++tally->push_replies;
  }
}

int Main(int argc, char** argv) {
  double seconds = 0;
  if (argc != 3 || !absl::SimpleAtod(argv[2], &seconds)) {
    std::cerr << "usage: ps_stranger ENDPOINT SECONDS\n";
    return 2;
  }
  const std::string endpoint = argv[1];
  net::ClientOptions plain;
  net::ClientOptions own_keys;
  StatusOr<net::DataPlaneKeys> keys = net::GenerateDataPlaneKeys();
  if (keys.ok()) own_keys.keys = *keys;
  const auto timeout = std::chrono::milliseconds(500);
  nlohmann::json out;
  for (const auto& [name, options] : {std::pair{"plain", plain}, std::pair{"own_keys", own_keys}}) {
    StatusOr<std::unique_ptr<net::Client>> client = net::Client::Connect({endpoint}, options);
    if (!client.ok()) {
      std::cerr << "ps_stranger: " << client.status() << "\n";
      return 1;
    }
    Tally tally;
    const auto end = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(seconds * 500));
    while (std::chrono::steady_clock::now() < end) Round(client->get(), timeout, &tally);
    out[name] = {{"calls", tally.calls},
                 {"stats_replies", tally.stats_replies},
                 {"push_replies", tally.push_replies}};
  }
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace vrec

int main(int argc, char** argv) { return vrec::Main(argc, argv); }
