/*  bus_policy: who may register which service name, and who may publish or send
    which message type, as schemas/senders.def declares it. Pure lookups: the
    broker (bus_broker.c) feeds them what the kernel said about the sender
    (bus_peer.h). Why: any process that can connect to bus.ipc could otherwise
    publish `peer.up` and install a key in crypto, readdress the device or ask
    crypto to sign a nonce (issue 16). */
#ifndef BUS_POLICY_H_INCLUDED
#define BUS_POLICY_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

//  A service name only some programs may register (schemas/senders.def BUS_PROGRAM)
bool bus_policy_protected (const char *service);

//  May the process whose executable is exe register as service? For a
//  protected name, exe must be one of its programs in one of the directories
//  (NULL-terminated; each resolved, as /proc/PID/exe is): the installed or the
//  configured libexec directory, never a copy elsewhere
bool bus_policy_may_register (const char *service, const char *exe, const char *const dirs []);

//  The same for a process whose executable cannot be read (it hides itself,
//  as the key's process does): comm, the kernel's command name of at most 15
//  characters, must be the start of one of the service's programs. Weaker: a
//  process can rename itself; the caller also requires that it be a child of
//  bifrostd (docs/bus.md, "Who may send what")
bool bus_policy_may_register_comm (const char *service, const char *comm);
//  Under service uids (bus_identity.h): is uid the uid of one of the programs
//  that may register as service? (true for a name that is not protected)
bool bus_policy_may_register_uid (const char *service, uint32_t uid);

//  May sender (a registered service name, "ctl", or "" for an unregistered
//  client) publish (event) or send (request) type?
bool bus_policy_may_send (const char *type, bool event, const char *sender);

//  Who may, for messages: the senders of the rule for type and kind, or NULL
const char *bus_policy_senders (const char *type, bool event);

void bus_policy_test (bool verbose);
#endif
