/*  ice_probe: one ICE agent (libice) for one peer, for the NAT grid test
    (tests/integration/ice_nat.sh, docs/ice.md). Two probes, one in each node's
    namespace, signal through two files (each appends to its own and reads the
    other's; the namespaces share the file system):

        cred <ufrag> <pwd> | cand <candidate line> | eoc | selected | ready | got

    Once both sides have selected their pair (or with --take-at ready, once both
    are READY), each takes its socket (ice_agent_take_socket),
    removes the peer from the agent (libnice lets go) and sends datagrams on the
    taken socket until the peer has one of them; a side whose pair is relayed
    through TURN keeps the data in libnice (ice_agent_send). --mapped-wan and
    --peer-wan stand in for a UPnP mapping and the relay's observed address
    behind NATs that keep the port (the grid's cone kinds). Prints, with
    milliseconds since the start:

        SELECTED <ms> <local type> <remote type> <local> <remote>
        READY <ms>
        TAKEN <ms> <local addr> -> <remote addr>    |  RELAYED <ms>
        SHARED <n> ...                              (descriptors on the taken socket
                                                     after the peer's removal: 1)
        EARLY <ms> <bytes> via libnice ...          (peer's data before our take)
        DATA <ms> <bytes> from <addr>
        DONE <ms>                                   |  FAIL <why>

    Exit 0 when data crossed both ways, 1 otherwise (every wait has a deadline). */
#include "ice_agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    ice_agent_t *agent;
    bus_loop_t *loop;
    uint64_t id, peer;
    FILE *out;
    FILE *in;
    long in_offset;
    int64_t t0;
    bool ready, peer_ready, taken, relayed, received, peer_got;
    bool failed;
    int fd;
    struct sockaddr_storage remote;
    socklen_t remote_len;
    unsigned sent;
    unsigned early;
    bool take_at_ready;
    bool selected, peer_selected;
    int selections;
    const char *mapped_wan;         //  --mapped-wan: our port mapping's public address
    const char *peer_wan;           //  --peer-wan: the peer's public address, as a relay would report it
    bool observed_done;
} probe_t;

static int64_t
s_ms (probe_t *p)
{
    return zclock_mono () - p->t0;
}

static void
s_say (probe_t *p, const char *line)
{
    fprintf (p->out, "%s\n", line);
    fflush (p->out);
}

static void
s_addr_text (const struct sockaddr_storage *a, char *buf, size_t size)
{
    char ip [INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (a->ss_family == AF_INET) {
        inet_ntop (AF_INET, &((struct sockaddr_in *) a)->sin_addr, ip, sizeof ip);
        port = ntohs (((struct sockaddr_in *) a)->sin_port);
    }
    else if (a->ss_family == AF_INET6) {
        inet_ntop (AF_INET6, &((struct sockaddr_in6 *) a)->sin6_addr, ip, sizeof ip);
        port = ntohs (((struct sockaddr_in6 *) a)->sin6_port);
    }
    snprintf (buf, size, "%s:%u", ip, port);
}

//  Data from the peer. Until this side has taken its socket, libnice still reads
//  it and hands datagrams to the recv callback: counted as EARLY (the peer took
//  its socket first), not as the proof, which is data on the taken socket.
static void
s_got_data (probe_t *p, const uint8_t *data, size_t size, const char *from, bool on_taken)
{
    char expect [32];
    int n = snprintf (expect, sizeof expect, "data %llu ", (unsigned long long) p->peer);
    if (size < (size_t) n || memcmp (data, expect, (size_t) n) != 0)
        return;         //  a late STUN packet, say
    if (!on_taken && !p->relayed) {
        if (!p->early++) {
            printf ("EARLY %lld %zu via libnice before the socket was taken\n", (long long) s_ms (p), size);
            fflush (stdout);
        }
        return;
    }
    if (!p->received) {
        printf ("DATA %lld %zu from %s\n", (long long) s_ms (p), size, from);
        fflush (stdout);
        p->received = true;
        s_say (p, "got");
    }
}

static int
s_on_fd (bus_loop_t *loop, zmq_pollitem_t *item, void *arg)
{
    probe_t *p = (probe_t *) arg;
    uint8_t buf [2048];
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    ssize_t n;
    while ((n = recvfrom (p->fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &len)) >= 0) {
        char text [64];
        s_addr_text (&from, text, sizeof text);
        s_got_data (p, buf, (size_t) n, text, true);
        len = sizeof from;
    }
    return 0;
}

static void
s_on_recv (ice_agent_t *agent, uint64_t peer, const uint8_t *data, size_t size, void *arg)
{
    s_got_data ((probe_t *) arg, data, size, "libnice", false);
}

//  How many descriptors of this process are the socket behind fd (1: only
//  ours, libnice closed its own)
static int
s_sharing (int fd)
{
    struct stat mine, other;
    if (fstat (fd, &mine))
        return -1;
    int count = 0;
    for (int i = 0; i < 1024; i++)
        if (fstat (i, &other) == 0 && other.st_dev == mine.st_dev && other.st_ino == mine.st_ino)
            count++;
    return count;
}

static void
s_take (probe_t *p)
{
    char err [200];
    int rc = ice_agent_take_socket (p->agent, p->peer, &p->fd, &p->remote, &p->remote_len, err, sizeof err);
    if (rc == ICE_AGENT_RELAYED) {
        printf ("RELAYED %lld\n", (long long) s_ms (p));
        p->relayed = true;
    }
    else if (rc == 0) {
        struct sockaddr_storage local;
        socklen_t len = sizeof local;
        getsockname (p->fd, (struct sockaddr *) &local, &len);
        char l [64], r [64];
        s_addr_text (&local, l, sizeof l);
        s_addr_text (&p->remote, r, sizeof r);
        printf ("TAKEN %lld %s -> %s\n", (long long) s_ms (p), l, r);
        //  libnice lets go of the socket: from now on only we read it
        ice_agent_remove_peer (p->agent, p->peer);
        printf ("SHARED %d descriptor(s) of this process are the taken socket\n", s_sharing (p->fd));
        zmq_pollitem_t item = { NULL, p->fd, ZMQ_POLLIN, 0 };
        bus_loop_poller (p->loop, &item, s_on_fd, p);
    }
    else {
        printf ("FAIL take_socket: %s\n", err);
        p->failed = true;
    }
    fflush (stdout);
    p->taken = true;
}

static bool s_pending_eoc;          //  eoc waits for the mapped candidate

static void
s_on_event (ice_agent_t *agent, const ice_event_t *ev, void *arg)
{
    probe_t *p = (probe_t *) arg;
    char line [ICE_CAND_TEXT_MAX + 16];
    switch (ev->type) {
        case ICE_EVENT_CANDIDATE:
            snprintf (line, sizeof line, "cand %s", ev->text);
            s_say (p, line);
            if (s_pending_eoc && strstr (ev->text, " typ srflx")) {
                s_pending_eoc = false;
                s_say (p, "eoc");
            }
            break;
        case ICE_EVENT_GATHERING_DONE:
            if (p->mapped_wan) {
                //  A port mapping (as UPnP/NAT-PMP would give) to our host port:
                //  goes out as one more candidate event, before the eoc below
                char ext [80], err [200];
                snprintf (ext, sizeof ext, "%s:%u", p->mapped_wan, ice_agent_host_port (agent, p->peer, AF_INET));
                if (ice_agent_add_local_mapped (agent, p->peer, ext, err, sizeof err)) {
                    printf ("FAIL mapped: %s\n", err);
                    p->failed = true;
                }
                p->mapped_wan = NULL;
                s_pending_eoc = true;
                break;
            }
            s_say (p, "eoc");
            break;
        case ICE_EVENT_SELECTED:
            if (!p->selected)
                s_say (p, "selected");
            p->selected = true;
            p->selections++;
            printf ("SELECTED %lld %s %s %s %s\n", (long long) s_ms (p), ice_cand_type_name (ev->local_type),
                    ice_cand_type_name (ev->remote_type), ev->local, ev->remote);
            fflush (stdout);
            break;
        case ICE_EVENT_STATE:
            if (ev->state == ICE_STATE_READY && !p->ready) {
                p->ready = true;
                printf ("READY %lld\n", (long long) s_ms (p));
                fflush (stdout);
                s_say (p, "ready");
            }
            break;
        case ICE_EVENT_FAILED:
            printf ("FAIL ice failed after %lld ms\n", (long long) s_ms (p));
            fflush (stdout);
            p->failed = true;
            break;
    }
}

//  Reads the peer's new lines
static void
s_read_peer (probe_t *p)
{
    char line [ICE_CAND_TEXT_MAX + 64], err [200];
    fseek (p->in, p->in_offset, SEEK_SET);
    while (fgets (line, sizeof line, p->in)) {
        size_t len = strlen (line);
        if (len == 0 || line [len - 1] != '\n')
            break;                  //  a line still being written: next time
        p->in_offset += (long) len;
        line [len - 1] = 0;
        int rc = 0;
        if (strncmp (line, "cred ", 5) == 0) {
            char ufrag [300], pwd [300];
            if (sscanf (line + 5, "%299s %299s", ufrag, pwd) == 2)
                rc = ice_agent_set_remote_credentials (p->agent, p->peer, ufrag, pwd, err, sizeof err);
        }
        else if (strncmp (line, "cand ", 5) == 0) {
            rc = ice_agent_add_remote_candidate (p->agent, p->peer, line + 5, err, sizeof err);
            ice_cand_t c;
            if (rc == 0 && p->peer_wan && !p->observed_done && ice_cand_parse (line + 5, &c, err, sizeof err) == 0
                && c.type == ICE_CAND_HOST && c.family == AF_INET) {
                //  What a relay would report behind a port-preserving NAT
                char obs [80];
                snprintf (obs, sizeof obs, "%s:%u", p->peer_wan, c.port);
                rc = ice_agent_add_remote_observed (p->agent, p->peer, obs, err, sizeof err);
                p->observed_done = true;
            }
        }
        else if (strcmp (line, "eoc") == 0)
            ice_agent_end_of_candidates (p->agent, p->peer);
        else if (strcmp (line, "selected") == 0)
            p->peer_selected = true;
        else if (strcmp (line, "ready") == 0)
            p->peer_ready = true;
        else if (strcmp (line, "got") == 0)
            p->peer_got = true;
        if (rc < 0) {
            printf ("FAIL signal '%s': %s\n", line, err);
            fflush (stdout);
            p->failed = true;
        }
    }
    clearerr (p->in);
}

static int
s_on_tick (bus_loop_t *loop, int timer_id, void *arg)
{
    probe_t *p = (probe_t *) arg;
    s_read_peer (p);
    if (p->failed)
        return -1;
    //  Take the socket once both sides are READY (--take-at ready), or once both
    //  have selected their pair (the default: with regular nomination the
    //  nominated pair is final, RFC 8445 section 8.1.1)
    ice_state_t state = p->taken ? ICE_STATE_READY : ice_agent_state (p->agent, p->peer);
    bool mine = p->take_at_ready ? p->ready : p->selected && (state == ICE_STATE_CONNECTED || state == ICE_STATE_READY);
    bool theirs = p->take_at_ready ? p->peer_ready : p->peer_selected;
    if (mine && theirs && !p->taken)
        s_take (p);
    if (p->failed)
        return -1;
    if (p->taken && (p->sent < 2 || !p->peer_got)) {
        char msg [64];
        int n = snprintf (msg, sizeof msg, "data %llu %u", (unsigned long long) p->id, p->sent++);
        if (p->relayed)
            ice_agent_send (p->agent, p->peer, msg, (size_t) n);
        else
            sendto (p->fd, msg, (size_t) n, 0, (struct sockaddr *) &p->remote, p->remote_len);
    }
    if (p->received && p->peer_got) {
        printf ("DONE %lld (%d selected pair events)\n", (long long) s_ms (p), p->selections);
        fflush (stdout);
        return -1;
    }
    return 0;
}

static int
s_on_deadline (bus_loop_t *loop, int timer_id, void *arg)
{
    probe_t *p = (probe_t *) arg;
    printf ("FAIL deadline (ready %d, peer ready %d, taken %d, received %d, peer got %d)\n",
            p->ready, p->peer_ready, p->taken, p->received, p->peer_got);
    fflush (stdout);
    p->failed = true;
    return -1;
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: ice_probe --id N --peer M --out FILE --in FILE [--stun IP:PORT]\n"
        "                 [--turn IP:PORT --turn-user U --turn-pass P] [--local IP]... [--timeout S]\n"
        "                 [--take-at selected|ready] [--mapped-wan IP] [--peer-wan IP]\n"
        "  --mapped-wan IP: announce IP:<our host port> as a port mapping (ice_agent_add_local_mapped)\n"
        "  --peer-wan IP: add IP:<peer's host port> as the relay-observed address (ice_agent_add_remote_observed)\n");
}

int
main (int argc, char **argv)
{
    probe_t p;
    memset (&p, 0, sizeof p);
    p.fd = -1;
    const char *out = NULL, *in = NULL, *stun = NULL, *turn = NULL, *tuser = NULL, *tpass = NULL;
    const char *local [ICE_AGENT_MAX_LOCAL];
    int nlocal = 0, timeout = 20;
    static struct option opts [] = {
        { "id", 1, 0, 'i' }, { "peer", 1, 0, 'p' }, { "out", 1, 0, 'o' }, { "in", 1, 0, 'n' },
        { "stun", 1, 0, 's' }, { "turn", 1, 0, 't' }, { "turn-user", 1, 0, 'u' }, { "turn-pass", 1, 0, 'w' },
        { "local", 1, 0, 'l' }, { "timeout", 1, 0, 'T' }, { "take-at", 1, 0, 'k' },
        { "mapped-wan", 1, 0, 'm' }, { "peer-wan", 1, 0, 'W' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
        switch (c) {
            case 'i': p.id = strtoull (optarg, NULL, 10); break;
            case 'p': p.peer = strtoull (optarg, NULL, 10); break;
            case 'o': out = optarg; break;
            case 'n': in = optarg; break;
            case 's': stun = optarg; break;
            case 't': turn = optarg; break;
            case 'u': tuser = optarg; break;
            case 'w': tpass = optarg; break;
            case 'l': if (nlocal < ICE_AGENT_MAX_LOCAL) local [nlocal++] = optarg; break;
            case 'T': timeout = atoi (optarg); break;
            case 'k': p.take_at_ready = strcmp (optarg, "ready") == 0; break;
            case 'm': p.mapped_wan = optarg; break;
            case 'W': p.peer_wan = optarg; break;
            default: s_usage (); return 2;
        }
    if (!p.id || !p.peer || !out || !in) {
        s_usage ();
        return 2;
    }
    p.out = fopen (out, "a");
    FILE *touch = fopen (in, "a");
    if (touch)
        fclose (touch);
    p.in = fopen (in, "r");
    if (!p.out || !p.in) {
        printf ("FAIL cannot open %s or %s: %s\n", out, in, strerror (errno));
        return 1;
    }
    char err [200];
    p.loop = bus_loop_new ();
    bus_loop_set_nonstop (p.loop, true);
    p.agent = ice_agent_new (p.id, s_on_event, &p);
    ice_agent_set_recv (p.agent, s_on_recv, &p);
    if ((stun && ice_agent_set_stun (p.agent, stun, err, sizeof err))
        || (turn && ice_agent_add_turn (p.agent, turn, tuser, tpass, err, sizeof err))) {
        printf ("FAIL %s\n", err);
        return 1;
    }
    for (int i = 0; i < nlocal; i++)
        if (ice_agent_add_local_address (p.agent, local [i], err, sizeof err)) {
            printf ("FAIL %s\n", err);
            return 1;
        }
    ice_agent_attach (p.agent, p.loop);
    p.t0 = zclock_mono ();
    if (ice_agent_add_peer (p.agent, p.peer, err, sizeof err)) {
        printf ("FAIL %s\n", err);
        return 1;
    }
    printf ("ROLE %s\n", ice_agent_controlling (p.agent, p.peer) ? "controlling" : "controlled");
    char ufrag [ICE_CRED_MAX + 1], pwd [ICE_CRED_MAX + 1], line [600];
    ice_agent_local_credentials (p.agent, p.peer, ufrag, pwd);
    snprintf (line, sizeof line, "cred %s %s", ufrag, pwd);
    s_say (&p, line);
    bus_loop_timer (p.loop, 20, 0, s_on_tick, &p);
    bus_loop_timer (p.loop, (size_t) timeout * 1000, 1, s_on_deadline, &p);
    bus_loop_start (p.loop);
    int64_t closing = zclock_mono ();
    ice_agent_destroy (&p.agent);
    printf ("DESTROYED in %lld ms\n", (long long) (zclock_mono () - closing));
    if (p.fd >= 0) {
        zmq_pollitem_t item = { NULL, p.fd, ZMQ_POLLIN, 0 };
        bus_loop_poller_end (p.loop, &item);
        close (p.fd);
    }
    bus_loop_destroy (&p.loop);
    fclose (p.out);
    fclose (p.in);
    return p.failed ? 1 : 0;
}
