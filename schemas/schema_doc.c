/*  schema-doc: renders the tables of schemas/pipes.def, schemas/wire.def,
    schemas/bridge_wire.def, schemas/route_wire.def, schemas/senders.def and
    schemas/syscalls.def as Markdown, so docs/packet-path.md, docs/wire-format.md,
    docs/bridge-wire.md, docs/routing.md, docs/bus.md and docs/supervisor.md can
    never disagree with the code. It prints named blocks,

        <!-- BEGIN name -->
        ...
        <!-- END name -->

    and schemas/schema-docs.awk puts each into the doc that holds the same
    markers (`make schema-docs`; tests/schema-docs.sh fails when a doc differs).
    It also checks what the compiler cannot: that a message's fields follow one
    another without gap or overlap and add up to its size, that at most one is
    of variable length, and that no doc string would break a table. A bad
    declaration fails the build here with the reason, never a wrong doc. */
#include "pipes.h"
#include "wire.h"
#include "bridge_wire.h"
#include "route_wire.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define S_NAME_MAX 64

//  "ENCRYPTED_STATIC" -> "encrypted_static"; "DEV_CRYPTO" -> "dev-crypto" with dash
static const char *
s_lower (const char *id, char dash, char *buf)
{
    size_t i = 0;
    for (; id [i] && i < S_NAME_MAX - 1; i++)
        buf [i] = id [i] == '_' && dash ? dash : (char) tolower ((unsigned char) id [i]);
    buf [i] = 0;
    return buf;
}

static int s_errors = 0;

//  A wire format: its declaration file, the prefix of its doc blocks, its tables
typedef struct {
    const char *def;                //  "wire.def"
    const char *block;              //  "wire": blocks wire, wire-<message>
    const wire_decl_t *messages, *fields, *consts;
    size_t n_messages, n_fields, n_consts;
} s_format_t;

#define S_FORMAT(def, block, table) { def, block, table##_messages, table##_fields, table##_consts, \
    WIRE_COUNT (table##_messages), WIRE_COUNT (table##_fields), WIRE_COUNT (table##_consts) }
static const s_format_t s_formats [] = {
    S_FORMAT ("wire.def", "wire", wire),
    S_FORMAT ("bridge_wire.def", "bridge-wire", bridge_wire),
    S_FORMAT ("route_wire.def", "route-wire", route_wire),
};

static void
s_doc_ok (const char *where, const char *id, const char *doc)
{
    if (!doc || !*doc || strchr (doc, '|') || strchr (doc, '\n')) {
        fprintf (stderr, "schema-doc: %s %s: doc must be one line of text without '|'\n", where, id);
        s_errors++;
    }
}

//  The fields of every message follow each other from offset 0, without gap or
//  overlap, at most one of variable length, and add up to the message's size.
static void
s_check_wire (const s_format_t *fmt)
{
    for (size_t m = 0; m < fmt->n_messages; m++) {
        const wire_decl_t *msg = &fmt->messages [m];
        s_doc_ok (fmt->def, msg->id, msg->doc);
        s_doc_ok (fmt->def, msg->id, msg->title);
        for (size_t o = 0; o < m; o++)
            if (fmt->messages [o].value == msg->value) {
                fprintf (stderr, "schema-doc: %s: %s and %s share type %d\n", fmt->def,
                         fmt->messages [o].id, msg->id, msg->value);
                s_errors++;
            }
        int end = 0, fields = 0, variable = 0;
        for (size_t f = 0; f < fmt->n_fields; f++) {
            const wire_decl_t *field = &fmt->fields [f];
            if (strcmp (field->message, msg->id))
                continue;
            s_doc_ok (fmt->def, field->id, field->doc);
            if (field->value != end) {
                fprintf (stderr, "schema-doc: %s: %s.%s is at offset %d, the field before ends at %d\n", fmt->def,
                         msg->id, field->id, field->value, end);
                s_errors++;
            }
            if (field->size == 0 && variable++) {
                fprintf (stderr, "schema-doc: %s: %s has more than one field of variable length\n", fmt->def, msg->id);
                s_errors++;
            }
            end = field->value + field->size;
            fields++;
        }
        if (fields == 0 || end != msg->size) {
            fprintf (stderr, "schema-doc: %s: the fields of %s add up to %d bytes, the message is %d\n", fmt->def,
                     msg->id, end, msg->size);
            s_errors++;
        }
    }
    for (size_t f = 0; f < fmt->n_fields; f++) {
        bool known = false;
        for (size_t m = 0; m < fmt->n_messages; m++)
            known |= strcmp (fmt->fields [f].message, fmt->messages [m].id) == 0;
        if (!known) {
            fprintf (stderr, "schema-doc: %s: field %s of unknown message %s\n", fmt->def,
                     fmt->fields [f].id, fmt->fields [f].message);
            s_errors++;
        }
    }
    for (size_t c = 0; c < fmt->n_consts; c++)
        s_doc_ok (fmt->def, fmt->consts [c].id, fmt->consts [c].doc);
}

static void
s_begin (const char *block, const char *def)
{
    printf ("<!-- BEGIN %s -->\n", block);
    printf ("<!-- generated from schemas/%s by schemas/schema-doc: edit the declarations, then `make schema-docs` -->\n", def);
}

static void
s_end (const char *block)
{
    printf ("<!-- END %s -->\n", block);
}

static bool
s_variable (const s_format_t *fmt, const char *message)
{
    for (size_t f = 0; f < fmt->n_fields; f++)
        if (strcmp (fmt->fields [f].message, message) == 0 && fmt->fields [f].size == 0)
            return true;
    return false;
}

static void
s_wire_markdown (const s_format_t *fmt)
{
    char name [S_NAME_MAX];
    s_begin (fmt->block, fmt->def);
    printf ("| type | message | bytes | what |\n|---:|---|---:|---|\n");
    for (size_t m = 0; m < fmt->n_messages; m++) {
        const wire_decl_t *msg = &fmt->messages [m];
        printf ("| %d | %s | %d%s | %s |\n", msg->value, msg->title, msg->size,
                s_variable (fmt, msg->id) ? " + n" : "", msg->doc);
    }
    printf ("\n| constant | value | meaning |\n|---|---:|---|\n");
    for (size_t c = 0; c < fmt->n_consts; c++)
        printf ("| `%s` | %d | %s |\n", s_lower (fmt->consts [c].id, 0, name), fmt->consts [c].value, fmt->consts [c].doc);
    s_end (fmt->block);

    for (size_t m = 0; m < fmt->n_messages; m++) {
        const wire_decl_t *msg = &fmt->messages [m];
        char block [2 * S_NAME_MAX];
        snprintf (block, sizeof block, "%s-%s", fmt->block, s_lower (msg->id, '-', name));
        printf ("\n");
        s_begin (block, fmt->def);
        printf ("## %s (type %d), %d%s bytes\n\n", msg->title, msg->value, msg->size,
                s_variable (fmt, msg->id) ? " + n" : "");
        printf ("| offset | size | field | meaning |\n|---:|---:|---|---|\n");
        bool after = false;         //  past the variable part: offsets count from its end
        for (size_t f = 0; f < fmt->n_fields; f++) {
            const wire_decl_t *field = &fmt->fields [f];
            if (strcmp (field->message, msg->id))
                continue;
            char size [16];
            snprintf (size, sizeof size, "%d", field->size);
            printf ("| %d%s | %s | %s | %s |\n", field->value, after ? " + n" : "",
                    field->size ? size : "n", s_lower (field->id, 0, name), field->doc);
            after |= field->size == 0;
        }
        s_end (block);
    }
}

static void
s_pipes_markdown (void)
{
    s_begin ("pipes", "pipes.def");
    printf ("| pipe | from -> to | carries | record tag | payload |\n|---|---|---|---|---|\n");
#define BIFROST_PIPE(id, name, from, to, tag, payload, doc) \
    s_doc_ok ("pipes.def pipe", #id, doc); s_doc_ok ("pipes.def pipe", #id, tag); \
    s_doc_ok ("pipes.def pipe", #id, payload); \
    printf ("| `%s` | %s -> %s | %s | %s | %s |\n", name, from, to, doc, tag, payload);
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc)
#define BIFROST_PIPE_TAG(id, value, pipe, doc)
#include "pipes.def"
#undef BIFROST_PIPE
#undef BIFROST_PIPE_RECORD

    printf ("\nControl records: a user flag of `bus_batch` (bits 8..15) set on a record "
            "changes what its tag and payload mean.\n\n");
    printf ("| record | flag | pipe | tag | payload | meaning |\n|---|---|---|---|---|---|\n");
#define BIFROST_PIPE(id, name, from, to, tag, payload, doc)
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc) \
    s_doc_ok ("pipes.def record", #id, doc); s_doc_ok ("pipes.def record", #id, tag); \
    s_doc_ok ("pipes.def record", #id, payload); \
    printf ("| %s | `0x%04x` | `%s` | %s | %s | %s |\n", #id, (unsigned) (flag), PIPE_##pipe, tag, payload, doc);
#include "pipes.def"
#undef BIFROST_PIPE_RECORD
#undef BIFROST_PIPE_TAG

    printf ("\nTags with a meaning of their own:\n\n");
    printf ("| tag | value | pipe | meaning |\n|---|---|---|---|\n");
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc)
#define BIFROST_PIPE_TAG(id, value, pipe, doc) \
    s_doc_ok ("pipes.def tag", #id, doc); \
    printf ("| `%s` | `0x%08X` | `%s` | %s |\n", #id, (unsigned) (value), PIPE_##pipe, doc);
#include "pipes.def"
#undef BIFROST_PIPE
#undef BIFROST_PIPE_RECORD
#undef BIFROST_PIPE_TAG
    s_end ("pipes");
}

//  A space-separated list of names as "`a`, `b`"
static void
s_print_words (const char *list)
{
    int printed = 0;
    for (const char *p = list; *p; ) {
        p += strspn (p, " ");
        size_t n = strcspn (p, " ");
        if (n)
            printf ("%s`%.*s`", printed++ ? ", " : "", (int) n, p);
        p += n;
    }
}

//  The tables of schemas/senders.def, for docs/bus.md ("Who may send what"),
//  and what the broker could not tell: a sender that is neither a protected
//  service nor `ctl` (anyone could register as it, so the rule would protect
//  nothing), and a type and kind with two rules (the broker reads the first).
static void
s_senders_markdown (void)
{
    static const struct { const char *service, *programs, *doc; } programs [] = {
#define BUS_PROGRAM(service, programs, doc) { service, programs, doc },
#define BUS_SENDER(type, event, senders, doc)
#include "senders.def"
#undef BUS_PROGRAM
#undef BUS_SENDER
    };
    static const struct { const char *type; int event; const char *senders, *doc; } senders [] = {
#define BUS_PROGRAM(service, programs, doc)
#define BUS_SENDER(type, event, senders, doc) { type, event, senders, doc },
#include "senders.def"
#undef BUS_PROGRAM
#undef BUS_SENDER
    };
    s_begin ("senders", "senders.def");
    printf ("| service name | may be registered only by | what it is |\n|---|---|---|\n");
    for (size_t i = 0; i < WIRE_COUNT (programs); i++) {
        s_doc_ok ("senders.def program", programs [i].service, programs [i].doc);
        s_doc_ok ("senders.def program", programs [i].service, programs [i].programs);
        printf ("| `%s` | ", programs [i].service);
        s_print_words (programs [i].programs);
        printf (" | %s |\n", programs [i].doc);
    }
    printf ("\n| message type | as | only from | why |\n|---|---|---|---|\n");
    for (size_t i = 0; i < WIRE_COUNT (senders); i++) {
        s_doc_ok ("senders.def sender", senders [i].type, senders [i].doc);
        s_doc_ok ("senders.def sender", senders [i].type, senders [i].senders);
        for (size_t o = 0; o < i; o++)
            if (strcmp (senders [o].type, senders [i].type) == 0 && !senders [o].event == !senders [i].event) {
                fprintf (stderr, "schema-doc: senders.def: two rules for %s as %s\n", senders [i].type,
                         senders [i].event ? "event" : "request");
                s_errors++;
            }
        printf ("| `%s` | %s | ", senders [i].type, senders [i].event ? "event" : "request");
        s_print_words (senders [i].senders);
        for (const char *p = senders [i].senders; *p; ) {
            p += strspn (p, " ");
            size_t n = strcspn (p, " ");
            bool known = n == 3 && strncmp (p, "ctl", 3) == 0;
            for (size_t k = 0; k < WIRE_COUNT (programs) && !known; k++)
                known = strlen (programs [k].service) == n && strncmp (programs [k].service, p, n) == 0;
            if (n && !known) {
                fprintf (stderr, "schema-doc: senders.def: %s: sender %.*s is no protected service (BUS_PROGRAM) "
                         "nor ctl: anyone may register as it\n", senders [i].type, (int) n, p);
                s_errors++;
            }
            p += n;
        }
        printf (" | %s |\n", senders [i].doc);
    }
    s_end ("senders");
}

//  The lists of schemas/syscalls.def, for docs/supervisor.md ("seccomp"): what
//  each set allows and why, with the argument rule or errno as written there
static void
s_syscalls_markdown (void)
{
    static const struct { const char *set, *doc; } sets [] = {
#define BUS_SYSCALL_SET(set, doc) { #set, doc },
#define BUS_SYSCALL(set, name, why)
#define BUS_SYSCALL_ARG(set, name, arg, mask, value, why)
#define BUS_SYSCALL_ERRNO(set, name, errno, why)
#include "syscalls.def"
#undef BUS_SYSCALL_SET
#undef BUS_SYSCALL
#undef BUS_SYSCALL_ARG
#undef BUS_SYSCALL_ERRNO
    };
    static const struct { const char *set, *name, *arg, *mask, *value, *why; } calls [] = {
#define BUS_SYSCALL_SET(set, doc)
#define BUS_SYSCALL(set, name, why) { #set, #name, NULL, NULL, NULL, why },
#define BUS_SYSCALL_ARG(set, name, arg, mask, value, why) { #set, #name, #arg, #mask, #value, why },
#define BUS_SYSCALL_ERRNO(set, name, errno, why) { #set, #name, NULL, NULL, #errno, why },
#include "syscalls.def"
#undef BUS_SYSCALL_SET
#undef BUS_SYSCALL
#undef BUS_SYSCALL_ARG
#undef BUS_SYSCALL_ERRNO
    };
    s_begin ("syscalls", "syscalls.def");
    printf ("| set | system call | allowed | why |\n|---|---|---|---|\n");
    for (size_t i = 0; i < WIRE_COUNT (sets); i++) {
        s_doc_ok ("syscalls.def set", sets [i].set, sets [i].doc);
        size_t count = 0;
        for (size_t c = 0; c < WIRE_COUNT (calls); c++) {
            if (strcmp (calls [c].set, sets [i].set))
                continue;
            if (strchr (calls [c].why, '|') || strchr (calls [c].why, '\n')) {
                fprintf (stderr, "schema-doc: syscalls.def %s: a reason must be one line without '|'\n", calls [c].name);
                s_errors++;
            }
            if (count++ == 0)
                printf ("| **`%s`**: %s | | | |\n", sets [i].set, sets [i].doc);
            printf ("| | `%s` | ", calls [c].name);
            if (calls [c].arg && strcmp (calls [c].mask, "~0UL") == 0)
                printf ("argument %s is `%s`", calls [c].arg, calls [c].value);
            else
            if (calls [c].arg)
                printf ("argument %s has `%s`", calls [c].arg, calls [c].value);
            else
            if (calls [c].value)
                printf ("fails with `%s`", calls [c].value);
            else
                printf ("%s", strcmp (sets [i].set, "DENIED") ? "always" : "never");
            printf (" | %s |\n", calls [c].why);
        }
        if (count == 0) {
            fprintf (stderr, "schema-doc: syscalls.def: set %s has no call\n", sets [i].set);
            s_errors++;
        }
    }
    s_end ("syscalls");
}

//  The metrics of schemas/metrics.def, for docs/metrics.md: one row each
static void
s_metrics_markdown (void)
{
    static const struct { const char *name, *type, *labels, *source, *help; } metrics [] = {
#define BUS_METRIC(id, name, type, labels, source, help) { name, #type, labels, source, help },
#include "metrics.def"
#undef BUS_METRIC
    };
    s_begin ("metrics", "metrics.def");
    printf ("| metric | type | labels | from | what |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < WIRE_COUNT (metrics); i++) {
        s_doc_ok ("metrics.def", metrics [i].name, metrics [i].help);
        printf ("| `%s` | %s | %s | %s | %s |\n", metrics [i].name, metrics [i].type,
                *metrics [i].labels ? metrics [i].labels : "-", metrics [i].source, metrics [i].help);
    }
    s_end ("metrics");
}

int
main (int argc, char *argv [])
{
    if (argc > 1) {
        fprintf (stderr, "usage: %s\nprints the Markdown blocks generated from schemas/pipes.def, schemas/wire.def, schemas/bridge_wire.def, schemas/route_wire.def, schemas/senders.def, schemas/syscalls.def and schemas/metrics.def\n", argv [0]);
        return strcmp (argv [1], "-h") == 0 ? 0 : 2;
    }
    for (size_t i = 0; i < WIRE_COUNT (s_formats); i++)
        s_check_wire (&s_formats [i]);
    s_pipes_markdown ();
    for (size_t i = 0; i < WIRE_COUNT (s_formats); i++) {
        printf ("\n");
        s_wire_markdown (&s_formats [i]);
    }
    printf ("\n");
    s_senders_markdown ();
    printf ("\n");
    s_syscalls_markdown ();
    printf ("\n");
    s_metrics_markdown ();
    if (s_errors) {
        fprintf (stderr, "schema-doc: %d error(s) in the declarations\n", s_errors);
        return 1;
    }
    return 0;
}
