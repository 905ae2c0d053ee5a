#include "net/host_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace vrec::net {
namespace {

bool IsLoopback(const std::string& ipv4) { return ipv4.rfind("127.", 0) == 0; }

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
