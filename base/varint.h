/* varint.h: protobuf-style base-128 varints (7 bits a byte, low group
 * first, high bit set on every byte but the last), written once for every
 * hand-sized and hand-parsed wire format: catalog entries, SWIM messages,
 * the peek at an Envelope's body field and the row-batch codec.
 *
 * The row-batch codec calls these once per value while a query steps and
 * while a client decodes, so they are inline: no call per value. */
#ifndef DM_VARINT_H
#define DM_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define DM_VARINT_MAX_BYTES 10 /* bytes of a 64-bit varint at most */

/* Bytes v takes as a varint (1..DM_VARINT_MAX_BYTES). Cannot fail. */
static inline size_t dm_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v to out (room for DM_VARINT_MAX_BYTES) and returns the bytes
 * written. Cannot fail. */
static inline size_t dm_varint_encode(uint64_t v, uint8_t out[DM_VARINT_MAX_BYTES])
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* Reads one varint from the len bytes at p into *v. Returns the bytes it
 * took, or 0 (and *v = 0) when the varint is cut off by len or longer than
 * 64 bits. Never reads past len. */
static inline size_t dm_varint_decode(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len && i < DM_VARINT_MAX_BYTES; i++) {
        uint8_t b = p[i];
        /* The tenth byte holds bit 63 only. */
        if (i == DM_VARINT_MAX_BYTES - 1 && b > 1)
            break;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    *v = 0;
    return 0;
}

#endif
