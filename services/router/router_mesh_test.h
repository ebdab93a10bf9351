/*  router_mesh_test: the self test of several router services announcing
    routes to each other through a test crypto (router_mesh_test.c). A file
    of its own: it plays five nodes, each with its bus, and is longer than
    the service it tests. */
#ifndef ROUTER_MESH_TEST_H_INCLUDED
#define ROUTER_MESH_TEST_H_INCLUDED

#include <stdbool.h>

void router_mesh_test (bool verbose);

#endif
