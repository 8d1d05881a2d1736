/* rowbatch.h: the row-batch codec, the wire form of a Query reply's rows
 * (proto/mesh.proto QueryRep.rows).
 *
 * A batch is the values of its rows, row after row, column after column,
 * each a tag byte and a body: NULL nothing; INT a zigzag varint; REAL 8
 * bytes of the IEEE 754 double, little-endian; TEXT and BLOB a varint
 * length and the bytes. The tags are the codec's own (not SQLite's type
 * codes), so a client decodes a batch without linking SQLite or the query
 * engine.
 *
 * The engine appends one value at a time while it steps a statement, so
 * the encoders are inline (and so are base/varint.h's): a value costs at
 * most one call (dm_buf_reserve) and never an allocation once the batch
 * buffer has grown. */
#ifndef DM_ROWBATCH_H
#define DM_ROWBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/varint.h"

/* Tag bytes on the wire: their values are the protocol. */
typedef enum {
    DM_ROWBATCH_NULL = 0,
    DM_ROWBATCH_INT = 1,
    DM_ROWBATCH_REAL = 2,
    DM_ROWBATCH_TEXT = 3,
    DM_ROWBATCH_BLOB = 4,
} dm_rowbatch_type;

#define DM_ROWBATCH_REAL_BYTES 8
#define DM_ROWBATCH_REAL_TEXT_MAX 64 /* bytes of dm_rowbatch_real_text's output, NUL included */

/* One decoded value. */
typedef struct {
    dm_rowbatch_type type;
    int64_t i;     /* INT */
    double d;      /* REAL */
    const char *s; /* TEXT and BLOB: points into the batch, not NUL-terminated */
    size_t len;    /* TEXT and BLOB: bytes at s */
} dm_rowbatch_value_t;

/* Appends tag and len bytes of body to out after reserving room for
 * extra bytes: the one non-inline call of an encoded value. */
static inline uint8_t *dm_rowbatch__begin(dm_buf_t *out, dm_rowbatch_type tag, size_t extra)
{
    dm_buf_reserve(out, 1 + extra);
    uint8_t *p = (uint8_t *)out->data + out->len;
    *p = (uint8_t)tag;
    return p + 1;
}

/* Ends a value begun at dm_rowbatch__begin: end is one past its last byte.
 * Keeps out NUL-terminated, as dm_buf promises. */
static inline void dm_rowbatch__end(dm_buf_t *out, uint8_t *end)
{
    out->len = (size_t)((char *)end - out->data);
    out->data[out->len] = 0;
}

/* Appends a NULL. Cannot fail (dm_buf aborts on out of memory). */
static inline void dm_rowbatch_put_null(dm_buf_t *out)
{
    dm_rowbatch__end(out, dm_rowbatch__begin(out, DM_ROWBATCH_NULL, 0));
}

/* Appends an INT. Cannot fail. */
static inline void dm_rowbatch_put_int(dm_buf_t *out, int64_t v)
{
    uint8_t *p = dm_rowbatch__begin(out, DM_ROWBATCH_INT, DM_VARINT_MAX_BYTES);
    uint64_t zigzag = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    dm_rowbatch__end(out, p + dm_varint_encode(zigzag, p));
}

/* Appends a REAL. Cannot fail. */
static inline void dm_rowbatch_put_real(dm_buf_t *out, double d)
{
    uint8_t *p = dm_rowbatch__begin(out, DM_ROWBATCH_REAL, DM_ROWBATCH_REAL_BYTES);
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    for (int k = 0; k < DM_ROWBATCH_REAL_BYTES; k++)
        p[k] = (uint8_t)(u >> 8 * k);
    dm_rowbatch__end(out, p + DM_ROWBATCH_REAL_BYTES);
}

/* Appends a TEXT (type DM_ROWBATCH_TEXT) or BLOB (DM_ROWBATCH_BLOB) of len
 * bytes at s (s may be NULL when len is 0). Cannot fail. */
static inline void dm_rowbatch_put_bytes(dm_buf_t *out, dm_rowbatch_type type, const void *s,
                                         size_t len)
{
    uint8_t *p = dm_rowbatch__begin(out, type, DM_VARINT_MAX_BYTES + len);
    p += dm_varint_encode(len, p);
    if (len)
        memcpy(p, s, len);
    dm_rowbatch__end(out, p + len);
}

/* Reads one value at *p (bytes up to end) into *v and advances *p past it.
 * Returns false, *p unspecified, when the bytes are cut, a tag is unknown,
 * a varint is over 64 bits or a length runs past end. TEXT and BLOB point
 * into the batch: valid while it is. */
DM_NODISCARD bool dm_rowbatch_read(const uint8_t **p, const uint8_t *end, dm_rowbatch_value_t *v);

/* Writes the text SQLite gives the REAL d (sqlite3_column_text, printf
 * "%!.15g": 15 significant digits, always a decimal point, "Inf", "-Inf",
 * "NaN") into buf (DM_ROWBATCH_REAL_TEXT_MAX bytes, NUL-terminated) and
 * returns its length. Cannot fail. */
size_t dm_rowbatch_real_text(double d, char *buf);

/* Appends the text SQLite gives v (what sqlite3_column_text returns):
 * decimal INT, dm_rowbatch_real_text for REAL, TEXT and BLOB bytes as
 * they are, nothing for NULL. Cannot fail. */
void dm_rowbatch_text(const dm_rowbatch_value_t *v, dm_buf_t *out);

#endif
