/* diags.h: lists of diagnostics. A validator that reports every problem of
 * one input (a contract file, a YAML stream, an Avro schema) adds one
 * diagnostic per problem, with the file and position, and carries on; the
 * caller formats the list once. A function that fails for one reason
 * carries it in a dm_buf_t *why instead (see err.h). */
#ifndef DM_DIAGS_H
#define DM_DIAGS_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define DM_DIAGS_MAX 1000 /* diagnostics kept per list; a note replaces the rest */

/* One diagnostic; all strings owned by the list. */
typedef struct {
    char *file;
    unsigned line, col; /* 1-based; 0 when the problem has no position */
    char *message;
} dm_diag_t;

typedef struct {
    dm_diag_t *items;
    size_t count, cap;
} dm_diags_t;

#define DM_DIAGS_INIT {NULL, 0, 0}

/* Adds a diagnostic at file:line:col (line 0: no position; file NULL
 * reads "-"). Past DM_DIAGS_MAX - 1 items one note says the rest were
 * dropped. Cannot fail (aborts when memory runs out, as dm_buf does). */
void dm_diags_add(dm_diags_t *d, const char *file, unsigned line, unsigned col,
                  const char *fmt, ...) DM_PRINTF(5, 6);
/* Sorts items[from..count) by line then column, positionless ones last;
 * stable. */
void dm_diags_sort(dm_diags_t *d, size_t from);
/* Writes "FILE:LINE:COL: error: MESSAGE\n" per diagnostic into out. */
void dm_diags_format(const dm_diags_t *d, dm_buf_t *out);
/* Frees every item; d is empty and reusable afterwards. */
void dm_diags_clear(dm_diags_t *d);

#endif
