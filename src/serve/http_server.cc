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
#include "data/id_key.h"
#include "data/log_values.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace vrec::serve {
namespace {

using Clock = std::chrono::steady_clock;

StatusOr<std::vector<int64_t>> IdList(const nlohmann::json& j, const char* field) {
  if (!j.is_array())
    return absl::InvalidArgumentError(absl::StrCat(field, " must be an array of ids"));
  if (j.size() > kMaxRequestIds) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " holds ", j.size(), " ids; at most ", kMaxRequestIds));
  }
  std::vector<int64_t> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (j[i].is_string()) {  // the team's own id (docs/data_format.md)
      out.push_back(static_cast<int64_t>(IdKey(j[i].get<std::string>())));
      continue;
    }
    if (!j[i].is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "] is neither an integer id nor a string id"));
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
      VREC_ASSIGN_OR_RETURN(std::vector<int64_t> tokens, IdList(v, "search_tokens"));
      q.search_tokens.insert(q.search_tokens.end(), tokens.begin(), tokens.end());
    } else if (k == "search_query") {  // text, tokenised as vrec convert --events does
      if (!v.is_string()) return absl::InvalidArgumentError("search_query must be a string");
      for (const std::string& t : QueryTokens(v.get<std::string>())) {
        q.search_tokens.push_back(static_cast<int64_t>(IdKey(t)));
      }
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
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field '", k,
                       "' (known: watch_history, search_tokens, search_query, region, device, age, "
                       "gender, num)"));
    }
  }
  return q;
}

namespace {

// Replies may quote the request (a path, a field name): bytes that are not
// UTF-8 are replaced rather than thrown about.
HttpReply JsonReply(int status, const nlohmann::json& body) {
  return {status, "application/json",
          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

HttpReply ErrorReply(int status, absl::string_view message) {
  return JsonReply(status, {{"error", std::string(message)}});
}

}  // namespace

StatusOr<std::unique_ptr<RecommendationService>> RecommendationService::Create(
    const ServeOptions& options) {
  std::unique_ptr<RecommendationService> s(new RecommendationService(options));
  VREC_RETURN_IF_ERROR(s->LoadIfChanged().status());
  return s;
}

std::shared_ptr<const Recommender> RecommendationService::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void RecommendationService::Record(const std::string& path, int code, double seconds) {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  ++requests_[{path, code}];
  if (path == "/v1/recommend") {
    size_t b = 0;
    while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
    ++latency_[b];
    latency_sum_ += seconds;
    ++latency_count_;
  }
}

HttpReply RecommendationService::Handle(const std::string& method, const std::string& path,
                                        const std::string& body) {
  try {
    return Route(method, path, body);
  } catch (const std::exception& e) {
    // Every handler keeps its state consistent when it throws (locks and
    // pooled scorers are scoped), so the service carries on.
    LOG_EVERY_N(ERROR, 100) << "serving " << method << " " << path << ": " << e.what();
    const bool known =
        path == "/v1/recommend" || path == "/healthz" || path == "/metrics" || path == "/v1/reload";
    Record(known ? path : "other", 500, 0);
    return ErrorReply(500, absl::StrCat("internal error: ", e.what()));
  }
}

HttpReply RecommendationService::BodyTooLarge() {
  Record("other", 413, 0);
  return ErrorReply(413,
                    absl::StrCat("the request body is over ", options_.max_body_bytes, " bytes"));
}

HttpReply RecommendationService::Route(const std::string& method, const std::string& path,
                                       const std::string& body) {
  if (body.size() > options_.max_body_bytes) return BodyTooLarge();
  // cpp-httplib answers HEAD with the GET handler (and drops the body).
  const bool get = method == "GET" || method == "HEAD";
  if (method == "POST" && path == "/v1/recommend") return Recommend(body);
  if (get && path == "/healthz") {
    auto r = Current();
    HttpReply reply = JsonReply(200, {{"status", "ok"},
                                      {"version", r->bundle().manifest().version()},
                                      {"videos", r->bundle().manifest().num_videos()}});
    Record("/healthz", 200, 0);
    return reply;
  }
  if (get && path == "/metrics") {
    HttpReply reply{200, "text/plain; version=0.0.4", Metrics()};
    Record("/metrics", 200, 0);
    return reply;
  }
  if (method == "POST" && path == "/v1/reload") {
    StatusOr<bool> changed = Reload();
    const int code = changed.ok() ? 200 : 500;
    HttpReply reply = changed.ok()
                          ? JsonReply(200, {{"reloaded", *changed},
                                            {"version", Current()->bundle().manifest().version()}})
                          : ErrorReply(500, changed.status().message());
    Record("/v1/reload", code, 0);
    return reply;
  }
  Record("other", 404, 0);
  return ErrorReply(404, absl::StrCat("no such endpoint: ", method, " ", path,
                                      " (POST /v1/recommend, GET /healthz, GET "
                                      "/metrics, POST /v1/reload)"));
}

HttpReply RecommendationService::Recommend(const std::string& body) {
  const auto t0 = Clock::now();
  auto finish = [&](HttpReply reply) {
    Record("/v1/recommend", reply.status, std::chrono::duration<double>(Clock::now() - t0).count());
    return reply;
  };
  StatusOr<RecommendRequest> q = ParseRecommendRequest(body);
  if (!q.ok()) return finish(ErrorReply(400, q.status().message()));
  auto r = Current();
  StatusOr<std::vector<RecommendItem>> items = r->Recommend(*q);
  if (!items.ok()) {
    const int code = absl::IsInvalidArgument(items.status()) ? 400 : 500;
    return finish(ErrorReply(code, items.status().message()));
  }
  nlohmann::json out = {{"version", r->bundle().manifest().version()},
                        {"items", nlohmann::json::array()}};
  for (const RecommendItem& it : *items) {
    nlohmann::json item = {{"video", static_cast<uint64_t>(it.video)},
                           {"score", it.score},
                           {"expected_watch_time", it.expected_watch_time}};
    if (const std::string* id = r->bundle().ItemId(it.video)) item["item"] = *id;
    out["items"].push_back(std::move(item));
  }
  return finish(JsonReply(200, out));
}

std::string RecommendationService::Metrics() {
  std::string out;
  std::lock_guard<std::mutex> lock(metrics_mu_);
  absl::StrAppend(&out, "# HELP vrec_requests_total HTTP requests by path and status code.\n",
                  "# TYPE vrec_requests_total counter\n");
  uint64_t errors = 0;
  for (const auto& [key, n] : requests_) {
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
  for (size_t b = 0; b < kLatencyBuckets.size(); ++b) {
    cumulative += latency_[b];
    absl::StrAppend(&out, "vrec_recommend_latency_seconds_bucket{le=\"", kLatencyBuckets[b], "\"} ",
                    cumulative, "\n");
  }
  cumulative += latency_[kLatencyBuckets.size()];
  absl::StrAppend(&out, "vrec_recommend_latency_seconds_bucket{le=\"+Inf\"} ", cumulative, "\n",
                  "vrec_recommend_latency_seconds_sum ", absl::StrFormat("%.6f", latency_sum_),
                  "\n", "vrec_recommend_latency_seconds_count ", latency_count_, "\n");
  absl::StrAppend(&out, "# HELP vrec_bundle_reloads_total Bundles loaded after the first.\n",
                  "# TYPE vrec_bundle_reloads_total counter\n", "vrec_bundle_reloads_total ",
                  reloads_, "\n", "vrec_bundle_reload_failures_total ", reload_failures_, "\n");
  auto r = Current();
  if (r != nullptr) {
    const ServingBundle& m = r->bundle().manifest();
    absl::StrAppend(&out, "# HELP vrec_bundle_info The bundle being served.\n",
                    "# TYPE vrec_bundle_info gauge\n", "vrec_bundle_info{version=\"", m.version(),
                    "\",videos=\"", m.num_videos(), "\",index=\"", m.index().kind(), "\"} 1\n");
  }
  return out;
}

StatusOr<bool> RecommendationService::Reload() {
  StatusOr<bool> changed = LoadIfChanged();
  if (!changed.ok()) {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    ++reload_failures_;
  }
  return changed;
}

StatusOr<bool> RecommendationService::LoadIfChanged() {
  auto bytes = ReadFileToString(JoinPath(options_.bundle_dir, "BUNDLE"));
  if (!bytes.ok()) return bytes.status();
  ServingBundle m;
  if (!m.ParseFromString(*bytes)) {
    return absl::DataLossError(absl::StrCat(options_.bundle_dir, "/BUNDLE does not parse"));
  }
  auto now = Current();
  if (now != nullptr && now->bundle().manifest().version() == m.version()) return false;
  VREC_ASSIGN_OR_RETURN(std::unique_ptr<LoadedBundle> bundle,
                        LoadedBundle::Load(options_.bundle_dir));
  VREC_ASSIGN_OR_RETURN(std::unique_ptr<Recommender> r,
                        Recommender::Create(std::move(bundle), options_.recommender));
  LOG(INFO) << "serving bundle " << r->bundle().manifest().version() << " ("
            << r->bundle().manifest().num_videos() << " videos, "
            << r->bundle().manifest().index().kind() << " index)";
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(r);
  }
  if (now != nullptr) {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    ++reloads_;
  }
  return true;
}

struct RecommendationServer::Impl {
  std::unique_ptr<RecommendationService> service;
  httplib::Server http;
  int port = 0;
  double reload_seconds = 0;
  std::thread listener, reloader;
  std::mutex stop_mu;  // one Stop at a time
  std::mutex mu;       // guards the stop flag
  std::condition_variable cv;
  bool stopping = false;
};

RecommendationServer::RecommendationServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RecommendationServer::~RecommendationServer() { Stop(); }

int RecommendationServer::port() const { return impl_->port; }

StatusOr<bool> RecommendationServer::Reload() { return impl_->service->Reload(); }

StatusOr<std::unique_ptr<RecommendationServer>> RecommendationServer::Start(
    const ServeOptions& options) {
  auto impl = std::make_unique<Impl>();
  VREC_ASSIGN_OR_RETURN(impl->service, RecommendationService::Create(options));
  impl->reload_seconds = options.reload_seconds;
  Impl* s = impl.get();
  RecommendationService* service = s->service.get();
  const int threads = std::max(1, options.threads);
  s->http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Replies go out in two writes (headers, body): without TCP_NODELAY, Nagle
  // and the client's delayed ACK add ~40 ms to every request.
  s->http.set_tcp_nodelay(true);
  s->http.set_payload_max_length(options.max_body_bytes);
  auto send = [](const HttpReply& reply, httplib::Response& res) {
    res.status = reply.status;
    res.set_content(reply.body, reply.content_type.c_str());
  };
  auto handle = [service, send](const httplib::Request& req, httplib::Response& res) {
    send(service->Handle(req.method, req.path, req.body), res);
  };
  s->http.Post("/v1/recommend", handle);
  s->http.Get("/healthz", handle);
  s->http.Get("/metrics", handle);
  s->http.Post("/v1/reload", handle);
  s->http.set_error_handler([service, send](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {  // no route: the service says so
      send(service->Handle(req.method, req.path, req.body), res);
    } else if (res.status == 413) {
      send(service->BodyTooLarge(), res);
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
        s->cv.wait_for(lock, std::chrono::duration<double>(s->reload_seconds));
        if (s->stopping) break;
        lock.unlock();
        StatusOr<bool> r = s->service->Reload();
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
