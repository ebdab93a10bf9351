/*  broker_service: the broker (libbus/bus_broker) as a program part, so
    bifrost-bus's main is one line like every other service's. */
#ifndef BROKER_SERVICE_H_INCLUDED
#define BROKER_SERVICE_H_INCLUDED

#include "bus_service.h"

//  The program: bus_service_main (&broker_service_def, argc, argv)
extern const bus_service_def_t broker_service_def;

#endif
