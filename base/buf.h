/* buf.h: a growable byte buffer.
 *
 * The buffer owns its memory; reset keeps the allocation for reuse, which is
 * what the hot paths (record validation, batch encoding) rely on. */
#ifndef DM_BUF_H
#define DM_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct {
    char *data; /* NUL-terminated after every append, so text is printable */
    size_t len;
    size_t cap;
} dm_buf_t;

#define DM_BUF_INIT {NULL, 0, 0}

/* Frees the memory and zeroes the buffer. NULL-safe. */
void dm_buf_free(dm_buf_t *b);
/* Empties the buffer, keeping its allocation. */
static inline void dm_buf_reset(dm_buf_t *b) { b->len = 0; if (b->data) b->data[0] = 0; }
/* Cuts b (NULL-safe) back to its first len bytes (len <= b->len): what a
 * caller appended past a mark, taken back. */
static inline void dm_buf_cut(dm_buf_t *b, size_t len)
{
    if (b && b->data && len <= b->len) {
        b->len = len;
        b->data[len] = 0;
    }
}
/* Makes room for extra more bytes (plus the NUL). Aborts on out of memory:
 * every caller would have to give up anyway. */
void dm_buf_reserve(dm_buf_t *b, size_t extra);
void dm_buf_append(dm_buf_t *b, const void *data, size_t len);
void dm_buf_putc(dm_buf_t *b, char c);
void dm_buf_puts(dm_buf_t *b, const char *s);
void dm_buf_printf(dm_buf_t *b, const char *fmt, ...) DM_PRINTF(2, 3);

#define DM_BUF_WHY_MAX 4352 /* bytes of one reason line at most: a full path (4096) and prose */

/* Appends one reason line (base/err.h) to why, cut at DM_BUF_WHY_MAX bytes
 * so a hostile input cannot grow it without bound. Does nothing when why is
 * NULL (the caller wants only the code). The callee's return value stays
 * its own business. */
void dm_buf_why(dm_buf_t *why, const char *fmt, ...) DM_PRINTF(2, 3);
/* dm_buf_why for a wrapper that takes its own arguments (ap is used up). */
void dm_buf_vwhy(dm_buf_t *why, const char *fmt, va_list ap) DM_PRINTF(2, 0);
/* Appends s as a JSON string literal, quotes included. */
void dm_buf_json_string(dm_buf_t *b, const char *s, size_t len);
/* Returns the data (NUL-terminated, caller frees) and empties the buffer. */
char *dm_buf_steal(dm_buf_t *b);

#endif
