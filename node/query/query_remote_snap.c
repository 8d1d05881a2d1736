/* query_remote_snap.c: a remote table read whole once, to answer a join's
 * probes without a round trip each.
 *
 * A join whose inner side is a remote table sends one SELECT per outer
 * row ("WHERE k = ?"). Once a query has sent DM_QUERY_REMOTE_SNAP_AFTER
 * such probes that the probe cache could not answer, and the owner's row
 * count is at most DM_QUERY_REMOTE_SNAP_ROWS, the table is read once
 * (the same columns, no WHERE) and its rows indexed by their value of k.
 * A probe is then answered from memory when its value converts exactly to
 * k's type (query_conv.c): SQLite's equality is then equality of the
 * normalised value (integers and integral reals as one integer, other
 * reals by value, text by bytes), provided every row's value of k has the
 * column's own type, which is checked while indexing (a masked column may
 * not: then no snapshot). SQLite still checks the equality on every row
 * returned. Any other probe goes to the owner as before. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_remote.h"
#include "transport/rowbatch.h"

#define S_SLOTS_MIN 1024

/* A normalised key value. */
typedef struct {
    uint8_t type; /* DM_ROWBATCH_INT (integers and integral reals), REAL or TEXT */
    int64_t i;
    double d;
    const char *s;
    size_t len;
} s_key;

typedef struct {
    size_t at, len; /* the row's bytes in rows */
    s_key key;
    size_t next;    /* next row index in the chain + 1, 0: end */
} s_row;

struct dm_query_remote_snap {
    uint64_t used;
    int col;
    dm_buf_t rows;
    s_row *row;
    size_t nrows, cap;
    size_t *slot, nslots; /* chain heads: row index + 1 */
};

/* Normalises a numeric or text value; false for NULL and blobs. */
static bool s_norm(dm_rowbatch_type type, int64_t i, double d, const char *s, size_t len, s_key *k)
{
    memset(k, 0, sizeof *k);
    if (type == DM_ROWBATCH_REAL && d == floor(d) && d >= -0x1p63 && d < 0x1p63) {
        type = DM_ROWBATCH_INT;
        i = (int64_t)d;
    }
    k->type = (uint8_t)type;
    if (type == DM_ROWBATCH_INT)
        k->i = i;
    else if (type == DM_ROWBATCH_REAL)
        k->d = d;
    else if (type == DM_ROWBATCH_TEXT)
        k->s = s, k->len = len;
    return type == DM_ROWBATCH_INT || type == DM_ROWBATCH_REAL || type == DM_ROWBATCH_TEXT;
}

static size_t s_hash(const s_key *k)
{
    uint64_t h = 1469598103934665603ull ^ k->type;
    const unsigned char *p = k->type == DM_ROWBATCH_TEXT ? (const unsigned char *)k->s
                             : k->type == DM_ROWBATCH_INT ? (const unsigned char *)&k->i
                                                          : (const unsigned char *)&k->d;
    size_t n = k->type == DM_ROWBATCH_TEXT ? k->len : 8;
    for (size_t j = 0; j < n; j++)
        h = (h ^ p[j]) * 1099511628211ull;
    return (size_t)h;
}

static bool s_equal(const s_key *a, const s_key *b)
{
    if (a->type != b->type)
        return false;
    if (a->type == DM_ROWBATCH_INT)
        return a->i == b->i;
    if (a->type == DM_ROWBATCH_REAL)
        return a->d == b->d;
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

/* The rowbatch type every value of a column of type t has. */
static dm_rowbatch_type s_expected(dm_ftype t)
{
    switch (t) {
    case DM_FT_INT:
    case DM_FT_BOOLEAN: return DM_ROWBATCH_INT;
    case DM_FT_DOUBLE: return DM_ROWBATCH_REAL;
    default: return DM_ROWBATCH_TEXT;
    }
}

void dm_query_remote__snap_free(dm_query_remote_snap_t **snap_p)
{
    dm_query_remote_snap_t *s = *snap_p;
    if (!s)
        return;
    dm_buf_free(&s->rows);
    free(s->row);
    free(s->slot);
    free(s);
    *snap_p = NULL;
}

/* Indexes the rows of s->rows (nsel values each, k's at index pos).
 * False when a row is malformed or a value of k has another type than the
 * column's (then no snapshot). */
static bool s_index(dm_query_remote_snap_t *s, size_t nsel, size_t pos, dm_ftype type)
{
    const uint8_t *p = (const uint8_t *)s->rows.data, *end = p + s->rows.len;
    while (p < end) {
        if (s->nrows == s->cap) {
            s_row *more = realloc(s->row, (s->cap = s->cap ? 2 * s->cap : 1024) * sizeof *more);
            if (!more)
                return false;
            s->row = more;
        }
        s_row *r = &s->row[s->nrows];
        r->at = (size_t)((const char *)p - s->rows.data);
        bool keyed = false;
        for (size_t k = 0; k < nsel; k++) {
            dm_rowbatch_value_t v;
            if (!dm_rowbatch_read(&p, end, &v))
                return false;
            if (k != pos)
                continue;
            if (v.type != DM_ROWBATCH_NULL && v.type != s_expected(type))
                return false;
            keyed = s_norm(v.type, v.i, v.d, v.s, v.len, &r->key);
        }
        r->len = (size_t)((const char *)p - s->rows.data) - r->at;
        r->next = keyed ? 1 : 0; /* 1: to be chained below */
        s->nrows++;
    }
    s->nslots = S_SLOTS_MIN;
    while (s->nslots < s->nrows)
        s->nslots *= 2;
    if (!(s->slot = calloc(s->nslots, sizeof *s->slot)))
        return false;
    for (size_t i = 0; i < s->nrows; i++) {
        if (!s->row[i].next)
            continue; /* NULL equals nothing */
        size_t h = s_hash(&s->row[i].key) & (s->nslots - 1);
        s->row[i].next = s->slot[h];
        s->slot[h] = i + 1;
    }
    /* The keys of text values point into rows, which no longer moves. */
    return true;
}

dm_err dm_query_remote__snap_build(const dm_query_remote_t *rm, const dm_qtable_t *t,
                                   const dm_query_remote_plan_t *plan, int col, int64_t deadline_ns,
                                   const atomic_bool *cancel, dm_query_remote_snap_t **out,
                                   dm_query_remote_count_t *count, dm_buf_t *why)
{
    const dm_contract_t *c = t->ref->contract;
    dm_query_remote_plan_t all = {.used = plan->used};
    char **sqls = NULL;
    size_t nsql = 0, nsel = 0, pos = 0;
    bool empty = false;
    *out = NULL;
    if (col < 0 || (size_t)col >= c->nfields || !dm_query_remote__uses(c, plan->used, (size_t)col))
        return DM_OK; /* the probed column would not be read: no index */
    for (size_t f = 0; f < c->nfields; f++) {
        if ((int)f == col)
            pos = nsel;
        nsel += dm_query_remote__uses(c, plan->used, f);
    }
    dm_err rc = dm_query_remote__build(t, &all, 0, NULL, &sqls, &nsql, &empty, why);
    if (rc || nsql != 1) {
        dm_query_remote__sqls_free(sqls, nsql);
        return rc;
    }
    dm_query_remote_snap_t *s = calloc(1, sizeof *s);
    dm_query_rscan_t *scan = NULL;
    if (!s) {
        dm_query_remote__sqls_free(sqls, nsql);
        return DM_ERR_NOMEM;
    }
    s->used = plan->used;
    s->col = col;
    count->trips++;
    rc = rm->open(rm->ctx, t->domain, t->name, sqls[0], deadline_ns, &scan, why);
    bool done = false, fits = true;
    while (!rc && !done && fits) {
        uint32_t nrows = 0;
        size_t at = s->rows.len;
        rc = rm->next(scan, deadline_ns, cancel, &s->rows, &nrows, &done, why);
        count->trips++;
        count->bytes += s->rows.len - at;
        count->rows += nrows;
        fits = s->rows.len <= DM_QUERY_REMOTE_SNAP_BYTES;
    }
    if (scan)
        rm->close(scan);
    dm_query_remote__sqls_free(sqls, nsql);
    if (!rc && fits && s_index(s, nsel ? nsel : 1, pos, c->fields[col].type))
        *out = s;
    else
        dm_query_remote__snap_free(&s);
    return rc;
}

bool dm_query_remote__snap_matches(const dm_query_remote_snap_t *s, uint64_t used, int col)
{
    return s->used == used && s->col == col;
}

bool dm_query_remote__snap_probe(const dm_query_remote_snap_t *s, const dm_contract_t *c,
                                 sqlite3_value *v, dm_buf_t *out)
{
    bool exact, never;
    if (!dm_query_remote__pushable(c, (size_t)s->col, SQLITE_INDEX_CONSTRAINT_EQ, v, &exact, &never))
        return never; /* never: no row, answered */
    if (!exact)
        return false;
    s_key k;
    int t = sqlite3_value_type(v);
    bool ok = t == SQLITE_INTEGER ? s_norm(DM_ROWBATCH_INT, sqlite3_value_int64(v), 0, NULL, 0, &k)
              : t == SQLITE_FLOAT ? s_norm(DM_ROWBATCH_REAL, 0, sqlite3_value_double(v), NULL, 0, &k)
              : t == SQLITE_TEXT ? s_norm(DM_ROWBATCH_TEXT, 0, 0, (const char *)sqlite3_value_text(v),
                                          (size_t)sqlite3_value_bytes(v), &k)
                                 : false;
    /* An exact conversion to a number column is by value, to a text column
     * by the text itself: the key's kind must be the column's. */
    if (!ok || (k.type == DM_ROWBATCH_TEXT) != (s_expected(c->fields[s->col].type) == DM_ROWBATCH_TEXT))
        return false;
    for (size_t i = s->slot[s_hash(&k) & (s->nslots - 1)]; i; i = s->row[i - 1].next)
        if (s_equal(&s->row[i - 1].key, &k))
            dm_buf_append(out, s->rows.data + s->row[i - 1].at, s->row[i - 1].len);
    return true;
}

size_t dm_query_remote__snap_rows(const dm_query_remote_snap_t *s) { return s->nrows; }
