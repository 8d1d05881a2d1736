/* sidx.c: a sorted index of strings (see sidx.h). */
#include "base/sidx.h"
#include "base/array.h"

#include <stdlib.h>
#include <string.h>

#define S_CAP_MIN 16 /* entries of the first allocation */

void dm_sidx_add(dm_sidx_t *x, const char *s, size_t len, size_t pos)
{
    if (!dm_array_reserve(&x->e, &x->cap, x->n + 1, sizeof *x->e, S_CAP_MIN))
        abort();
    x->e[x->n++] = (dm_sidx_ent_t){s, len, pos};
}

/* Bytewise, a prefix first. */
static int s_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

static int s_ent_cmp(const void *pa, const void *pb)
{
    const dm_sidx_ent_t *a = pa, *b = pb;
    int c = s_bytes_cmp(a->s, a->len, b->s, b->len);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

void dm_sidx_sort(dm_sidx_t *x)
{
    if (x->n > 1)
        qsort(x->e, x->n, sizeof *x->e, s_ent_cmp);
}

bool dm_sidx_dup(const dm_sidx_t *x, size_t i)
{
    return x->e[i].len == x->e[i - 1].len && memcmp(x->e[i].s, x->e[i - 1].s, x->e[i].len) == 0;
}

size_t dm_sidx_find(const dm_sidx_t *x, const char *s, size_t len)
{
    size_t lo = 0, hi = x->n; /* the first entry not less than s is in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s_bytes_cmp(x->e[mid].s, x->e[mid].len, s, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < x->n && x->e[lo].len == len && memcmp(x->e[lo].s, s, len) == 0)
        return x->e[lo].pos;
    return DM_SIDX_NONE;
}

void dm_sidx_free(dm_sidx_t *x)
{
    if (!x)
        return;
    free(x->e);
    x->e = NULL;
    x->n = x->cap = 0;
}
