/* query_remote_snap.c: an index of a remote table's rows by the column a
 * join probes, so that its probes cost no round trip each.
 *
 * A join whose inner side is a remote table sends one SELECT per outer
 * row ("WHERE k = ?"). The index holds rows of the table by their value of
 * k and knows which values it covers (all of their rows are held): the
 * values a dry run learned (query_remote_learn.c), fetched with "k IN
 * (...)" in batches or, when they are dense integers of a one-column
 * integer key, one "k BETWEEN lo AND hi"; or, once a query has sent
 * DM_QUERY_REMOTE_SNAP_AFTER probes nothing covered and the owner's row
 * count is at most DM_QUERY_REMOTE_SNAP_ROWS, the whole table (the same
 * columns, no WHERE), every value covered.
 * A probe is answered from memory when its value converts exactly to k's
 * type (query_conv.c): SQLite's equality is then equality of the
 * normalised value (integers and integral reals as one integer, other
 * reals by value, text by bytes), provided every row's value of k has the
 * column's own type, which is checked while indexing (a masked column may
 * not: then no index). SQLite still checks the equality on every row
 * returned. Any other probe goes to the owner as before. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <inttypes.h>
#include <stdio.h>

#include "query/query_remote.h"
#include "transport/rowbatch.h"

#define S_SLOTS_MIN 1024
#define S_IN_BYTES 65536 /* bytes of IN values per SELECT, besides DM_QUERY_IN_BATCH */
#define S_RANGES 8       /* key ranges of one index at most */

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

/* A key the index knows: text at kbytes + off while stored. */
typedef struct {
    s_key key;
    size_t off;
    size_t lit, litlen; /* its SQL literal in lits */
    bool covered;       /* fetched (else learned, to fetch) */
    size_t next;        /* next key index in the chain + 1, 0: end */
} s_kent;

struct dm_query_remote_snap {
    uint64_t used;
    int col;
    char *head;           /* "SELECT <used> FROM <product>[ WHERE <the plan's other terms>]" */
    bool where;           /* head has a WHERE */
    size_t nsel, pos;     /* values per row; k's index among them */
    bool whole;           /* every key covered */
    dm_buf_t rows;
    s_row *row;
    size_t nrows, cap;
    size_t *slot, nslots; /* chain heads: row index + 1 */
    s_kent *kent;
    size_t nk, kcap, npending;
    size_t *kslot, nkslots;
    dm_buf_t kbytes, lits;
    int64_t lo[S_RANGES], hi[S_RANGES]; /* integer key ranges covered */
    int nranges;
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
    free(s->head);
    dm_buf_free(&s->rows);
    free(s->row);
    free(s->slot);
    free(s->kent);
    free(s->kslot);
    dm_buf_free(&s->kbytes);
    dm_buf_free(&s->lits);
    free(s);
    *snap_p = NULL;
}

/* Indexes the rows of s->rows (s->nsel values each, k's at s->pos), from
 * scratch. False when a row is malformed or a value of k has another type
 * than the column's (then no index). */
static bool s_index(dm_query_remote_snap_t *s, dm_ftype type)
{
    const uint8_t *p = (const uint8_t *)s->rows.data, *end = p + s->rows.len;
    s->nrows = 0;
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
        for (size_t k = 0; k < s->nsel; k++) {
            dm_rowbatch_value_t v;
            if (!dm_rowbatch_read(&p, end, &v))
                return false;
            if (k != s->pos)
                continue;
            if (v.type != DM_ROWBATCH_NULL && v.type != s_expected(type))
                return false;
            keyed = s_norm(v.type, v.i, v.d, v.s, v.len, &r->key);
        }
        r->len = (size_t)((const char *)p - s->rows.data) - r->at;
        r->next = keyed ? 1 : 0; /* 1: to be chained below */
        s->nrows++;
    }
    size_t n = S_SLOTS_MIN;
    while (n < s->nrows)
        n *= 2;
    free(s->slot);
    if (!(s->slot = calloc(n, sizeof *s->slot)))
        return false;
    s->nslots = n;
    for (size_t i = 0; i < s->nrows; i++) {
        if (!s->row[i].next)
            continue; /* NULL equals nothing */
        size_t h = s_hash(&s->row[i].key) & (s->nslots - 1);
        s->row[i].next = s->slot[h];
        s->slot[h] = i + 1;
    }
    /* The keys of text values point into rows, which does not move until
     * the next fetch, which indexes again. */
    return true;
}

dm_query_remote_snap_t *dm_query_remote__snap_new(const dm_qtable_t *t, uint64_t used, int col,
                                                  const char *head, bool where)
{
    const dm_contract_t *c = t->ref->contract;
    if (col < 0 || (size_t)col >= c->nfields || !dm_query_remote__uses(c, used, (size_t)col))
        return NULL; /* the probed column would not be read: no index */
    dm_query_remote_snap_t *s = calloc(1, sizeof *s);
    if (!s || !(s->head = strdup(head))) {
        free(s);
        return NULL;
    }
    s->where = where;
    s->used = used;
    s->col = col;
    for (size_t f = 0; f < c->nfields; f++) {
        if ((int)f == col)
            s->pos = s->nsel;
        s->nsel += dm_query_remote__uses(c, used, f);
    }
    return s;
}

/* Runs sql on t's owner, appending its rows to s->rows. *fits false past
 * DM_QUERY_REMOTE_SNAP_BYTES. */
static dm_err s_read(const dm_query_remote_t *rm, const dm_qtable_t *t, const char *sql,
                     int64_t deadline_ns, const atomic_bool *cancel, dm_query_remote_snap_t *s,
                     dm_query_remote_count_t *count, bool *fits, dm_buf_t *why)
{
    dm_query_rscan_t *scan = NULL;
    count->trips++;
    dm_err rc = rm->open(rm->ctx, t->domain, t->name, sql, deadline_ns, cancel, &scan, why);
    bool done = false, first = true;
    while (!rc && !done && *fits) {
        uint32_t nrows = 0;
        size_t at = s->rows.len;
        rc = rm->next(scan, deadline_ns, cancel, &s->rows, &nrows, &done, why);
        count->trips += !first; /* the first batch came with the open */
        first = false;
        count->bytes += s->rows.len - at;
        count->rows += nrows;
        *fits = s->rows.len <= DM_QUERY_REMOTE_SNAP_BYTES;
    }
    if (scan)
        rm->close(scan);
    return rc;
}

dm_err dm_query_remote__snap_build(const dm_query_remote_t *rm, const dm_qtable_t *t, uint64_t used,
                                   int col, const char *head, bool where, int64_t deadline_ns,
                                   const atomic_bool *cancel, dm_query_remote_snap_t **out,
                                   dm_query_remote_count_t *count, dm_buf_t *why)
{
    *out = NULL;
    dm_query_remote_snap_t *s = dm_query_remote__snap_new(t, used, col, head, where);
    if (!s)
        return DM_OK;
    bool fits = true;
    dm_err rc = s_read(rm, t, head, deadline_ns, cancel, s, count, &fits, why);
    s->whole = true;
    if (!rc && fits && s_index(s, t->ref->contract->fields[col].type))
        *out = s;
    else
        dm_query_remote__snap_free(&s);
    return rc;
}

bool dm_query_remote__snap_matches(const dm_query_remote_snap_t *s, uint64_t used, int col,
                                   const char *head)
{
    return s->used == used && s->col == col && strcmp(s->head, head) == 0;
}

bool dm_query_remote__snap_whole(const dm_query_remote_snap_t *s) { return s->whole; }

size_t dm_query_remote__snap_pending(const dm_query_remote_snap_t *s) { return s->npending; }

size_t dm_query_remote__snap_rows(const dm_query_remote_snap_t *s) { return s->nrows; }

/* The normalised key of probe value v: 1, or 0 when it does not convert
 * exactly (the owner must be asked), -1 when no row can equal it. */
static int s_probe_key(const dm_query_remote_snap_t *s, const dm_contract_t *c, sqlite3_value *v,
                       s_key *k)
{
    bool exact, never;
    if (!dm_query_remote__pushable(c, (size_t)s->col, SQLITE_INDEX_CONSTRAINT_EQ, v, &exact, &never))
        return never ? -1 : 0;
    if (!exact)
        return 0;
    int t = sqlite3_value_type(v);
    bool ok = t == SQLITE_INTEGER ? s_norm(DM_ROWBATCH_INT, sqlite3_value_int64(v), 0, NULL, 0, k)
              : t == SQLITE_FLOAT ? s_norm(DM_ROWBATCH_REAL, 0, sqlite3_value_double(v), NULL, 0, k)
              : t == SQLITE_TEXT ? s_norm(DM_ROWBATCH_TEXT, 0, 0, (const char *)sqlite3_value_text(v),
                                          (size_t)sqlite3_value_bytes(v), k)
                                 : false;
    /* An exact conversion to a number column is by value, to a text column
     * by the text itself: the key's kind must be the column's. */
    return ok && (k->type == DM_ROWBATCH_TEXT) ==
                     (s_expected(c->fields[s->col].type) == DM_ROWBATCH_TEXT);
}

/* The key entry equal to k, or NULL. */
static s_kent *s_kfind(const dm_query_remote_snap_t *s, const s_key *k)
{
    for (size_t i = s->nkslots ? s->kslot[s_hash(k) & (s->nkslots - 1)] : 0; i; i = s->kent[i - 1].next) {
        s_kent *e = &s->kent[i - 1];
        s_key stored = e->key;
        stored.s = stored.type == DM_ROWBATCH_TEXT ? s->kbytes.data + e->off : NULL;
        if (s_equal(&stored, k))
            return e;
    }
    return NULL;
}

/* Chains the key entries again into n slots. */
static bool s_krehash(dm_query_remote_snap_t *s, size_t n)
{
    size_t *slot = calloc(n, sizeof *slot);
    if (!slot)
        return false;
    free(s->kslot);
    s->kslot = slot;
    s->nkslots = n;
    for (size_t i = 0; i < s->nk; i++) {
        s_key k = s->kent[i].key;
        k.s = k.type == DM_ROWBATCH_TEXT ? s->kbytes.data + s->kent[i].off : NULL;
        size_t h = s_hash(&k) & (n - 1);
        s->kent[i].next = slot[h];
        slot[h] = i + 1;
    }
    return true;
}

/* Whether integer key k lies in a covered range. */
static bool s_in_range(const dm_query_remote_snap_t *s, const s_key *k)
{
    for (int r = 0; k->type == DM_ROWBATCH_INT && r < s->nranges; r++)
        if (k->i >= s->lo[r] && k->i <= s->hi[r])
            return true;
    return false;
}

dm_query_remote_found dm_query_remote__snap_probe(const dm_query_remote_snap_t *s,
                                                  const dm_contract_t *c, sqlite3_value *v,
                                                  dm_buf_t *out)
{
    s_key k;
    int got = s_probe_key(s, c, v, &k);
    if (got < 0)
        return DM_QUERY_REMOTE_SERVED; /* no row: answered */
    if (got == 0)
        return DM_QUERY_REMOTE_ASK;
    if (!s->whole && !s_in_range(s, &k)) {
        const s_kent *e = s_kfind(s, &k);
        if (!e || !e->covered)
            return DM_QUERY_REMOTE_MISSING;
    }
    for (size_t i = s->nslots ? s->slot[s_hash(&k) & (s->nslots - 1)] : 0; i; i = s->row[i - 1].next)
        if (s_equal(&s->row[i - 1].key, &k))
            dm_buf_append(out, s->rows.data + s->row[i - 1].at, s->row[i - 1].len);
    return DM_QUERY_REMOTE_SERVED;
}

bool dm_query_remote__snap_learn(dm_query_remote_snap_t *s, const dm_contract_t *c, sqlite3_value *v,
                                 bool *full)
{
    s_key k;
    *full = s->kbytes.len + s->lits.len > DM_QUERY_REMOTE_KEY_BYTES;
    if (*full)
        return false;
    if (s->whole || s_probe_key(s, c, v, &k) != 1 || s_in_range(s, &k) || s_kfind(s, &k))
        return true; /* nothing to learn */
    if (s->nk == s->kcap) {
        size_t cap = s->kcap ? 2 * s->kcap : 256;
        s_kent *more = realloc(s->kent, cap * sizeof *more);
        if (!more)
            return false;
        s->kent = more;
        s->kcap = cap;
    }
    s_kent *e = &s->kent[s->nk];
    *e = (s_kent){.key = k, .off = s->kbytes.len, .lit = s->lits.len};
    if (k.type == DM_ROWBATCH_TEXT)
        dm_buf_append(&s->kbytes, k.s, k.len);
    e->key.s = NULL;
    if (!dm_query__sql_literal(v, &s->lits))
        return true; /* pushable said it renders: not reached */
    e->litlen = s->lits.len - e->lit;
    s->nk++;
    s->npending++;
    if (s->nk > s->nkslots)
        return s_krehash(s, s->nkslots ? 2 * s->nkslots : S_SLOTS_MIN);
    size_t h = s_hash(&k) & (s->nkslots - 1);
    e->next = s->kslot[h];
    s->kslot[h] = s->nk;
    return true;
}

/* Appends integer i as a literal SQLite reads back as that integer. */
static void s_int_lit(dm_buf_t *out, int64_t i)
{
    if (i == INT64_MIN)
        dm_buf_puts(out, "(-9223372036854775807-1)");
    else
        dm_buf_printf(out, "%" PRId64, i);
}

/* Whether the pending keys of s go as one range [*lo, *hi]: more than
 * DM_QUERY_REMOTE_RANGE_AFTER integers of c's one-column integer key that
 * fill DM_QUERY_REMOTE_RANGE_FILL percent of their range (the key is
 * unique: the range holds at most as many rows as values). */
static bool s_dense(const dm_query_remote_snap_t *s, const dm_contract_t *c, int64_t *lo, int64_t *hi)
{
    if (s->npending <= DM_QUERY_REMOTE_RANGE_AFTER || s->nranges == S_RANGES || c->npk != 1 ||
        c->pk[0] != (size_t)s->col || c->fields[s->col].type != DM_FT_INT)
        return false;
    bool any = false;
    for (size_t i = 0; i < s->nk; i++) {
        const s_kent *e = &s->kent[i];
        if (e->covered)
            continue;
        if (e->key.type != DM_ROWBATCH_INT)
            return false;
        *lo = !any || e->key.i < *lo ? e->key.i : *lo;
        *hi = !any || e->key.i > *hi ? e->key.i : *hi;
        any = true;
    }
    uint64_t span = (uint64_t)*hi - (uint64_t)*lo; /* + 1 values */
    return any && span < (uint64_t)s->npending * 100 / DM_QUERY_REMOTE_RANGE_FILL;
}

/* Sets sql to "<head> WHERE|AND <col>". */
static void s_where(dm_buf_t *sql, const dm_query_remote_snap_t *s, const dm_contract_t *c)
{
    dm_buf_reset(sql);
    dm_buf_puts(sql, s->head);
    dm_buf_puts(sql, s->where ? " AND " : " WHERE ");
    dm_query__quote_ident(sql, c->fields[s->col].name);
}

/* Appends the next IN batch of pending keys from *i on; false when none is left. */
static bool s_in_batch(const dm_query_remote_snap_t *s, size_t *i, dm_buf_t *sql)
{
    size_t m = 0, start = sql->len;
    dm_buf_puts(sql, " IN (");
    for (; *i < s->nk && m < DM_QUERY_IN_BATCH; (*i)++) {
        const s_kent *e = &s->kent[*i];
        if (e->covered)
            continue;
        if (m && sql->len - start + e->litlen > S_IN_BYTES)
            break;
        if (m++)
            dm_buf_puts(sql, ", ");
        dm_buf_append(sql, s->lits.data + e->lit, e->litlen);
    }
    dm_buf_putc(sql, ')');
    return m > 0;
}

dm_err dm_query_remote__snap_fetch(const dm_qctx_t *ctx, const dm_qtable_t *t,
                                   dm_query_remote_snap_t *s, dm_query_remote_count_t *count,
                                   uint64_t *batches, uint64_t *ranges, char **last_sql, bool *kept,
                                   dm_buf_t *why)
{
    const dm_contract_t *c = t->ref->contract;
    dm_buf_t sql = DM_BUF_INIT;
    int64_t lo = 0, hi = 0;
    bool fits = true;
    *kept = true;
    if (!s->npending)
        return DM_OK;
    dm_err rc = DM_OK;
    bool ranged = s_dense(s, c, &lo, &hi);
    for (size_t i = 0; !rc && fits && i < s->nk;) {
        s_where(&sql, s, c);
        if (ranged) {
            dm_buf_puts(&sql, " BETWEEN ");
            s_int_lit(&sql, lo);
            dm_buf_puts(&sql, " AND ");
            s_int_lit(&sql, hi);
            i = s->nk;
        } else if (!s_in_batch(s, &i, &sql)) {
            break;
        }
        free(*last_sql);
        *last_sql = strdup(sql.data);
        rc = s_read(ctx->remote, t, sql.data, ctx->deadline_ns, &ctx->cancel, s, count, &fits, why);
        *(ranged ? ranges : batches) += 1;
    }
    if (!rc && fits && s_index(s, c->fields[s->col].type)) {
        for (size_t i = 0; i < s->nk; i++)
            s->kent[i].covered = true;
        s->npending = 0;
        if (ranged) {
            s->lo[s->nranges] = lo;
            s->hi[s->nranges++] = hi;
        }
    } else if (!rc) {
        *kept = false;
    }
    dm_buf_free(&sql);
    return rc;
}

/* Reads t whole (with head) for probes like plan's, when it is small and
 * enough probes went to the owner; then the whole index replaces a
 * partial one. */
static dm_err s_read_whole(dm_qctx_t *ctx, dm_qtable_t *t, const dm_query_remote_plan_t *plan,
                           int col, const char *head, bool where, dm_buf_t *why)
{
    dm_qremote_t *r = t->remote;
    if ((r->snap && dm_query_remote__snap_whole(r->snap)) || r->snap_failed ||
        ++r->misses < DM_QUERY_REMOTE_SNAP_AFTER || !r->rows_est ||
        r->rows_est > DM_QUERY_REMOTE_SNAP_ROWS)
        return DM_OK;
    dm_query_remote_count_t n = {0};
    dm_query_remote_snap_t *whole = NULL;
    dm_err rc = dm_query_remote__snap_build(ctx->remote, t, plan->used, col, head, where,
                                            ctx->deadline_ns, &ctx->cancel, &whole, &n, why);
    r->trips += n.trips;
    r->rows += n.rows;
    r->bytes += n.bytes;
    r->snap_failed = !whole;
    if (whole) {
        dm_query_remote__snap_free(&r->snap);
        r->snap = whole;
    }
    return rc;
}

int dm_query_remote__probe_term(const dm_query_remote_plan_t *plan)
{
    int p = -1;
    for (int i = 0; i < plan->nterms; i++) {
        if (plan->terms[i].omit)
            continue;
        if (p >= 0 || plan->terms[i].op != DM_QUERY_REMOTE_EQ)
            return -1;
        p = i;
    }
    return plan->norder == 0 ? p : -1;
}

/* The SELECT of plan without its probe term p (the other terms, omitted
 * literals, are the same in every probe of the statement): *head
 * (malloc'd), *where when it has a WHERE, *empty when no row can match.
 * False when it cannot be one SELECT. */
static bool s_probe_head(const dm_qtable_t *t, const dm_query_remote_plan_t *plan, int p, int argc,
                         sqlite3_value **argv, char **head, bool *where, bool *empty)
{
    dm_query_remote_plan_t rest = *plan;
    sqlite3_value *args[DM_QUERY_REMOTE_MAX_TERMS];
    rest.nterms = 0;
    for (int i = 0; i < plan->nterms && i < argc; i++)
        if (i != p) {
            args[rest.nterms] = argv[i];
            rest.terms[rest.nterms++] = plan->terms[i];
        }
    char **sqls = NULL;
    size_t nsql = 0;
    dm_buf_t why = DM_BUF_INIT;
    *head = NULL;
    *where = rest.nterms > 0;
    dm_err rc = dm_query_remote__build(t, &rest, rest.nterms, args, &sqls, &nsql, empty, &why);
    dm_buf_free(&why);
    if (!rc && nsql == 1) {
        *head = sqls[0];
        sqls[0] = NULL;
    }
    dm_query_remote__sqls_free(sqls, nsql);
    return !rc && (*empty || *head);
}

/* serve's work once the probe's SELECT head is known. */
static dm_err s_serve(dm_qctx_t *ctx, dm_qtable_t *t, const dm_query_remote_plan_t *plan, int col,
                      const char *head, bool where, sqlite3_value *v, dm_buf_t *rows,
                      bool *served, dm_buf_t *why)
{
    dm_qremote_t *r = t->remote;
    const dm_contract_t *c = t->ref->contract;
    if (ctx->learning && !r->snap && !r->snap_failed)
        r->snap = dm_query_remote__snap_new(t, plan->used, col, head, where);
    bool ours = r->snap && dm_query_remote__snap_matches(r->snap, plan->used, col, head);
    dm_query_remote_found f = ours ? dm_query_remote__snap_probe(r->snap, c, v, rows)
                                   : DM_QUERY_REMOTE_MISSING;
    if (ctx->learning) {
        if (!ours || f != DM_QUERY_REMOTE_MISSING)
            return DM_OK;
        if (ctx->learn_keys >= ctx->learn_max) {
            ctx->learn_stop = true;
            return DM_OK;
        }
        size_t before = dm_query_remote__snap_pending(r->snap);
        bool full = false;
        if (!dm_query_remote__snap_learn(r->snap, c, v, &full) && !full)
            return DM_ERR_NOMEM;
        ctx->learn_stop |= full;
        size_t got = dm_query_remote__snap_pending(r->snap) - before;
        ctx->learn_keys += got;
        r->learned += got;
        return DM_OK;
    }
    if (f == DM_QUERY_REMOTE_SERVED || f == DM_QUERY_REMOTE_ASK) {
        *served = f == DM_QUERY_REMOTE_SERVED;
        r->snap_hits += *served;
        return DM_OK;
    }
    dm_err rc = s_read_whole(ctx, t, plan, col, head, where, why);
    if (rc || !r->snap || !dm_query_remote__snap_whole(r->snap) ||
        !dm_query_remote__snap_matches(r->snap, plan->used, col, head))
        return rc;
    *served = dm_query_remote__snap_probe(r->snap, c, v, rows) == DM_QUERY_REMOTE_SERVED;
    r->snap_hits += *served;
    return DM_OK;
}

dm_err dm_query_remote__serve(dm_qctx_t *ctx, dm_qtable_t *t, const dm_query_remote_plan_t *plan,
                              int argc, sqlite3_value **argv, dm_buf_t *rows, bool *served,
                              dm_buf_t *why)
{
    int p = dm_query_remote__probe_term(plan);
    char *head = NULL;
    bool where = false, empty = false;
    *served = ctx->learning; /* a dry run answers every probe, with nothing when not covered */
    if (p < 0 || p >= argc || !s_probe_head(t, plan, p, argc, argv, &head, &where, &empty)) {
        free(head);
        return DM_OK;
    }
    if (empty) { /* no row can match: as xFilter would find */
        *served = true;
        return DM_OK;
    }
    dm_err rc = s_serve(ctx, t, plan, plan->terms[p].col, head, where, argv[p], rows, served, why);
    free(head);
    return rc;
}
