#include "testutil/tiny_world.h"

#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "data/generator.h"
#include "data/world.h"
#include "glog/logging.h"
#include "testutil/testutil.h"

namespace vrec::testing {

const std::string& TinyDataset(const TinyWorldOptions& o) {
  static std::mutex mu;
  static auto* made = new std::map<std::string, std::string>();  // leaked: lives for the binary
  static auto* scratch = new ScratchDir();
  const std::string key =
      absl::StrCat(o.seed, "-", o.videos, "-", o.users, "-", o.tokens, "-", o.topics, "-", o.days,
                   "-", o.shards, "-", o.test_users, "-", o.max_examples_per_user);
  std::lock_guard<std::mutex> lock(mu);
  auto it = made->find(key);
  if (it != made->end()) return it->second;
  WorldOptions wo;
  wo.seed = o.seed;
  wo.num_videos = o.videos;
  wo.num_users = o.users;
  wo.num_tokens = o.tokens;
  wo.num_topics = o.topics;
  wo.num_days = o.days;
  auto world = World::Build(wo, 1);
  CHECK(world.ok()) << world.status();
  GeneratorOptions g;
  g.out_dir = scratch->File(absl::StrCat("world-", key));
  g.shards = o.shards;
  g.test_users = o.test_users;
  g.max_examples_per_user = o.max_examples_per_user;
  g.sync = false;
  g.progress_interval_s = 0;
  g.threads = 1;
  auto summary = GenerateDataset(**world, g);
  CHECK(summary.ok()) << summary.status();
  return made->emplace(key, g.out_dir).first->second;
}

}  // namespace vrec::testing
