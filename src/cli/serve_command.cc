// `vrec serve`: the recommendation server over a bundle from vrec export
// (src/serve/http_server.h, docs/serving.md).
#include <gflags/gflags.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "serve/http_server.h"

DECLARE_string(model);  // shared with vrec train: here the bundle folder
DEFINE_string(host, "127.0.0.1", "Address to listen on (0.0.0.0 = every interface)");
DEFINE_int32(port, 8080, "Port to listen on (0 = any free port, printed at start)");
DEFINE_int32(http_threads, 64,
             "Connections served at once (a keep-alive connection holds its thread; the "
             "scoring itself is limited by --max_concurrent)");
DEFINE_double(reload_seconds, 10,
              "Check the bundle folder this often and load a new bundle without a restart "
              "(0 = only on POST /v1/reload)");
DEFINE_int32(num_candidates, 300,
             "Candidates retrieved per request and scored by the ranking model");
DEFINE_int32(max_concurrent, 0,
             "Requests scored at once (0 = hardware threads); more wait their turn instead of "
             "time-slicing the cores");
DEFINE_bool(recommend_watched, false, "Also recommend videos in the request's watch_history");
DEFINE_double(max_body_mb, 1,
              "Request bodies larger than this many MiB are refused with 413 before they are "
              "read (a recommend request of 10,000 ids is ~0.1 MiB)");

namespace vrec::cli {
namespace {
std::atomic<bool> g_serve_stop{false};
void OnServeSignal(int) { g_serve_stop.store(true); }
}  // namespace

int RunServe(int argc, char** argv) {
  if (argc > 1) {
    std::cerr << "vrec serve: unexpected argument '" << argv[1] << "'; see `vrec serve --help`\n";
    return kExitUsage;
  }
  if (gflags::GetCommandLineFlagInfoOrDie("model").is_default) {
    std::cerr << "vrec serve: --model=E (a bundle folder from vrec export) is required\n";
    return kExitUsage;
  }
  serve::ServeOptions o;
  o.bundle_dir = FLAGS_model;
  o.host = FLAGS_host;
  o.port = FLAGS_port;
  o.threads = FLAGS_http_threads;
  o.reload_seconds = FLAGS_reload_seconds;
  o.recommender.num_candidates = FLAGS_num_candidates;
  o.recommender.exclude_watched = !FLAGS_recommend_watched;
  o.recommender.max_concurrent = FLAGS_max_concurrent;
  if (!(FLAGS_max_body_mb > 0) || FLAGS_max_body_mb > 1024) {
    std::cerr << "vrec serve: --max_body_mb=" << FLAGS_max_body_mb << " must be in (0, 1024]\n";
    return kExitUsage;
  }
  o.max_body_bytes = static_cast<size_t>(FLAGS_max_body_mb * (1 << 20));
  auto server = serve::RecommendationServer::Start(o);
  if (!server.ok()) {
    std::cerr << "vrec serve: " << server.status() << "\n";
    return absl::IsUnavailable(server.status()) || absl::IsInvalidArgument(server.status())
               ? kExitUsage
               : kExitFailure;
  }
  std::signal(SIGINT, OnServeSignal);
  std::signal(SIGTERM, OnServeSignal);
  std::cerr << "[serve] listening on http://" << o.host << ":" << (*server)->port()
            << " (POST /v1/recommend, GET /healthz, GET /metrics); Ctrl-C stops" << std::endl;
  std::cout << "{\"port\":" << (*server)->port() << "}" << std::endl;
  while (!g_serve_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  (*server)->Stop();
  std::cerr << "[serve] stopped" << std::endl;
  return kExitOk;
}

}  // namespace vrec::cli
