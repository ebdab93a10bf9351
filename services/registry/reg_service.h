/*  reg_service: the registry as a bus service. It opens the database (reg_api)
    and listens (reg_http) with the config reg_config checked, and exits the
    process if the HTTP service thread stops ticking, so the supervisor
    restarts it. reg_service_def is the program bifrost-registry runs. */
#ifndef REG_SERVICE_H_INCLUDED
#define REG_SERVICE_H_INCLUDED

#include <stdbool.h>
#include "bus_service.h"
#include "reg_config.h"

typedef struct _reg_service_t reg_service_t;

//  Creates the folder of the database (0700) if missing, opens the API and
//  starts listening, on svc's loop. Takes nothing from config but keeps
//  pointers into it: config must outlive the service. NULL with err.
reg_service_t *reg_service_new (bus_service_t *svc, reg_config_t *config, char *err, size_t errsize);
void reg_service_destroy (reg_service_t **self_p);

//  The program: bus_service_main (&reg_service_def, argc, argv)
extern const bus_service_def_t reg_service_def;

void reg_service_test (bool verbose);
#endif
