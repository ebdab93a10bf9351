/*  nat_selftest: the self tests of every nat class (one TAP line each). */
#include "tests/selftest.h"
#include "nat_addr.h"
#include "nat_endpoint.h"
#include "nat_demux.h"
#include "nat_routed.h"
#include "nat_transit.h"
#include "nat_udp.h"
#include "nat_bridge_fwd.h"
#include "nat_resolver.h"
#include "nat_peer.h"
#include "nat_peer_table.h"
#include "nat_handles.h"
#include "nat_relay.h"
#include "nat_mapping.h"
#include "nat_relay_wss.h"
#include "nat_service.h"
#include "nat_netwatch.h"
#include "nat_portmap.h"
#include "nat_ice_signal.h"
#include "nat_ice.h"
#include "nat_pathstat.h"
#include "nat_tried.h"
#include "nat_taken.h"
#include "nat_bday.h"
#include "nat_hs_budget.h"
#include "nat_hs_mac.h"
#include "nat_hs_load.h"
#include "nat_cookie_secret.h"
#include "nat_cookie_reply.h"
#include "nat_cookie_jar.h"

static const selftest_t s_tests [] = {
    { "nat_addr", nat_addr_test },
    { "nat_endpoint", nat_endpoint_test },
    { "nat_demux", nat_demux_test },
    { "nat_routed", nat_routed_test },
    { "nat_transit", nat_transit_test },
    { "nat_udp", nat_udp_test },
    { "nat_bridge_fwd", nat_bridge_fwd_test },
    { "nat_resolver", nat_resolver_test },
    { "nat_peer", nat_peer_test },
    { "nat_peer_table", nat_peer_table_test },
    { "nat_handles", nat_handles_test },
    { "nat_hs_budget", nat_hs_budget_test },
    { "nat_hs_mac", nat_hs_mac_test },
    { "nat_hs_load", nat_hs_load_test },
    { "nat_cookie_secret", nat_cookie_secret_test },
    { "nat_cookie_reply", nat_cookie_reply_test },
    { "nat_cookie_jar", nat_cookie_jar_test },
    { "nat_relay", nat_relay_test },
    { "nat_mapping", nat_mapping_test },
    { "nat_relay_wss", nat_relay_wss_test },
    { "nat_netwatch", nat_netwatch_test },
    { "nat_portmap", nat_portmap_test },
    { "nat_ice_signal", nat_ice_signal_test },
    { "nat_ice", nat_ice_test },
    { "nat_pathstat", nat_pathstat_test },
    { "nat_tried", nat_tried_test },
    { "nat_taken", nat_taken_test },
    { "nat_bday", nat_bday_test },
    { "nat_service", nat_service_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
