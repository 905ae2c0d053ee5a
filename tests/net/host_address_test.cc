// Which address a server binds and advertises: its machine's address in a
// network (--bind_network), or, bound to every interface, what it advertises.
#include "net/host_address.h"

#include "testutil/testutil.h"

namespace vrec::net {
namespace {

const std::vector<InterfaceAddress> kInterfaces = {
    {"lo", "127.0.0.1", true, true},
    {"eth1", "10.0.0.5", false, false},  // down
    {"eth0", "192.168.1.7", true, false},
    {"eth2", "172.16.0.9", true, false},
};

// Two hosts of one cluster network (10.77.0.0/24) beside other networks, as
// getifaddrs lists them.
const std::vector<InterfaceAddress> kHostA = {
    {"lo", "127.0.0.1", true, true},
    {"docker0", "172.17.0.1", true, false},
    {"eth0", "10.77.0.1", true, false},
    {"eth1", "192.168.5.20", true, false},
};
const std::vector<InterfaceAddress> kHostB = {
    {"lo", "127.0.0.1", true, true},
    {"eth0", "192.168.5.21", true, false},
    {"ens5", "10.77.0.2", true, false},
    {"ens5", "10.77.0.102", true, false},  // a second address on it
};

TEST(AddressInNetworksTest, EachHostResolvesTheSameBlockToItsOwnAddress) {
  EXPECT_EQ(ChooseAddressInNetworks("10.77.0.0/24", kHostA).value(), "10.77.0.1");
  EXPECT_EQ(ChooseAddressInNetworks("10.77.0.0/24", kHostB).value(), "10.77.0.2");  // the first
  EXPECT_EQ(ChooseAddressInNetworks("10.77.0.0/16", kHostB).value(), "10.77.0.2");
  EXPECT_EQ(ChooseAddressInNetworks("10.77.0.102/32", kHostB).value(), "10.77.0.102");
  // Host bits in the block are ignored, as Open MPI does.
  EXPECT_EQ(ChooseAddressInNetworks("10.77.0.9/24", kHostA).value(), "10.77.0.1");
  // /0 holds every address: the first interface that is up, loopback too.
  EXPECT_EQ(ChooseAddressInNetworks("0.0.0.0/0", kHostA).value(), "127.0.0.1");
  // A block that does not match on a byte boundary.
  EXPECT_EQ(ChooseAddressInNetworks("192.168.4.0/23", kHostA).value(), "192.168.5.20");
  EXPECT_THAT(ChooseAddressInNetworks("192.168.4.0/24", kHostA),
              StatusIs(absl::StatusCode::kNotFound, "192.168.4.0/24"));
}

TEST(AddressInNetworksTest, AnInterfaceByName) {
  EXPECT_EQ(ChooseAddressInNetworks("eth0", kHostA).value(), "10.77.0.1");
  EXPECT_EQ(ChooseAddressInNetworks("ens5", kHostB).value(), "10.77.0.2");
  EXPECT_EQ(ChooseAddressInNetworks("lo", kHostB).value(), "127.0.0.1");  // asked for
  EXPECT_THAT(ChooseAddressInNetworks("eth0:1", kHostA), StatusIs(absl::StatusCode::kNotFound, ""));
}

TEST(AddressInNetworksTest, AListIsTriedInItsOrder) {
  // Interface names differ between machines: one list for the whole job.
  EXPECT_EQ(ChooseAddressInNetworks("ens5,eth0", kHostA).value(), "10.77.0.1");
  EXPECT_EQ(ChooseAddressInNetworks("ens5,eth0", kHostB).value(), "10.77.0.2");
  EXPECT_EQ(ChooseAddressInNetworks(" eth1 , 10.77.0.0/24", kHostA).value(), "192.168.5.20");
  EXPECT_EQ(ChooseAddressInNetworks("10.77.0.0/24,eth1", kHostA).value(), "10.77.0.1");
}

TEST(AddressInNetworksTest, AnInterfaceThatIsDownIsPassedOver) {
  const std::vector<InterfaceAddress> down = {{"lo", "127.0.0.1", true, true},
                                              {"eth0", "10.77.0.3", false, false},
                                              {"eth1", "10.77.0.4", true, false}};
  EXPECT_EQ(ChooseAddressInNetworks("10.77.0.0/24", down).value(), "10.77.0.4");
  EXPECT_THAT(ChooseAddressInNetworks("eth0", down),
              StatusIs(absl::StatusCode::kNotFound, "eth0 10.77.0.3 (down)"));
}

TEST(AddressInNetworksTest, NoAddressInTheNetworkListsTheHostsAddresses) {
  const auto s = ChooseAddressInNetworks("10.99.0.0/16", kHostB);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound,
                          "lo 127.0.0.1, eth0 192.168.5.21, ens5 10.77.0.2, ens5 10.77.0.102"));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound,
                          "no IPv4 address of an interface that is up is in 10.99.0.0/16 "));
  EXPECT_THAT(ChooseAddressInNetworks("eth9,10.99.0.0/16", kHostB),
              StatusIs(absl::StatusCode::kNotFound, "is on interface eth9 or in 10.99.0.0/16 "));
  EXPECT_THAT(ChooseAddressInNetworks("eth0", {}), StatusIs(absl::StatusCode::kNotFound, "none"));
}

TEST(AddressInNetworksTest, MalformedNetworksAreRefused) {
  for (const char* bad : {"", " , ", "10.77.0.0/33", "10.77.0.0/-1", "10.77.0.0/", "10.77.0/24",
                          "10.77.0.0/2x", "host-name/24", "a-very-long-interface-name", "eth 0"}) {
    EXPECT_THAT(ValidateNetworks(bad), StatusIs(absl::StatusCode::kInvalidArgument, ""))
        << "'" << bad << "'";
    EXPECT_THAT(ChooseAddressInNetworks(bad, kHostA),
                StatusIs(absl::StatusCode::kInvalidArgument, ""))
        << "'" << bad << "'";
  }
  // A bare address names no network: the message says what to give.
  EXPECT_THAT(ValidateNetworks("10.77.0.1"),
              StatusIs(absl::StatusCode::kInvalidArgument, "10.77.0.1/24"));
  for (const char* good : {"10.77.0.0/24", "eth0", "ens5,10.0.0.0/8", "0.0.0.0/0", "eth0:1"}) {
    EXPECT_OK(ValidateNetworks(good)) << good;
  }
}

TEST(AddressInNetworksTest, ThisMachinesLoopback) {
  EXPECT_EQ(AddressInNetworks("127.0.0.0/8").value(), "127.0.0.1");
  EXPECT_THAT(AddressInNetworks("203.0.113.0/24"),  // TEST-NET-3: on no machine
              StatusIs(absl::StatusCode::kNotFound, "on host "));
}

TEST(AdvertisedHostTest, ANameOtherMachinesCanReachIsKept) {
  EXPECT_EQ(ChooseAdvertisedHost("ps-1", {"192.168.1.7"}, kInterfaces), "ps-1");
  EXPECT_EQ(ChooseAdvertisedHost("ps-1", {"127.0.1.1", "192.168.1.7"}, kInterfaces), "ps-1");
}

TEST(AdvertisedHostTest, ANameThatMeansThisMachineToEveryoneIsReplaced) {
  // /etc/hosts maps the name to loopback (Debian's 127.0.1.1), or nothing
  // resolves it: the first interface that is up and not loopback.
  EXPECT_EQ(ChooseAdvertisedHost("vm", {"127.0.1.1"}, kInterfaces), "192.168.1.7");
  EXPECT_EQ(ChooseAdvertisedHost("vm", {"127.0.0.1"}, kInterfaces), "192.168.1.7");
  EXPECT_EQ(ChooseAdvertisedHost("vm", {}, kInterfaces), "192.168.1.7");
  // No such interface: the name, as before.
  EXPECT_EQ(ChooseAdvertisedHost("vm", {"127.0.1.1"}, {kInterfaces[0], kInterfaces[1]}), "vm");
}

TEST(AdvertisedHostTest, ThisMachineHasALoopbackInterfaceAndAnAnswer) {
  bool loopback = false;
  for (const InterfaceAddress& i : LocalInterfaces()) loopback |= i.loopback;
  EXPECT_TRUE(loopback);
  EXPECT_FALSE(AdvertisedHost().empty());
}

}  // namespace
}  // namespace vrec::net
