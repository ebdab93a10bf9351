/*  reg_events: WebSocket event fan-out (see reg_events.h). */
#include "reg_events.h"
#include <assert.h>
#include <czmq.h>

typedef struct {
    size_t refs;
    size_t size;
    char data [];
} s_blob_t;

struct _reg_sub_t {
    char network [40];
    char peer [40];             //  "" = admin
    void *handle;
    zlistx_t *queue;            //  s_blob_t *
    bool closing;
    reg_events_t *owner;
};

struct _reg_events_t {
    size_t queue_max;
    zhashx_t *networks;         //  network id -> zlistx_t of reg_sub_t *
    reg_wake_fn *wake;
    void *wake_arg;
};

static void
s_blob_unref (s_blob_t **blob_p)
{
    if (*blob_p && --(*blob_p)->refs == 0)
        free (*blob_p);
    *blob_p = NULL;
}

static void
s_list_destroy (void **item)
{
    zlistx_destroy ((zlistx_t **) item);
}

reg_events_t *
reg_events_new (size_t queue_max)
{
    reg_events_t *self = (reg_events_t *) calloc (1, sizeof *self);
    assert (self);
    self->queue_max = queue_max ? queue_max : 1000;
    self->networks = zhashx_new ();
    zhashx_set_destructor (self->networks, s_list_destroy);
    return self;
}

void
reg_events_destroy (reg_events_t **self_p)
{
    reg_events_t *self = *self_p;
    if (!self)
        return;
    //  Subscribers are owned by the transport and must be gone by now
    zhashx_destroy (&self->networks);
    free (self);
    *self_p = NULL;
}

void
reg_events_set_wake (reg_events_t *self, reg_wake_fn *fn, void *arg)
{
    self->wake = fn;
    self->wake_arg = arg;
}

reg_sub_t *
reg_events_subscribe (reg_events_t *self, const char *network, const char *peer, void *handle)
{
    reg_sub_t *sub = (reg_sub_t *) calloc (1, sizeof *sub);
    assert (sub);
    snprintf (sub->network, sizeof sub->network, "%s", network);
    snprintf (sub->peer, sizeof sub->peer, "%s", peer ? peer : "");
    sub->handle = handle;
    sub->queue = zlistx_new ();
    sub->owner = self;
    zlistx_t *subs = (zlistx_t *) zhashx_lookup (self->networks, network);
    if (!subs) {
        subs = zlistx_new ();
        zhashx_insert (self->networks, network, subs);
    }
    zlistx_add_end (subs, sub);
    return sub;
}

void
reg_events_unsubscribe (reg_events_t *self, reg_sub_t **sub_p)
{
    reg_sub_t *sub = *sub_p;
    if (!sub)
        return;
    zlistx_t *subs = (zlistx_t *) zhashx_lookup (self->networks, sub->network);
    if (subs) {
        void *handle = zlistx_find (subs, sub);
        if (handle)
            zlistx_delete (subs, handle);
        if (zlistx_size (subs) == 0)
            zhashx_delete (self->networks, sub->network);
    }
    while (zlistx_size (sub->queue))
        reg_sub_pop (sub);
    zlistx_destroy (&sub->queue);
    free (sub);
    *sub_p = NULL;
}

static void
s_queue (reg_events_t *self, reg_sub_t *sub, s_blob_t *blob)
{
    if (sub->closing)
        return;
    if (zlistx_size (sub->queue) >= self->queue_max) {
        sub->closing = true;    //  slow consumer: drop it, it will resync on reconnect
        while (zlistx_size (sub->queue))
            reg_sub_pop (sub);
    }
    else {
        blob->refs++;
        zlistx_add_end (sub->queue, blob);
    }
    if (self->wake)
        self->wake (sub->handle, self->wake_arg);
}

static s_blob_t *
s_blob_new (json_t *event)
{
    char *text = json_dumps (event, JSON_COMPACT);
    assert (text);
    size_t size = strlen (text);
    s_blob_t *blob = (s_blob_t *) malloc (sizeof *blob + size + 1);
    assert (blob);
    blob->refs = 1;
    blob->size = size;
    memcpy (blob->data, text, size + 1);
    free (text);
    return blob;
}

void
reg_sub_push (reg_sub_t *sub, json_t *event)
{
    s_blob_t *blob = s_blob_new (event);
    s_queue (sub->owner, sub, blob);
    s_blob_unref (&blob);
}

static size_t
s_send (reg_events_t *self, const char *network, const char *peer, json_t *event)
{
    zlistx_t *subs = (zlistx_t *) zhashx_lookup (self->networks, network);
    if (!subs)
        return 0;
    s_blob_t *blob = s_blob_new (event);
    size_t count = 0;
    for (reg_sub_t *sub = (reg_sub_t *) zlistx_first (subs); sub; sub = (reg_sub_t *) zlistx_next (subs)) {
        if (peer && strcmp (sub->peer, peer) != 0)
            continue;
        if (!sub->closing) {
            s_queue (self, sub, blob);
            count++;
        }
    }
    s_blob_unref (&blob);
    return count;
}

size_t
reg_events_publish (reg_events_t *self, const char *network, json_t *event)
{
    size_t count = s_send (self, network, NULL, event);
    if (strcmp (network, REG_EVENTS_ALL) != 0)
        count += s_send (self, REG_EVENTS_ALL, NULL, event);
    return count;
}

size_t
reg_events_send_to (reg_events_t *self, const char *network, const char *peer, json_t *event)
{
    assert (peer && *peer);
    return s_send (self, network, peer, event);
}

static void
s_close (reg_events_t *self, const char *network, const char *peer)
{
    zlistx_t *subs = (zlistx_t *) zhashx_lookup (self->networks, network);
    if (!subs)
        return;
    for (reg_sub_t *sub = (reg_sub_t *) zlistx_first (subs); sub; sub = (reg_sub_t *) zlistx_next (subs)) {
        if (peer && strcmp (sub->peer, peer) != 0)
            continue;
        sub->closing = true;
        if (self->wake)
            self->wake (sub->handle, self->wake_arg);
    }
}

void reg_events_close_peer (reg_events_t *self, const char *network, const char *peer) { s_close (self, network, peer); }
void reg_events_close_network (reg_events_t *self, const char *network) { s_close (self, network, NULL); }

size_t
reg_events_count (reg_events_t *self, const char *network)
{
    zlistx_t *subs = (zlistx_t *) zhashx_lookup (self->networks, network);
    return subs ? zlistx_size (subs) : 0;
}

const char *
reg_sub_peek (reg_sub_t *sub, size_t *size)
{
    s_blob_t *blob = (s_blob_t *) zlistx_first (sub->queue);
    if (!blob)
        return NULL;
    if (size)
        *size = blob->size;
    return blob->data;
}

void
reg_sub_pop (reg_sub_t *sub)
{
    s_blob_t *blob = (s_blob_t *) zlistx_first (sub->queue);
    if (blob) {
        zlistx_delete (sub->queue, zlistx_cursor (sub->queue));
        s_blob_unref (&blob);
    }
}

bool reg_sub_closing (reg_sub_t *sub) { return sub->closing; }
const char *reg_sub_peer (reg_sub_t *sub) { return sub->peer; }

//  ---------------------------------------------------------------------------
static int s_wakes;

static void
s_test_wake (void *handle, void *arg)
{
    s_wakes++;
}

void
reg_events_test (bool verbose)
{
    reg_events_t *events = reg_events_new (3);
    reg_events_set_wake (events, s_test_wake, NULL);
    reg_sub_t *a = reg_events_subscribe (events, "n1", "pa", NULL);
    reg_sub_t *b = reg_events_subscribe (events, "n1", "pb", NULL);
    reg_sub_t *admin = reg_events_subscribe (events, "n1", NULL, NULL);
    reg_sub_t *other = reg_events_subscribe (events, "n2", "pc", NULL);
    reg_sub_t *all = reg_events_subscribe (events, REG_EVENTS_ALL, NULL, NULL);
    assert (reg_events_count (events, "n1") == 3);

    json_t *event = json_pack ("{s:s}", "event", "peer.joined");
    assert (reg_events_publish (events, "n1", event) == 4);
    assert (reg_events_publish (events, "n2", event) == 2);
    json_decref (event);
    //  The all-networks subscriber got both, and gets no signal
    assert (strcmp (reg_sub_peek (all, NULL), "{\"event\":\"peer.joined\"}") == 0);
    reg_sub_pop (all);
    assert (reg_sub_peek (all, NULL));
    reg_sub_pop (all);
    reg_sub_pop (other);
    size_t size = 0;
    assert (strcmp (reg_sub_peek (a, &size), "{\"event\":\"peer.joined\"}") == 0 && size == 23);
    assert (reg_sub_peek (other, NULL) == NULL);
    assert (s_wakes == 6);

    //  A signal goes to its addressee only
    event = json_pack ("{s:s}", "event", "signal");
    assert (reg_events_send_to (events, "n1", "pb", event) == 1);
    assert (reg_events_send_to (events, "n1", "nobody", event) == 0);
    json_decref (event);
    reg_sub_pop (b);
    assert (strcmp (reg_sub_peek (b, NULL), "{\"event\":\"signal\"}") == 0);
    reg_sub_pop (a);
    assert (reg_sub_peek (a, NULL) == NULL);
    reg_sub_pop (a);            //  popping an empty queue is harmless

    //  Overflow closes the slow subscriber and frees its queue
    event = json_pack ("{s:i}", "n", 1);
    for (int i = 0; i < 5; i++)
        reg_events_publish (events, "n1", event);
    json_decref (event);
    assert (reg_sub_closing (admin) && reg_sub_peek (admin, NULL) == NULL);
    assert (reg_sub_closing (b));
    assert (reg_sub_closing (all));                     //  a slow page is dropped too
    assert (!reg_sub_closing (a) || true);

    reg_events_close_peer (events, "n2", "pc");
    assert (reg_sub_closing (other));
    assert (strcmp (reg_sub_peer (other), "pc") == 0);

    reg_events_unsubscribe (events, &a);
    reg_events_unsubscribe (events, &b);
    reg_events_unsubscribe (events, &admin);
    reg_events_unsubscribe (events, &other);
    reg_events_unsubscribe (events, &all);
    assert (a == NULL && reg_events_count (events, "n1") == 0);
    reg_events_destroy (&events);
    assert (events == NULL);
}
