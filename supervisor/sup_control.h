/*  sup_control: bifrostd's control protocol, apart from the children it
    controls. It owns the control socket (<run_dir>/control.ipc, ROUTER, bus
    envelopes with the schemas of schemas/sup.def), reads requests in bounded
    batches, checks each one the same way (the body decodes: else 400; the
    service it names exists: else 404; its values are in range: else 400;
    bifrostd is not stopping: else 503) and only then asks the server
    (sup_server_status, _scale, _restart, _stop) and answers. */
#ifndef SUP_CONTROL_H_INCLUDED
#define SUP_CONTROL_H_INCLUDED

#include "sup_server.h"
#include <czmq.h>

typedef struct _sup_control_t sup_control_t;

//  Binds the control socket at endpoint ("ipc://<run_dir>/control.ipc"),
//  replacing a stale socket file; requests go to server. NULL with err on failure.
sup_control_t *sup_control_new (sup_server_t *server, const char *endpoint, char *err, size_t errsize);
//  Closes the socket (giving a last answer 200 ms to leave) and removes its file.
void sup_control_destroy (sup_control_t **self_p);
//  The socket, for the server's loop to watch.
zsock_t *sup_control_sock (sup_control_t *self);
//  Answers the requests waiting on the socket, at most 64 per call so that a
//  flood cannot starve the children.
void sup_control_handle (sup_control_t *self);

void sup_control_test (bool verbose);
#endif
