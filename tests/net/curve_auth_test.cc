#include "net/curve_auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/numbers.h"
#include "net/transport.h"
#include "testutil/testutil.h"

namespace vrec::net {
namespace {

using std::chrono::milliseconds;

class CountingHandler : public Handler {
 public:
  Message Handle(Message request) override {
    calls++;
    Message reply;
    reply.header = "ok:" + request.header;
    return reply;
  }
  Message ErrorReply(const Status& status) override { return Message{}; }
  std::atomic<int> calls{0};
};

// Waits up to 5 s for the server to have refused `n` handshakes.
bool RefusedAtLeast(const Server& server, uint64_t n) {
  for (int i = 0; i < 100 && server.handshakes_refused() < n; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  return server.handshakes_refused() >= n;
}

StatusOr<Message> CallOnce(Client* client, const std::string& header, milliseconds timeout) {
  Message m;
  m.header = header;
  return client->Call(0, std::move(m), timeout).get();
}

TEST(CurveAuthTest, KeysRoundTripAndBadKeysAreRefused) {
  ASSERT_TRUE(CurveAvailable());
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys keys, GenerateDataPlaneKeys());
  EXPECT_TRUE(keys.enabled());
  EXPECT_EQ(keys.server.public_key.size(), 40u);
  EXPECT_NE(keys.server.public_key, keys.client.public_key);
  const std::string bytes = SerializeKeys(keys);
  EXPECT_EQ(bytes.size(), 160u);
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys back, ParseKeys(bytes));
  EXPECT_EQ(back.client.secret_key, keys.client.secret_key);
  EXPECT_EQ(back.server.public_key, keys.server.public_key);
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys none, ParseKeys(""));
  EXPECT_FALSE(none.enabled());
  EXPECT_THAT(ParseKeys("short").status(), StatusIs(absl::StatusCode::kInvalidArgument, "bytes"));
  EXPECT_THAT(ParseKeys(std::string(160, '"')).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "Z85"));
  // Two generations differ.
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys other, GenerateDataPlaneKeys());
  EXPECT_NE(other.server.secret_key, keys.server.secret_key);
}

TEST(CurveAuthTest, TheJobsClientIsServedOverTcp) {
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys keys, GenerateDataPlaneKeys());
  CountingHandler handler;
  ServerOptions so;
  so.keys = keys;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, so));
  ClientOptions co;
  co.keys = keys;
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}, co));
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(Message reply, CallOnce(client.get(), "pull", milliseconds(5000)));
    EXPECT_EQ(reply.header, "ok:pull");
  }
  EXPECT_EQ(handler.calls.load(), 20);
  EXPECT_EQ(server->handshakes_refused(), 0u);
}

// A stranger without the job's keys: no reply, the handler never runs, and
// the refusal is counted. Each way of lacking the keys is tried.
TEST(CurveAuthTest, StrangersGetNoReplyAndChangeNothing) {
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys keys, GenerateDataPlaneKeys());
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys another_job, GenerateDataPlaneKeys());
  CountingHandler handler;
  ServerOptions so;
  so.keys = keys;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, so));

  DataPlaneKeys own_client_key = keys;  // knows the server's key, not the client's
  own_client_key.client = another_job.client;
  DataPlaneKeys wrong_server = keys;  // holds the client key, wrong server key
  wrong_server.server.public_key = another_job.server.public_key;
  struct Case {
    const char* what;
    DataPlaneKeys keys;
  };
  const Case cases[] = {{"plain ZeroMQ", DataPlaneKeys{}},
                        {"a key of its own", own_client_key},
                        {"another server key", wrong_server},
                        {"another job", another_job}};
  uint64_t refused = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ClientOptions co;
    co.keys = c.keys;
    ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}, co));
    // Every call ends by its deadline: the client's I/O thread never blocks
    // on a connection that does not come up.
    for (int i = 0; i < 3; ++i) {
      const auto start = std::chrono::steady_clock::now();
      StatusOr<Message> reply = CallOnce(client.get(), "push", milliseconds(300));
      EXPECT_THAT(reply.status(), StatusIs(absl::StatusCode::kUnavailable, "no reply"));
      EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
    }
    ++refused;
    EXPECT_TRUE(RefusedAtLeast(*server, refused)) << server->handshakes_refused();
  }
  EXPECT_EQ(handler.calls.load(), 0);

  // Raw bytes on the port: refused, and the server still serves the job.
  const std::string& ep = server->endpoint();
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(ep.substr(ep.rfind(':') + 1), &port));
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff";
  ASSERT_GT(write(fd, garbage, sizeof(garbage)), 0);
  std::this_thread::sleep_for(milliseconds(200));
  close(fd);

  ClientOptions co;
  co.keys = keys;
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}, co));
  ASSERT_OK_AND_ASSIGN(Message reply, CallOnce(client.get(), "pull", milliseconds(5000)));
  EXPECT_EQ(reply.header, "ok:pull");
  EXPECT_EQ(handler.calls.load(), 1);
}

// A request sent before its server listens reaches it once it does (within
// the deadline), with or without keys.
TEST(CurveAuthTest, ARequestWaitsForItsServerToComeUp) {
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys keys, GenerateDataPlaneKeys());
  for (bool secure : {false, true}) {
    SCOPED_TRACE(secure ? "CURVE" : "plain");
    CountingHandler handler;
    ServerOptions so;
    if (secure) so.keys = keys;
    std::string endpoint;
    {
      ASSERT_OK_AND_ASSIGN(auto first, Server::Start(&handler, so));
      endpoint = first->endpoint();  // a port free a moment ago
    }
    ClientOptions co;
    co.keys = so.keys;
    ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({endpoint}, co));
    Message m;
    m.header = "early";
    auto reply = client->Call(0, std::move(m), milliseconds(10000));
    std::this_thread::sleep_for(milliseconds(300));
    so.bind = endpoint;
    ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, so));
    ASSERT_OK_AND_ASSIGN(Message got, reply.get());
    EXPECT_EQ(got.header, "ok:early");
  }
}

TEST(CurveAuthTest, InprocStaysPlainWithKeys) {
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys keys, GenerateDataPlaneKeys());
  CountingHandler handler;
  ServerOptions so;
  so.bind = "inproc://curve-auth-test";
  so.keys = keys;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, so));
  ClientOptions co;
  co.keys = keys;
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}, co));
  ASSERT_OK_AND_ASSIGN(Message reply, CallOnce(client.get(), "x", milliseconds(5000)));
  EXPECT_EQ(reply.header, "ok:x");
}

// Two authenticated servers in one process (each its own context and ZAP
// handler), one client of both.
TEST(CurveAuthTest, SeveralServersInOneProcess) {
  ASSERT_OK_AND_ASSIGN(DataPlaneKeys keys, GenerateDataPlaneKeys());
  CountingHandler h0, h1;
  ServerOptions so;
  so.keys = keys;
  ASSERT_OK_AND_ASSIGN(auto s0, Server::Start(&h0, so));
  ASSERT_OK_AND_ASSIGN(auto s1, Server::Start(&h1, so));
  ClientOptions co;
  co.keys = keys;
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({s0->endpoint(), s1->endpoint()}, co));
  for (int s = 0; s < 2; ++s) {
    Message m;
    m.header = "x";
    ASSERT_OK_AND_ASSIGN(Message reply, client->Call(s, std::move(m), milliseconds(5000)).get());
    EXPECT_EQ(reply.header, "ok:x");
  }
  EXPECT_EQ(h0.calls.load(), 1);
  EXPECT_EQ(h1.calls.load(), 1);
}

}  // namespace
}  // namespace vrec::net
