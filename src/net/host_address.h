// Which address of this machine a parameter server binds and advertises to
// the other ranks.
//
// With `--bind_network` (AddressInNetworks): the address this machine has in
// the given network, named as Open MPI's btl_tcp_if_include names one: an
// IPv4 block in CIDR notation ("10.1.0.0/16") or an interface ("eth0"). Each
// machine resolves the same value to its own address, so one command line
// serves every machine of a job, and no host name is involved.
//
// With `--bind_host='*'` (AdvertisedHost): the server binds every interface
// and advertises its machine's host name, when that name resolves to an
// address other ranks can reach; but a host name that resolves only to a
// loopback address (Debian maps it to 127.0.1.1 in /etc/hosts, some images to
// 127.0.0.1) or not at all would send every other machine to itself, so then
// the first IPv4 address of an interface that is up and not loopback is
// advertised instead, and the host name only when there is none.
//
// Thread safety: functions; LocalInterfaces, AddressInNetworks and
// AdvertisedHost read the system's state.
#pragma once

#include <string>
#include <vector>

#include "vrec/status.h"

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

// InvalidArgument unless `networks` is a comma-separated list of networks,
// each an IPv4 block "A.B.C.D/N" (0 <= N <= 32; host bits are ignored) or an
// interface name. Reads no system state.
Status ValidateNetworks(const std::string& networks);

// The address of the first network in `networks` (ValidateNetworks) that one
// of `interfaces` that is up has: in a block, the first such address in
// `interfaces`' order; of an interface, its first address. Loopback counts
// when asked for ("lo", "127.0.0.0/8"). InvalidArgument for a malformed list;
// NotFound, listing `interfaces`, when no interface matches.
StatusOr<std::string> ChooseAddressInNetworks(const std::string& networks,
                                              const std::vector<InterfaceAddress>& interfaces);

// ChooseAddressInNetworks for this machine; a NotFound names it (its host
// name) too.
StatusOr<std::string> AddressInNetworks(const std::string& networks);

// The `--bind_host='*'` choice above, from its inputs: `host`, the addresses
// `host` resolves to (IPv4, dotted), and the interfaces.
std::string ChooseAdvertisedHost(const std::string& host,
                                 const std::vector<std::string>& host_resolves_to,
                                 const std::vector<InterfaceAddress>& interfaces);

// ChooseAdvertisedHost for this machine.
std::string AdvertisedHost();

}  // namespace vrec::net
