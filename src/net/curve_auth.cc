#include "net/curve_auth.h"

#include <glog/logging.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/thread_cpu.h"
#include "net/multipart.h"

namespace vrec::net {
namespace {

constexpr size_t kZ85KeyChars = 40;
constexpr size_t kBinaryKeyBytes = 32;
constexpr auto kPollInterval = std::chrono::milliseconds(50);
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";

std::string FromZ85(const std::string& z85) {
  uint8_t binary[kBinaryKeyBytes];
  if (z85.size() != kZ85KeyChars || zmq_z85_decode(binary, z85.c_str()) == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(binary), kBinaryKeyBytes);
}

std::string ProtocolError(uint32_t value) {
  switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return "the peer does not speak CURVE (no key)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
      return "the peer does not hold the job's server key";
    default:
      return absl::StrFormat("ZMTP protocol error 0x%08x", value);
  }
}

}  // namespace

bool CurveAvailable() { return zmq_has("curve") != 0; }

StatusOr<DataPlaneKeys> GenerateDataPlaneKeys() {
  if (!CurveAvailable()) {
    return absl::UnavailableError(
        "this libzmq was built without CURVE, so the data plane cannot be authenticated; "
        "install a libzmq with libsodium (Debian's libzmq5 has it)");
  }
  DataPlaneKeys keys;
  for (CurveKeyPair* pair : {&keys.server, &keys.client}) {
    char pub[kZ85KeyChars + 1], sec[kZ85KeyChars + 1];
    if (zmq_curve_keypair(pub, sec) != 0) {
      return absl::InternalError(absl::StrCat("zmq_curve_keypair: ", zmq_strerror(zmq_errno())));
    }
    pair->public_key = pub;
    pair->secret_key = sec;
  }
  return keys;
}

std::string SerializeKeys(const DataPlaneKeys& keys) {
  if (!keys.enabled()) return "";
  return absl::StrCat(keys.server.public_key, keys.server.secret_key, keys.client.public_key,
                      keys.client.secret_key);
}

StatusOr<DataPlaneKeys> ParseKeys(const std::string& bytes) {
  DataPlaneKeys keys;
  if (bytes.empty()) return keys;
  if (bytes.size() != 4 * kZ85KeyChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("data-plane keys of ", bytes.size(), " bytes, expected ", 4 * kZ85KeyChars));
  }
  std::string* parts[] = {&keys.server.public_key, &keys.server.secret_key, &keys.client.public_key,
                          &keys.client.secret_key};
  for (int i = 0; i < 4; ++i) {
    *parts[i] = bytes.substr(i * kZ85KeyChars, kZ85KeyChars);
    if (FromZ85(*parts[i]).empty()) {
      return absl::InvalidArgumentError("data-plane keys are not Z85 CURVE keys");
    }
  }
  return keys;
}

void SetClientKeys(zmq::socket_t& socket, const DataPlaneKeys& keys) {
  socket.set(zmq::sockopt::curve_serverkey, keys.server.public_key);
  socket.set(zmq::sockopt::curve_publickey, keys.client.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.client.secret_key);
}

CurveGuard::CurveGuard(std::string name, std::string client_key)
    : name_(std::move(name)), client_key_(std::move(client_key)) {}

StatusOr<std::unique_ptr<CurveGuard>> CurveGuard::Start(zmq::context_t& context,
                                                        zmq::socket_t& socket,
                                                        const DataPlaneKeys& keys,
                                                        const std::string& name) {
  const std::string client_key = FromZ85(keys.client.public_key);
  if (client_key.empty() || FromZ85(keys.server.secret_key).empty()) {
    return absl::InvalidArgumentError("data-plane keys are not Z85 CURVE keys");
  }
  std::unique_ptr<CurveGuard> guard(new CurveGuard(name, client_key));
  static std::atomic<uint64_t> monitors{0};
  const std::string monitor_endpoint =
      absl::StrCat("inproc://vrec-handshakes-", monitors.fetch_add(1));
  zmq::socket_t zap(context, zmq::socket_type::rep);
  zmq::socket_t monitor(context, zmq::socket_type::pair);
  try {
    zap.set(zmq::sockopt::linger, 0);
    zap.bind(kZapEndpoint);
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, keys.server.secret_key);
    socket.set(zmq::sockopt::zap_domain, "vrec");
    if (zmq_socket_monitor(socket.handle(), monitor_endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
      throw zmq::error_t();
    }
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(monitor_endpoint);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("cannot set up CURVE on ", name, ": ", e.what()));
  }
  CurveGuard* g = guard.get();
  // Thread creation is the full fence ZeroMQ needs to move a socket.
  g->zap_thread_ = std::thread([g, z = std::move(zap)]() mutable {
    NameThisThread("net-zap");
    g->ServeZap(std::move(z));
  });
  g->monitor_thread_ = std::thread([g, m = std::move(monitor)]() mutable {
    NameThisThread("net-handshakes");
    g->Watch(std::move(m));
  });
  return guard;
}

void CurveGuard::set_name(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  name_ = name;
}

std::string CurveGuard::name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return name_;
}

CurveGuard::~CurveGuard() {
  stopping_.store(true, std::memory_order_release);
  if (zap_thread_.joinable()) zap_thread_.join();
  if (monitor_thread_.joinable()) monitor_thread_.join();
  if (refused() > 0) {
    LOG(WARNING) << name() << ": " << refused() << " handshakes refused in all";
  }
}

void CurveGuard::Refused(const std::string& why) {
  const uint64_t n = refused_.fetch_add(1, std::memory_order_relaxed) + 1;
  // A stranger's ZeroMQ reconnects every 100 ms or so: each reason is
  // logged the 1st, 10th, 100th ... time, so a flood cannot flood the log.
  uint64_t same = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    same = ++by_reason_[why];
  }
  uint64_t power = 1;
  while (power < same) power *= 10;
  if (power == same) {
    LOG(WARNING) << name() << ": refused a connection (" << why << "), " << same
                 << (same == 1 ? " time" : " times") << "; " << n
                 << " refused in all. Only this job's ranks hold its keys";
  }
}

// RFC 27: [version "1.0"] [request id] [domain] [address] [identity]
// [mechanism] [credentials...] -> [version] [request id] [status code]
// [status text] [user id] [metadata].
void CurveGuard::ServeZap(zmq::socket_t zap) {
  std::vector<zmq::message_t> parts;
  while (!stopping_.load(std::memory_order_acquire)) {
    zmq::pollitem_t item{zap.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, kPollInterval);
    if (!(item.revents & ZMQ_POLLIN) || !RecvMultipart(zap, &parts)) continue;
    const bool well_formed = parts.size() >= 6 && parts[0].to_string() == "1.0";
    const bool accepted = well_formed && parts[5].to_string() == "CURVE" && parts.size() == 7 &&
                          parts[6].to_string() == client_key_;
    if (well_formed && !accepted) {
      LOG_EVERY_N(WARNING, 100) << name() << ": a client at " << parts[3].to_string()
                                << " offered a key that is not the job's (one line per 100)";
    }
    std::vector<zmq::message_t> reply;
    reply.emplace_back(std::string("1.0"));
    reply.push_back(parts.size() >= 2 ? std::move(parts[1]) : zmq::message_t());
    reply.emplace_back(std::string(accepted ? "200" : "400"));
    reply.emplace_back(std::string(accepted ? "OK" : "not the job's key"));
    reply.emplace_back(std::string(accepted ? "worker" : ""));
    reply.emplace_back();
    for (size_t i = 0; i < reply.size(); ++i) {
      zap.send(reply[i], i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

void CurveGuard::Watch(zmq::socket_t monitor) {
  std::vector<zmq::message_t> parts;
  while (!stopping_.load(std::memory_order_acquire)) {
    zmq::pollitem_t item{monitor.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, kPollInterval);
    if (!(item.revents & ZMQ_POLLIN) || !RecvMultipart(monitor, &parts)) continue;
    if (parts.empty() || parts[0].size() < 6) continue;
    uint16_t event = 0;
    uint32_t value = 0;
    std::memcpy(&event, parts[0].data(), sizeof(event));
    std::memcpy(&value, static_cast<const char*>(parts[0].data()) + 2, sizeof(value));
    switch (event) {
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        Refused("its key is not the job's client key");
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        Refused(ProtocolError(value));
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        // A plain ZeroMQ peer meets a CURVE greeting and hangs up.
        Refused(absl::StrCat("the peer left the handshake (", zmq_strerror(static_cast<int>(value)),
                             "): no CURVE, or not ZeroMQ"));
        break;
      default:
        break;
    }
  }
}

}  // namespace vrec::net
