#include "net/transport.h"

#include <atomic>
#include <numeric>
#include <thread>

#include "testutil/testutil.h"

namespace vrec::net {
namespace {

using std::chrono::milliseconds;

// Echoes the header with a prefix and returns each frame with its bytes
// reversed, so the test sees the handler really ran on the payload.
class EchoHandler : public Handler {
 public:
  Message Handle(Message request) override {
    calls++;
    if (request.header == "sleep") std::this_thread::sleep_for(milliseconds(300));
    Message reply;
    reply.header = "echo:" + request.header;
    for (auto& f : request.frames) {
      std::string s = f.to_string();
      std::reverse(s.begin(), s.end());
      reply.frames.push_back(FrameFromBytes(s.data(), s.size()));
    }
    return reply;
  }
  Message ErrorReply(const Status& status) override {
    Message reply;
    reply.header = "error:" + std::string(status.message());
    return reply;
  }
  std::atomic<int> calls{0};
};

TEST(TransportTest, RoundTripWithFramesZeroCopyFromVector) {
  EchoHandler handler;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, {}));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}));
  std::vector<uint64_t> keys(1000);
  std::iota(keys.begin(), keys.end(), 1);
  Message m;
  m.header = "pull";
  m.frames.push_back(FrameFromVector(std::move(keys)));
  m.frames.push_back(FrameFromBytes("abc", 3));
  ASSERT_OK_AND_ASSIGN(Message reply, client->Call(0, std::move(m)).get());
  EXPECT_EQ(reply.header, "echo:pull");
  ASSERT_EQ(reply.frames.size(), 2u);
  EXPECT_EQ(reply.frames[0].size(), 8000u);
  EXPECT_EQ(reply.frames[1].to_string(), "cba");
  // Reversed bytes of key 1000 (little-endian) start the reversed frame.
  const uint8_t* p = reply.frames[0].data<uint8_t>();
  EXPECT_EQ(p[6], 1000 >> 8);
  EXPECT_EQ(p[7], 1000 & 0xff);
}

// Records where each request's first frame lives, and whether the server
// marked the request as from this process.
class AddressHandler : public Handler {
 public:
  Message Handle(Message request) override {
    local = request.local;
    if (!request.frames.empty()) seen = request.frames[0].data();
    Message reply;
    reply.header = "ok";
    return reply;
  }
  Message ErrorReply(const Status& status) override { return Message{}; }
  std::atomic<const void*> seen{nullptr};
  std::atomic<bool> local{false};
};

TEST(TransportTest, InprocServesThisProcessWithoutCopyingFrames) {
  AddressHandler handler;
  ServerOptions options;
  options.bind = "inproc://transport-test-inproc";
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, options));
  EXPECT_EQ(server->endpoint(), options.bind);
  // A client of an inproc server and a TCP server at once.
  EchoHandler echo;
  ASSERT_OK_AND_ASSIGN(auto tcp, Server::Start(&echo, {}));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint(), tcp->endpoint()}));
  std::vector<float> values(1 << 16, 1.5f);
  const void* sent = values.data();
  Message m;
  m.header = "push";
  m.frames.push_back(FrameFromVector(std::move(values)));
  ASSERT_OK_AND_ASSIGN(Message reply, client->Call(0, std::move(m)).get());
  EXPECT_EQ(reply.header, "ok");
  EXPECT_EQ(handler.seen.load(), sent) << "the frame was copied on its way";
  EXPECT_TRUE(handler.local.load());
  Message e;
  e.header = "x";
  ASSERT_OK_AND_ASSIGN(Message echoed, client->Call(1, std::move(e)).get());
  EXPECT_EQ(echoed.header, "echo:x");
}

// Message::local is the server's to set: a request over TCP is never local,
// whatever its sender had in the field.
TEST(TransportTest, OnlyAnInprocServerMarksRequestsLocal) {
  AddressHandler handler;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, {}));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}));
  Message m;
  m.header = "push";
  m.local = true;
  m.frames.push_back(FrameFromBytes("abc", 3));
  ASSERT_OK_AND_ASSIGN(Message reply, client->Call(0, std::move(m)).get());
  EXPECT_EQ(reply.header, "ok");
  EXPECT_FALSE(handler.local.load());
}

TEST(TransportTest, ManyThreadsManyCallsInFlightToSeveralServers) {
  EchoHandler h0, h1;
  ServerOptions opts;
  opts.threads = 3;
  ASSERT_OK_AND_ASSIGN(auto s0, Server::Start(&h0, opts));
  ASSERT_OK_AND_ASSIGN(auto s1, Server::Start(&h1, opts));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({s0->endpoint(), s1->endpoint()}));
  constexpr int kThreads = 4, kCalls = 200;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<std::string, std::future<StatusOr<Message>>>> inflight;
      for (int i = 0; i < kCalls; ++i) {
        Message m;
        const std::string header = std::to_string(t) + "/" + std::to_string(i);
        m.header = header;
        inflight.emplace_back(header, client->Call(i % 2, std::move(m)));
      }
      for (auto& [header, f] : inflight) {
        auto r = f.get();
        if (r.ok() && r->header == "echo:" + header) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kCalls);
  EXPECT_EQ(h0.calls.load() + h1.calls.load(), kThreads * kCalls);
  EXPECT_GT(h0.calls.load(), 0);
  EXPECT_GT(h1.calls.load(), 0);
}

TEST(TransportTest, LargeMessage) {
  EchoHandler handler;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, {}));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}));
  std::vector<float> values(10000 * 64, 1.5f);
  Message m;
  m.header = "big";
  m.frames.push_back(FrameFromVector(std::move(values)));
  ASSERT_OK_AND_ASSIGN(Message reply, client->Call(0, std::move(m)).get());
  ASSERT_EQ(reply.frames.size(), 1u);
  EXPECT_EQ(reply.frames[0].size(), 10000u * 64 * 4);
}

TEST(TransportTest, TimeoutNamesTheEndpointAndLateReplyIsDropped) {
  EchoHandler handler;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, {}));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}));
  Message m;
  m.header = "sleep";
  auto r = client->Call(0, std::move(m), milliseconds(50)).get();
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, server->endpoint()));
  // The next call still works once the slow one's late reply has come and gone.
  std::this_thread::sleep_for(milliseconds(400));
  Message m2;
  m2.header = "after";
  ASSERT_OK_AND_ASSIGN(Message reply, client->Call(0, std::move(m2)).get());
  EXPECT_EQ(reply.header, "echo:after");
}

TEST(TransportTest, DeadServerGivesUnavailable) {
  EchoHandler handler;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, {}));
  const std::string endpoint = server->endpoint();
  server.reset();
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({endpoint}));
  Message m;
  m.header = "anyone?";
  EXPECT_THAT(client->Call(0, std::move(m), milliseconds(100)).get(),
              StatusIs(absl::StatusCode::kUnavailable, endpoint));
}

TEST(TransportTest, MalformedAndOversizedRequestsGetErrorRepliesAndServerLives) {
  EchoHandler handler;
  ServerOptions opts;
  opts.max_message_bytes = 1 << 16;
  opts.max_frames = 4;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, opts));

  // A raw DEALER that ignores the protocol.
  zmq::context_t ctx(1);
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 2000);
  raw.connect(server->endpoint());
  auto expect_error = [&](const std::string& substr) {
    std::vector<zmq::message_t> parts;
    zmq::message_t part;
    do {
      ASSERT_TRUE(raw.recv(part, zmq::recv_flags::none)) << "no reply";
      parts.push_back(zmq::message_t(part.data(), part.size()));
    } while (part.more());
    ASSERT_GE(parts.size(), 2u);
    EXPECT_THAT(parts[1].to_string(), ::testing::HasSubstr(substr));
  };
  // One frame only: no header.
  raw.send(zmq::str_buffer("junk"), zmq::send_flags::none);
  expect_error("malformed request");
  // A request id of the wrong size.
  raw.send(zmq::str_buffer("abc"), zmq::send_flags::sndmore);
  raw.send(zmq::str_buffer("hdr"), zmq::send_flags::none);
  expect_error("request id frame of 3 bytes");

  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}));
  Message too_many;
  too_many.header = "h";
  for (int i = 0; i < 5; ++i) too_many.frames.push_back(FrameFromBytes("x", 1));
  ASSERT_OK_AND_ASSIGN(Message r1, client->Call(0, std::move(too_many)).get());
  EXPECT_THAT(r1.header, ::testing::HasSubstr("5 data frames, at most 4"));
  Message too_big;
  too_big.header = "h";
  too_big.frames.push_back(FrameFromVector(std::vector<char>(70000, 'x')));
  ASSERT_OK_AND_ASSIGN(Message r2, client->Call(0, std::move(too_big)).get());
  EXPECT_THAT(r2.header, ::testing::HasSubstr("exceeds the limit"));
  EXPECT_EQ(server->requests_rejected(), 4u);

  Message fine;
  fine.header = "still here";
  ASSERT_OK_AND_ASSIGN(Message r3, client->Call(0, std::move(fine)).get());
  EXPECT_EQ(r3.header, "echo:still here");
}

TEST(TransportTest, BadServerIndexAndBadBind) {
  EchoHandler handler;
  ServerOptions opts;
  opts.bind = "tcp://999.0.0.1:1";
  EXPECT_THAT(Server::Start(&handler, opts), StatusIs(absl::StatusCode::kUnavailable, "999.0.0.1"));
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&handler, {}));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({server->endpoint()}));
  EXPECT_THAT(client->Call(3, Message{}).get(),
              StatusIs(absl::StatusCode::kInvalidArgument, "no server 3"));
}

}  // namespace
}  // namespace vrec::net
