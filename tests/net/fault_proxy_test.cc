#include "net/fault_proxy.h"

#include <atomic>
#include <thread>

#include "net/transport.h"
#include "testutil/testutil.h"

namespace vrec::net {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class Echo : public Handler {
 public:
  Message Handle(Message request) override {
    calls++;
    Message reply;
    reply.header = "echo:" + request.header;
    for (auto& f : request.frames) reply.frames.push_back(std::move(f));
    return reply;
  }
  Message ErrorReply(const Status&) override { return Message{}; }
  std::atomic<int> calls{0};
};

StatusOr<Message> Call(Client* client, const std::string& header, milliseconds timeout) {
  Message m;
  m.header = header;
  m.frames.push_back(FrameFromBytes("payload", 7));
  return client->Call(0, std::move(m), timeout).get();
}

TEST(FaultProxyTest, ForwardsWithADelayEachWay) {
  Echo echo;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&echo, {}));
  FaultOptions o;
  o.delay = milliseconds(100);
  ASSERT_OK_AND_ASSIGN(auto proxy, FaultProxy::Start(server->endpoint(), o));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({proxy->endpoint()}));
  ASSERT_OK(Call(client.get(), "warm", milliseconds(5000)).status());
  const auto start = Clock::now();
  ASSERT_OK_AND_ASSIGN(Message reply, Call(client.get(), "x", milliseconds(5000)));
  EXPECT_GE(Clock::now() - start, milliseconds(190));
  EXPECT_EQ(reply.header, "echo:x");
  ASSERT_EQ(reply.frames.size(), 1u);
  EXPECT_EQ(reply.frames[0].to_string(), "payload");
  EXPECT_EQ(proxy->forwarded(), 2u);
}

// A lost reply: the server did the work, the client hears nothing and its
// call ends at its deadline; once the network is back, calls go through.
TEST(FaultProxyTest, LostRepliesEndAtTheDeadlineAndTheClientRecovers) {
  Echo echo;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&echo, {}));
  FaultOptions o;
  o.drop_replies = 1;
  ASSERT_OK_AND_ASSIGN(auto proxy, FaultProxy::Start(server->endpoint(), o));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({proxy->endpoint()}));
  const auto start = Clock::now();
  EXPECT_THAT(Call(client.get(), "lost", milliseconds(300)).status(),
              StatusIs(absl::StatusCode::kUnavailable, "no reply"));
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  EXPECT_EQ(echo.calls.load(), 1);
  proxy->set_options({});
  ASSERT_OK_AND_ASSIGN(Message reply, Call(client.get(), "back", milliseconds(5000)));
  EXPECT_EQ(reply.header, "echo:back");
}

// Half the requests lost, many calls in flight: each one ends, answered or at
// its deadline, none hangs, and the count adds up.
TEST(FaultProxyTest, RandomLossesNeverHangACall) {
  Echo echo;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&echo, {}));
  FaultOptions o;
  o.drop_requests = 0.5;
  o.seed = 7;
  ASSERT_OK_AND_ASSIGN(auto proxy, FaultProxy::Start(server->endpoint(), o));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({proxy->endpoint()}));
  std::vector<std::future<StatusOr<Message>>> calls;
  for (int i = 0; i < 40; ++i) {
    Message m;
    m.header = std::to_string(i);
    calls.push_back(client->Call(0, std::move(m), milliseconds(500)));
  }
  int answered = 0, lost = 0;
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(calls[i].wait_for(std::chrono::seconds(5)), std::future_status::ready);
    StatusOr<Message> r = calls[i].get();
    if (r.ok()) {
      EXPECT_EQ(r->header, "echo:" + std::to_string(i));
      ++answered;
    } else {
      EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kUnavailable, "no reply"));
      ++lost;
    }
  }
  EXPECT_GT(answered, 5);
  EXPECT_GT(lost, 5);
  EXPECT_EQ(static_cast<uint64_t>(answered), proxy->forwarded());
  EXPECT_EQ(static_cast<uint64_t>(lost), proxy->dropped());
}

// A peer that stops answering (frozen: the connection stays up).
TEST(FaultProxyTest, ASilentPeerAnswersNothingUntilItWakes) {
  Echo echo;
  ASSERT_OK_AND_ASSIGN(auto server, Server::Start(&echo, {}));
  ASSERT_OK_AND_ASSIGN(auto proxy, FaultProxy::Start(server->endpoint()));
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect({proxy->endpoint()}));
  ASSERT_OK(Call(client.get(), "a", milliseconds(5000)).status());
  FaultOptions silent;
  silent.silent = true;
  proxy->set_options(silent);
  EXPECT_THAT(Call(client.get(), "b", milliseconds(300)).status(),
              StatusIs(absl::StatusCode::kUnavailable, "no reply"));
  EXPECT_EQ(echo.calls.load(), 1);
  proxy->set_options({});
  ASSERT_OK(Call(client.get(), "c", milliseconds(5000)).status());
  EXPECT_EQ(echo.calls.load(), 2);
}

}  // namespace
}  // namespace vrec::net
