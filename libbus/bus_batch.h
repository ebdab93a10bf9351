/*  bus_batch: up to 64 packets packed back to back in one buffer, with room
    around every packet so the crypto service can encrypt or decrypt in place.
    The unit of the data plane: device, crypto and nat hand each other batches
    over bus_pipe, never single packets, because every hop costs a system call
    on each side whatever it carries (docs/benchmarks.md).

    Batch layout (docs/data-plane.md has the same with a picture). All integers
    are in HOST byte order: a batch only ever crosses a Unix socket between two
    processes of one machine, so a byte swap would buy nothing; the packets on the
    internet wire have their own fixed format (services/nat).

        batch header, 8 bytes
          0  u8   magic 0xB5
          1  u8   version 1
          2  u16  count, 1..64 records
          4  u32  size, bytes of the whole batch (must equal the message size)
        then `count` records, each starting 8-byte aligned:
          0  u32  tag    the peer index or endpoint id the next hop needs
          4  u16  len    packet bytes
          6  u16  flags  BUS_BATCH_GROWN, bits 8..15 free for the services,
                         bits 1..7 must be zero
          8  ...  the slot, 8 + align8 (len + 32) bytes from the record start
                  when not grown, 8 + align8 (len) when grown:
                  plain:  [16 headroom][len packet bytes][16 tailroom][pad]
                  grown:  [len packet bytes = 16 header + payload + 16 tag][pad]

    Growing a packet turns its 16 bytes of headroom and tailroom into packet bytes
    (len += 32, data moves 16 bytes back); shrinking is the reverse. The record's
    stride stays the same, so crypto encrypts (libsodium `_detached`: header in
    front, tag behind) or decrypts every packet of a received batch where it lies
    and forwards the same bytes. */
#ifndef BUS_BATCH_H_INCLUDED
#define BUS_BATCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_BATCH_MAGIC     0xB5
#define BUS_BATCH_VERSION   1
#define BUS_BATCH_MAX       64          //  packets per batch
#define BUS_BATCH_HEADER    8           //  batch header bytes
#define BUS_BATCH_RECORD    8           //  record header bytes
#define BUS_BATCH_HEADROOM  16          //  room in front of a plain packet
#define BUS_BATCH_TAILROOM  16          //  room behind a plain packet
#define BUS_BATCH_ROOM      (BUS_BATCH_HEADROOM + BUS_BATCH_TAILROOM)
#define BUS_BATCH_PKT_MAX   (65535 - BUS_BATCH_ROOM)    //  longest plain packet
#define BUS_BATCH_GROWN     0x0001      //  the room is part of the packet
#define BUS_BATCH_USER_FLAGS 0xFF00     //  free for the services
//  Bytes one record of a plain packet of len bytes takes in a batch
#define BUS_BATCH_STRIDE(len) \
    (BUS_BATCH_RECORD + ((((size_t) (len)) + BUS_BATCH_ROOM + 7) & ~(size_t) 7))
//  The largest valid batch (the receiver refuses bigger messages)
#define BUS_BATCH_SIZE_MAX  (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (BUS_BATCH_PKT_MAX))
//  Default builder capacity: 64 packets of up to 1500 bytes
#define BUS_BATCH_CAPACITY_DEFAULT (BUS_BATCH_HEADER + BUS_BATCH_MAX * BUS_BATCH_STRIDE (1500))

//  ---------------------------------------------------------------------------
//  bus_batch: builder

typedef struct _bus_batch_t bus_batch_t;

//  A builder with room for capacity bytes (0: BUS_BATCH_CAPACITY_DEFAULT).
bus_batch_t *bus_batch_new (size_t capacity);
void bus_batch_destroy (bus_batch_t **self_p);

//  Reserves a packet of len bytes and returns where to write it (8-byte
//  aligned, with BUS_BATCH_HEADROOM writable bytes before it and
//  BUS_BATCH_TAILROOM after it). NULL when the batch holds BUS_BATCH_MAX
//  packets, or the packet does not fit the capacity, or len > BUS_BATCH_PKT_MAX:
//  send the batch and reserve again. No allocation per packet.
uint8_t *bus_batch_reserve (bus_batch_t *self, uint32_t tag, size_t len);
//  Shortens the last reserved packet to len bytes (reserve the MTU, read(),
//  then trim to what the read returned). len must not exceed the reservation.
void bus_batch_trim (bus_batch_t *self, size_t len);
//  Forgets the last reserved packet (the read returned nothing).
void bus_batch_cancel (bus_batch_t *self);
//  Reserve and copy. 0, or -1 when the packet does not fit.
int bus_batch_add (bus_batch_t *self, uint32_t tag, const void *data, size_t len);
//  Reserves a packet of len bytes (BUS_BATCH_ROOM <= len) in its GROWN form: the
//  packet fills its record's room, so it starts 16 bytes earlier than a plain one.
//  For producers whose packets carry their own header and tag (nat's wire
//  datagrams): the consumer decrypts where the packet lies and shrinks it.
uint8_t *bus_batch_reserve_grown (bus_batch_t *self, uint32_t tag, size_t len);
//  Sets the flags of the last reserved packet (BUS_BATCH_USER_FLAGS bits only).
void bus_batch_set_flags (bus_batch_t *self, uint16_t flags);
//  Sets the tag of the last reserved packet (known only after it was read).
void bus_batch_set_tag (bus_batch_t *self, uint32_t tag);

size_t bus_batch_count (bus_batch_t *self);
bool bus_batch_full (bus_batch_t *self);
//  The encoded batch (valid while the builder is not changed) and its size.
const uint8_t *bus_batch_data (bus_batch_t *self);
size_t bus_batch_size (bus_batch_t *self);
//  Payload bytes (sum of the packet lengths).
size_t bus_batch_bytes (bus_batch_t *self);
//  Empties the builder (keeps its buffer).
void bus_batch_reset (bus_batch_t *self);
//  Writes the BUS_BATCH_HEADER bytes of a batch of count records and size
//  bytes in all: for a sender that puts some records of a batch under a header
//  of its own (bus_pipe splits batches too big for one message).
void bus_batch_header_write (uint8_t *header, uint32_t count, size_t size);

//  ---------------------------------------------------------------------------
//  bus_batch: reader. Validates a received batch as a whole (header, count,
//  every record's length and flags, no byte past the end, nothing after the last
//  record); only then hands out packets, so a consumer never sees half a batch.

typedef struct {
    uint8_t *base;              //  the batch (not owned)
    size_t size;
    uint32_t count;             //  packets in the batch
    uint32_t index;             //  packets handed out so far
    size_t offset;              //  of the next record
    size_t bytes;               //  payload bytes, as validated
} bus_batch_iter_t;

typedef struct {
    uint8_t *data;              //  packet bytes, writable in place
    size_t len;
    uint32_t tag;
    uint16_t flags;
    uint8_t *record;            //  its record header (for grow/shrink/set_tag)
} bus_packet_t;

//  0 when data/size is a valid batch (the iterator is ready), else -1 with a
//  reason in err. The batch must stay alive and unmoved while iterating.
int bus_batch_iter_init (bus_batch_iter_t *iter, uint8_t *data, size_t size, char *err, size_t errsize);
//  Next packet; false after the last one.
bool bus_batch_iter_next (bus_batch_iter_t *iter, bus_packet_t *pkt);
//  Payload bytes of the whole batch as it is now (packets grown or shrunk
//  since bus_batch_iter_init count as they are; iter->bytes is what it was).
size_t bus_batch_iter_bytes (bus_batch_iter_t *iter);

//  Turns a plain packet's room into packet bytes: data moves 16 bytes back, len
//  grows by 32, the record is updated in the batch. -1 if already grown.
int bus_packet_grow (bus_packet_t *pkt);
//  The reverse: data moves 16 bytes on, len shrinks by 32. -1 if not grown.
int bus_packet_shrink (bus_packet_t *pkt);
//  Rewrites the tag (the next hop may need another index than this one).
void bus_packet_set_tag (bus_packet_t *pkt, uint32_t tag);

//  Builds batches into a private buffer, breaks them every way a sender could,
//  and checks that the reader refuses each with a reason.
void bus_batch_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
