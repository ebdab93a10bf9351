/*  bus_selftest: the self tests of every libbus class. */
#include "selftest.h"
#include "bus_schema.h"
#include "bus_codec.h"
#include "bus_envelope.h"
#include "bus_log.h"
#include "bus_endpoint.h"
#include "bus_ready.h"
#include "bus_client.h"
#include "bus_broker.h"
#include "bus_service.h"
#include "bus_config_schema.h"
#include "bus_config.h"
#include "bus_rundir.h"
#include "bus_loop.h"
#include "bus_batch.h"
#include "bus_pipe.h"
#include "bus_json.h"
#include "bus_privs.h"
#include "bus_identity.h"
#include "bus_seccomp.h"
#include "bus_peer.h"
#include "bus_policy.h"
#include "bus_buffer.h"
#include "bus_pause.h"
#include "bus_testbed.h"

static const selftest_t s_tests [] = {
    { "bus_schema", bus_schema_test },
    { "bus_codec", bus_codec_test },
    { "bus_envelope", bus_envelope_test },
    { "bus_log", bus_log_test },
    { "bus_endpoint", bus_endpoint_test },
    { "bus_ready", bus_ready_test },
    { "bus_client", bus_client_test },
    { "bus_broker", bus_broker_test },
    { "bus_service", bus_service_test },
    { "bus_config", bus_config_test },
    { "bus_rundir", bus_rundir_test },
    { "bus_config_schema", bus_config_schema_test },
    { "bus_loop", bus_loop_test },
    { "bus_batch", bus_batch_test },
    { "bus_pipe", bus_pipe_test },
    { "bus_pipe_mem", bus_pipe_mem_test },
    { "bus_pipe_fd", bus_pipe_fd_test },
    { "bus_json", bus_json_test },
    { "bus_privs", bus_privs_test },
    { "bus_identity", bus_identity_test },
    { "bus_seccomp", bus_seccomp_test },
    { "bus_peer", bus_peer_test },
    { "bus_policy", bus_policy_test },
    { "bus_buffer", bus_buffer_test },
    { "bus_pause", bus_pause_test },
    { "bus_testbed", bus_testbed_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return selftest_run (s_tests, argc, argv);
}
