/* varint.h: protobuf-style base-128 varints (7 bits a byte, low group
 * first, high bit set on every byte but the last), written once for the
 * hand-sized and hand-parsed wire formats: catalog entries, SWIM messages,
 * the peek at an Envelope's body field. */
#ifndef DM_VARINT_H
#define DM_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define DM_VARINT_MAX_BYTES 10 /* bytes of a 64-bit varint at most */

/* Bytes v takes as a varint (1..DM_VARINT_MAX_BYTES). Cannot fail. */
size_t dm_varint_len(uint64_t v);
/* Writes v to out (room for DM_VARINT_MAX_BYTES) and returns the bytes
 * written. Cannot fail. */
size_t dm_varint_encode(uint64_t v, uint8_t out[DM_VARINT_MAX_BYTES]);
/* Reads one varint from the len bytes at p into *v. Returns the bytes it
 * took, or 0 (and *v = 0) when the varint is cut off by len or longer than
 * 64 bits. Never reads past len. */
size_t dm_varint_decode(const uint8_t *p, size_t len, uint64_t *v);

#endif
