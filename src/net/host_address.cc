#include "net/host_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vrec::net {
namespace {

bool IsLoopback(const std::string& ipv4) { return ipv4.rfind("127.", 0) == 0; }

// One item of a network list: an IPv4 block, or an interface by name.
struct Network {
  std::string text;       // as given
  std::string interface;  // empty for a block
  uint32_t base = 0;      // host order, host bits cleared
  uint32_t mask = 0;
};

std::optional<uint32_t> ParseIpv4(const std::string& dotted) {
  in_addr a = {};
  if (inet_pton(AF_INET, dotted.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

StatusOr<std::vector<Network>> ParseNetworks(const std::string& networks) {
  std::vector<Network> out;
  for (absl::string_view part : absl::StrSplit(networks, ',', absl::SkipWhitespace())) {
    Network n;
    n.text = std::string(absl::StripAsciiWhitespace(part));
    const size_t slash = n.text.find('/');
    if (slash != std::string::npos) {
      const std::optional<uint32_t> base = ParseIpv4(n.text.substr(0, slash));
      int prefix = -1;
      if (!base || !absl::SimpleAtoi(n.text.substr(slash + 1), &prefix) || prefix < 0 ||
          prefix > 32) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'", n.text, "' is not an IPv4 block in CIDR notation (such as 10.1.0.0/16)"));
      }
      n.mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
      n.base = *base & n.mask;
    } else if (ParseIpv4(n.text)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", n.text, "' is an address, not a network: give its block (such as ",
                       n.text, "/24) or its interface's name"));
    } else if (n.text.size() >= IFNAMSIZ || n.text.find_first_of(" \t") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", n.text, "' is neither an IPv4 block (such as 10.1.0.0/16) nor an interface name"));
    } else {
      n.interface = n.text;
    }
    out.push_back(std::move(n));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "no network given: an IPv4 block (such as 10.1.0.0/16) or an interface name");
  }
  return out;
}

bool Contains(const Network& n, const InterfaceAddress& i) {
  if (!n.interface.empty()) return i.name == n.interface;
  const std::optional<uint32_t> a = ParseIpv4(i.ipv4);
  return a && (*a & n.mask) == n.base;
}

std::string Dotted(const sockaddr* a) {
  char buf[INET_ADDRSTRLEN] = {};
  const auto* in = reinterpret_cast<const sockaddr_in*>(a);
  if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)) == nullptr) return "";
  return buf;
}

}  // namespace

std::vector<InterfaceAddress> LocalInterfaces() {
  std::vector<InterfaceAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    InterfaceAddress a;
    a.name = i->ifa_name == nullptr ? "" : i->ifa_name;
    a.ipv4 = Dotted(i->ifa_addr);
    a.up = (i->ifa_flags & IFF_UP) != 0;
    a.loopback = (i->ifa_flags & IFF_LOOPBACK) != 0 || IsLoopback(a.ipv4);
    if (!a.ipv4.empty()) out.push_back(std::move(a));
  }
  freeifaddrs(list);
  return out;
}

Status ValidateNetworks(const std::string& networks) { return ParseNetworks(networks).status(); }

StatusOr<std::string> ChooseAddressInNetworks(const std::string& networks,
                                              const std::vector<InterfaceAddress>& interfaces) {
  VREC_ASSIGN_OR_RETURN(std::vector<Network> parsed, ParseNetworks(networks));
  for (const Network& n : parsed) {
    for (const InterfaceAddress& i : interfaces) {
      if (i.up && Contains(n, i)) return i.ipv4;
    }
  }
  std::string wanted, have;
  for (const Network& n : parsed) {
    absl::StrAppend(&wanted, wanted.empty() ? "" : " or ",
                    n.interface.empty() ? "in " : "on interface ", n.text);
  }
  for (const InterfaceAddress& i : interfaces) {
    absl::StrAppend(&have, have.empty() ? "" : ", ", i.name, " ", i.ipv4, i.up ? "" : " (down)");
  }
  return absl::NotFoundError(absl::StrCat("no IPv4 address of an interface that is up is ", wanted,
                                          " (all: ", have.empty() ? "none" : have, ")"));
}

StatusOr<std::string> AddressInNetworks(const std::string& networks) {
  StatusOr<std::string> a = ChooseAddressInNetworks(networks, LocalInterfaces());
  if (a.ok() || a.status().code() != absl::StatusCode::kNotFound) return a;
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return absl::NotFoundError(absl::StrCat("on host ", name, ": ", a.status().message()));
}

std::string ChooseAdvertisedHost(const std::string& host,
                                 const std::vector<std::string>& host_resolves_to,
                                 const std::vector<InterfaceAddress>& interfaces) {
  for (const std::string& a : host_resolves_to) {
    if (!IsLoopback(a)) return host;  // reachable by name
  }
  for (const InterfaceAddress& i : interfaces) {
    if (i.up && !i.loopback) return i.ipv4;
  }
  return host;
}

std::string AdvertisedHost() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  std::vector<std::string> resolved;
  addrinfo hints = {};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  if (getaddrinfo(name, nullptr, &hints, &res) == 0) {
    for (const addrinfo* r = res; r != nullptr; r = r->ai_next) {
      if (r->ai_addr != nullptr) resolved.push_back(Dotted(r->ai_addr));
    }
    freeaddrinfo(res);
  }
  return ChooseAdvertisedHost(name, resolved, LocalInterfaces());
}

}  // namespace vrec::net
