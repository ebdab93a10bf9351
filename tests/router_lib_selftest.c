/*  router_lib_selftest: the self tests of librouter (the route announcement's
    codec, the flow hash, the route table, and meshes of tables simulated
    round by round; the group report's codec and the group table). */
#include "tests/selftest.h"
#include "route_msg.h"
#include "route_flow.h"
#include "route_table.h"
#include "route_sim.h"
#include "group_addr.h"
#include "group_msg.h"
#include "group_table.h"
#include "route_tree.h"

static const selftest_t s_tests [] = {
    { "route_msg", route_msg_test },
    { "route_flow", route_flow_test },
    { "route_table", route_table_test },
    { "route_sim", route_sim_test },
    { "group_addr", group_addr_test },
    { "group_msg", group_msg_test },
    { "group_table", group_table_test },
    { "route_tree", route_tree_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
