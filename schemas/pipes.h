/*  pipes: the data pipes and their records (schemas/pipes.def) expanded into C.

    device, crypto and nat each include this one header instead of defining the
    pipe names and record flags themselves, so a flag cannot mean ROUTE on one
    side of a pipe and something else on the other, and no service needs
    another's header to speak to it. Declarations only: no code, no state.

        PIPE_<ID>           the pipe's name, e.g. PIPE_DEV_CRYPTO = "dev-crypto"
        PIPE_FLAG_<ID>      a control record's user flag (bus_batch_set_flags)
        PIPE_TAG_<ID>       a tag with a meaning of its own
*/
#ifndef SCHEMAS_PIPES_H_INCLUDED
#define SCHEMAS_PIPES_H_INCLUDED

#include <stdint.h>
#include "bus_batch.h"

//  The names: arrays, not macros (an X-macro cannot define a macro); what
//  bus_pipe_new and the log lines take is a const char *.
#define BIFROST_PIPE(id, name, from, to, tag, payload, doc) \
    static const char PIPE_##id [] = name;
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc)
#define BIFROST_PIPE_TAG(id, value, pipe, doc)
#include "pipes.def"
#undef BIFROST_PIPE
#undef BIFROST_PIPE_RECORD
#undef BIFROST_PIPE_TAG

//  The flags, an enum so they work in switch labels and constant expressions
#define BIFROST_PIPE(id, name, from, to, tag, payload, doc)
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc)  PIPE_FLAG_##id = (flag),
#define BIFROST_PIPE_TAG(id, value, pipe, doc)
enum {
#include "pipes.def"
};
#undef BIFROST_PIPE_RECORD

//  Each flag is one bit of the user half of a record's flags (bus_batch owns
//  the low byte), and no two records share a bit: OR and sum agree only then.
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc) \
    _Static_assert (((flag) & BUS_BATCH_USER_FLAGS) == (flag) && ((flag) & ((flag) - 1)) == 0 && (flag), \
                    "pipes.def: flag of " #id " must be one bit of BUS_BATCH_USER_FLAGS");
#include "pipes.def"
#undef BIFROST_PIPE_RECORD
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc)  | (flag)
enum { PIPE_FLAGS_OR_ = 0
#include "pipes.def"
    ,
#undef BIFROST_PIPE_RECORD
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc)  + (flag)
    PIPE_FLAGS_SUM_ = 0
#include "pipes.def"
};
#undef BIFROST_PIPE_RECORD
_Static_assert (PIPE_FLAGS_OR_ == PIPE_FLAGS_SUM_, "pipes.def: two records share a flag");
#undef BIFROST_PIPE_TAG

//  A record's FLOW bits: which of the destination's equal-cost next hops its flow takes
#define PIPE_FLOW_FLAGS(k)      (PIPE_FLAG_FLOW | ((k) & 1 ? PIPE_FLAG_FLOW_1 : 0) | ((k) & 2 ? PIPE_FLAG_FLOW_2 : 0))
#define PIPE_FLOW_HOP(flags)    (((flags) & PIPE_FLAG_FLOW_1 ? 1u : 0u) | ((flags) & PIPE_FLAG_FLOW_2 ? 2u : 0u))

//  The tags: 32-bit values that need not fit an int enum
#define BIFROST_PIPE_RECORD(id, flag, pipe, tag, payload, doc)
#define BIFROST_PIPE_TAG(id, value, pipe, doc)  static const uint32_t PIPE_TAG_##id = (value);
#include "pipes.def"
#undef BIFROST_PIPE
#undef BIFROST_PIPE_RECORD
#undef BIFROST_PIPE_TAG

#endif
