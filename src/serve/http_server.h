// `vrec serve`: recommendations over HTTP/JSON (cpp-httplib), docs/serving.md.
//
//   POST /v1/recommend  {"watch_history": [ids, oldest first], "search_tokens": [...],
//                        "region": n, "device": n, "age": years (13-80), "gender": 0..1,
//                        "num": n}  ->  {"items": [{"video", "score",
//                        "expected_watch_time"}, ...], "version": bundle}
//                       a bad request -> 400 {"error": "..."} naming the field
//   GET  /healthz       {"status": "ok", "version", "videos"}
//   GET  /metrics       Prometheus text: requests and errors by path and code,
//                       a latency histogram, the bundle's version and age
//   POST /v1/reload     loads the bundle folder again if its version changed
// A new bundle written into the folder (vrec export replaces it atomically)
// is picked up every reload_seconds without a restart; requests in flight
// finish on the bundle they started with.
//
// The requests are answered by RecommendationService, which knows nothing of
// sockets (as ps::PsService answers the parameter server's); the server only
// carries them to it and back.
//
// Thread safety: the server runs its own threads; Stop() may be called from
// any thread (e.g. a signal watcher). RecommendationService is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "serve/recommender.h"
#include "vrec/status.h"

namespace vrec::serve {

struct ServeOptions {
  std::string bundle_dir;
  std::string host = "127.0.0.1";
  int port = 8080;             // 0 = any free port (see port())
  int threads = 64;            // connections served at once (keep-alive holds a thread)
  double reload_seconds = 10;  // 0 = only POST /v1/reload
  // Request bodies above this are refused (413) before they are read.
  size_t max_body_bytes = 1 << 20;
  RecommenderOptions recommender;
};

// A reply as the server writes it.
struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
};

// The endpoints above without the socket: the bundle being served, the
// metrics, and the reply to each request.
class RecommendationService {
 public:
  // Loads the bundle; kNotFound/kDataLoss for a bad one. Uses options'
  // bundle_dir, max_body_bytes and recommender.
  static StatusOr<std::unique_ptr<RecommendationService>> Create(const ServeOptions& options);

  // The reply to `method` `path` (decoded, without the query string, as
  // cpp-httplib passes it) with `body`, counted in the metrics. Never
  // throws: whatever a handler throws becomes a 500 naming it, and the
  // service carries on (handlers hold locks and pooled scorers in scopes).
  HttpReply Handle(const std::string& method, const std::string& path, const std::string& body);
  // The 413 for a body over max_body_bytes (the server refuses those before
  // reading them; Handle refuses them too).
  HttpReply BodyTooLarge();

  // Loads the bundle folder if its version differs; true if it changed. A
  // failure is counted and the old bundle stays.
  StatusOr<bool> Reload();
  // Prometheus text (GET /metrics).
  std::string Metrics();
  // The recommender of the bundle being served (for profiles: `vrec bench serve`).
  std::shared_ptr<const Recommender> recommender() { return Current(); }

 private:
  static constexpr std::array<double, 11> kLatencyBuckets = {
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0};

  explicit RecommendationService(const ServeOptions& options) : options_(options) {}
  HttpReply Route(const std::string& method, const std::string& path, const std::string& body);
  HttpReply Recommend(const std::string& body);
  StatusOr<bool> LoadIfChanged();
  std::shared_ptr<const Recommender> Current();
  void Record(const std::string& path, int code, double seconds);

  const ServeOptions options_;

  std::mutex mu_;  // guards current_
  std::shared_ptr<const Recommender> current_;

  std::mutex metrics_mu_;                                     // guards the metrics below
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (path, code)
  std::array<uint64_t, kLatencyBuckets.size() + 1> latency_{};
  double latency_sum_ = 0;
  uint64_t latency_count_ = 0;
  uint64_t reloads_ = 0, reload_failures_ = 0;
};

class RecommendationServer {
 public:
  // Loads the bundle and binds; kNotFound/kDataLoss for a bad bundle,
  // kUnavailable when the port cannot be bound.
  static StatusOr<std::unique_ptr<RecommendationServer>> Start(const ServeOptions& options);
  ~RecommendationServer();

  int port() const;
  // Blocks until Stop().
  void Wait();
  void Stop();
  // Loads the bundle folder if its version differs; true if it changed.
  StatusOr<bool> Reload();

 private:
  struct Impl;
  explicit RecommendationServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Ids a request's watch_history or search_tokens may hold (the model reads
// the last 50; the rest only excludes watched videos).
inline constexpr size_t kMaxRequestIds = 10000;

// A request body to a RecommendRequest; kInvalidArgument naming the field.
StatusOr<RecommendRequest> ParseRecommendRequest(const std::string& body);

}  // namespace vrec::serve
