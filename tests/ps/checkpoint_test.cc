// Server checkpoints: ServerStorage::Checkpoint and ::Restore, onto the same
// and onto different numbers of servers.
#include <map>
#include <vector>

#include "common/random.h"
#include "ps/server_storage.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

ModelConfig Tables() {
  ModelConfig m;
  m.set_seed(3);
  for (auto [name, dim] :
       std::vector<std::pair<std::string, uint32_t>>{{"video", 16}, {"token", 8}}) {
    TableConfig* t = m.add_tables();
    t->set_name(name);
    t->set_dim(dim);
    t->mutable_initializer()->set_kind(InitializerConfig::NORMAL);
    t->mutable_initializer()->set_scale(0.05f);
    t->mutable_optimizer()->set_kind(OptimizerConfig::ADAM);
    t->mutable_optimizer()->set_learning_rate(0.01f);
  }
  // "video" mostly on disk; admission on "token": a row exists from its third pull.
  m.mutable_tables(0)->mutable_storage()->set_memory_budget_bytes(256 << 10);
  m.mutable_tables(1)->mutable_storage()->set_admission_min_count(3);
  TableConfig* d = m.add_tables();
  d->set_name("tower");
  d->set_dense(true);
  d->set_dense_size(3000);
  d->mutable_initializer()->set_kind(InitializerConfig::UNIFORM);
  d->mutable_initializer()->set_scale(0.1f);
  d->mutable_optimizer()->set_kind(OptimizerConfig::ADAGRAD);
  d->mutable_optimizer()->set_learning_rate(0.1f);
  return m;
}

// A job's servers, addressed like the client does (keys split by router).
class Cluster {
 public:
  Cluster(const std::string& dir, uint32_t n, uint64_t budget)
      : router_(*SlotRouter::Contiguous(n)) {
    for (uint32_t s = 0; s < n; ++s) {
      options_.push_back(Options(dir, s, budget));
      servers_.push_back(*ServerStorage::Create(Tables(), options_.back()));
    }
  }
  // Restored from `shards` (written under `old_router`) onto n servers.
  Cluster(const std::string& dir, uint32_t n, uint64_t budget,
          const std::vector<CheckpointShard>& shards, const SlotRouter& old_router)
      : router_(*SlotRouter::Contiguous(n)) {
    for (uint32_t s = 0; s < n; ++s) {
      options_.push_back(Options(dir, s, budget));
      auto restored =
          ServerStorage::Restore(Tables(), options_.back(), shards, old_router, router_, s);
      EXPECT_OK(restored.status());
      servers_.push_back(std::move(restored).value());
    }
  }

  static ServerStorageOptions Options(const std::string& dir, uint32_t s, uint64_t budget) {
    ServerStorageOptions o;
    o.spill_path = dir + "/spill-" + std::to_string(s);
    o.memory_budget_bytes = budget;
    o.num_partitions = 4;
    o.dense_block_floats = 1024;
    return o;
  }

  // Pull or push `keys` of `table` through the servers that own them.
  void Pull(const std::string& table, const std::vector<uint64_t>& keys, std::vector<float>* out) {
    const uint32_t dim = servers_[0]->Find(table)->dim();
    out->assign(keys.size() * dim, 0);
    for (uint32_t s = 0; s < servers_.size(); ++s) {
      std::vector<uint64_t> mine;
      std::vector<size_t> where;
      for (size_t i = 0; i < keys.size(); ++i) {
        if (router_.Server(TableId(table), keys[i]) == s) {
          mine.push_back(keys[i]);
          where.push_back(i);
        }
      }
      std::vector<float> part(mine.size() * dim);
      ASSERT_OK(servers_[s]->Find(table)->Pull(mine, absl::MakeSpan(part)));
      for (size_t j = 0; j < mine.size(); ++j) {
        std::copy_n(part.data() + j * dim, dim, out->data() + where[j] * dim);
      }
    }
  }
  void Push(const std::string& table, const std::vector<uint64_t>& keys,
            const std::vector<float>& grads) {
    const uint32_t dim = servers_[0]->Find(table)->dim();
    for (uint32_t s = 0; s < servers_.size(); ++s) {
      std::vector<uint64_t> mine;
      std::vector<float> g;
      for (size_t i = 0; i < keys.size(); ++i) {
        if (router_.Server(TableId(table), keys[i]) == s) {
          mine.push_back(keys[i]);
          g.insert(g.end(), grads.begin() + i * dim, grads.begin() + (i + 1) * dim);
        }
      }
      ASSERT_OK(servers_[s]->Find(table)->Push(mine, g));
    }
  }

  // Every live row (weights and optimizer state) of every table, with the
  // server that holds it.
  std::map<std::pair<std::string, uint64_t>, std::pair<uint32_t, std::vector<float>>> Rows() {
    std::map<std::pair<std::string, uint64_t>, std::pair<uint32_t, std::vector<float>>> rows;
    for (uint32_t s = 0; s < servers_.size(); ++s) {
      for (const auto& name : servers_[s]->table_names()) {
        EmbeddingStore* t = servers_[s]->Find(name);
        EXPECT_OK(t->ForEachRow([&](uint64_t key, const float* row, const RowMeta&) {
          EXPECT_TRUE(rows.emplace(std::make_pair(name, key),
                                   std::make_pair(s, std::vector<float>(row, row + t->RowFloats())))
                          .second)
              << name << " key " << key << " is on two servers";
        }));
      }
    }
    return rows;
  }

  std::vector<CheckpointShard> Checkpoint(const std::string& dir) {
    std::vector<CheckpointShard> shards;
    for (uint32_t s = 0; s < servers_.size(); ++s) {
      CheckpointShard shard;
      shard.db_dir = dir + "/server-" + std::to_string(s);
      auto state = servers_[s]->Checkpoint(shard.db_dir);
      EXPECT_OK(state.status());
      if (state.ok()) shard.state = *state;
      shards.push_back(shard);
    }
    return shards;
  }

  ServerStorage& server(uint32_t s) { return *servers_[s]; }
  const SlotRouter& router() const { return router_; }
  uint32_t size() const { return static_cast<uint32_t>(servers_.size()); }

 private:
  SlotRouter router_;
  std::vector<ServerStorageOptions> options_;
  std::vector<std::unique_ptr<ServerStorage>> servers_;
};

// A deterministic training-like load: pulls then pushes of Zipf-ish keys.
void Train(Cluster* c, uint64_t seed, int steps) {
  Rng rng(seed, 1);
  for (int step = 0; step < steps; ++step) {
    for (const std::string table : {"video", "token"}) {
      std::vector<uint64_t> keys;
      for (int i = 0; i < 300; ++i) {
        const uint64_t k = static_cast<uint64_t>(std::pow(rng.Uniform(), 2) * 60000);
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
      }
      std::vector<float> rows, grads;
      c->Pull(table, keys, &rows);
      for (float r : rows) grads.push_back(r * 0.5f + static_cast<float>(rng.Uniform() - 0.5));
      c->Push(table, keys, grads);
    }
    std::vector<uint64_t> blocks = {0, 1, 2};
    std::vector<float> tower, g;
    c->Pull("tower", blocks, &tower);
    for (float w : tower) g.push_back(w - 0.01f);
    c->Push("tower", blocks, g);
  }
}

TEST(CheckpointTest, RoundTripIsBitExactAndTrainingCarriesOnIdentically) {
  testing::ScratchDir dir;
  // A budget small enough that most rows live on disk when the checkpoint is taken.
  Cluster a(dir.File("a"), 2, 8 << 20);
  Train(&a, 1, 30);
  const auto before = a.Rows();
  ASSERT_GT(before.size(), 5000u);
  EXPECT_GT(a.server(0).Find("video")->Stats().rows_disk_only, 100u);
  const auto admission = a.server(1).Find("token")->AdmissionCounts();
  EXPECT_FALSE(admission.empty());
  const auto shards = a.Checkpoint(dir.File("ckpt"));
  EXPECT_EQ(shards[0].state.rows() + shards[1].state.rows(), before.size());

  Cluster b(dir.File("b"), 2, 8 << 20, shards, a.router());
  EXPECT_EQ(b.Rows(), before);  // weights and optimizer state, bit for bit
  for (uint32_t s = 0; s < 2; ++s) {
    for (const auto& name : a.server(s).table_names()) {
      EXPECT_EQ(b.server(s).Find(name)->step(), a.server(s).Find(name)->step()) << name;
    }
  }
  EXPECT_EQ(b.server(1).Find("token")->AdmissionCounts(), admission);

  // The same further training gives the same rows on both.
  Train(&a, 2, 10);
  Train(&b, 2, 10);
  EXPECT_EQ(b.Rows(), a.Rows());
}

TEST(CheckpointTest, RestoresOntoADifferentNumberOfServers) {
  testing::ScratchDir dir;
  Cluster a(dir.File("a"), 2, 0);
  Train(&a, 5, 20);
  const auto before = a.Rows();
  const auto shards = a.Checkpoint(dir.File("ckpt"));
  uint64_t admission = 0;
  for (uint32_t s = 0; s < 2; ++s) admission += a.server(s).Find("token")->AdmissionCounts().size();

  for (uint32_t n : {1u, 3u}) {
    SCOPED_TRACE(n);
    Cluster b(dir.File("b" + std::to_string(n)), n, 0, shards, a.router());
    const auto after = b.Rows();
    ASSERT_EQ(after.size(), before.size());
    uint64_t restored_admission = 0;
    for (uint32_t s = 0; s < n; ++s) {
      restored_admission += b.server(s).Find("token")->AdmissionCounts().size();
    }
    EXPECT_EQ(restored_admission, admission);
    for (const auto& [key, value] : before) {
      auto it = after.find(key);
      ASSERT_NE(it, after.end()) << key.first << " " << key.second;
      EXPECT_EQ(it->second.second, value.second) << key.first << " " << key.second;
      // Each row is on the server the new router gives its slot.
      EXPECT_EQ(it->second.first, b.router().Server(TableId(key.first), key.second));
    }
    // Training goes on from the restored rows as it would have on the old servers.
    Cluster reference(dir.File("ref" + std::to_string(n)), 2, 0, shards, a.router());
    Train(&reference, 9, 5);
    Train(&b, 9, 5);
    auto ref_rows = reference.Rows(), b_rows = b.Rows();
    ASSERT_EQ(ref_rows.size(), b_rows.size());
    for (const auto& [key, value] : ref_rows) EXPECT_EQ(b_rows[key].second, value.second);
  }
}

TEST(CheckpointTest, RejectsMismatchedShardsAndMissingFolders) {
  testing::ScratchDir dir;
  auto r2 = *SlotRouter::Contiguous(2);
  auto r1 = *SlotRouter::Contiguous(1);
  std::vector<CheckpointShard> one(1);
  one[0].db_dir = dir.File("nowhere");
  EXPECT_THAT(ServerStorage::Restore(Tables(), Cluster::Options(dir.path(), 0, 0), one, r2, r1, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, "router names 2 servers"));
  EXPECT_THAT(ServerStorage::Restore(Tables(), Cluster::Options(dir.path(), 0, 0), one, r1, r2, 0),
              StatusIs(absl::StatusCode::kNotFound, "no database there"));
  Cluster a(dir.File("a"), 1, 0);
  ASSERT_OK(a.server(0).Checkpoint(dir.File("c")).status());
  EXPECT_FALSE(a.server(0).Checkpoint(dir.File("c")).ok());  // the folder exists: not overwritten
}

}  // namespace
}  // namespace vrec::ps
