/* records.c: committing batches of rows and reading them back.
 *
 * Layout (docs/architecture.md, "Storage layout": write speed is decided
 * by key order): rows go to an append-only log keyed [pid u32 BE][seq u64 BE], which LMDB fills
 * with MDB_APPEND at sequential speed; products with a primary key also
 * keep an index from key to seq, written once per distinct key of the
 * batch, in key order. Replacing a row deletes its old log entry, so the
 * log holds live rows only and a scan needs no index.
 *
 * The index (storage/index.c) is a set of sorted runs, not one tree.
 * Measured (issue 12; store alone, random 16-byte keys, 100-byte rows,
 * 50K-row synced batches as meshd's group commit makes them, bytes from
 * /proc/self/io write_bytes per million rows ingested):
 *   one tree pk + a 64K-entry pk_recent merged by a sweeping range:
 *     384, 762, 1231, 2048 bytes/row for the 1st..4th million: a batch
 *     moved ~50K entries out of pk_recent per commit, which swept most of
 *     pk's key space, and once pk has more leaves than the batch has keys
 *     every key dirties its own 4 KiB page (rate 52K -> 17K rows/s).
 *   sorted runs (a batch of >= pk_recent_max / 32 keys is a run, written
 *     with MDB_APPEND into full pages; 4 runs of one level merge into one;
 *     merges above 1M entries go a step of 2 entries per batch key per
 *     commit, into pk_big where they are the last range):
 *     240, 247, 250, 423, 252, 249, 365, 313 bytes/row for the 1st..8th
 *     million; the slices at 240-250 are the index at 40-60 bytes per
 *     entry per level, the others carry a 3.2M-entry merge's steps.
 * Into a product already holding 10M (same store program, back to back
 * with an empty one, three times): 240 vs 419 bytes/row and 0.2-0.5 of the
 * empty rate, because the slice after 10M runs entirely under a 3.2M-entry
 * merge in steps (2 entries per batch key per commit). Between such merges
 * a slice costs what the first did (meshd's 11th slice: 0.83 of the 1st).
 * Since then the step is paced at 5/4 entries a key (twice that while
 * another merge waits), so a merge spreads over most of the time until
 * the next of its level (storage/index.c). What was left was the merges'
 * CPU (~0.5 us an entry merged and deleted, LMDB's per-entry put and
 * delete); runs are now stored as blocks of ~70 entries (index_block.c),
 * and meshd's CPU for 1M new keys fell by ~20% into an empty product and
 * into one holding 14M alike (2.43-2.48 -> 1.69-2.04 s and 3.08-3.22 ->
 * 2.29-2.60 s, side by side at load 4-5).
 * The cost that moved instead is CPU: a key is looked up in every run
 * (the upsert must find the row it replaces), which perf showed as 47% of
 * the writer in cold B-tree descents at 7M with seven large runs; a
 * blocked Bloom filter per run (storage/index_bloom.c) turns that into
 * one prefetched cache line per run. */
#include "storage/store_int.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/radix.h"

#define S_LOOKUP_KEY_MAX 1024    /* primary-key bytes; above LMDB's default key limit */
/* Keys (and rows) of a sorted batch whose memory is loaded while one is
 * written: in key order they are scattered over the batch's buffers. */
#define S_AHEAD 8

/* One keyed row of a batch, for sorting by key. */
typedef struct {
    uint64_t prefix; /* dm_radix_prefix of the key (first: base/radix.h sorts by it) */
    const uint8_t *key;
    size_t len;
    size_t index; /* position in the batch: ties sort by it, later wins */
} s_keyref;

static int s_keyref_cmp(const void *a, const void *b)
{
    const s_keyref *x = a, *y = b;
    int c = dm_store_key_cmp(x->key, x->len, y->key, y->len); /* LMDB's key order */
    if (c == 0)
        c = x->index < y->index ? -1 : x->index > y->index;
    return c;
}

typedef struct {
    dm_store_t *self;
    uint32_t pid;
    const dm_row_in_t *rows;
    size_t nrows;
    const dm_quarantine_in_t *q;
    size_t nq;
    const char *source;
    s_keyref *refs;   /* keyed rows sorted by (key, index) */
    size_t nrefs, ndistinct;
    dm_store__entry_t *entries; /* a batch written as a run: one per distinct key */
    dm_store__runs_t runs;      /* the product's index runs, as this attempt left them */
    uint8_t *dead;    /* dead[i]: row i is replaced by a later row of the batch */
    dm_buf_t scratch; /* index keys and quarantine values */
    dm_batch_result_t result;
    const dm_store_hook_t *hook; /* NULL: none */
    dm_buf_t *why;    /* the caller's, for this attempt's failure */
} s_batch_ctx;

/* Tells the hook that row index of the batch became live, replacing the
 * stored row old (NULL when its key is new). */
static dm_err s_hook_row(s_batch_ctx *c, const MDB_val *old, size_t index)
{
    if (!c->hook || !c->hook->row)
        return DM_OK;
    const dm_row_in_t *r = &c->rows[index];
    return c->hook->row(c->hook->ctx, old ? old->mv_data : NULL, old ? old->mv_size : 0, r->row,
                        r->row_len, c->why);
}

/* Deletes the log entry of pid's row seq, which row index of the batch
 * replaces, after showing the old row to the hook. */
static dm_err s_delete_old_row(MDB_txn *txn, s_batch_ctx *c, uint64_t seq, size_t index)
{
    uint8_t lk[DM_STORE_LOG_KEY_BYTES];
    dm_store__log_key(lk, c->pid, seq);
    MDB_val lkey = {sizeof lk, lk}, old;
    if (c->hook && c->hook->row) {
        int rc = mdb_get(txn, c->self->rows, &lkey, &old);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
            return dm_store__mdb_why("read a replaced row", rc, c->why);
        dm_err err = s_hook_row(c, rc == MDB_SUCCESS ? &old : NULL, index);
        if (err)
            return err;
    }
    int rc = mdb_del(txn, c->self->rows, &lkey, NULL);
    if (rc == MDB_NOTFOUND)
        return DM_OK;
    return dm_store__mdb_why("delete a replaced row", rc, c->why);
}

/* Reads a seq value of the index. */
static dm_err s_seq_of(const MDB_val *val, uint32_t pid, uint64_t *seq, dm_buf_t *why)
{
    if (val->mv_size != DM_STORE_SEQ_BYTES) {
        dm_buf_why(why, "store: index entry of product %u is corrupt", pid);
        return DM_ERR_STORE;
    }
    *seq = dm_store__get_be64(val->mv_data);
    return DM_OK;
}

/* The stored entry for the batch's key of refs[i]: found in pk_recent
 * (which as_run empties of it, the batch's run replacing it) or in the
 * runs. *old 0: none. */
static dm_err s_find_old(MDB_cursor *recent, dm_store__probe_t *probe, s_batch_ctx *c,
                         const MDB_val *key, bool as_run, uint64_t *old)
{
    *old = 0;
    MDB_val k = *key, val;
    int rc = MDB_NOTFOUND;
    if (as_run) {
        rc = mdb_cursor_get(recent, &k, &val, MDB_SET);
        if (rc == MDB_SUCCESS) {
            dm_err err = s_seq_of(&val, c->pid, old, c->why);
            if (err)
                return err;
            return dm_store__mdb_why("delete a recent index entry", mdb_cursor_del(recent, 0),
                                     c->why);
        }
        if (rc != MDB_NOTFOUND)
            return dm_store__mdb_why("look up a recent index entry", rc, c->why);
    }
    dm_err err = dm_store__probe_find(probe, (const uint8_t *)key->mv_data + DM_STORE_PID_BYTES,
                                      key->mv_size - DM_STORE_PID_BYTES, old, c->why);
    return err == DM_ERR_NOTFOUND ? DM_OK : err;
}

/* Writes one index entry per distinct key of the batch, in key order:
 * into pk_recent, or, when the batch has many keys (as_run), as a new run
 * (storage/index.c). Deletes the log entries of the rows they replace (the
 * newest stored entry of the key, whose stale copies in older runs a merge
 * drops later). Adds to c->result; *fresh gets how many keys are new. */
static dm_err s_write_index(MDB_txn *txn, s_batch_ctx *c, uint64_t first_seq, uint64_t *fresh)
{
    dm_store_t *self = c->self;
    bool as_run = c->ndistinct >= self->pk_recent_max / DM_STORE_RUN_MIN_DIV;
    MDB_cursor *cur = NULL;
    dm_store__probe_t probe;
    dm_err err = dm_store__runs_get(self, txn, c->pid, &c->runs, c->why);
    if (err)
        return err;
    if ((err = dm_store__probe_open(&probe, self, txn, &c->runs, c->why)))
        return err;
    int rc = mdb_cursor_open(txn, self->pk_recent, &cur);
    if (rc != MDB_SUCCESS) {
        dm_store__probe_close(&probe);
        return dm_store__mdb_why("open an index cursor", rc, c->why);
    }
    size_t nentries = 0;
    for (size_t i = 0; i < c->nrefs && !err;) {
        if (i + S_AHEAD < c->nrefs) { /* the batch's order is not the buffers': load ahead */
            const s_keyref *r = &c->refs[i + S_AHEAD];
            __builtin_prefetch(r->key);
            __builtin_prefetch(c->rows[r->index].row);
        }
        size_t j = i + 1; /* [i, j) share one key; the last of the run wins */
        while (j < c->nrefs && c->refs[j].len == c->refs[i].len &&
               memcmp(c->refs[j].key, c->refs[i].key, c->refs[i].len) == 0)
            j++;
        const s_keyref *win = &c->refs[j - 1];
        uint64_t replaced_in_batch = j - i - 1, old = 0;
        i = j;
        dm_buf_reset(&c->scratch);
        uint8_t pidb[DM_STORE_PID_BYTES], seqb[DM_STORE_SEQ_BYTES];
        dm_store__put_be32(pidb, c->pid);
        dm_buf_append(&c->scratch, pidb, sizeof pidb);
        dm_buf_append(&c->scratch, win->key, win->len);
        dm_store__put_be64(seqb, first_seq + win->index);
        MDB_val key = {c->scratch.len, c->scratch.data}, val = {sizeof seqb, seqb};
        if (as_run) {
            c->entries[nentries++] = (dm_store__entry_t){win->key, win->len,
                                                         first_seq + win->index};
        } else {
            rc = mdb_cursor_put(cur, &key, &val, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST) {
                if ((err = s_seq_of(&val, c->pid, &old, c->why)))
                    break;
                val = (MDB_val){sizeof seqb, seqb};
                rc = mdb_cursor_put(cur, &key, &val, MDB_CURRENT);
            }
            if ((err = dm_store__mdb_why("write an index entry", rc, c->why)))
                break;
        }
        if (old == 0 && (err = s_find_old(cur, &probe, c, &key, as_run, &old)))
            break;
        if (old == 0) {
            dm_store__pkf_add(probe.pkf, win->key, win->len);
            (*fresh)++;
            c->result.inserted++;
            c->result.updated += replaced_in_batch;
            err = s_hook_row(c, NULL, win->index);
            continue;
        }
        err = s_delete_old_row(txn, c, old, win->index);
        c->result.updated += replaced_in_batch + 1;
    }
    mdb_cursor_close(cur);
    dm_store__probe_close(&probe);
    if (!err && as_run)
        err = dm_store__run_add(self, txn, &c->runs, c->entries, nentries, c->why);
    return err ? err : dm_store__index_settle(self, txn, &c->runs, c->ndistinct, c->why);
}

/* Appends the live rows of the batch to the log in sequence order. */
static dm_err s_write_log(MDB_txn *txn, s_batch_ctx *c, uint64_t first_seq)
{
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, c->self->rows, &cur);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("open a log cursor", rc, c->why);
    uint8_t k[DM_STORE_LOG_KEY_BYTES];
    dm_store__log_key(k, c->pid, first_seq);
    bool append = false;
    dm_err err = dm_store__can_append(cur, k, &append, c->why);
    unsigned flags = append ? MDB_APPEND : 0;
    for (size_t i = 0; i < c->nrows && !err; i++) {
        if (c->dead[i])
            continue;
        dm_store__log_key(k, c->pid, first_seq + i);
        MDB_val key = {sizeof k, k}, val = {c->rows[i].row_len, (void *)c->rows[i].row};
        err = dm_store__mdb_why("append a row", mdb_cursor_put(cur, &key, &val, flags), c->why);
    }
    mdb_cursor_close(cur);
    return err;
}

static dm_err s_batch_txn(MDB_txn *txn, void *arg, dm_buf_t *why)
{
    s_batch_ctx *c = arg;
    memset(&c->result, 0, sizeof c->result);
    c->why = why;
    if (c->hook && c->hook->begin)
        c->hook->begin(c->hook->ctx);
    dm_store_counters_t cnt;
    dm_err err = dm_store__counters_get(c->self, txn, c->pid, &cnt, why);
    if (err == DM_ERR_NOTFOUND)
        dm_buf_why(why, "store: product %u is not registered", c->pid);
    if (err)
        return err;
    uint64_t fresh = 0;
    if ((err = s_write_index(txn, c, cnt.next_seq, &fresh)) ||
        (err = s_write_log(txn, c, cnt.next_seq)) ||
        (err = dm_store__quarantine_append(c->self, txn, c->pid, cnt.next_qseq, c->q, c->nq,
                                           c->source, dm_clock_wall_ms(), &c->scratch, why)))
        return err;
    uint64_t keyless = c->nrows - c->nrefs;
    for (size_t i = 0; i < c->nrows && keyless && !err; i++)
        if (c->rows[i].key_len == 0)
            err = s_hook_row(c, NULL, i);
    if (err)
        return err;
    c->result.inserted += keyless;
    c->result.quarantined = c->nq;
    cnt.records += fresh + keyless;
    cnt.quarantined += c->nq;
    cnt.next_seq += c->nrows;
    cnt.next_qseq += c->nq;
    if ((err = dm_store__counters_put(c->self, txn, c->pid, &cnt, why)))
        return err;
    if (c->hook && c->hook->finish) {
        dm_store_txn_t t = {c->self, txn};
        err = c->hook->finish(c->hook->ctx, &t, &c->result, why);
    }
    return err;
}

size_t dm_store_max_key_bytes(void)
{
    static atomic_size_t cached;
    size_t max_key = atomic_load(&cached);
    if (max_key)
        return max_key;
    MDB_env *env = NULL;
    int lmdb_max = mdb_env_create(&env) == 0 ? mdb_env_get_maxkeysize(env) : 511;
    mdb_env_close(env);
    max_key = (size_t)lmdb_max - DM_STORE_RUN_PREFIX_BYTES; /* an index run's key */
    max_key = max_key > S_LOOKUP_KEY_MAX ? S_LOOKUP_KEY_MAX : max_key;
    atomic_store(&cached, max_key);
    return max_key;
}

dm_err dm_store_commit_batch(dm_store_t *self, uint32_t pid, const dm_row_in_t *rows,
                             size_t nrows, const dm_quarantine_in_t *quarantine, size_t nq,
                             const char *source, dm_batch_result_t *result, dm_buf_t *why)
{
    return dm_store_commit_batch_hooked(self, pid, rows, nrows, quarantine, nq, source, NULL,
                                        result, why);
}

dm_err dm_store_commit_batch_hooked(dm_store_t *self, uint32_t pid, const dm_row_in_t *rows,
                                    size_t nrows, const dm_quarantine_in_t *quarantine,
                                    size_t nq, const char *source, const dm_store_hook_t *hook,
                                    dm_batch_result_t *result, dm_buf_t *why)
{
    if (result)
        memset(result, 0, sizeof *result);
    s_batch_ctx c = {.self = self, .pid = pid, .rows = rows, .nrows = nrows, .q = quarantine,
                     .nq = nq, .source = source ? source : "", .scratch = DM_BUF_INIT,
                     .hook = hook};
    dm_err err = DM_OK;
    c.refs = malloc((nrows ? nrows : 1) * 2 * sizeof *c.refs); /* refs, then the sort's scratch */
    c.dead = calloc(nrows ? nrows : 1, 1);
    c.entries = malloc((nrows ? nrows : 1) * sizeof *c.entries);
    if (!c.refs || !c.dead || !c.entries) {
        dm_buf_why(why, "store: out of memory for a batch of %zu rows", nrows);
        err = DM_ERR_NOMEM;
        goto out;
    }
    size_t max_key = dm_store_max_key_bytes();
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].key_len == 0)
            continue;
        if (rows[i].key_len > max_key) {
            dm_buf_why(why, "store: row %zu of a batch for product %u has a %zu-byte key; the most "
                       "is %zu",
                       i, pid, rows[i].key_len, max_key);
            err = DM_ERR_TOOBIG;
            goto out;
        }
        c.refs[c.nrefs++] = (s_keyref){dm_radix_prefix(rows[i].key, rows[i].key_len), rows[i].key,
                                       rows[i].key_len, i};
    }
    /* Sorting outside the transaction keeps the writer lock short; the
     * sorted order is what makes the index puts cheap. By (key, index),
     * c.refs + nrows as scratch: base/radix.h's sort on the
     * prefixes, then s_keyref_cmp over each run of equal prefixes. For the
     * random keys of uuids that is 8 linear passes instead of qsort's n log
     * n calls of memcmp (issue 12: qsort was 15% of the writer's CPU at
     * 50K-row groups). */
    dm_radix_sort(c.refs, c.refs + nrows, c.nrefs, sizeof *c.refs, s_keyref_cmp);
    c.ndistinct = c.nrefs;
    for (size_t i = 0; i + 1 < c.nrefs; i++)
        if (c.refs[i].len == c.refs[i + 1].len &&
            memcmp(c.refs[i].key, c.refs[i + 1].key, c.refs[i].len) == 0) {
            c.dead[c.refs[i].index] = 1;
            c.ndistinct--;
        }
    err = dm_store__write(self, "commit a batch", s_batch_txn, &c, why);
    if (!err && result)
        *result = c.result;
out:
    free(c.refs);
    free(c.dead);
    free(c.entries);
    dm_buf_free(&c.scratch);
    return err;
}

dm_err dm_store_get_by_key(dm_store_t *self, uint32_t pid, const void *key, size_t key_len,
                           dm_buf_t *row, dm_buf_t *why)
{
    dm_buf_reset(row);
    if (key_len == 0 || key_len > S_LOOKUP_KEY_MAX)
        return DM_ERR_NOTFOUND; /* commit_batch never stores such a key */
    MDB_txn *txn;
    dm_err err = dm_store__read_begin(self, &txn, why);
    if (err)
        return err;
    uint64_t seq;
    if ((err = dm_store__index_get(self, txn, pid, key, key_len, &seq, why)))
        goto out;
    uint8_t lk[DM_STORE_LOG_KEY_BYTES];
    dm_store__log_key(lk, pid, seq);
    MDB_val lkey = {sizeof lk, lk}, val;
    int rc = mdb_get(txn, self->rows, &lkey, &val);
    if (rc == MDB_NOTFOUND) {
        dm_buf_why(why, "store: product %u: index points at a missing row", pid);
        err = DM_ERR_STORE;
        goto out;
    }
    if ((err = dm_store__mdb_why("read a row", rc, why)))
        goto out;
    dm_buf_append(row, val.mv_data, val.mv_size);
out:
    dm_store__read_end(self, txn);
    return err;
}

dm_err dm_store_scan(dm_store_t *self, uint32_t pid, dm_row_fn fn, void *ctx, dm_buf_t *why)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    dm_err err = dm_store__read_begin(self, &txn, why);
    if (err)
        return err;
    int rc = mdb_cursor_open(txn, self->rows, &cur);
    if (rc != MDB_SUCCESS) {
        err = dm_store__mdb_why("open a log cursor", rc, why);
        goto out;
    }
    uint8_t k[DM_STORE_LOG_KEY_BYTES];
    dm_store__log_key(k, pid, 0);
    MDB_val key = {sizeof k, k}, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size != DM_STORE_LOG_KEY_BYTES || dm_store__get_be32(key.mv_data) != pid)
            break;
        uint64_t seq = dm_store__get_be64((const uint8_t *)key.mv_data + DM_STORE_PID_BYTES);
        if (fn(ctx, seq, val.mv_data, val.mv_size) != 0)
            break;
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        err = dm_store__mdb_why("scan rows", rc, why);
out:
    mdb_cursor_close(cur);
    dm_store__read_end(self, txn);
    return err;
}
