#include "train/liveness.h"

#include <cstdlib>
#include <future>
#include <iostream>
#include <optional>

#include "absl/strings/str_format.h"
#include "common/thread_cpu.h"
#include "glog/logging.h"

namespace vrec::train {

class LivenessEndpoint::Handler : public net::Handler {
 public:
  explicit Handler(std::string who) : who_(std::move(who)) {}
  net::Message Handle(net::Message) override {
    net::Message reply;
    reply.header = who_;
    return reply;
  }
  net::Message ErrorReply(const Status&) override { return Handle({}); }

 private:
  const std::string who_;
};

StatusOr<std::unique_ptr<LivenessEndpoint>> LivenessEndpoint::Start(const std::string& bind,
                                                                    const net::DataPlaneKeys& keys,
                                                                    const std::string& who) {
  std::unique_ptr<LivenessEndpoint> e(new LivenessEndpoint());
  e->handler_ = std::make_unique<Handler>(who);
  net::ServerOptions so;
  so.bind = bind;
  so.threads = 1;
  so.max_frames = 0;
  so.max_message_bytes = 4096;
  so.keys = keys;
  VREC_ASSIGN_OR_RETURN(e->server_, net::Server::Start(e->handler_.get(), so));
  return e;
}

LivenessEndpoint::~LivenessEndpoint() {
  if (server_) server_->Stop();
}

const std::string& LivenessEndpoint::endpoint() const { return server_->endpoint(); }

LivenessWatch::LivenessWatch(std::vector<LivenessPeer> peers, LivenessOptions options)
    : peers_(std::move(peers)), options_(std::move(options)) {}

StatusOr<std::unique_ptr<LivenessWatch>> LivenessWatch::Start(std::vector<LivenessPeer> peers,
                                                              const net::DataPlaneKeys& keys,
                                                              LivenessOptions options) {
  if (options.interval_seconds <= 0 || options.timeout_seconds <= 0) {
    return absl::InvalidArgumentError("liveness interval and timeout must be positive");
  }
  std::unique_ptr<LivenessWatch> w(new LivenessWatch(std::move(peers), std::move(options)));
  if (w->peers_.empty()) return w;
  net::ServerSet set;
  set.keys = keys;
  for (const LivenessPeer& p : w->peers_) set.endpoints.push_back(p.endpoint);
  VREC_ASSIGN_OR_RETURN(w->client_, net::Client::Connect(set));
  LivenessWatch* raw = w.get();
  w->thread_ = std::thread([raw] {
    NameThisThread("vrec-liveness");
    raw->Loop();
  });
  return w;
}

LivenessWatch::~LivenessWatch() {
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

Status LivenessWatch::lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_;
}

void LivenessWatch::Loop() {
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options_.interval_seconds));
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(options_.timeout_seconds));
  const size_t n = peers_.size();
  std::vector<Clock::time_point> last_answer(n, Clock::now());
  std::vector<std::optional<std::future<StatusOr<net::Message>>>> in_flight(n);
  bool reported = false;
  auto next = Clock::now();
  while (!stopping_.load(std::memory_order_acquire)) {
    const auto now = Clock::now();
    for (size_t p = 0; p < n; ++p) {
      if (in_flight[p] &&
          in_flight[p]->wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        if (in_flight[p]->get().ok()) last_answer[p] = now;
        in_flight[p].reset();
      }
      if (!in_flight[p] && now >= next) {
        net::Message ping;
        ping.header = "ping";
        in_flight[p] = client_->Call(static_cast<int>(p), std::move(ping), timeout);
      }
      const double silent = std::chrono::duration<double>(now - last_answer[p]).count();
      if (!reported && silent >= options_.timeout_seconds) {
        reported = true;
        const Status status = absl::DeadlineExceededError(absl::StrFormat(
            "%s has not answered for %.0f s (pinged every %.0f s, --failure_timeout=%.0f): "
            "frozen, or its process or machine lost",
            peers_[p].who, silent, options_.interval_seconds, options_.timeout_seconds));
        {
          std::lock_guard<std::mutex> lock(mu_);
          lost_ = status;
        }
        if (options_.on_lost) options_.on_lost(status);
      }
    }
    if (now >= next) next = now + interval;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void EndProcess(const Status& status) {
  LOG(ERROR) << status;
  std::cerr << "vrec train: " << status << std::endl;
  google::FlushLogFiles(google::GLOG_INFO);
  std::_Exit(1);
}

}  // namespace vrec::train
