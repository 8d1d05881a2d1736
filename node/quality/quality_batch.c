/* quality_batch.c: the writer's hook (dm_store_hook_t). While a batch
 * commits, row() folds each row that becomes live (and the row it
 * replaces) into per-check deltas in memory; finish() applies them to the
 * stored state in the batch's own transaction: the uniqueness index (one
 * pending run per batch, quality_uniq.c) and its two counters, failing-row
 * counts, the newest event time. A check
 * with no state on a product that already has rows (added by an upgrade,
 * or changed) is rebuilt from the rows once, in the same transaction. At
 * the end of an ingest run finish() also measures the row count and
 * judges and stores the full report. */
#include "quality/quality_priv.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/radix.h"

#define S_OPS_FIRST (256u << 10) /* a unique check's first ops buffer, in bytes */
#define S_SCRATCH_BUFS 8 /* unique checks whose ops buffer a scratch keeps */
/* The largest buffer it keeps: a group of 50,000 rows takes ~4 MB per
 * check; a rare larger batch's is not held for good (8 x 8 MB at most). */
#define S_SCRATCH_BYTES_MAX ((size_t)8 << 20)

struct dm_quality_scratch {
    dm_buf_t ops[S_SCRATCH_BUFS];
};

typedef struct {
    dm_quality__ccheck_t cc;
    int64_t fail_delta;
    int64_t newest;
    uint64_t ahead;      /* freshness: rows whose event time is beyond the clock's bound */
    int64_t ahead_max;   /* freshness: the most one of them was ahead, in ms */
    size_t adds;     /* failing samples taken this attempt */
    dm_buf_t ops;    /* i8 sign, u16 klen, key, u16 tlen, text; back to back */
} s_acc;

struct dm_quality_batch {
    dm_store_t *store;
    uint32_t pid;
    const dm_contract_t *c;
    int64_t now_ms;
    const dm_schema_t *schema; /* borrowed: the registry's, compiled once per contract */
    s_acc *acc;
    size_t nacc;
    bool end_run, has_report;
    bool keyed;          /* rows carry their unique keys (quality_keys.c) */
    size_t expect_rows;  /* rows the batch will have, about (0: unknown) */
    dm_quality_scratch_t *scratch; /* lends the unique checks' ops buffers */
    uint64_t fold_min;
    size_t table_max;
    dm_qreport_t report;
    dm_buf_t key, text, tmp;
    dm_check_t sla; /* the state sla.freshness reads, when no check keeps it */
};

/* Folds one row (sign +1: becomes live, -1: replaced) into a's deltas;
 * keyed: the row is one of the batch's own, followed by the block of keys
 * quality_keys.c made (never a row read back from the store). */
static void s_fold(dm_quality_batch_t *b, s_acc *a, int sign, const void *row, size_t len,
                   bool keyed)
{
    const dm_check_t *k = a->cc.k;
    if (k->rule == DM_CHECK_UNIQUE) {
        const uint8_t *key;
        size_t klen;
        int given = sign > 0 && keyed ? dm_quality__key_given(row, len, a->cc.id, &key, &klen)
                                      : -1;
        if (given == 0)
            return; /* a null column: never a duplicate */
        /* a replaced row's memory does not last: its text now; a live
         * row's text only if a sample needs it */
        if (given < 0) {
            if (!dm_quality__unique_key(&a->cc, b->schema, row, len, &b->key,
                                        sign < 0 ? &b->text : NULL))
                return;
            key = (const uint8_t *)b->key.data;
            klen = b->key.len;
        }
        if (!a->ops.len) /* a row per op: sized once (a no-op for a scratch buffer that fits) */
            dm_buf_reserve(&a->ops, b->expect_rows ? b->expect_rows * DM_QUALITY__OP_ROW_BYTES(klen)
                                                   : S_OPS_FIRST);
        if (sign < 0)
            dm_quality__op_put(&a->ops, sign, key, klen, b->text.data, b->text.len);
        else
            dm_quality__op_put_row(&a->ops, sign, key, klen, row, len);
    } else if (k->rule == DM_CHECK_FRESHNESS) {
        int64_t ms;
        if (sign <= 0 || !dm_quality__event_ms(&a->cc, b->schema, row, len, &ms))
            return;
        if (ms > b->now_ms && ms - b->now_ms > DM_QUALITY_CLOCK_SKEW_MS) {
            a->ahead++; /* a future time would mask freshness for as long as it is ahead */
            if (ms - b->now_ms > a->ahead_max)
                a->ahead_max = ms - b->now_ms;
        } else if (ms > a->newest) {
            a->newest = ms;
        }
    } else if (dm_quality__row_fails(&a->cc, b->schema, row, len, &b->tmp)) {
        a->fail_delta += sign;
        if (sign < 0 || a->adds++ < DM_QUALITY_SAMPLES_MAX) {
            /* the sample names its row: "KEY: value" (the same text for
             * the row replaced, so that its sample is the one dropped) */
            dm_quality__keyed_sample(b->c, b->schema, row, len, &b->tmp, &b->text);
            dm_quality__op_put(&a->ops, sign, NULL, 0, b->text.data, b->text.len);
        }
    }
}

static void s_begin(void *ctx)
{
    dm_quality_batch_t *b = ctx;
    for (size_t i = 0; i < b->nacc; i++) {
        b->acc[i].fail_delta = 0;
        b->acc[i].newest = DM_QUALITY_NO_EVENT;
        b->acc[i].ahead = 0;
        b->acc[i].ahead_max = 0;
        b->acc[i].adds = 0;
        dm_buf_reset(&b->acc[i].ops);
    }
    dm_quality_report_clear(&b->report);
    b->has_report = false;
}

static dm_err s_row(void *ctx, const void *old_row, size_t old_len, const void *new_row,
                    size_t new_len, dm_buf_t *why)
{
    (void)why;
    dm_quality_batch_t *b = ctx;
    for (size_t i = 0; i < b->nacc; i++) {
        if (old_row)
            s_fold(b, &b->acc[i], -1, old_row, old_len, false);
        s_fold(b, &b->acc[i], 1, new_row, new_len, b->keyed);
    }
    return DM_OK;
}

typedef dm_quality__op_t s_opv;

static int s_opv_cmp(const void *pa, const void *pb)
{
    const s_opv *a = pa, *b = pb;
    return dm_store_key_cmp(a->key, a->klen, b->key, b->klen);
}

/* Parses a's ops into an array (the caller frees it); the texts made
 * from rows go to texts, which the array borrows. */
static s_opv *s_ops(dm_quality_batch_t *b, const s_acc *a, dm_buf_t *texts, size_t *n)
{
    size_t cap = 0;
    dm_quality__op_t o;
    for (size_t off = 0; off < a->ops.len; cap++)
        off += dm_quality__op_at((const uint8_t *)a->ops.data + off, &o);
    s_opv *v = malloc((cap ? cap : 1) * sizeof *v);
    if (!v)
        abort();
    *n = 0;
    for (size_t off = 0; off < a->ops.len; (*n)++) {
        s_opv *x = &v[*n];
        off += dm_quality__op_at((const uint8_t *)a->ops.data + off, x);
        if (!x->row)
            continue;
        dm_quality__op_text(&a->cc, b->schema, x, &b->text);
        x->text = (const char *)(uintptr_t)texts->len; /* an offset until texts stops moving */
        dm_buf_append(texts, b->text.data, x->tlen);
        x->row = texts; /* marks it */
    }
    for (size_t i = 0; i < *n; i++)
        if (v[i].row == texts) {
            v[i].text = texts->data ? texts->data + (uintptr_t)v[i].text : "";
            v[i].row = NULL;
        }
    return v;
}

/* The distinct values of sorted ops v[0..n) with their net deltas (zero
 * dropped) into out; returns how many. A value's text is that of a row
 * that holds it, when one does. */
static size_t s_distinct(const s_opv *v, size_t n, dm_quality__uval_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int64_t delta = 0;
        const s_opv *named = &v[i];
        for (; j < n && s_opv_cmp(&v[i], &v[j]) == 0; j++) {
            delta += v[j].sign;
            if (v[j].sign > 0)
                named = &v[j];
        }
        if (delta)
            out[m++] = (dm_quality__uval_t){named->key, named->klen, named->text, named->tlen,
                                            delta};
        i = j;
    }
    return m;
}

/* A sort key (base/radix.h): 8 bytes of a value's key past the batch's common prefix,
 * big-endian, so that most comparisons are one integer comparison. */
typedef struct {
    uint64_t k;
    const s_opv *o;
} s_skey;

static int s_skey_cmp(const void *pa, const void *pb)
{
    const s_skey *a = pa, *b = pb;
    if (a->k != b->k)
        return a->k < b->k ? -1 : 1;
    return s_opv_cmp(a->o, b->o);
}

/* Sorts v[0..n) by key (s_opv_cmp's order) into out. The common prefix
 * of the keys (for customer ids, "cust-000") would otherwise make every
 * comparison a memcmp past it. false when out of memory. */
static bool s_sort(const s_opv *v, size_t n, s_opv *out)
{
    size_t lcp = n ? v[0].klen : 0;
    for (size_t i = 1; i < n && lcp; i++) {
        size_t j = 0, m = v[i].klen < lcp ? v[i].klen : lcp;
        while (j < m && v[i].key[j] == v[0].key[j])
            j++;
        lcp = j;
    }
    s_skey *s = malloc((n ? n : 1) * 2 * sizeof *s);
    if (!s)
        return false;
    for (size_t i = 0; i < n; i++)
        s[i] = (s_skey){dm_radix_prefix(v[i].key + lcp, v[i].klen - lcp), &v[i]};
    dm_radix_sort(s, s + n, n, sizeof *s, s_skey_cmp); /* base/radix.h */
    for (size_t i = 0; i < n; i++)
        out[i] = *s[i].o;
    free(s);
    return true;
}

/* unique: a's values applied to st, through a pending run, or straight
 * into the index (direct: a rebuild, counting entries). */
static dm_err s_apply_unique(dm_quality_batch_t *b, dm_store_txn_t *t, s_acc *a,
                             dm_quality__cstate_t *st, s_opv *v, size_t n, int64_t *entries,
                             dm_buf_t *why)
{
    dm_quality__uval_t *u = malloc((n ? n : 1) * sizeof *u);
    s_opv *sorted = malloc((n ? n : 1) * sizeof *sorted);
    /* sorted: one index update per distinct value, in key order */
    if (!u || !sorted || !s_sort(v, n, sorted)) {
        free(u);
        free(sorted);
        return DM_ERR_NOMEM;
    }
    size_t m = s_distinct(sorted, n, u);
    dm_err err = DM_OK;
    if (!entries)
        err = dm_quality__uniq_apply(t, b->pid, a->cc.id, st, u, m, b->fold_min, why);
    for (size_t i = 0; entries && i < m && !err; i++)
        err = dm_quality__uniq_direct(t, b->pid, a->cc.id, st, &u[i], entries, why);
    free(u);
    free(sorted);
    return err;
}

/* Applies a's deltas to st (entries: see s_apply_unique). */
static dm_err s_apply(dm_quality_batch_t *b, dm_store_txn_t *t, s_acc *a,
                      dm_quality__cstate_t *st, int64_t *entries, dm_buf_t *why)
{
    size_t n = 0;
    dm_buf_t texts = DM_BUF_INIT;
    s_opv *v = s_ops(b, a, &texts, &n);
    dm_err err = DM_OK;
    if (a->cc.k->rule == DM_CHECK_UNIQUE) {
        err = s_apply_unique(b, t, a, st, v, n, entries, why);
    } else if (a->cc.k->rule == DM_CHECK_FRESHNESS) {
        if (a->newest > st->newest)
            st->newest = a->newest;
        st->ahead += a->ahead;
        if (a->ahead_max > st->ahead_max)
            st->ahead_max = a->ahead_max;
    } else {
        int64_t f = (int64_t)st->failing + a->fail_delta;
        st->failing = f < 0 ? 0 : (uint64_t)f;
        for (size_t i = 0; i < n; i++)
            if (v[i].sign < 0)
                dm_quality__sample_drop(st, v[i].text, v[i].tlen);
        for (size_t i = 0; i < n; i++)
            if (v[i].sign > 0)
                dm_quality__sample_add(st, v[i].text, v[i].tlen);
    }
    free(v);
    dm_buf_free(&texts);
    return err;
}

typedef struct {
    dm_quality_batch_t *b;
    s_acc *a;
    dm_quality__cstate_t *st;
    dm_store_txn_t *t;
    dm_err err;
    int64_t entries; /* unique: index entries made */
    dm_buf_t *why;
} s_rebuild_ctx;

static int s_rebuild_row(void *ctx, uint64_t seq, const void *row, size_t len)
{
    (void)seq;
    s_rebuild_ctx *r = ctx;
    dm_buf_reset(&r->a->ops);
    r->a->fail_delta = 0;
    r->a->ahead = 0; /* s_apply adds it per row */
    r->a->adds = r->st->nsamples;
    s_fold(r->b, r->a, 1, row, len, false); /* a stored row: nothing after it */
    r->err = s_apply(r->b, r->t, r->a, r->st, &r->entries, r->why);
    return r->err != DM_OK;
}

/* Builds a's state from every live row of the product (the batch's rows
 * included: they are in the log by now). */
static dm_err s_rebuild(dm_quality_batch_t *b, dm_store_txn_t *t, s_acc *a,
                        dm_quality__cstate_t *st, dm_buf_t *why)
{
    memset(st, 0, sizeof *st);
    st->newest = DM_QUALITY_NO_EVENT;
    dm_err err = DM_OK;
    if (a->cc.k->rule == DM_CHECK_UNIQUE) {
        dm_quality__ubloom_forget(t, b->pid, a->cc.id); /* the index is written directly */
        if ((err = dm_quality__unique_clear(t, b->pid, a->cc.id, why)))
            return err;
    }
    a->newest = DM_QUALITY_NO_EVENT;
    s_rebuild_ctx r = {b, a, st, t, DM_OK, 0, why};
    err = dm_quality_db_rows(t, b->pid, s_rebuild_row, &r, why);
    dm_buf_reset(&a->ops);
    if (!err && a->newest > st->newest)
        st->newest = a->newest;
    if (!err && !r.err && a->cc.k->rule == DM_CHECK_UNIQUE)
        err = dm_quality__uniq_set_entries(t, b->pid, a->cc.id,
                                           r.entries > 0 ? (uint64_t)r.entries : 0, why);
    return err ? err : r.err;
}

/* Deletes the state of checks the contract no longer has. */
static dm_err s_prune(dm_quality_batch_t *b, dm_store_txn_t *t, dm_buf_t *why)
{
    uint64_t *keep = malloc((b->nacc ? b->nacc : 1) * sizeof *keep);
    if (!keep)
        return DM_ERR_NOMEM;
    for (size_t i = 0; i < b->nacc; i++)
        keep[i] = b->acc[i].cc.id;
    dm_err err = dm_quality__prune(t, b->pid, keep, b->nacc, why);
    free(keep);
    return err;
}

/* Logs the unreadable state named in why past mark, and forgets it. */
static void s_unreadable(const dm_quality_batch_t *b, dm_buf_t *why, size_t mark)
{
    dm_log_warn("quality: product %u: %s; rebuilding it from the rows", b->pid,
                why && why->len > mark ? why->data + mark : "corrupt state");
    dm_buf_cut(why, mark);
}

static dm_err s_finish(void *ctx, dm_store_txn_t *t, const dm_batch_result_t *result,
                       dm_buf_t *why)
{
    dm_quality_batch_t *b = ctx;
    uint64_t records = 0, quarantined = 0;
    dm_quality__pstate_t ps;
    dm_err err = dm_quality_db_counts(t, b->pid, &records, &quarantined, why);
    if (!err)
        err = dm_quality__pstate_get(t, b->pid, &ps, why);
    uint64_t before = records - (result->inserted < records ? result->inserted : records);
    bool fresh_state = false;
    for (size_t i = 0; i < b->nacc && !err; i++) {
        s_acc *a = &b->acc[i];
        dm_quality__cstate_t st;
        bool found = false;
        size_t mark = why ? why->len : 0;
        err = dm_quality__cstate_get(t, b->pid, a->cc.id, &st, &found, why);
        if (err == DM_ERR_STORE) { /* unreadable state is rebuilt, not a reason to refuse rows */
            s_unreadable(b, why, mark);
            found = false;
            err = DM_OK;
        }
        if (err)
            break;
        fresh_state = fresh_state || !found;
        dm_quality__umem_path path = DM_QUALITY__UMEM_DURABLE;
        if (a->cc.k->rule == DM_CHECK_UNIQUE) /* in memory unless past its bound */
            err = dm_quality__umem_apply(t, b->pid, &a->cc, b->schema, &st, found, before,
                                         &a->ops, b->table_max, &path, why);
        if (!err && path == DM_QUALITY__UMEM_REBUILD)
            err = s_rebuild(b, t, a, &st, why);
        else if (!err && path == DM_QUALITY__UMEM_DURABLE)
            err = !found && before > 0 ? s_rebuild(b, t, a, &st, why)
                                       : s_apply(b, t, a, &st, NULL, why);
        if (err == DM_ERR_STORE && a->cc.k->rule == DM_CHECK_UNIQUE) { /* a corrupt run */
            s_unreadable(b, why, mark);
            err = s_rebuild(b, t, a, &st, why);
        }
        if (!err)
            err = dm_quality__cstate_put(t, b->pid, a->cc.id, &st, why);
    }
    /* State of checks the contract no longer has would be stale if they came
     * back: dropped when a check is new to a product with rows, and after
     * every run (a walk over the product's few check states). */
    if (!err && ((fresh_state && before > 0) || b->end_run))
        err = s_prune(b, t, why);
    if (err)
        return err;
    ps.last_ingest_ms = b->now_ms;
    if (b->end_run) {
        if ((err = dm_quality__measure_add(t, b->pid, &ps, b->now_ms, records, why)) ||
            (err = dm_quality__judge(t, b->pid, b->c, b->now_ms, &ps, &b->report, why)) ||
            (err = dm_quality__report_store(t, b->pid, &ps, &b->report, why)))
            return err;
        b->has_report = true;
    }
    return dm_quality__pstate_put(t, b->pid, &ps, why);
}

/* Whether check k keeps state the hook must maintain. */
static bool s_stateful(const dm_contract_t *c, const dm_check_t *k)
{
    if (k->rule == DM_CHECK_UNIQUE)
        return k->ncolumns > 0;
    if (k->rule == DM_CHECK_FRESHNESS)
        return dm_quality__event_field(c, k) >= 0;
    return dm_contract_check_has_rate(k) && k->field_index >= 0;
}

dm_err dm_quality_batch_new(dm_store_t *store, uint32_t pid, const dm_schema_t *s,
                            int64_t now_ms, dm_quality_batch_t **out, dm_store_hook_t *hook,
                            dm_buf_t *why)
{
    const dm_contract_t *c = dm_schema_contract(s);
    *out = NULL;
    dm_quality_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return DM_ERR_NOMEM;
    b->store = store;
    b->pid = pid;
    b->c = c;
    b->schema = s;
    b->now_ms = now_ms;
    b->fold_min = DM_QUALITY_UNIQ_FOLD_MIN;
    b->table_max = DM_QUALITY_UNIQ_TABLES_MAX;
    dm_err err = DM_OK;
    size_t want = 0;
    for (size_t i = 0; i < c->nchecks; i++)
        want += s_stateful(c, &c->checks[i]);
    bool sla = dm_quality__sla_event_check(c, &b->sla);
    want += sla;
    if (want && !(b->acc = calloc(want, sizeof *b->acc))) {
        err = DM_ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < c->nchecks + sla && want; i++) {
        const dm_check_t *k = i < c->nchecks ? &c->checks[i] : &b->sla;
        if (!s_stateful(c, k))
            continue;
        s_acc *a = &b->acc[b->nacc];
        if ((err = dm_quality__ccheck_init(&a->cc, b->schema, k, why)))
            goto fail;
        b->nacc++;
        /* Unique on the primary key keeps nothing; a check defined like an
         * earlier one (same id) shares its state, counted once. */
        bool shared = false;
        for (size_t j = 0; j + 1 < b->nacc && !shared; j++)
            shared = b->acc[j].cc.id == a->cc.id;
        if (a->cc.trivial || shared) {
            dm_quality__ccheck_clear(&a->cc);
            b->nacc--;
        }
    }
    *hook = (dm_store_hook_t){s_begin, s_row, s_finish, b};
    *out = b;
    return DM_OK;
fail:
    dm_quality_batch_destroy(&b);
    return err;
}

void dm_quality_batch_destroy(dm_quality_batch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_quality_batch_t *b = *self_p;
    for (size_t i = 0, u = 0; i < b->nacc; i++) {
        dm_buf_t *ops = &b->acc[i].ops;
        if (b->scratch && b->acc[i].cc.k->rule == DM_CHECK_UNIQUE && u < S_SCRATCH_BUFS &&
            ops->cap <= S_SCRATCH_BYTES_MAX) { /* back to the scratch, pages and all */
            dm_buf_reset(ops);
            dm_buf_free(&b->scratch->ops[u]); /* empty unless two batches shared it */
            b->scratch->ops[u++] = *ops;
            *ops = (dm_buf_t)DM_BUF_INIT;
        }
        dm_quality__ccheck_clear(&b->acc[i].cc);
        dm_buf_free(ops);
    }
    free(b->acc);
    dm_quality_report_clear(&b->report);
    dm_buf_free(&b->key);
    dm_buf_free(&b->text);
    dm_buf_free(&b->tmp);
    free(b);
    *self_p = NULL;
}

dm_quality_scratch_t *dm_quality_scratch_new(void)
{
    return calloc(1, sizeof(dm_quality_scratch_t));
}

void dm_quality_scratch_destroy(dm_quality_scratch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    for (size_t i = 0; i < S_SCRATCH_BUFS; i++)
        dm_buf_free(&(*self_p)->ops[i]);
    free(*self_p);
    *self_p = NULL;
}

void dm_quality_batch_use_scratch(dm_quality_batch_t *self, dm_quality_scratch_t *scratch)
{
    if (self->scratch || !scratch)
        return;
    self->scratch = scratch;
    for (size_t i = 0, u = 0; i < self->nacc && u < S_SCRATCH_BUFS; i++)
        if (self->acc[i].cc.k->rule == DM_CHECK_UNIQUE) {
            dm_buf_free(&self->acc[i].ops);
            self->acc[i].ops = scratch->ops[u];
            scratch->ops[u++] = (dm_buf_t)DM_BUF_INIT;
        }
}

void dm_quality_batch_rows_keyed(dm_quality_batch_t *self)
{
    self->keyed = true;
}

void dm_quality_batch_expect_rows(dm_quality_batch_t *self, size_t nrows)
{
    self->expect_rows = nrows;
}

void dm_quality_batch_end_run(dm_quality_batch_t *self)
{
    self->end_run = true;
}

const dm_qreport_t *dm_quality_batch_report(const dm_quality_batch_t *self)
{
    return self->has_report ? &self->report : NULL;
}

void dm_quality__batch_set_fold_min(dm_quality_batch_t *b, uint64_t entries)
{
    b->fold_min = entries;
}

void dm_quality__batch_set_table_max(dm_quality_batch_t *b, size_t bytes)
{
    b->table_max = bytes;
}
