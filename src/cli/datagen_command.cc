// `vrec datagen`: builds a synthetic world (data/world.h) and writes its
// examples, videos and oracle figures (data/generator.h) into --out.
#include <gflags/gflags.h>

#include <chrono>
#include <iostream>
#include <string>

#include "cli/command.h"
#include "cli/common_flags.h"
#include "data/generator.h"
#include "data/world.h"
#include "nlohmann/json.hpp"

// --out, --seed, --shards, --max_history, --max_examples_per_user and
// --progress_seconds are shared with other commands (cli/common_flags.h).
// --max_examples_per_user left at its shared default (0 = all) means 30 here:
// the paper bounds each user's examples so heavy users do not dominate; pass
// --max_examples_per_user=N to choose (0 = all).

// Sizes.
DEFINE_int64(num_videos, 20000, "Videos in the world (paper scale: 1000000)");
DEFINE_int64(num_users, 10000, "Users in the world (paper scale: 10000000 and more)");
DEFINE_int64(num_tokens, 20000, "Search-token vocabulary; each topic owns num_tokens/num_topics");
DEFINE_int32(num_topics, 100, "Topics (channel-like clusters of videos), 50..1000 is typical");
DEFINE_int32(num_days, 30, "Length of the window in days; t_max = num_days");
DEFINE_int32(num_regions, 20, "Regions (categorical user feature)");
DEFINE_int32(num_devices, 4, "Devices (categorical user feature)");
DEFINE_int64(test_users, 2000, "Held-out users: each one's last watch is a test example");
DEFINE_double(page_rate, 0.1, "Share of watch events that also show a ranking page");
DEFINE_int32(page_size, 10, "Impressions per ranking page");
DEFINE_bool(random_labels, false,
            "Training labels are randomly held-out watches whose history is every other watch "
            "and search of the user, earlier and later (the paper's Figure 5 baseline); default: "
            "next watches, history before them. Test examples are next watches either way");
DEFINE_bool(write_train, true,
            "false: write only the held-out examples, the videos (with each one's training label "
            "count) and a sample of 65,536 ranking training examples; the training examples are "
            "then simulated on the fly by `vrec train --stream` (for runs larger than the disk)");
DEFINE_string(logs, "",
              "Also write the world as a team's log tables into this folder: events.csv, "
              "items.csv, users.csv (CSV, string ids u<id>, v<id>, search tokens w<id>), "
              "test_users.txt and a README with the `vrec convert` command that turns them back "
              "into this dataset's split (docs/data_format.md, \"Generated logs\"). The examples "
              "match the native ones exactly with --max_examples_per_user=0 and without "
              "--random_labels. The native files are written as well");
DEFINE_int32(threads, 0, "Generator threads (0 = all cores); the output does not depend on it");
DEFINE_bool(fsync, true, "fsync every file on close");
// The generative process (see docs/datagen.md).
DEFINE_double(mean_actions_per_user, 40, "Mean actions (watches and searches) per user");
DEFINE_double(search_probability, 0.15, "Probability that an action is a search");
DEFINE_double(appeal_sigma, 1.5, "Log-sigma of video appeal (heavier popularity tail when larger)");
DEFINE_double(topic_zipf, 0.8, "Zipf exponent of topic popularity");
DEFINE_double(prewindow_fraction, 0.4, "Share of videos uploaded before the window");
DEFINE_double(series_fraction, 0.15, "Share of videos that are episodes of a series");
DEFINE_double(clickbait_fraction, 0.05, "Share of clickbait videos (many clicks, short watches)");
DEFINE_double(freshness_half_life_days, 2.0, "Half-life of a new upload's popularity boost");
DEFINE_double(freshness_floor, 0.05, "Popularity multiplier of old videos (boost is 1 at upload)");
DEFINE_int32(max_interests, 4, "Interest topics per user: 1..this");
DEFINE_double(p_series, 0.6, "Next watch = next episode of the last video's series, if uploaded");
DEFINE_double(p_search, 0.7, "Next watch from the searched topic, right after a search");
DEFINE_double(p_sticky, 0.35, "Next watch from the last video's topic (otherwise: interests)");

namespace vrec::cli {
namespace {

int UsageError(const std::string& message) {
  std::cerr << "vrec datagen: " << message << "\n";
  return kExitUsage;
}

bool IsDefault(const char* flag) { return gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

}  // namespace

int RunDatagen(int argc, char** argv) {
  if (argc > 1) return UsageError(std::string("unexpected argument '") + argv[1] + "'");
  if (FLAGS_out.empty()) return UsageError("--out=DIR is required");

  WorldOptions wo;
  wo.seed = FLAGS_seed;
  wo.num_videos = FLAGS_num_videos;
  wo.num_users = FLAGS_num_users;
  wo.num_tokens = FLAGS_num_tokens;
  wo.num_topics = FLAGS_num_topics;
  wo.num_days = FLAGS_num_days;
  wo.num_regions = FLAGS_num_regions;
  wo.num_devices = FLAGS_num_devices;
  wo.mean_actions_per_user = FLAGS_mean_actions_per_user;
  wo.search_probability = FLAGS_search_probability;
  wo.appeal_sigma = FLAGS_appeal_sigma;
  wo.topic_zipf_exponent = FLAGS_topic_zipf;
  wo.prewindow_fraction = FLAGS_prewindow_fraction;
  wo.series_fraction = FLAGS_series_fraction;
  wo.clickbait_fraction = FLAGS_clickbait_fraction;
  wo.freshness_half_life_days = FLAGS_freshness_half_life_days;
  wo.freshness_floor = FLAGS_freshness_floor;
  wo.max_interests = FLAGS_max_interests;
  wo.p_series = FLAGS_p_series;
  wo.p_search = FLAGS_p_search;
  wo.p_sticky = FLAGS_p_sticky;
  if (Status s = ValidateWorldOptions(wo); !s.ok()) return UsageError(std::string(s.message()));

  GeneratorOptions go;
  go.out_dir = FLAGS_out;
  go.shards = FLAGS_shards;
  go.max_examples_per_user = IsDefault("max_examples_per_user") ? 30 : FLAGS_max_examples_per_user;
  go.max_history = FLAGS_max_history;
  go.threads = FLAGS_threads;
  go.test_users = FLAGS_test_users;
  go.page_rate = FLAGS_page_rate;
  go.page_size = FLAGS_page_size;
  go.random_labels = FLAGS_random_labels;
  go.write_train = FLAGS_write_train;
  go.progress_interval_s = FLAGS_progress_seconds;
  go.sync = FLAGS_fsync;
  go.logs_dir = FLAGS_logs;
  if (Status s = ValidateGeneratorOptions(go, wo); !s.ok()) {
    return UsageError(std::string(s.message()));
  }

  if (go.test_users >= wo.num_users) {
    std::cerr << "vrec datagen: warning: --test_users=" << go.test_users << " holds out all "
              << wo.num_users
              << " users, so the ranking model gets no training pages (the candidate model "
                 "still trains on their earlier watches); give --test_users below --num_users "
                 "for a ranking dataset\n";
  }
  const auto start = std::chrono::steady_clock::now();
  auto world = World::Build(wo, go.threads);
  if (!world.ok()) {
    std::cerr << "vrec datagen: " << world.status() << "\n";
    return kExitFailure;
  }
  const double world_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "datagen: world of " << wo.num_videos << " videos, " << wo.num_topics << " topics, "
            << wo.num_days << " days built in " << world_seconds << " s\n";

  nlohmann::json extra = {{"world_seconds", world_seconds}, {"out", FLAGS_out}};
  auto summary = GenerateDataset(**world, go, extra);
  if (!summary.ok()) {
    std::cerr << "vrec datagen: " << summary.status() << "\n";
    return kExitFailure;
  }
  nlohmann::json j = summary->ToJson();
  j.update(extra);
  j["seed"] = wo.seed;
  j["total_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

}  // namespace vrec::cli
