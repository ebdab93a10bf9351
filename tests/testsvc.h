/*  testsvc: the parts bifrost-testsvc can play besides the echo service, each
    in a file of its own, so one program (and one copy of the bus setup) serves
    every integration test that needs a stand-in service. Each part takes its
    options from the command line (option: returns the number of arguments it
    used, 0 when the option is not its own, -1 when the value is bad) and adds
    its handlers and timers in the service's setup (setup: 0 when it has
    nothing to do). */
#ifndef TESTSVC_H_INCLUDED
#define TESTSVC_H_INCLUDED

#include "bus_service.h"

//  The router's events by hand (testsvc_inject.c): --next, --announce
int testsvc_inject_option (const char *option, const char *value);
int testsvc_inject_setup (bus_service_t *svc);

//  A lying router (testsvc_liar.c): --liar FAKES
int testsvc_liar_option (const char *option, const char *value);
int testsvc_liar_setup (bus_service_t *svc);

#endif
