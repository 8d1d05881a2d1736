/* varint.c: protobuf-style varints (see varint.h). */
#include "base/varint.h"

size_t dm_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t dm_varint_encode(uint64_t v, uint8_t out[DM_VARINT_MAX_BYTES])
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

size_t dm_varint_decode(const uint8_t *p, size_t len, uint64_t *v)
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
