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
// Thread safety: the server runs its own threads; Stop() may be called from
// any thread (e.g. a signal watcher).
#pragma once

#include <atomic>
#include <memory>
#include <string>

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
