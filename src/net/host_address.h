// The address a parameter server bound to every interface (`--bind_host='*'`)
// tells the other ranks to dial.
//
// Its machine's host name, when that name resolves to an address other
// ranks can reach; but a host name that resolves only to a loopback address
// (Debian maps it to 127.0.1.1 in /etc/hosts, some images to 127.0.0.1) or
// not at all would send every other machine to itself, so then the first
// IPv4 address of an interface that is up and not loopback is advertised
// instead, and the host name only when there is none.
//
// Thread safety: functions; LocalInterfaces and AdvertisedHost read the
// system's state.
#pragma once

#include <string>
#include <vector>

namespace vrec::net {

struct InterfaceAddress {
  std::string name;  // e.g. "eth0"
  std::string ipv4;  // dotted quad
  bool up = false;
  bool loopback = false;
};

// The IPv4 addresses of this machine's interfaces (getifaddrs), in the
// kernel's order.
std::vector<InterfaceAddress> LocalInterfaces();

// The choice above, from its inputs: `host`, the addresses `host` resolves
// to (IPv4, dotted), and the interfaces.
std::string ChooseAdvertisedHost(const std::string& host,
                                 const std::vector<std::string>& host_resolves_to,
                                 const std::vector<InterfaceAddress>& interfaces);

// ChooseAdvertisedHost for this machine.
std::string AdvertisedHost();

}  // namespace vrec::net
