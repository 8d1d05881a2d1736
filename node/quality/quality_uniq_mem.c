/* quality_uniq_mem.c: a unique check kept in the writer's memory. The
 * product's rows are the durable truth, so a check's value -> live-row
 * count map need not be stored: it lives in a hash table
 * (quality_uniq_table.c), and a batch costs one probe per row's value;
 * only the check's state (groups, extra rows, samples) is written, in the
 * batch's transaction, as before.
 *
 * The table is valid for the committed state it was stamped with (the
 * check state's token). A batch stamps a new token; if it does not commit
 * (the map grew and it runs again, or it failed), the next batch finds the
 * stored token to be the one before and undoes the last batch's changes
 * from a log. Any other mismatch (a start, a check rebuilt, a product
 * registered again) rebuilds the table by a scan of the product's rows in
 * the batch's transaction: the batch's own rows are in it, so its ops are
 * taken back out before they are applied with the counters following.
 *
 * Memory: every check's table of a store stays under a bound (the
 * least recently used others are dropped first, rebuilt by a scan when
 * their check runs again). A check whose table would pass it goes to the
 * durable index of quality_uniq.c: built from the table in the batch's
 * transaction, and used for the rest of the process (after a start, the
 * scan tries memory again and drops the index when the values fit). */
#include "quality/quality_priv.h"

#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

#define S_GROUP 16 /* ops whose slots are prefetched together */
#define S_SCAN_CHUNK 4096 /* a scan's rows applied at a time */

/* The ops' count and key bytes. */
static void s_measure(const dm_buf_t *ops, size_t *n, size_t *key_bytes)
{
    dm_quality__op_t o;
    *n = *key_bytes = 0;
    for (size_t off = 0; off < ops->len; (*n)++) {
        off += dm_quality__op_at((const uint8_t *)ops->data + off, &o);
        *key_bytes += o.klen;
    }
}

/* Takes f's table back to the committed state before its last batch. */
static void s_undo(dm_quality__ubloom_t *f)
{
    for (size_t i = f->nundo; i-- > 0;) {
        uint32_t *c = dm_quality__utable_at(f->table, (size_t)(f->undo[i] >> 1));
        *c = f->undo[i] & 1 ? *c + 1 : *c - 1;
    }
    f->nundo = 0;
    f->token = f->prev_token;
}

/* What applying a batch's ops needs besides the ops. */
typedef struct {
    dm_quality__ubloom_t *f;
    const dm_quality__ccheck_t *cc;
    const dm_schema_t *s;
    dm_quality__cstate_t *st; /* NULL: counts only */
    bool log;                 /* each change logged for s_undo */
    dm_buf_t text;            /* scratch: a sample's text made from its row */
} s_apply_ctx;

/* Applies op o (its hash h) in direction dir (see s_apply_ops). */
static void s_apply_op(s_apply_ctx *x, dm_quality__op_t *o, uint64_t h, int dir)
{
    dm_quality__ubloom_t *f = x->f;
    int sign = o->sign * dir;
    uint32_t *c = dm_quality__utable_find(f->table, o->key, o->klen, h, sign > 0);
    if (!c || (sign < 0 && *c == 0) || (sign > 0 && *c == UINT32_MAX))
        return; /* a row out that was never in: nothing to take (or 4G rows of one value) */
    uint32_t before = *c, after = sign > 0 ? before + 1 : before - 1;
    *c = after;
    if (x->st) {
        /* the text only when a sample may take or lose it */
        if ((before >= 2) != (after >= 2) &&
            (after < 2 || x->st->nsamples < DM_QUALITY_SAMPLES_MAX))
            dm_quality__op_text(x->cc, x->s, o, &x->text);
        dm_quality__uniq_moved(x->st, before, after, o->text, o->tlen);
    }
    if (x->log)
        f->undo[f->nundo++] = (int64_t)(dm_quality__utable_offset(f->table, c) << 1 | (sign < 0));
}

/* Applies ops (dir: 1, or -1 to take them back out) to x's table, which
 * has room for every +1 value. The ops go in groups whose slots are
 * prefetched first, then the entries those point to (a value found
 * compares its key there): with a million values nearly every probe is a
 * cache miss or two, and the group's misses overlap. */
static void s_apply_ops(s_apply_ctx *x, const dm_buf_t *ops, int dir)
{
    dm_quality__op_t o[S_GROUP];
    uint64_t h[S_GROUP];
    for (size_t off = 0; off < ops->len;) {
        size_t n = 0;
        for (; n < S_GROUP && off < ops->len; n++) {
            off += dm_quality__op_at((const uint8_t *)ops->data + off, &o[n]);
            h[n] = dm_quality__utable_hash(x->f->table, o[n].key, o[n].klen);
            dm_quality__utable_prefetch(x->f->table, h[n]);
        }
        for (size_t i = 0; i < n; i++)
            dm_quality__utable_prefetch_entry(x->f->table, h[i]);
        for (size_t i = 0; i < n; i++)
            s_apply_op(x, &o[i], h[i], dir);
    }
    dm_buf_free(&x->text);
}

typedef struct {
    dm_store_txn_t *t;
    dm_quality__ubloom_t *f;
    const dm_quality__ccheck_t *cc;
    const dm_schema_t *s;
    dm_quality__cstate_t *st; /* NULL: counts only */
    size_t max;
    dm_buf_t key, text, ops;
    size_t nops;
    bool full, nomem;
} s_scan_ctx;

/* Applies the scan's queued ops (the table grown first, within the
 * bound); false when it cannot grow (x says why). */
static bool s_scan_flush(s_scan_ctx *x)
{
    size_t n, kb;
    s_measure(&x->ops, &n, &kb);
    size_t g = dm_quality__utable_growth(x->f->table, n, kb);
    if (!dm_quality__ubloom_table_room(x->t, x->f, g, x->max))
        return !(x->full = true);
    if (!dm_quality__utable_reserve(x->f->table, n, kb))
        return !(x->nomem = true);
    s_apply_ctx a = {x->f, x->cc, x->s, x->st, false, DM_BUF_INIT};
    s_apply_ops(&a, &x->ops, 1);
    dm_buf_reset(&x->ops);
    x->nops = 0;
    return true;
}

/* Queues a row's value as a +1 op (its text too when st is kept: the
 * row does not outlast the call); applied S_SCAN_CHUNK at a time, so
 * that the probes are prefetched as a batch's are. */
static int s_scan_row(void *ctx, uint64_t seq, const void *row, size_t len)
{
    (void)seq;
    s_scan_ctx *x = ctx;
    if (!dm_quality__unique_key(x->cc, x->s, row, len, &x->key, x->st ? &x->text : NULL))
        return 0;
    dm_quality__op_put(&x->ops, 1, x->key.data, x->key.len, x->st ? x->text.data : "",
                       x->st ? x->text.len : 0);
    return ++x->nops >= S_SCAN_CHUNK && !s_scan_flush(x);
}

/* Builds f's table from every live row of pid (the batch's included);
 * st (NULL: leave it) gets the counters and samples. *full when the
 * table would pass max (f then has none). */
static dm_err s_scan(dm_store_txn_t *t, uint32_t pid, dm_quality__ubloom_t *f,
                     const dm_quality__ccheck_t *cc, const dm_schema_t *s,
                     dm_quality__cstate_t *st, size_t max, bool *full, dm_buf_t *why)
{
    int64_t t0 = dm_clock_mono_ns();
    s_scan_ctx x = {t, f, cc, s, st, max, DM_BUF_INIT, DM_BUF_INIT, DM_BUF_INIT, 0, false,
                    false};
    dm_err err = (f->table = dm_quality__utable_new()) ? DM_OK : DM_ERR_NOMEM;
    if (!err)
        err = dm_quality_db_rows(t, pid, s_scan_row, &x, why);
    if (!err && !x.full && !x.nomem && x.nops)
        s_scan_flush(&x);
    if (!err && x.nomem)
        err = DM_ERR_NOMEM;
    *full = x.full;
    if (!err && !x.full)
        dm_log_info("quality: product %u: a unique check's %zu values counted from the rows "
                    "in %.1f ms (%zu KB in memory)", pid, dm_quality__utable_count(f->table),
                    (double)(dm_clock_mono_ns() - t0) / 1e6,
                    dm_quality__utable_bytes(f->table) >> 10);
    if (err || x.full)
        dm_quality__ubloom_table_free(f);
    dm_buf_free(&x.key);
    dm_buf_free(&x.text);
    dm_buf_free(&x.ops);
    return err;
}

static int s_exists(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    *(bool *)ctx = true;
    return 1;
}

/* Whether check id has a durable index (base entries, runs or a count). */
static dm_err s_has_index(dm_store_txn_t *t, uint32_t pid, uint64_t id, bool *has,
                          dm_buf_t *why)
{
    static const uint8_t tags[] = {DM_QTAG_UNIQUE, DM_QTAG_PENDING, DM_QTAG_UNIQUE_N};
    dm_err err = DM_OK;
    *has = false;
    for (size_t i = 0; i < sizeof tags && !err && !*has; i++) {
        uint8_t k[DM_QUALITY_KEY_PREFIX];
        k[0] = tags[i];
        dm_quality__put64(k + 1, id);
        err = dm_quality_db_each(t, pid, k, sizeof k, false, s_exists, has, why);
    }
    return err;
}

typedef struct {
    dm_quality_db_delta_t *d;
    size_t n;
} s_entries;

static int s_take(void *ctx, const uint8_t *key, size_t klen, uint32_t count)
{
    s_entries *e = ctx;
    if (count)
        e->d[e->n++] = (dm_quality_db_delta_t){key, klen, count};
    return 0;
}

static int s_delta_cmp(const void *pa, const void *pb)
{
    const dm_quality_db_delta_t *a = pa, *b = pb;
    return dm_store_key_cmp(a->key, a->klen, b->key, b->klen);
}

/* Writes f's table as check id's durable index (in key order, one cursor
 * walk) and frees it: the check goes to quality_uniq.c for the rest of the
 * process. */
static dm_err s_to_durable(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                           dm_quality__ubloom_t *f, dm_buf_t *why)
{
    size_t n = dm_quality__utable_count(f->table);
    s_entries e = {malloc((n ? n : 1) * sizeof *e.d), 0};
    if (!e.d)
        return DM_ERR_NOMEM;
    dm_quality__utable_each(f->table, s_take, &e);
    qsort(e.d, e.n, sizeof *e.d, s_delta_cmp);
    uint8_t k[DM_QUALITY_KEY_PREFIX];
    k[0] = DM_QTAG_UNIQUE;
    dm_quality__put64(k + 1, id);
    int64_t made = 0;
    dm_err err = dm_quality__unique_clear(t, pid, id, why);
    if (!err)
        err = dm_quality_db_add_sorted(t, pid, k, sizeof k, e.d, e.n, &made, why);
    if (!err)
        err = dm_quality__uniq_set_entries(t, pid, id, made > 0 ? (uint64_t)made : 0, why);
    free(e.d);
    if (!err) {
        dm_log_info("quality: product %u: a unique check's %zu values are past the memory "
                    "bound; kept in the durable index from now on", pid, e.n);
        dm_quality__ubloom_table_free(f);
        dm_quality__ubloom_drop_filter(t, f);
        f->durable = true;
    }
    return err;
}

/* Makes f's table hold the committed state st describes. *applied when
 * the batch's ops are in it and in st already (a rebuild of st from the
 * rows); *path set when the check must go the durable way. */
static dm_err s_sync(dm_store_txn_t *t, uint32_t pid, const dm_quality__ccheck_t *cc,
                     const dm_schema_t *s, dm_quality__ubloom_t *f, dm_quality__cstate_t *st,
                     bool found, uint64_t rows_before, const dm_buf_t *ops, size_t max,
                     bool *applied, dm_quality__umem_path *path, dm_buf_t *why)
{
    *applied = false;
    if (f->table && found && st->token == f->token) {
        f->nundo = 0; /* the last batch committed */
        f->prev_token = f->token;
        f->clear_pending = false; /* and its delete of a stale index with it */
        return DM_OK;
    }
    if (f->table && found && st->token == f->prev_token) {
        s_undo(f); /* it did not */
        /* nor its delete of a stale index: once more, in this batch */
        return f->clear_pending ? dm_quality__unique_clear(t, pid, cc->id, why) : DM_OK;
    }
    dm_quality__ubloom_table_free(f);
    bool has = false, full = false;
    dm_err err = s_has_index(t, pid, cc->id, &has, why);
    if (err)
        return err;
    if (rows_before > 0) { /* none before: the table starts empty */
        err = s_scan(t, pid, f, cc, s, found ? NULL : st, max, &full, why);
        if (!err && full) {
            dm_quality__ubloom_drop_filter(t, f);
            f->durable = true;
            *path = found && has ? DM_QUALITY__UMEM_DURABLE : DM_QUALITY__UMEM_REBUILD;
            return DM_OK;
        }
        size_t n, kb;
        s_measure(ops, &n, &kb);
        if (!err && found && !dm_quality__utable_reserve(f->table, n, kb))
            err = DM_ERR_NOMEM; /* room for the values of the rows replaced */
        if (!err && found) { /* the state before the batch */
            s_apply_ctx x = {f, cc, s, NULL, false, DM_BUF_INIT};
            s_apply_ops(&x, ops, -1);
        }
        *applied = !found;
    } else if (!(f->table = dm_quality__utable_new())) {
        err = DM_ERR_NOMEM;
    }
    if (!err && has) /* in memory now: a stale index must not be read later */
        err = dm_quality__unique_clear(t, pid, cc->id, why);
    f->clear_pending = has;
    f->nundo = 0;
    f->token = f->prev_token = *applied ? dm_quality__ubloom_next_token(f) : st->token;
    return err;
}

dm_err dm_quality__umem_apply(dm_store_txn_t *t, uint32_t pid, const dm_quality__ccheck_t *cc,
                              const dm_schema_t *s, dm_quality__cstate_t *st, bool found,
                              uint64_t rows_before, const dm_buf_t *ops, size_t max,
                              dm_quality__umem_path *path, dm_buf_t *why)
{
    dm_quality__ubloom_t *f = NULL;
    bool applied = false;
    *path = DM_QUALITY__UMEM_DURABLE;
    dm_err err = dm_quality__ubloom_open(t, pid, cc->id, &f);
    if (err)
        return err;
    if (f->durable) {
        /* The batch that moved the check to the index may not have
         * committed (the map grew and it ran again, or it failed): then
         * there is no index, and the check starts over from the rows. */
        bool has = true;
        if (rows_before > 0 && (err = s_has_index(t, pid, cc->id, &has, why)))
            return err;
        if (has)
            return DM_OK;
        dm_quality__ubloom_drop_filter(t, f);
        f->durable = false;
    }
    err = s_sync(t, pid, cc, s, f, st, found, rows_before, ops, max, &applied, path, why);
    if (err || f->durable) {
        if (err)
            dm_quality__ubloom_table_free(f);
        return err;
    }
    if (!applied) {
        size_t n, kb;
        s_measure(ops, &n, &kb);
        size_t g = dm_quality__utable_growth(f->table, n, kb);
        if (!dm_quality__ubloom_table_room(t, f, g, max) ||
            !dm_quality__utable_reserve(f->table, n, kb))
            return s_to_durable(t, pid, cc->id, f, why); /* *path: durable */
        if (n > f->undo_cap) {
            int64_t *u = realloc(f->undo, n * sizeof *u);
            if (!u)
                return DM_ERR_NOMEM;
            f->undo = u;
            f->undo_cap = n;
        }
        f->prev_token = f->token;
        s_apply_ctx x = {f, cc, s, st, true, DM_BUF_INIT};
        s_apply_ops(&x, ops, 1);
    }
    /* A new token before the batch commits: if it does not, the stored
     * one is prev_token and the log takes the table back. */
    st->token = f->token = dm_quality__ubloom_next_token(f);
    *path = DM_QUALITY__UMEM_DONE;
    return DM_OK;
}
