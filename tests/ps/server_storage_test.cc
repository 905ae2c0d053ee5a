#include "ps/server_storage.h"

#include <map>
#include <string>
#include <vector>

#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

ModelConfig TwoTables(uint64_t explicit_budget) {
  ModelConfig m;
  m.set_seed(12);
  for (auto [name, dim] :
       std::vector<std::pair<std::string, uint32_t>>{{"video", 16}, {"token", 8}}) {
    TableConfig* t = m.add_tables();
    t->set_name(name);
    t->set_dim(dim);
    t->mutable_initializer()->set_kind(InitializerConfig::NORMAL);
    t->mutable_initializer()->set_scale(0.01f);
    t->mutable_optimizer()->set_kind(OptimizerConfig::ADAGRAD);
    t->mutable_optimizer()->set_learning_rate(0.1f);
  }
  m.mutable_tables(1)->mutable_storage()->set_memory_budget_bytes(explicit_budget);
  TableConfig* d = m.add_tables();
  d->set_name("tower");
  d->set_dense(true);
  d->set_dense_size(3000);
  d->mutable_initializer()->set_kind(InitializerConfig::GLOROT_UNIFORM);
  d->mutable_optimizer()->set_kind(OptimizerConfig::SGD);
  d->mutable_optimizer()->set_learning_rate(0.1f);
  return m;
}

TEST(ServerStorageTest, SplitsTheProcessBudgetAndStaysWithinIt) {
  testing::ScratchDir dir;
  ServerStorageOptions o;
  o.spill_path = dir.File("spill");
  o.memory_budget_bytes = 256 << 10;
  o.num_partitions = 4;
  o.dense_block_floats = 1024;
  o.glorot_fans["tower"] = {50, 60};
  ASSERT_OK_AND_ASSIGN(auto server, ServerStorage::Create(TwoTables(64 << 10), o));
  ASSERT_NE(server->Find("video"), nullptr);
  ASSERT_NE(server->Find("tower"), nullptr);
  EXPECT_EQ(server->Find("nope"), nullptr);
  const auto stats = server->Stats();
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats[1].memory_budget_bytes, uint64_t{64 << 10});   // explicit
  EXPECT_GT(stats[0].memory_budget_bytes, uint64_t{100 << 10});  // the rest
  EXPECT_EQ(stats[2].memory_budget_bytes, 0u);                   // dense: all in memory
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 20000; ++k) keys.push_back(k * 7919);
  std::vector<float> out(keys.size() * 16);
  ASSERT_OK(server->Find("video")->Pull(keys, absl::MakeSpan(out)));
  out.resize(keys.size() * 8);
  ASSERT_OK(server->Find("token")->Pull(keys, absl::MakeSpan(out)));
  std::vector<float> tower(3 * 1024);
  ASSERT_OK(server->Find("tower")->Pull({0, 1, 2}, absl::MakeSpan(tower)));
  for (const char* table : {"video", "token"}) server->Find(table)->WaitForSpillWrites();
  EXPECT_LE(server->MemoryBytes(), o.memory_budget_bytes);
  EXPECT_GT(server->Find("video")->Stats().rows_disk_only, 10000u);
  server->AdvanceStep(3);
  EXPECT_EQ(server->Find("token")->step(), 3u);
  ASSERT_OK(server->FlushAll());
}

TEST(ServerStorageTest, RejectsBadConfigs) {
  testing::ScratchDir dir;
  ServerStorageOptions o;
  o.spill_path = dir.File("spill");
  o.memory_budget_bytes = 32 << 10;
  o.glorot_fans["tower"] = {50, 60};
  EXPECT_THAT(ServerStorage::Create(TwoTables(64 << 10), o),
              StatusIs(absl::StatusCode::kInvalidArgument, "claimed"));
  ModelConfig dup = TwoTables(0);
  dup.mutable_tables(1)->set_name("video");
  o.memory_budget_bytes = 0;
  EXPECT_THAT(ServerStorage::Create(dup, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "duplicate table name 'video'"));
  o.glorot_fans.clear();
  EXPECT_THAT(ServerStorage::Create(TwoTables(0), o),
              StatusIs(absl::StatusCode::kInvalidArgument, "table 'tower': GLOROT"));
}

// A checkpoint holds the live rows only: expired ones are removed first
// (memory and disk), and each table's rows are counted in its state.
TEST(ServerStorageTest, CheckpointDropsExpiredRowsAndCountsEachTablesRows) {
  testing::ScratchDir dir;
  ServerStorageOptions o;
  o.spill_path = dir.File("spill");
  o.num_partitions = 4;
  o.dense_block_floats = 1024;
  o.glorot_fans["tower"] = {50, 60};
  ModelConfig m = TwoTables(0);
  m.mutable_tables(0)->mutable_storage()->set_expiry_steps(10);
  ASSERT_OK_AND_ASSIGN(auto server, ServerStorage::Create(m, o));
  EmbeddingStore* video = server->Find("video");
  std::vector<uint64_t> old_keys, new_keys;
  for (uint64_t k = 1; k <= 300; ++k) (k <= 200 ? old_keys : new_keys).push_back(k);
  std::vector<float> out(300 * 16);
  ASSERT_OK(video->Pull(old_keys, absl::MakeSpan(out.data(), old_keys.size() * 16)));
  ASSERT_OK(server->FlushAll());  // the old rows on disk too
  server->AdvanceStep(20);        // the old rows are 20 steps old: expired
  ASSERT_OK(video->Pull(new_keys, absl::MakeSpan(out.data(), new_keys.size() * 16)));
  std::vector<float> token_out(50 * 8);
  std::vector<uint64_t> tokens;
  for (uint64_t k = 1; k <= 50; ++k) tokens.push_back(k);
  ASSERT_OK(server->Find("token")->Pull(tokens, absl::MakeSpan(token_out)));
  ASSERT_OK_AND_ASSIGN(ServerState state, server->Checkpoint(dir.File("ckpt")));
  std::map<std::string, uint64_t> rows;
  for (const TableState& t : state.tables()) rows[t.table()] = t.rows();
  EXPECT_EQ(rows["video"], 100u);
  EXPECT_EQ(rows["token"], 50u);
  EXPECT_EQ(rows["tower"], 0u);  // never touched: no block created
  EXPECT_EQ(state.rows(), 150u);
  EXPECT_EQ(video->Stats().rows_on_disk, 100u);
}

}  // namespace
}  // namespace vrec::ps
