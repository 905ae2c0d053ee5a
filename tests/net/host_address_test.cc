// What a server bound to every interface advertises.
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
