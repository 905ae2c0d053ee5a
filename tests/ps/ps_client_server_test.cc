#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <thread>

#include "common/random.h"
#include "net/fault_proxy.h"
#include "nlohmann/json.hpp"
#include "ps/ps_client.h"
#include "ps/ps_server.h"
#include "ps/ps_wire.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

constexpr uint32_t kDim = 8;

// Deterministic initial row: key-dependent so the test can check placement.
void InitRow(uint64_t key, float* w) {
  for (uint32_t d = 0; d < kDim; ++d) w[d] = static_cast<float>(key % 1000) + 0.01f * d;
}

std::unique_ptr<EmbeddingStore> MakeStore(const std::string& name) {
  OptimizerConfig sgd;
  sgd.set_kind(OptimizerConfig::SGD);
  sgd.set_learning_rate(1.0f);
  EmbeddingStoreOptions o;
  o.table_name = name;
  o.table_id = TableId(name);
  o.dim = kDim;
  o.optimizer = std::shared_ptr<const Optimizer>(Optimizer::Create(sgd).value());
  o.init = InitRow;
  return EmbeddingStore::Create(std::move(o)).value();
}

// Parameter servers with one table each, on loopback (or, with `inproc`,
// in this process: requests then name the caller's memory), and a client.
struct Cluster {
  explicit Cluster(int num_servers = 2, bool inproc = false) {
    static std::atomic<int> next{0};
    for (int s = 0; s < num_servers; ++s) {
      stores.push_back(MakeStore("video"));
      services.push_back(
          std::make_unique<PsService>(std::vector<EmbeddingStore*>{stores.back().get()}));
      net::ServerOptions so;
      if (inproc) so.bind = "inproc://ps-client-server-test-" + std::to_string(next++);
      servers.push_back(net::Server::Start(services.back().get(), so).value());
      endpoints.push_back(servers.back()->endpoint());
    }
    transport = net::Client::Connect(endpoints).value();
    client = std::make_unique<PsClient>(transport.get(),
                                        SlotRouter::Contiguous(num_servers).value());
    table = {0, TableId("video"), kDim};
  }
  std::vector<std::unique_ptr<EmbeddingStore>> stores;
  std::vector<std::unique_ptr<PsService>> services;
  std::vector<std::unique_ptr<net::Server>> servers;
  std::vector<std::string> endpoints;
  std::unique_ptr<net::Client> transport;
  std::unique_ptr<PsClient> client;
  PsTable table;
};

TEST(PsClientServerTest, PullReturnsInitialRowsFromTheOwningServer) {
  Cluster c;
  std::vector<uint64_t> keys;
  for (uint64_t k = 1; k <= 500; ++k) keys.push_back(k * 7919);
  std::vector<float> out(keys.size() * kDim, -1.0f);
  ASSERT_OK(c.client->Pull(c.table, keys, out.data()).Wait());
  for (size_t i = 0; i < keys.size(); ++i) {
    float want[kDim];
    InitRow(keys[i], want);
    for (uint32_t d = 0; d < kDim; ++d) ASSERT_EQ(out[i * kDim + d], want[d]) << "key " << keys[i];
  }
  // Each key was created on exactly the server the router names.
  const SlotRouter& router = c.client->router();
  uint64_t per_server[2] = {0, 0};
  for (uint64_t k : keys) per_server[router.Server(c.table.table_id, k)]++;
  EXPECT_EQ(c.stores[0]->Stats().rows_in_memory, per_server[0]);
  EXPECT_EQ(c.stores[1]->Stats().rows_in_memory, per_server[1]);
  EXPECT_GT(per_server[0], 0u);
  EXPECT_GT(per_server[1], 0u);
}

TEST(PsClientServerTest, PushSumsDuplicatesAndAppliesOnce) {
  Cluster c;
  std::vector<uint64_t> keys = {11, 22, 11, 33, 11};
  std::vector<float> grads(keys.size() * kDim, 0.5f);
  ASSERT_OK(c.client->Push(c.table, keys, grads).Wait());
  std::vector<uint64_t> unique = {11, 22, 33};
  std::vector<float> out(unique.size() * kDim);
  ASSERT_OK(c.client->Pull(c.table, unique, out.data()).Wait());
  // SGD with learning rate 1: w = init - sum of grads; key 11 got 3 x 0.5.
  const float times[3] = {3, 1, 1};
  for (size_t i = 0; i < unique.size(); ++i) {
    float init[kDim];
    InitRow(unique[i], init);
    for (uint32_t d = 0; d < kDim; ++d)
      EXPECT_FLOAT_EQ(out[i * kDim + d], init[d] - 0.5f * times[i]);
  }
  // One update per unique key reached the stores.
  EXPECT_EQ(c.stores[0]->Stats().push_keys + c.stores[1]->Stats().push_keys, 3u);
}

// Many keys over both servers, each repeated 1-4 times at scattered
// positions with a different gradient every time: every key's row moves by
// exactly the sum of its own gradients.
TEST(PsClientServerTest, PushSumsDuplicatesAcrossServersIntoTheirOwnRows) {
  Cluster c;
  Rng rng(7, 0);
  std::vector<uint64_t> keys;
  std::map<uint64_t, std::vector<double>> sum;
  for (uint64_t k = 1; k <= 300; ++k) {
    const int times = 1 + static_cast<int>(rng.UniformInt(4));
    for (int t = 0; t < times; ++t) keys.push_back(k * 104729);
  }
  for (size_t i = keys.size(); i > 1; --i) std::swap(keys[i - 1], keys[rng.UniformInt(i)]);
  std::vector<float> grads(keys.size() * kDim);
  for (size_t i = 0; i < keys.size(); ++i) {
    std::vector<double>& s = sum[keys[i]];
    s.resize(kDim, 0.0);
    for (uint32_t d = 0; d < kDim; ++d) {
      grads[i * kDim + d] = static_cast<float>(i % 97) * 0.01f + static_cast<float>(d);
      s[d] += grads[i * kDim + d];
    }
  }
  ASSERT_OK(c.client->Push(c.table, keys, grads).Wait());
  std::vector<uint64_t> unique;
  for (const auto& [k, s] : sum) unique.push_back(k);
  std::vector<float> out(unique.size() * kDim);
  ASSERT_OK(c.client->Pull(c.table, unique, out.data()).Wait());
  for (size_t i = 0; i < unique.size(); ++i) {
    float init[kDim];
    InitRow(unique[i], init);
    for (uint32_t d = 0; d < kDim; ++d) {
      ASSERT_NEAR(out[i * kDim + d], init[d] - sum[unique[i]][d], 1e-3) << "key " << unique[i];
    }
  }
  EXPECT_EQ(c.stores[0]->Stats().push_keys + c.stores[1]->Stats().push_keys, unique.size());
  EXPECT_GT(c.stores[0]->Stats().push_keys, 0u);
  EXPECT_GT(c.stores[1]->Stats().push_keys, 0u);
}

TEST(PsClientServerTest, ManyRequestsInFlight) {
  Cluster c;
  constexpr int kBatches = 20, kKeys = 1000;
  std::vector<std::vector<uint64_t>> keys(kBatches);
  std::vector<std::vector<float>> outs(kBatches, std::vector<float>(kKeys * kDim));
  std::vector<PsRequest> reqs;
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kKeys; ++i) keys[b].push_back(b * 100000 + i + 1);
    reqs.push_back(c.client->Pull(c.table, keys[b], outs[b].data()));
  }
  for (int b = 0; b < kBatches; ++b) {
    ASSERT_OK(reqs[b].Wait());
    float want[kDim];
    InitRow(keys[b][kKeys - 1], want);
    EXPECT_EQ(outs[b][(kKeys - 1) * kDim], want[0]);
  }
}

TEST(PsClientServerTest, StatsFromEveryServer) {
  Cluster c;
  std::vector<uint64_t> keys = {1, 2, 3, 4, 5, 6};
  std::vector<float> out(keys.size() * kDim);
  ASSERT_OK(c.client->Pull(c.table, keys, out.data()).Wait());
  ASSERT_OK_AND_ASSIGN(auto stats, c.client->Stats());
  ASSERT_EQ(stats.size(), 2u);
  auto a = nlohmann::json::parse(stats[0]), b = nlohmann::json::parse(stats[1]);
  EXPECT_EQ(a[0]["table"], "video");
  EXPECT_EQ(a[0]["rows_in_memory"].get<uint64_t>() + b[0]["rows_in_memory"].get<uint64_t>(), 6u);
}

// Sends a hand-made request straight through the transport.
StatusOr<PsHeader> RawCall(Cluster& c, const std::string& header,
                           std::vector<zmq::message_t> frames) {
  net::Message m;
  m.header = header;
  m.frames = std::move(frames);
  VREC_ASSIGN_OR_RETURN(net::Message reply, c.transport->Call(0, std::move(m)).get());
  PsHeader h;
  if (!h.ParseFromString(reply.header)) return absl::DataLossError("bad reply header");
  return h;
}

std::string Header(PsHeader::Op op, uint32_t table, uint32_t dim, uint64_t n,
                   uint32_t version = kPsWireVersion) {
  PsHeader h;
  h.set_version(version);
  h.set_op(op);
  h.set_table(table);
  h.set_dim(dim);
  h.set_num_keys(n);
  return h.SerializeAsString();
}

std::vector<zmq::message_t> Frames(std::vector<uint64_t> keys, std::vector<float> values = {},
                                   bool with_values = false) {
  std::vector<zmq::message_t> f;
  f.push_back(net::FrameFromVector(std::move(keys)));
  if (with_values) f.push_back(net::FrameFromVector(std::move(values)));
  return f;
}

TEST(PsClientServerTest, MalformedRequestsAreAnsweredWithErrorsAndChangeNothing) {
  Cluster c;
  struct Case {
    std::string name, header;
    std::vector<zmq::message_t> frames;
    std::string expect;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<Case> cases;
  cases.push_back({"garbage header", "\xff\xff\xff", {}, "unparseable request header"});
  cases.push_back(
      {"wrong version", Header(PsHeader::PULL, 0, kDim, 1, 99), Frames({1}), "wire version 99"});
  cases.push_back({"unknown table", Header(PsHeader::PULL, 5, kDim, 1), Frames({1}), "no table 5"});
  cases.push_back({"wrong dim", Header(PsHeader::PULL, 0, 3, 1), Frames({1}), "has dim 8"});
  cases.push_back({"short key frame", Header(PsHeader::PULL, 0, kDim, 2), Frames({1}),
                   "key frame of 8 bytes for 2 keys"});
  cases.push_back({"push without grads", Header(PsHeader::PUSH, 0, kDim, 1), Frames({1}),
                   "needs 2 data frames"});
  cases.push_back({"short grads", Header(PsHeader::PUSH, 0, kDim, 1),
                   Frames({1}, std::vector<float>(3, 1.f), true), "gradient frame of 12 bytes"});
  cases.push_back({"NaN grads", Header(PsHeader::PUSH, 0, kDim, 1),
                   Frames({1}, std::vector<float>(kDim, nan), true), "finite"});
  cases.push_back(
      {"unknown op", Header(static_cast<PsHeader::Op>(77), 0, kDim, 1), Frames({1}), "unknown op"});
  // n * 8 wraps around to the frame's 8 bytes: the server used to serve it
  // (and with dim 4 allocate n * dim floats, 2^63 of them).
  cases.push_back({"key count that wraps", Header(PsHeader::PULL, 0, kDim, (1ull << 61) + 1),
                   Frames({1}), "key frame of 8 bytes for 2305843009213693953 keys"});
  for (auto& cs : cases) {
    ASSERT_OK_AND_ASSIGN(PsHeader h, RawCall(c, cs.header, std::move(cs.frames)));
    EXPECT_NE(h.status_code(), 0) << cs.name;
    EXPECT_THAT(h.error(), ::testing::HasSubstr(cs.expect)) << cs.name;
  }
  // Nothing was applied: key 1 still has its initial value, and the server
  // still answers good requests.
  std::vector<uint64_t> key = {1};
  std::vector<float> out(kDim);
  ASSERT_OK(c.client->Pull(c.table, key, out.data()).Wait());
  float init[kDim];
  InitRow(1, init);
  for (uint32_t d = 0; d < kDim; ++d) EXPECT_EQ(out[d], init[d]);
}

// Whatever a handler throws (here the row initializer throws as an
// allocation would) is an error reply, and the service carries on.
TEST(PsServiceTest, AnExceptionIsAnErrorReplyAndTheServiceCarriesOn) {
  OptimizerConfig sgd;
  sgd.set_kind(OptimizerConfig::SGD);
  sgd.set_learning_rate(1.0f);
  EmbeddingStoreOptions o;
  o.table_name = "video";
  o.dim = kDim;
  o.optimizer = std::shared_ptr<const Optimizer>(Optimizer::Create(sgd).value());
  o.init = [](uint64_t key, float* w) {
    if (key == 13) throw std::bad_alloc();
    InitRow(key, w);
  };
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::Create(std::move(o)));
  PsService service({store.get()});
  auto pull = [&](uint64_t key) {
    net::Message m;
    m.header = Header(PsHeader::PULL, 0, kDim, 1);
    m.frames = Frames({key});
    net::Message reply = service.Handle(std::move(m));
    PsHeader h;
    EXPECT_TRUE(h.ParseFromString(reply.header));
    return std::make_pair(h, std::move(reply.frames));
  };
  auto [failed, none] = pull(13);
  EXPECT_EQ(failed.status_code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(failed.error(), ::testing::HasSubstr("out of memory"));
  EXPECT_TRUE(none.empty());
  auto [ok, frames] = pull(1);
  ASSERT_EQ(ok.status_code(), 0) << ok.error();
  ASSERT_EQ(frames.size(), 1u);
  float want[kDim];
  InitRow(1, want);
  EXPECT_EQ(std::memcmp(frames[0].data(), want, sizeof(want)), 0);
}

// PushRows and Pull through servers in this process (which read and write
// the caller's matrices themselves), through one remote server (gradients
// sent without a copy) and two (split): the same rows, each moved by its
// own gradient, and pulled rows land at their keys' places.
TEST(PsClientServerTest, PushRowsAndPullOverEveryPathAgree) {
  std::vector<uint64_t> keys;
  for (uint64_t k = 1; k <= 400; ++k) keys.push_back(k * 7919);
  std::vector<float> grads(keys.size() * kDim);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 997);
  std::vector<std::vector<float>> results;
  for (auto [servers, inproc] : {std::pair{1, true}, {2, true}, {1, false}, {2, false}}) {
    SCOPED_TRACE(::testing::Message() << servers << " servers, inproc " << inproc);
    Cluster c(servers, inproc);
    // Twice: the second push starts from the first's rows.
    for (int round = 0; round < 2; ++round) {
      PsRequest push = c.client->PushRows(c.table, keys, grads);
      ASSERT_OK(push.Wait());
    }
    std::vector<float> out(keys.size() * kDim, -1.f);
    ASSERT_OK(c.client->Pull(c.table, keys, out.data()).Wait());
    for (size_t i = 0; i < keys.size(); ++i) {
      float init[kDim];
      InitRow(keys[i], init);
      for (uint32_t d = 0; d < kDim; ++d) {
        ASSERT_FLOAT_EQ(out[i * kDim + d], init[d] - 2 * grads[i * kDim + d]) << "key " << keys[i];
      }
    }
    EXPECT_EQ(c.stores[0]->Stats().push_keys + (servers > 1 ? c.stores[1]->Stats().push_keys : 0),
              2 * keys.size());
    results.push_back(std::move(out));
  }
  for (size_t r = 1; r < results.size(); ++r) EXPECT_EQ(results[r], results[0]) << "path " << r;
}

// A pooled push (the server forms each key's gradient from the pooled rows
// and the key's uses) moves the rows exactly as PushRows of the gradients
// formed on the client, over every path; a malformed one is refused whole.
TEST(PsClientServerTest, PushPooledEqualsPushRowsOfTheFormedGradients) {
  const uint64_t seed = testing::TestSeed(13);
  Rng rng(seed, 0);
  constexpr uint32_t kPooled = 16;
  std::vector<uint64_t> keys;
  for (uint64_t k = 1; k <= 300; ++k) keys.push_back(k * 104729);
  std::vector<float> pooled(kPooled * kDim);
  for (float& x : pooled) x = static_cast<float>(rng.Uniform() - 0.5);
  std::vector<uint32_t> offsets{0}, rows;
  std::vector<float> weights;
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int u = 0; u < 1 + static_cast<int>(rng.UniformInt(3)); ++u) {
      rows.push_back(static_cast<uint32_t>(rng.UniformInt(kPooled)));
      weights.push_back(static_cast<float>(rng.Uniform()));
    }
    offsets.push_back(static_cast<uint32_t>(rows.size()));
  }
  const PooledUses uses{offsets, rows, weights};
  std::vector<float> formed(keys.size() * kDim);
  for (size_t i = 0; i < keys.size(); ++i) {
    PooledGradient(uses, i, pooled.data(), kDim, formed.data() + i * kDim);
  }
  for (auto [servers, inproc] : {std::pair{1, true}, {2, true}, {1, false}, {2, false}}) {
    SCOPED_TRACE(::testing::Message() << servers << " servers, inproc " << inproc);
    Cluster pooled_cluster(servers, inproc), rows_cluster(servers, inproc);
    ASSERT_OK(pooled_cluster.client->PushPooled(pooled_cluster.table, keys, uses, pooled).Wait());
    ASSERT_OK(rows_cluster.client->PushRows(rows_cluster.table, keys, formed).Wait());
    std::vector<float> a(keys.size() * kDim), b(keys.size() * kDim);
    ASSERT_OK(pooled_cluster.client->Pull(pooled_cluster.table, keys, a.data()).Wait());
    ASSERT_OK(rows_cluster.client->Pull(rows_cluster.table, keys, b.data()).Wait());
    EXPECT_EQ(a, b);
    // Key 0's first element moved by its gradient (SGD, learning rate 1).
    float init[kDim];
    InitRow(keys[0], init);
    EXPECT_EQ(a[0], init[0] - formed[0]);
    // A use naming a pooled row that is not there: the server that got it
    // applies nothing (another server's part stands, as for any request
    // split between servers).
    std::vector<uint32_t> bad_rows = rows;
    bad_rows.back() = kPooled;
    EXPECT_THAT(pooled_cluster.client
                    ->PushPooled(pooled_cluster.table, keys, {offsets, bad_rows, weights}, pooled)
                    .Wait(),
                StatusIs(absl::StatusCode::kInvalidArgument, "pooled row 16 of 16"));
    std::vector<float> after(keys.size() * kDim);
    ASSERT_OK(pooled_cluster.client->Pull(pooled_cluster.table, keys, after.data()).Wait());
    const SlotRouter& router = pooled_cluster.client->router();
    const uint32_t refused = router.Server(pooled_cluster.table.table_id, keys.back());
    size_t checked = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (router.Server(pooled_cluster.table.table_id, keys[i]) != refused) continue;
      ++checked;
      for (uint32_t d = 0; d < kDim; ++d) {
        ASSERT_EQ(after[i * kDim + d], a[i * kDim + d]) << "key " << keys[i];
      }
    }
    EXPECT_GT(checked, keys.size() / 3);
  }
}

// Naming memory by address is for threads of the server's process: the same
// request arriving any other way is refused, and nothing is read or written.
TEST(PsServiceTest, ARequestNamingAnAddressFromTheNetworkIsRefused) {
  auto store = MakeStore("video");
  PsService service({store.get()});
  std::vector<float> rows(2 * kDim, -7.f);
  auto call = [&](PsHeader::Op op, bool local, std::vector<uint32_t> positions = {}) {
    PsHeader h;
    h.set_version(kPsWireVersion);
    h.set_op(op);
    h.set_table(0);
    h.set_dim(kDim);
    h.set_num_keys(2);
    h.set_local_rows_address(reinterpret_cast<uintptr_t>(rows.data()));
    h.set_local_rows(2);
    net::Message m;
    m.header = h.SerializeAsString();
    m.local = local;
    m.frames.push_back(net::FrameFromVector(std::vector<uint64_t>{5, 6}));
    if (!positions.empty()) m.frames.push_back(net::FrameFromVector(std::move(positions)));
    PsHeader r;
    EXPECT_TRUE(r.ParseFromString(service.Handle(std::move(m)).header));
    return r;
  };
  for (PsHeader::Op op : {PsHeader::PULL, PsHeader::PUSH, PsHeader::PUSH_POOLED}) {
    PsHeader r = call(op, /*local=*/false);
    EXPECT_EQ(r.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(r.error(), ::testing::HasSubstr("arrived over the network"));
  }
  EXPECT_EQ(rows, std::vector<float>(2 * kDim, -7.f));
  EXPECT_EQ(store->Stats().rows_in_memory, 0u);
  // A position past the caller's matrix is refused too.
  PsHeader r = call(PsHeader::PULL, /*local=*/true, {0, 2});
  EXPECT_THAT(r.error(), ::testing::HasSubstr("position 2 in a matrix of 2 rows"));
  EXPECT_EQ(rows, std::vector<float>(2 * kDim, -7.f));
  // From a thread of this process, positions place the rows.
  r = call(PsHeader::PULL, /*local=*/true, {1, 0});
  ASSERT_EQ(r.status_code(), 0) << r.error();
  float want[kDim];
  InitRow(6, want);
  EXPECT_EQ(std::memcmp(rows.data(), want, sizeof(want)), 0);
  InitRow(5, want);
  EXPECT_EQ(std::memcmp(rows.data() + kDim, want, sizeof(want)), 0);
}

TEST(PsClientServerTest, ClientReportsServerErrorsAndBadArguments) {
  Cluster c;
  PsTable wrong = c.table;
  wrong.dim = 4;
  std::vector<uint64_t> keys = {1, 2, 3};
  std::vector<float> out(keys.size() * 4);
  EXPECT_THAT(c.client->Pull(wrong, keys, out.data()).Wait(),
              StatusIs(absl::StatusCode::kInvalidArgument, "parameter server"));
  std::vector<float> grads(2);
  EXPECT_THAT(c.client->Push(c.table, keys, grads).Wait(),
              StatusIs(absl::StatusCode::kInvalidArgument, "push of 3 keys of dim 8 with 2"));
}

TEST(PsClientServerTest, DeadServerIsUnavailable) {
  Cluster c;
  c.servers[1]->Stop();
  auto transport = net::Client::Connect(c.endpoints, {std::chrono::milliseconds(200)}).value();
  PsClient client(transport.get(), SlotRouter::Contiguous(2).value());
  std::vector<uint64_t> keys;
  for (uint64_t k = 1; k <= 100; ++k) keys.push_back(k);
  std::vector<float> out(keys.size() * kDim);
  EXPECT_THAT(client.Pull(c.table, keys, out.data()).Wait(),
              StatusIs(absl::StatusCode::kUnavailable, c.endpoints[1]));
}

}  // namespace
}  // namespace vrec::ps

namespace vrec::ps {
namespace {

// What ReportClock returns; an error reads as ~0.
uint64_t Slowest(PsClient* client, uint64_t finished_step) {
  StatusOr<uint64_t> slowest = client->ReportClock(finished_step);
  EXPECT_OK(slowest);
  return slowest.value_or(~uint64_t{0});
}

// Whether WaitForClock got there; an error reads as false.
bool Reached(PsClient* client, uint64_t finished_step, uint64_t slowest_at_least,
             const std::function<bool()>& give_up = nullptr) {
  StatusOr<bool> reached = client->WaitForClock(finished_step, slowest_at_least, give_up);
  EXPECT_OK(reached);
  return reached.value_or(false);
}

TEST(PsClientServerTest, TheClockHoldsBackTheFastWorker) {
  PsService service({}, /*num_workers=*/2);
  auto server = net::Server::Start(&service, {}).value();
  auto transport = net::Client::Connect({server->endpoint()}).value();
  PsClient fast(transport.get(), SlotRouter::Contiguous(1).value(), /*worker=*/0);
  PsClient slow(transport.get(), SlotRouter::Contiguous(1).value(), /*worker=*/1);

  // The slowest worker's finished step is the minimum over the workers.
  EXPECT_EQ(Slowest(&fast, 2), 0u);
  // The fast worker may go on while every worker has finished step 0, not 1.
  EXPECT_TRUE(Reached(&fast, 2, 0));
  EXPECT_THAT(fast.WaitForClock(2, 1, nullptr, std::chrono::milliseconds(100)).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded, "the slowest is at step 0"));
  // Asked to give up, it does.
  int looks = 0;
  EXPECT_FALSE(Reached(&fast, 2, 1, [&] { return ++looks == 3; }));
  EXPECT_EQ(looks, 3);
  // Once the slow worker reports step 1, it may.
  std::atomic<bool> released{false};
  std::thread waiter([&] {
    EXPECT_TRUE(Reached(&fast, 3, 1));
    released = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(released.load());
  EXPECT_EQ(Slowest(&slow, 1), 1u);
  waiter.join();
  EXPECT_TRUE(released.load());

  // A barrier per step: each worker's step t waits for the other's.
  std::thread a([&] {
    for (uint64_t t = 4; t <= 20; ++t) EXPECT_TRUE(Reached(&fast, t, t));
  });
  std::thread b([&] {
    for (uint64_t t = 2; t <= 20; ++t) EXPECT_TRUE(Reached(&slow, t, t));
  });
  a.join();
  b.join();
  // A worker that leaves is no longer waited for; one that rejoins is.
  ASSERT_OK(slow.LeaveClock());
  EXPECT_EQ(Slowest(&fast, 21), 21u);
  ASSERT_OK(slow.RejoinClock(20));
  EXPECT_EQ(Slowest(&fast, 21), 20u);
  // An unknown worker is refused.
  PsClient stranger(transport.get(), SlotRouter::Contiguous(1).value(), /*worker=*/7);
  EXPECT_THAT(stranger.ReportClock(1).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "worker 7"));
}

// Server 1 behind a network that stops answering (net::FaultProxy): a pull
// that needs it ends by the client's deadline, naming that server; the other
// server's share is not the one blamed.
TEST(PsClientServerTest, AServerThatStopsAnsweringIsNamedByThePull) {
  std::vector<std::unique_ptr<EmbeddingStore>> stores;
  std::vector<std::unique_ptr<PsService>> services;
  std::vector<std::unique_ptr<net::Server>> servers;
  for (int s = 0; s < 2; ++s) {
    stores.push_back(MakeStore("video"));
    services.push_back(
        std::make_unique<PsService>(std::vector<EmbeddingStore*>{stores.back().get()}));
    ASSERT_OK_AND_ASSIGN(auto server, net::Server::Start(services.back().get(), {}));
    servers.push_back(std::move(server));
  }
  ASSERT_OK_AND_ASSIGN(auto proxy, net::FaultProxy::Start(servers[1]->endpoint()));
  net::ClientOptions co;
  co.default_timeout = std::chrono::milliseconds(400);
  ASSERT_OK_AND_ASSIGN(auto transport,
                       net::Client::Connect({servers[0]->endpoint(), proxy->endpoint()}, co));
  PsClient client(transport.get(), SlotRouter::Contiguous(2).value());
  const PsTable table{0, TableId("video"), kDim};
  std::vector<uint64_t> keys;
  for (uint64_t k = 1; k <= 200; ++k) keys.push_back(k * 7919);
  std::vector<float> out(keys.size() * kDim);
  ASSERT_OK(client.Pull(table, keys, out.data()).Wait());  // both answer
  net::FaultOptions frozen;
  frozen.silent = true;
  proxy->set_options(frozen);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(client.Pull(table, keys, out.data()).Wait(),
              StatusIs(absl::StatusCode::kUnavailable, "parameter server 1"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

}  // namespace
}  // namespace vrec::ps
