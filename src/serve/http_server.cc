#include "serve/http_server.h"

#include <httplib.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace vrec::serve {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::array<double, 11> kBuckets = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                             0.05,   0.1,   0.25,  0.5,   1.0};

StatusOr<std::vector<int64_t>> IdList(const nlohmann::json& j, const char* field) {
  if (!j.is_array())
    return absl::InvalidArgumentError(absl::StrCat(field, " must be an array of ids"));
  if (j.size() > kMaxRequestIds) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " holds ", j.size(), " ids; at most ", kMaxRequestIds));
  }
  std::vector<int64_t> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "] is not an integer id"));
    }
    out.push_back(j[i].get<int64_t>());
  }
  return out;
}

StatusOr<double> Number(const nlohmann::json& j, const char* field, double lo, double hi) {
  if (!j.is_number()) return absl::InvalidArgumentError(absl::StrCat(field, " must be a number"));
  const double v = j.get<double>();
  if (!(v >= lo && v <= hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " = ", v, " is outside [", lo, ", ", hi, "]"));
  }
  return v;
}

}  // namespace

StatusOr<RecommendRequest> ParseRecommendRequest(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the body is not JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  RecommendRequest q;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const nlohmann::json& v = it.value();
    if (k == "watch_history") {
      VREC_ASSIGN_OR_RETURN(q.watch_history, IdList(v, "watch_history"));
    } else if (k == "search_tokens") {
      VREC_ASSIGN_OR_RETURN(q.search_tokens, IdList(v, "search_tokens"));
    } else if (k == "region" || k == "device") {
      VREC_ASSIGN_OR_RETURN(double x, Number(v, k.c_str(), 0, 4294967295.0));
      if (x != static_cast<uint32_t>(x)) {
        return absl::InvalidArgumentError(absl::StrCat(k, " must be a whole number"));
      }
      (k == "region" ? q.region : q.device) = static_cast<uint32_t>(x);
    } else if (k == "age") {  // years, scaled as in the data (0 = 13y, 1 = 80y)
      VREC_ASSIGN_OR_RETURN(double years, Number(v, "age", 13, 80));
      q.age = static_cast<float>((years - 13) / 67);
    } else if (k == "gender") {
      VREC_ASSIGN_OR_RETURN(double g, Number(v, "gender", 0, 1));
      q.gender = static_cast<float>(g);
    } else if (k == "num") {
      VREC_ASSIGN_OR_RETURN(double n, Number(v, "num", 1, 1000));
      if (n != static_cast<int>(n)) return absl::InvalidArgumentError("num must be a whole number");
      q.num = static_cast<int>(n);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown field '", k,
          "' (known: watch_history, search_tokens, region, device, age, gender, num)"));
    }
  }
  return q;
}

struct RecommendationServer::Impl {
  ServeOptions options;
  httplib::Server http;
  int port = 0;
  std::thread listener, reloader;
  std::mutex stop_mu;  // one Stop at a time
  std::mutex mu;       // guards current and the stop flag
  std::condition_variable cv;
  bool stopping = false;
  std::shared_ptr<const Recommender> current;

  // Metrics.
  std::mutex metrics_mu;
  std::map<std::pair<std::string, int>, uint64_t> requests;  // (path, code)
  std::array<uint64_t, kBuckets.size() + 1> latency{};
  double latency_sum = 0;
  uint64_t latency_count = 0;
  uint64_t reloads = 0, reload_failures = 0;

  std::shared_ptr<const Recommender> Current() {
    std::lock_guard<std::mutex> lock(mu);
    return current;
  }

  void Record(const std::string& path, int code, double seconds) {
    std::lock_guard<std::mutex> lock(metrics_mu);
    ++requests[{path, code}];
    if (path == "/v1/recommend") {
      size_t b = 0;
      while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
      ++latency[b];
      latency_sum += seconds;
      ++latency_count;
    }
  }

  std::string Metrics() {
    std::string out;
    std::lock_guard<std::mutex> lock(metrics_mu);
    absl::StrAppend(&out, "# HELP vrec_requests_total HTTP requests by path and status code.\n",
                    "# TYPE vrec_requests_total counter\n");
    uint64_t errors = 0;
    for (const auto& [key, n] : requests) {
      absl::StrAppend(&out, "vrec_requests_total{path=\"", key.first, "\",code=\"", key.second,
                      "\"} ", n, "\n");
      if (key.second >= 400) errors += n;
    }
    absl::StrAppend(&out, "# HELP vrec_request_errors_total Requests answered with 4xx or 5xx.\n",
                    "# TYPE vrec_request_errors_total counter\n", "vrec_request_errors_total ",
                    errors, "\n");
    absl::StrAppend(&out,
                    "# HELP vrec_recommend_latency_seconds Time to answer POST /v1/recommend.\n",
                    "# TYPE vrec_recommend_latency_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kBuckets.size(); ++b) {
      cumulative += latency[b];
      absl::StrAppend(&out, "vrec_recommend_latency_seconds_bucket{le=\"", kBuckets[b], "\"} ",
                      cumulative, "\n");
    }
    cumulative += latency[kBuckets.size()];
    absl::StrAppend(&out, "vrec_recommend_latency_seconds_bucket{le=\"+Inf\"} ", cumulative, "\n",
                    "vrec_recommend_latency_seconds_sum ", absl::StrFormat("%.6f", latency_sum),
                    "\n", "vrec_recommend_latency_seconds_count ", latency_count, "\n");
    absl::StrAppend(&out, "# HELP vrec_bundle_reloads_total Bundles loaded after the first.\n",
                    "# TYPE vrec_bundle_reloads_total counter\n", "vrec_bundle_reloads_total ",
                    reloads, "\n", "vrec_bundle_reload_failures_total ", reload_failures, "\n");
    auto r = Current();
    if (r != nullptr) {
      const ServingBundle& m = r->bundle().manifest();
      absl::StrAppend(&out, "# HELP vrec_bundle_info The bundle being served.\n",
                      "# TYPE vrec_bundle_info gauge\n", "vrec_bundle_info{version=\"", m.version(),
                      "\",videos=\"", m.num_videos(), "\",index=\"", m.index().kind(), "\"} 1\n");
    }
    return out;
  }

  // Loads the bundle if its version changed; a failure is counted and the
  // old bundle stays.
  StatusOr<bool> Reload() {
    StatusOr<bool> changed = LoadIfChanged();
    if (!changed.ok()) {
      std::lock_guard<std::mutex> lock(metrics_mu);
      ++reload_failures;
    }
    return changed;
  }

  StatusOr<bool> LoadIfChanged() {
    auto bytes = ReadFileToString(JoinPath(options.bundle_dir, "BUNDLE"));
    if (!bytes.ok()) return bytes.status();
    ServingBundle m;
    if (!m.ParseFromString(*bytes)) {
      return absl::DataLossError(absl::StrCat(options.bundle_dir, "/BUNDLE does not parse"));
    }
    auto now = Current();
    if (now != nullptr && now->bundle().manifest().version() == m.version()) return false;
    VREC_ASSIGN_OR_RETURN(std::unique_ptr<LoadedBundle> bundle,
                          LoadedBundle::Load(options.bundle_dir));
    VREC_ASSIGN_OR_RETURN(std::unique_ptr<Recommender> r,
                          Recommender::Create(std::move(bundle), options.recommender));
    LOG(INFO) << "serving bundle " << r->bundle().manifest().version() << " ("
              << r->bundle().manifest().num_videos() << " videos, "
              << r->bundle().manifest().index().kind() << " index)";
    std::lock_guard<std::mutex> lock(mu);
    if (current != nullptr) ++reloads;
    current = std::move(r);
    return true;
  }
};

RecommendationServer::RecommendationServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RecommendationServer::~RecommendationServer() { Stop(); }

int RecommendationServer::port() const { return impl_->port; }

StatusOr<bool> RecommendationServer::Reload() { return impl_->Reload(); }

StatusOr<std::unique_ptr<RecommendationServer>> RecommendationServer::Start(
    const ServeOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  VREC_RETURN_IF_ERROR(impl->LoadIfChanged().status());
  Impl* s = impl.get();
  const int threads = std::max(1, options.threads);
  s->http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Replies go out in two writes (headers, body): without TCP_NODELAY, Nagle
  // and the client's delayed ACK add ~40 ms to every request.
  s->http.set_tcp_nodelay(true);
  s->http.set_payload_max_length(options.max_body_bytes);
  // Replies may quote the request (a path, a field name): bytes that are not
  // UTF-8 are replaced rather than thrown about.
  auto json_reply = [](httplib::Response& res, int code, const nlohmann::json& body) {
    res.status = code;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  };
  s->http.Post("/v1/recommend", [s, json_reply](const httplib::Request& req,
                                                httplib::Response& res) {
    const auto t0 = Clock::now();
    auto finish = [&](int code) {
      s->Record("/v1/recommend", code, std::chrono::duration<double>(Clock::now() - t0).count());
    };
    StatusOr<RecommendRequest> q = ParseRecommendRequest(req.body);
    if (!q.ok()) {
      json_reply(res, 400, {{"error", std::string(q.status().message())}});
      return finish(400);
    }
    auto r = s->Current();
    StatusOr<std::vector<RecommendItem>> items = r->Recommend(*q);
    if (!items.ok()) {
      const int code = absl::IsInvalidArgument(items.status()) ? 400 : 500;
      json_reply(res, code, {{"error", std::string(items.status().message())}});
      return finish(code);
    }
    nlohmann::json out = {{"version", r->bundle().manifest().version()},
                          {"items", nlohmann::json::array()}};
    for (const RecommendItem& it : *items) {
      out["items"].push_back({{"video", static_cast<uint64_t>(it.video)},
                              {"score", it.score},
                              {"expected_watch_time", it.expected_watch_time}});
    }
    json_reply(res, 200, out);
    finish(200);
  });
  s->http.Get("/healthz", [s, json_reply](const httplib::Request&, httplib::Response& res) {
    auto r = s->Current();
    json_reply(res, 200,
               {{"status", "ok"},
                {"version", r->bundle().manifest().version()},
                {"videos", r->bundle().manifest().num_videos()}});
    s->Record("/healthz", 200, 0);
  });
  s->http.Get("/metrics", [s](const httplib::Request&, httplib::Response& res) {
    res.set_content(s->Metrics(), "text/plain; version=0.0.4");
    s->Record("/metrics", 200, 0);
  });
  s->http.Post("/v1/reload", [s, json_reply](const httplib::Request&, httplib::Response& res) {
    StatusOr<bool> changed = s->Reload();
    const int code = changed.ok() ? 200 : 500;
    json_reply(res, code,
               changed.ok()
                   ? nlohmann::json{{"reloaded", *changed},
                                    {"version", s->Current()->bundle().manifest().version()}}
                   : nlohmann::json{{"error", std::string(changed.status().message())}});
    s->Record("/v1/reload", code, 0);
  });
  s->http.set_error_handler([s, json_reply](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {
      json_reply(res, 404,
                 {{"error", absl::StrCat("no such endpoint: ", req.method, " ", req.path,
                                         " (POST /v1/recommend, GET /healthz, GET "
                                         "/metrics, POST /v1/reload)")}});
      s->Record("other", 404, 0);
    } else if (res.status == 413) {
      json_reply(res, 413,
                 {{"error", absl::StrCat("the request body is over ", s->options.max_body_bytes,
                                         " bytes")}});
      s->Record("other", 413, 0);
    }
  });
  if (options.port == 0) {
    s->port = s->http.bind_to_any_port(options.host.c_str());
    if (s->port < 0) {
      return absl::UnavailableError(absl::StrCat("cannot bind ", options.host, ":0"));
    }
  } else {
    if (!s->http.bind_to_port(options.host.c_str(), options.port)) {
      return absl::UnavailableError(absl::StrCat("cannot bind ", options.host, ":", options.port,
                                                 " (in use? pick another --port)"));
    }
    s->port = options.port;
  }
  s->listener = std::thread([s] { s->http.listen_after_bind(); });
  if (options.reload_seconds > 0) {
    s->reloader = std::thread([s] {
      std::unique_lock<std::mutex> lock(s->mu);
      while (!s->stopping) {
        s->cv.wait_for(lock, std::chrono::duration<double>(s->options.reload_seconds));
        if (s->stopping) break;
        lock.unlock();
        StatusOr<bool> r = s->Reload();
        if (!r.ok()) {
          LOG(WARNING) << "bundle reload: " << r.status() << " (still serving the old one)";
        }
        lock.lock();
      }
    });
  }
  for (int i = 0; i < 5000 && !s->http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::unique_ptr<RecommendationServer>(new RecommendationServer(std::move(impl)));
}

void RecommendationServer::Wait() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->stopping; });
}

void RecommendationServer::Stop() {
  std::lock_guard<std::mutex> once(impl_->stop_mu);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->http.stop();
  if (impl_->listener.joinable()) impl_->listener.join();
  if (impl_->reloader.joinable()) impl_->reloader.join();
}

}  // namespace vrec::serve
