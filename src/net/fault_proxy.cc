#include "net/fault_proxy.h"

#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/thread_cpu.h"
#include "net/multipart.h"

namespace vrec::net {
namespace {

using Clock = std::chrono::steady_clock;
using Parts = std::vector<zmq::message_t>;

uint64_t IdOf(const zmq::message_t& frame) {
  uint64_t id = 0;
  if (frame.size() == sizeof(id)) std::memcpy(&id, frame.data(), sizeof(id));
  return id;
}

}  // namespace

FaultProxy::FaultProxy(FaultOptions options) : options_(options) {}

StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& target,
                                                        FaultOptions options) {
  std::unique_ptr<FaultProxy> p(new FaultProxy(options));
  zmq::socket_t front(p->context_, zmq::socket_type::router);
  zmq::socket_t back(p->context_, zmq::socket_type::dealer);
  try {
    front.set(zmq::sockopt::linger, 0);
    back.set(zmq::sockopt::linger, 0);
    front.bind("tcp://127.0.0.1:*");
    p->endpoint_ = front.get(zmq::sockopt::last_endpoint);
    back.connect(target);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("fault proxy to ", target, ": ", e.what()));
  }
  FaultProxy* raw = p.get();
  p->thread_ = std::thread([raw, f = std::move(front), b = std::move(back)]() mutable {
    NameThisThread("net-faults");
    raw->Loop(std::move(f), std::move(b));
  });
  return p;
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void FaultProxy::set_options(const FaultOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  options_ = options;
}

FaultOptions FaultProxy::options() const {
  std::lock_guard<std::mutex> lock(mu_);
  return options_;
}

// Requests go out as [proxy id] [header] [frames...] (the client's identity
// and request id kept here); replies come back as [proxy id] [header]
// [frames...] and return as [identity] [request id] [header] [frames...].
void FaultProxy::Loop(zmq::socket_t front, zmq::socket_t back) {
  struct Due {
    Clock::time_point at;
    bool to_server;
    Parts parts;
  };
  std::deque<Due> queue;  // in order of `at` (one delay for everything)
  std::map<uint64_t, std::pair<zmq::message_t, uint64_t>> origin;  // proxy id -> identity, id
  uint64_t next_id = 1;
  std::mt19937_64 rng(options().seed);
  std::uniform_real_distribution<double> coin(0, 1);
  Parts parts;
  while (!stopping_.load()) {
    zmq::pollitem_t items[] = {{front.handle(), 0, ZMQ_POLLIN, 0},
                               {back.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(2));
    const FaultOptions o = options();  // as they are now, after the wait
    const auto now = Clock::now();
    if ((items[0].revents & ZMQ_POLLIN) && RecvMultipart(front, &parts) && parts.size() >= 3) {
      if (o.silent || coin(rng) < o.drop_requests) {
        ++dropped_;
      } else {
        const uint64_t id = next_id++;
        origin.emplace(id, std::make_pair(std::move(parts[0]), IdOf(parts[1])));
        Parts out;
        out.emplace_back(&id, sizeof(id));
        for (size_t i = 2; i < parts.size(); ++i) out.push_back(std::move(parts[i]));
        queue.push_back({now + o.delay, true, std::move(out)});
      }
    }
    if ((items[1].revents & ZMQ_POLLIN) && RecvMultipart(back, &parts) && parts.size() >= 2) {
      auto it = origin.find(IdOf(parts[0]));
      if (it != origin.end()) {
        if (o.silent || coin(rng) < o.drop_replies) {
          ++dropped_;
        } else {
          Parts out;
          out.push_back(std::move(it->second.first));
          const uint64_t id = it->second.second;
          out.emplace_back(&id, sizeof(id));
          for (size_t i = 1; i < parts.size(); ++i) out.push_back(std::move(parts[i]));
          queue.push_back({now + o.delay, false, std::move(out)});
        }
        origin.erase(it);
      }
    }
    while (!queue.empty() && queue.front().at <= Clock::now()) {
      Due& d = queue.front();
      if (d.to_server) {
        if (o.silent) {
          ++dropped_;
        } else {
          SendMultipart(back, d.parts);  // a full queue loses it, as a network would
          ++forwarded_;
        }
      } else {
        SendMultipart(front, d.parts);
      }
      queue.pop_front();
    }
  }
}

}  // namespace vrec::net
