#include "net/transport.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/thread_cpu.h"
#include "net/multipart.h"

namespace vrec::net {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(50);

std::string UniqueInproc(const char* what, const void* owner) {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat("inproc://vrec-", what, "-", reinterpret_cast<uintptr_t>(owner), "-",
                      counter.fetch_add(1));
}

uint64_t DecodeId(const zmq::message_t& frame) {
  uint64_t id = 0;
  std::memcpy(&id, frame.data(), sizeof(id));
  return id;  // little-endian hosts only (x86-64, aarch64)
}

zmq::message_t EncodeId(uint64_t id) { return FrameFromBytes(&id, sizeof(id)); }

}  // namespace

size_t Message::ByteSize() const {
  size_t n = header.size();
  for (const auto& f : frames) n += f.size();
  return n;
}

zmq::message_t FrameFromBytes(const void* data, size_t n) { return zmq::message_t(data, n); }

// ----------------------------------------------------------------- Server

zmq::context_t& SharedContext() {
  static zmq::context_t* const context = new zmq::context_t(1);  // lives until exit
  return *context;
}

bool IsInproc(const std::string& endpoint) { return endpoint.rfind("inproc://", 0) == 0; }

Server::Server(Handler* handler, const ServerOptions& options)
    : handler_(handler),
      options_(options),
      own_context_(1),
      context_(IsInproc(options.bind) ? &SharedContext() : &own_context_) {}

StatusOr<std::unique_ptr<Server>> Server::Start(Handler* handler, const ServerOptions& options) {
  if (options.threads < 1) return absl::InvalidArgumentError("server threads must be >= 1");
  std::unique_ptr<Server> server(new Server(handler, options));
  Server* s = server.get();
  s->backend_endpoint_ = UniqueInproc("backend", s);
  s->control_endpoint_ = UniqueInproc("control", s);

  zmq::socket_t frontend(*s->context_, zmq::socket_type::router);
  zmq::socket_t backend(*s->context_, zmq::socket_type::dealer);
  zmq::socket_t control(*s->context_, zmq::socket_type::pair);
  try {
    frontend.set(zmq::sockopt::linger, 0);
    frontend.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(2 * options.max_message_bytes));
    if (options.keys.enabled() && !IsInproc(options.bind)) {
      VREC_ASSIGN_OR_RETURN(s->guard_,
                            CurveGuard::Start(*s->context_, frontend, options.keys,
                                              absl::StrCat("transport server ", options.bind)));
    }
    frontend.bind(options.bind);
    s->endpoint_ = frontend.get(zmq::sockopt::last_endpoint);
    if (s->guard_) s->guard_->set_name(absl::StrCat("transport server ", s->endpoint_));
    backend.set(zmq::sockopt::linger, 0);
    backend.bind(s->backend_endpoint_);
    control.bind(s->control_endpoint_);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("cannot bind ", options.bind, ": ", e.what()));
  }
  // Sockets move to the proxy thread; thread creation is a full fence, which
  // is what ZeroMQ requires to migrate a socket.
  s->proxy_thread_ = std::thread(
      [f = std::move(frontend), b = std::move(backend), c = std::move(control)]() mutable {
        NameThisThread("net-proxy");
        try {
          zmq::proxy_steerable(f, b, zmq::socket_ref(), c);
        } catch (const zmq::error_t& e) {
          if (e.num() != ETERM) LOG(ERROR) << "transport proxy stopped: " << e.what();
        }
      });
  for (int i = 0; i < options.threads; ++i) {
    s->workers_.emplace_back([s, i] {
      NameThisThread("net-handler");
      s->WorkerLoop(i);
    });
  }
  return server;
}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  for (auto& w : workers_) w.join();
  if (!proxy_thread_.joinable()) return;  // Start() failed before the proxy ran
  try {
    zmq::socket_t control(*context_, zmq::socket_type::pair);
    control.connect(control_endpoint_);
    control.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::none);
    proxy_thread_.join();
  } catch (const zmq::error_t& e) {
    LOG(ERROR) << "stopping transport server " << endpoint_ << ": " << e.what();
    if (proxy_thread_.joinable()) proxy_thread_.detach();
  }
}

void Server::WorkerLoop(int index) {
  zmq::socket_t socket(*context_, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(backend_endpoint_);
  std::vector<zmq::message_t> parts;
  while (!stopping_.load(std::memory_order_acquire)) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, kPollInterval);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    if (!RecvMultipart(socket, &parts, zmq::recv_flags::dontwait)) continue;

    // parts: [client identity] [request id] [header] [frames...]
    Status problem;
    uint64_t id = 0;
    size_t bytes = 0;
    for (size_t i = 1; i < parts.size(); ++i) bytes += parts[i].size();
    if (parts.size() < 3) {
      problem = absl::InvalidArgumentError(
          absl::StrCat("malformed request: ", parts.size(), " frames, need at least 3"));
    } else if (parts[1].size() != sizeof(uint64_t)) {
      problem = absl::InvalidArgumentError(
          absl::StrCat("malformed request: request id frame of ", parts[1].size(), " bytes"));
    } else if (parts.size() - 3 > options_.max_frames) {
      problem = absl::InvalidArgumentError(absl::StrCat(
          "request has ", parts.size() - 3, " data frames, at most ", options_.max_frames));
    } else if (bytes > options_.max_message_bytes) {
      problem = absl::ResourceExhaustedError(absl::StrCat(
          "request of ", bytes, " bytes exceeds the limit of ", options_.max_message_bytes));
    }
    if (parts.size() >= 2 && parts[1].size() == sizeof(uint64_t)) id = DecodeId(parts[1]);

    Message reply;
    if (!problem.ok()) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      LOG(WARNING) << "transport server " << endpoint_ << " thread " << index
                   << " rejected a request: " << problem;
      reply = handler_->ErrorReply(problem);
    } else {
      Message request;
      request.local = IsInproc(options_.bind);
      request.header = parts[2].to_string();
      for (size_t i = 3; i < parts.size(); ++i) request.frames.push_back(std::move(parts[i]));
      reply = handler_->Handle(std::move(request));
      handled_.fetch_add(1, std::memory_order_relaxed);
    }
    std::vector<zmq::message_t> out;
    out.reserve(3 + reply.frames.size());
    out.push_back(std::move(parts[0]));
    out.push_back(EncodeId(id));
    out.push_back(FrameFromBytes(reply.header.data(), reply.header.size()));
    for (auto& f : reply.frames) out.push_back(std::move(f));
    if (!SendMultipart(socket, out)) {
      LOG(WARNING) << "transport server " << endpoint_ << ": reply dropped (queue full)";
    }
  }
}

// ----------------------------------------------------------------- Client

struct Client::Impl {
  struct Outgoing {
    int server;
    uint64_t id;
    Message message;
    std::chrono::steady_clock::time_point deadline;
    std::promise<StatusOr<Message>> promise;
  };
  struct Pending {
    int server;
    std::chrono::steady_clock::time_point deadline;
    std::promise<StatusOr<Message>> promise;
  };
  // A request its server's socket could not take yet (no connection, or a
  // full queue): retried when the socket can send, until its deadline.
  struct Unsent {
    uint64_t id;
    std::vector<zmq::message_t> parts;
    std::chrono::steady_clock::time_point deadline;
    std::promise<StatusOr<Message>> promise;
  };

  Impl(const std::vector<std::string>& endpoints, const DataPlaneKeys& keys)
      : own_context(1), context(&own_context) {
    // A client of any in-process server lives in the shared context.
    for (const auto& ep : endpoints) {
      if (IsInproc(ep)) context = &SharedContext();
    }
    wake_endpoint = UniqueInproc("wake", this);
    wake_recv = zmq::socket_t(*context, zmq::socket_type::pair);
    wake_recv.bind(wake_endpoint);
    wake_send = zmq::socket_t(*context, zmq::socket_type::pair);
    wake_send.connect(wake_endpoint);
    for (const auto& ep : endpoints) {
      zmq::socket_t s(*context, zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 0);
      if (keys.enabled() && !IsInproc(ep)) SetClientKeys(s, keys);
      s.connect(ep);
      dealers.push_back(std::move(s));
    }
  }

  void Loop(const std::vector<std::string>& endpoints);
  void FailAll(const Status& status);
  // Sends server `s`'s unsent requests in order until its socket refuses one.
  void Flush(size_t s);
  // Fails the requests whose deadline has passed.
  void Expire(const std::vector<std::string>& endpoints);

  zmq::context_t own_context;
  zmq::context_t* context;
  std::string wake_endpoint;
  zmq::socket_t wake_recv;             // I/O thread only
  std::vector<zmq::socket_t> dealers;  // I/O thread only
  std::mutex mu;
  zmq::socket_t wake_send;                 // guarded by mu
  std::deque<Outgoing> queue;              // guarded by mu
  bool stopping = false;                   // guarded by mu
  uint64_t next_id = 1;                    // guarded by mu
  std::map<uint64_t, Pending> pending;     // I/O thread only
  std::vector<std::deque<Unsent>> unsent;  // by server; I/O thread only
  std::thread io;
};

void Client::Impl::FailAll(const Status& status) {
  for (auto& [id, p] : pending) p.promise.set_value(status);
  pending.clear();
  for (auto& q : unsent) {
    for (auto& u : q) u.promise.set_value(status);
    q.clear();
  }
  std::lock_guard<std::mutex> lock(mu);
  for (auto& o : queue) o.promise.set_value(status);
  queue.clear();
}

void Client::Impl::Flush(size_t s) {
  std::deque<Unsent>& q = unsent[s];
  while (!q.empty() && SendMultipart(dealers[s], q.front().parts)) {
    Unsent& u = q.front();
    pending.emplace(u.id, Pending{static_cast<int>(s), u.deadline, std::move(u.promise)});
    q.pop_front();
  }
}

void Client::Impl::Expire(const std::vector<std::string>& endpoints) {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = pending.begin(); it != pending.end();) {
    if (it->second.deadline <= now) {
      it->second.promise.set_value(absl::UnavailableError(
          absl::StrCat("no reply from ", endpoints[it->second.server], " before the deadline")));
      it = pending.erase(it);
    } else {
      ++it;
    }
  }
  for (size_t s = 0; s < unsent.size(); ++s) {
    std::deque<Unsent>& q = unsent[s];
    for (auto it = q.begin(); it != q.end();) {
      if (it->deadline <= now) {
        it->promise.set_value(absl::UnavailableError(absl::StrCat(
            "no reply from ", endpoints[s],
            " before the deadline: no connection to it took the request (the server is down or "
            "unreachable, or refused this client's keys)")));
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void Client::Impl::Loop(const std::vector<std::string>& endpoints) {
  unsent.resize(dealers.size());
  std::vector<zmq::pollitem_t> items;
  items.push_back({wake_recv.handle(), 0, ZMQ_POLLIN, 0});
  for (auto& d : dealers) items.push_back({d.handle(), 0, ZMQ_POLLIN, 0});
  std::vector<zmq::message_t> parts;
  while (true) {
    auto timeout = kPollInterval;
    const auto now = std::chrono::steady_clock::now();
    auto until = [&](std::chrono::steady_clock::time_point deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      timeout = std::max(std::chrono::milliseconds(0), std::min(timeout, left));
    };
    for (const auto& [id, p] : pending) until(p.deadline);
    for (size_t s = 0; s < unsent.size(); ++s) {
      for (const auto& u : unsent[s]) until(u.deadline);
      // Woken when the socket can take the first unsent request.
      items[s + 1].events = ZMQ_POLLIN | (unsent[s].empty() ? 0 : ZMQ_POLLOUT);
    }
    zmq::poll(items, timeout);

    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t drain;
      while (wake_recv.recv(drain, zmq::recv_flags::dontwait)) {
      }
      std::deque<Outgoing> batch;
      bool stop;
      {
        std::lock_guard<std::mutex> lock(mu);
        batch.swap(queue);
        stop = stopping;
      }
      if (stop) {
        for (auto& o : batch) o.promise.set_value(absl::CancelledError("transport client closed"));
        FailAll(absl::CancelledError("transport client closed"));
        return;
      }
      for (auto& o : batch) {
        Unsent u{o.id, {}, o.deadline, std::move(o.promise)};
        u.parts.reserve(2 + o.message.frames.size());
        u.parts.push_back(EncodeId(o.id));
        u.parts.push_back(FrameFromBytes(o.message.header.data(), o.message.header.size()));
        for (auto& f : o.message.frames) u.parts.push_back(std::move(f));
        unsent[o.server].push_back(std::move(u));
      }
      for (size_t s = 0; s < unsent.size(); ++s) Flush(s);
    }
    for (size_t s = 0; s < dealers.size(); ++s) {
      if (items[s + 1].revents & ZMQ_POLLOUT) Flush(s);
      if (!(items[s + 1].revents & ZMQ_POLLIN)) continue;
      while (RecvMultipart(dealers[s], &parts, zmq::recv_flags::dontwait)) {
        // parts: [request id] [header] [frames...]
        if (parts.size() < 2 || parts[0].size() != sizeof(uint64_t)) {
          LOG(WARNING) << "malformed reply from " << endpoints[s] << " dropped";
          continue;
        }
        auto it = pending.find(DecodeId(parts[0]));
        if (it == pending.end()) continue;  // late reply to a timed-out call
        Message reply;
        reply.header = parts[1].to_string();
        for (size_t i = 2; i < parts.size(); ++i) reply.frames.push_back(std::move(parts[i]));
        it->second.promise.set_value(std::move(reply));
        pending.erase(it);
      }
    }
    Expire(endpoints);
  }
}

Client::Client(std::vector<std::string> endpoints, const ClientOptions& options)
    : endpoints_(std::move(endpoints)), options_(options) {}

StatusOr<std::unique_ptr<Client>> Client::Connect(const std::vector<std::string>& endpoints,
                                                  const ClientOptions& options) {
  if (endpoints.empty()) return absl::InvalidArgumentError("transport client needs endpoints");
  std::unique_ptr<Client> client(new Client(endpoints, options));
  try {
    client->impl_ = std::make_unique<Impl>(endpoints, options.keys);
  } catch (const zmq::error_t& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot connect: ", e.what()));
  }
  Impl* impl = client->impl_.get();
  const std::vector<std::string>* eps = &client->endpoints_;
  impl->io = std::thread([impl, eps] {
    NameThisThread("net-client-io");
    impl->Loop(*eps);
  });
  return client;
}

StatusOr<std::unique_ptr<Client>> Client::Connect(const ServerSet& servers, ClientOptions options) {
  options.keys = servers.keys;
  return Connect(servers.endpoints, options);
}

Client::~Client() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->wake_send.send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
  }
  impl_->io.join();
}

std::future<StatusOr<Message>> Client::Call(int server, Message request,
                                            std::chrono::milliseconds timeout) {
  std::promise<StatusOr<Message>> promise;
  auto future = promise.get_future();
  if (server < 0 || server >= num_servers()) {
    promise.set_value(absl::InvalidArgumentError(
        absl::StrCat("no server ", server, "; there are ", num_servers())));
    return future;
  }
  if (timeout.count() <= 0) timeout = options_.default_timeout;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->stopping) {
    promise.set_value(absl::CancelledError("transport client closed"));
    return future;
  }
  const bool was_empty = impl_->queue.empty();
  impl_->queue.push_back(Impl::Outgoing{server, impl_->next_id++, std::move(request),
                                        std::chrono::steady_clock::now() + timeout,
                                        std::move(promise)});
  // One wake-up per batch of queued calls is enough.
  if (was_empty) impl_->wake_send.send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
  return future;
}

}  // namespace vrec::net
