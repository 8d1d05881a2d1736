/* diags.c: lists of diagnostics ("FILE:LINE:COL: error: MESSAGE"), the way
 * every validator (contract, YAML, Avro) reports all the problems of one
 * input rather than the first. */
#include "base/diags.h"
#include "base/array.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A copy of s; aborts when memory runs out, as dm_buf does. */
static char *s_strdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

static void s_diag_push(dm_diags_t *d, const char *file, unsigned line, unsigned col, char *msg)
{
    if (!dm_array_reserve(&d->items, &d->cap, d->count + 1, sizeof *d->items, 16))
        abort();
    d->items[d->count++] = (dm_diag_t){s_strdup(file ? file : "-"), line, col, msg};
}

void dm_diags_add(dm_diags_t *d, const char *file, unsigned line, unsigned col, const char *fmt,
                  ...)
{
    if (d->count >= DM_DIAGS_MAX)
        return;
    dm_buf_t b = DM_BUF_INIT;
    if (d->count == DM_DIAGS_MAX - 1) {
        dm_buf_printf(&b, "too many problems; only the first %d are shown", DM_DIAGS_MAX - 1);
        s_diag_push(d, file, 0, 0, dm_buf_steal(&b));
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    dm_buf_reserve(&b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b.data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b.len = (size_t)n;
    s_diag_push(d, file, line, col, dm_buf_steal(&b));
}

void dm_diags_format(const dm_diags_t *d, dm_buf_t *out)
{
    for (size_t i = 0; i < d->count; i++) {
        const dm_diag_t *g = &d->items[i];
        if (g->line)
            dm_buf_printf(out, "%s:%u:%u: error: %s\n", g->file, g->line, g->col, g->message);
        else
            dm_buf_printf(out, "%s: error: %s\n", g->file, g->message);
    }
}

void dm_diags_clear(dm_diags_t *d)
{
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].message);
    }
    free(d->items);
    d->items = NULL;
    d->count = d->cap = 0;
}

/* Orders a diagnostic: by line then column; positionless ones last. */
static bool s_diag_before(const dm_diag_t *a, const dm_diag_t *b)
{
    if (!a->line || !b->line)
        return a->line && !b->line;
    return a->line < b->line || (a->line == b->line && a->col < b->col);
}

/* An insertion sort: at most DM_DIAGS_MAX items. */
void dm_diags_sort(dm_diags_t *d, size_t from)
{
    for (size_t i = from + 1; i < d->count; i++) {
        dm_diag_t x = d->items[i];
        size_t j = i;
        while (j > from && s_diag_before(&x, &d->items[j - 1])) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = x;
    }
}
