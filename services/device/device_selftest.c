/*  device_selftest: the self tests of every dev_ class (TAP, one line each).
    The tests that touch interfaces run in a private network namespace each. */
#include "tests/selftest.h"
#include "dev_csum.h"
#include "dev_mac.h"
#include "dev_config.h"
#include "dev_gso.h"
#include "dev_arp.h"
#include "dev_peermap.h"
#include "dev_igmp.h"
#include "dev_groups.h"
#include "dev_gtable.h"
#include "dev_netlink.h"
#include "dev_tun.h"

static const selftest_t s_tests [] = {
    { "dev_csum", dev_csum_test },
    { "dev_mac", dev_mac_test },
    { "dev_config", dev_config_test },
    { "dev_gso", dev_gso_test },
    { "dev_arp", dev_arp_test },
    { "dev_peermap", dev_peermap_test },
    { "dev_igmp", dev_igmp_test },
    { "dev_groups", dev_groups_test },
    { "dev_gtable", dev_gtable_test },
    { "dev_netlink", dev_netlink_test },
    { "dev_tun", dev_tun_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
