/*  sup_sdnotify: bifrostd's word to systemd (Type=notify, sd_notify(3)). READY=1
    once every configured instance is READY (the same test a dependency uses),
    so `systemctl start bifrost` returns when the node works, not when bifrostd
    has merely forked; STATUS= whenever the count of ready instances changes;
    RELOADING=1 .. READY=1 around a SIGHUP reload; STOPPING=1 when the tree goes
    down. Without $NOTIFY_SOCKET (bifrostd started by hand, by a test) every
    call does nothing. The children never see NOTIFY_SOCKET (sup_env passes
    only its base list), so no service can speak for bifrostd. */
#ifndef SUP_SDNOTIFY_H_INCLUDED
#define SUP_SDNOTIFY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _sup_sdnotify_t sup_sdnotify_t;

sup_sdnotify_t *sup_sdnotify_new (void);
void sup_sdnotify_destroy (sup_sdnotify_t **self_p);

//  Where the tree is: ready of wanted instances are READY; waiting names one
//  that is not (or NULL). Sends READY=1 the first time ready == wanted (and
//  after a reload), STATUS= when the numbers or the reason changed.
void sup_sdnotify_progress (sup_sdnotify_t *self, size_t ready, size_t wanted, const char *waiting);
//  A SIGHUP reload begins (RELOADING=1 with MONOTONIC_USEC) and ends (READY=1
//  with what happened as STATUS=).
void sup_sdnotify_reloading (sup_sdnotify_t *self);
void sup_sdnotify_reloaded (sup_sdnotify_t *self, const char *status);
//  Everything is stopping (STOPPING=1), once.
void sup_sdnotify_stopping (sup_sdnotify_t *self, const char *why);
//  True once READY=1 was sent.
bool sup_sdnotify_ready_sent (sup_sdnotify_t *self);

void sup_sdnotify_test (bool verbose);
#endif
