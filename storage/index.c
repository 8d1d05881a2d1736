/* index.c: the primary-key index, kept as sorted runs so that ingest stays
 * flat as a product grows (issue 12; records.c's header has the figures).
 *
 * Layout: pk_recent ([pid][key] -> seq) takes small batches, where random
 * inserts into a small tree stay cheap. A batch with many keys, and
 * pk_recent's part of a product once pk_recent is full, become a run in pk:
 * blocks of entries (key, seq) under [pid][run id u32 BE][the block's last
 * key] (storage/index_block.c: why blocks, and their format), written in
 * key order (MDB_APPEND when the run is the last range of the database, so
 * its pages are full). Runs
 * are never updated: a newer run or pk_recent shadows an older run's entry
 * for the same key, and merging FANOUT runs of one size class into one
 * drops the shadowed entries. Each entry is so written once per size class
 * (log_FANOUT of the product's size), sequentially, instead of dirtying a
 * random page of one big tree per key.
 *
 * Order: pk_recent is newest, then runs by descending id. A batch written
 * as a run first deletes its keys from pk_recent, and a merge takes the
 * newest runs only (adjacent in age), so "first found wins" holds for every
 * reader. The run list lives in meta ('r' pid). */
#include "storage/index_bloom.h"
#include "storage/store_int.h"

#include <stdlib.h>
#include <string.h>

#define S_RUNS_TAG 'r'
#define S_RUNS_KEY_BYTES (1 + DM_STORE_PID_BYTES)
#define S_RUNS_HEAD_BYTES 12 /* next_id u32, n u32, merge_in u16, pos_len u16; pos follows the runs */
#define S_RUN_BYTES 13       /* id u32, entries u64, flags u8 */
#define S_CHUNK_ENTRIES 8192 /* merged entries buffered between reading and writing */

dm_err dm_store__runs_get(dm_store_t *self, MDB_txn *txn, uint32_t pid, dm_store__runs_t *runs,
                          dm_buf_t *why)
{
    uint8_t k[S_RUNS_KEY_BYTES];
    k[0] = S_RUNS_TAG;
    dm_store__put_be32(k + 1, pid);
    MDB_val key = {sizeof k, k}, val;
    runs->pid = pid;
    runs->next_id = 1;
    runs->n = runs->merge_in = runs->pos_len = 0;
    int rc = mdb_get(txn, self->meta, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DM_OK;
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("read the index runs", rc, why);
    const uint8_t *p = val.mv_data;
    size_t n = 0, merge_in = 0, pos_len = 0;
    if (val.mv_size >= S_RUNS_HEAD_BYTES) {
        n = dm_store__get_be32(p + 4);
        merge_in = (size_t)p[8] << 8 | p[9];
        pos_len = (size_t)p[10] << 8 | p[11];
    }
    if (val.mv_size < S_RUNS_HEAD_BYTES || n > DM_STORE_RUNS_MAX || (n && merge_in >= n) ||
        pos_len > DM_STORE_POS_MAX || val.mv_size != S_RUNS_HEAD_BYTES + n * S_RUN_BYTES + pos_len) {
        dm_buf_why(why, "store: the index run list of product %u is corrupt (%zu bytes)", pid,
                   val.mv_size);
        return DM_ERR_STORE;
    }
    runs->next_id = dm_store__get_be32(p);
    runs->n = n;
    runs->merge_in = merge_in;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = p + S_RUNS_HEAD_BYTES + i * S_RUN_BYTES;
        runs->run[i].id = dm_store__get_be32(r);
        runs->run[i].entries = dm_store__get_be64(r + 4);
        runs->run[i].flags = r[12];
    }
    runs->pos_len = pos_len;
    if (pos_len)
        memcpy(runs->pos, p + S_RUNS_HEAD_BYTES + n * S_RUN_BYTES, pos_len);
    return DM_OK;
}

static dm_err s_runs_put(dm_store_t *self, MDB_txn *txn, const dm_store__runs_t *runs,
                         dm_buf_t *why)
{
    uint8_t k[S_RUNS_KEY_BYTES];
    uint8_t v[S_RUNS_HEAD_BYTES + DM_STORE_RUNS_MAX * S_RUN_BYTES + DM_STORE_POS_MAX];
    k[0] = S_RUNS_TAG;
    dm_store__put_be32(k + 1, runs->pid);
    dm_store__put_be32(v, runs->next_id);
    dm_store__put_be32(v + 4, (uint32_t)runs->n);
    v[8] = (uint8_t)(runs->merge_in >> 8);
    v[9] = (uint8_t)runs->merge_in;
    v[10] = (uint8_t)(runs->pos_len >> 8);
    v[11] = (uint8_t)runs->pos_len;
    for (size_t i = 0; i < runs->n; i++) {
        uint8_t *r = v + S_RUNS_HEAD_BYTES + i * S_RUN_BYTES;
        dm_store__put_be32(r, runs->run[i].id);
        dm_store__put_be64(r + 4, runs->run[i].entries);
        r[12] = runs->run[i].flags;
    }
    size_t len = S_RUNS_HEAD_BYTES + runs->n * S_RUN_BYTES;
    if (runs->pos_len)
        memcpy(v + len, runs->pos, runs->pos_len);
    MDB_val key = {sizeof k, k}, val = {len + runs->pos_len, v};
    return dm_store__mdb_why("save the index runs", mdb_put(txn, self->meta, &key, &val, 0), why);
}

static void s_run_prefix(uint8_t *k, uint32_t pid, uint32_t id)
{
    dm_store__put_be32(k, pid);
    dm_store__put_be32(k + DM_STORE_PID_BYTES, id);
}

/* A run's level: how many merges made it (flags above DM_STORE_RUN_LEVEL_SHIFT). */
static unsigned s_level(const dm_store__run_t *r) { return r->flags >> DM_STORE_RUN_LEVEL_SHIFT; }

static uint8_t s_level_flags(unsigned level)
{
    unsigned max = 0xffu >> DM_STORE_RUN_LEVEL_SHIFT;
    return (uint8_t)((level < max ? level : max) << DM_STORE_RUN_LEVEL_SHIFT);
}

static dm_err s_seq_of(const MDB_val *val, uint32_t pid, uint64_t *seq, dm_buf_t *why)
{
    if (val->mv_size != DM_STORE_SEQ_BYTES) {
        dm_buf_why(why, "store: index entry of product %u is corrupt", pid);
        return DM_ERR_STORE;
    }
    *seq = dm_store__get_be64(val->mv_data);
    return DM_OK;
}

/* Index of the output of the merge in progress. */
static size_t s_merging(const dm_store__runs_t *runs)
{
    for (size_t i = 0; i < runs->n; i++)
        if (runs->run[i].flags & DM_STORE_RUN_MERGING)
            return i;
    return runs->n;
}

/* What the merge in progress alone says of run i holding key: its output
 * (run oi) holds only keys below the position, which its inputs (the
 * merge_in runs under oi) no longer hold. S_SKIP: it cannot; S_INPUTS:
 * only if an input's filter says maybe (the output has no filter until
 * the merge ends, and every key it holds came from an input); S_FILTER:
 * ask run i's own filter. Without this every lookup during a stepped
 * merge descended the output's tree: a third of the writer's CPU at 12M. */
enum { S_FILTER, S_SKIP, S_INPUTS };

static int s_merge_says(const dm_store__runs_t *runs, size_t oi, size_t i, const void *key,
                        size_t len)
{
    if (!runs->merge_in || oi >= runs->n || i > oi || i + runs->merge_in < oi)
        return S_FILTER;
    bool below = runs->pos_len > 0 && dm_store_key_cmp(key, len, runs->pos, runs->pos_len) < 0;
    if (i == oi)
        return below ? S_INPUTS : S_SKIP;
    return below ? S_SKIP : S_FILTER;
}

/* Whether run i may hold key, by the merge position and the filters. */
static dm_err s_may_hold(dm_store_t *self, MDB_txn *txn, const dm_store__runs_t *runs, size_t oi,
                         size_t i, const void *key, size_t len, bool *maybe, dm_buf_t *why)
{
    int says = s_merge_says(runs, oi, i, key, len);
    *maybe = false;
    if (says == S_SKIP)
        return DM_OK;
    size_t from = says == S_INPUTS ? oi - runs->merge_in : i, to = says == S_INPUTS ? oi : i + 1;
    for (size_t j = from; j < to && !*maybe; j++) {
        const uint8_t *bits;
        size_t blen;
        dm_err err = dm_store__bloom_load(self, txn, runs->pid, runs->run[j].id, &bits, &blen, why);
        if (err)
            return err;
        *maybe = dm_store__bloom_maybe(bits, blen, key, len);
    }
    return DM_OK;
}

/* Builds [prefix][key] in buf. */
static void s_compose(dm_buf_t *buf, const uint8_t *prefix, size_t plen, const void *key,
                      size_t len)
{
    dm_buf_reset(buf);
    dm_buf_append(buf, prefix, plen);
    dm_buf_append(buf, key, len);
}

dm_err dm_store__index_get(dm_store_t *self, MDB_txn *txn, uint32_t pid, const void *key,
                           size_t len, uint64_t *seq, dm_buf_t *why)
{
    if (len == 0 || len + DM_STORE_RUN_PREFIX_BYTES > self->max_key_bytes)
        return DM_ERR_NOTFOUND; /* commit_batch never stores such a key */
    dm_buf_t k = DM_BUF_INIT;
    uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
    dm_store__put_be32(prefix, pid);
    s_compose(&k, prefix, DM_STORE_PID_BYTES, key, len);
    MDB_val kv = {k.len, k.data}, val;
    int rc = mdb_get(txn, self->pk_recent, &kv, &val);
    dm_store__runs_t runs;
    dm_err err = DM_OK;
    if (rc == MDB_SUCCESS) {
        err = s_seq_of(&val, pid, seq, why);
        goto out;
    }
    if ((err = dm_store__mdb_why("look up a key", rc, why)) != DM_ERR_NOTFOUND)
        goto out;
    if ((err = dm_store__runs_get(self, txn, pid, &runs, why)))
        goto out;
    size_t oi = s_merging(&runs);
    err = DM_ERR_NOTFOUND;
    for (size_t i = runs.n; i-- > 0 && err == DM_ERR_NOTFOUND;) {
        bool maybe;
        if ((err = s_may_hold(self, txn, &runs, oi, i, key, len, &maybe, why)))
            break;
        err = DM_ERR_NOTFOUND;
        if (!maybe)
            continue;
        dm_store__iter_t it;
        s_run_prefix(prefix, pid, runs.run[i].id);
        if ((err = dm_store__iter_open(&it, txn, dm_store__run_db(self, &runs.run[i]), prefix,
                                       sizeof prefix, why)))
            break;
        err = dm_store__iter_find(&it, key, len, self->max_key_bytes, seq, why);
        dm_store__iter_close(&it);
    }
out:
    dm_buf_free(&k);
    return err;
}

dm_err dm_store__probe_open(dm_store__probe_t *p, dm_store_t *self, MDB_txn *txn,
                            const dm_store__runs_t *runs, dm_buf_t *why)
{
    memset(p, 0, sizeof *p);
    p->runs = runs;
    p->oi = s_merging(runs);
    p->max_key = self->max_key_bytes;
    p->pkf = runs->n ? dm_store__pkf_get(self, txn, runs) : NULL;
    for (size_t i = 0; i < runs->n; i++) {
        uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
        s_run_prefix(prefix, runs->pid, runs->run[i].id);
        dm_err err = dm_store__iter_open(&p->it[i], txn, dm_store__run_db(self, &runs->run[i]),
                                         prefix, sizeof prefix, why);
        if (!err)
            err = dm_store__bloom_load(self, txn, runs->pid, runs->run[i].id, &p->bloom[i],
                                       &p->bloom_len[i], why);
        if (err) {
            dm_store__probe_close(p);
            return err;
        }
    }
    return DM_OK;
}

dm_err dm_store__probe_find(dm_store__probe_t *p, const void *key, size_t len, uint64_t *seq,
                            dm_buf_t *why)
{
    const uint8_t *block[DM_STORE_RUNS_MAX];
    uint64_t h = dm_index_bloom_hash(key, len);
    if (!dm_store__pkf_maybe(p->pkf, h)) /* new to the product: one test, not one a run */
        return DM_ERR_NOTFOUND;
    for (size_t i = 0; i < p->runs->n; i++) /* every block in flight before the first test */
        block[i] = dm_store__bloom_block(p->bloom[i], p->bloom_len[i], h);
    for (size_t i = p->runs->n; i-- > 0;) {
        int says = s_merge_says(p->runs, p->oi, i, key, len);
        bool maybe = says == S_FILTER && dm_store__bloom_test(block[i], h);
        for (size_t j = p->oi - p->runs->merge_in; says == S_INPUTS && !maybe && j < p->oi; j++)
            maybe = dm_store__bloom_test(block[j], h);
        if (!maybe)
            continue;
        /* SET_RANGE on a positioned cursor searches its current page first:
         * ascending keys mostly stay on it in the runs smaller than the batch. */
        dm_err err = dm_store__iter_find(&p->it[i], key, len, p->max_key, seq, why);
        if (err != DM_ERR_NOTFOUND)
            return err;
    }
    return DM_ERR_NOTFOUND;
}

void dm_store__probe_close(dm_store__probe_t *p)
{
    for (size_t i = 0; i < DM_STORE_RUNS_MAX; i++)
        dm_store__iter_close(&p->it[i]);
}

/* ---- writing runs ---- */

/* Writes the writer's last block and filter (for run id of pid) and frees
 * what it holds. */
static dm_err s_writer_done(dm_store__writer_t *w, dm_store_t *self, uint32_t pid, uint32_t id,
                            dm_err err, dm_buf_t *why)
{
    if (!err)
        err = dm_store__writer_flush(w, why);
    if (!err && w->bloom.bits)
        err = dm_store__bloom_save(self, w->txn, pid, id, &w->bloom, why);
    dm_store__writer_free(w);
    return err;
}

dm_err dm_store__run_add(dm_store_t *self, MDB_txn *txn, dm_store__runs_t *runs,
                         const dm_store__entry_t *e, size_t n, dm_buf_t *why)
{
    if (n == 0)
        return DM_OK;
    if (runs->n == DM_STORE_RUNS_MAX) {
        dm_buf_why(why, "store: product %u has %d index runs; settle should have merged them",
                   runs->pid, DM_STORE_RUNS_MAX);
        return DM_ERR_STORE;
    }
    dm_store__writer_t w;
    uint32_t id = runs->next_id;
    dm_err err = dm_store__writer_init(&w, txn, self->pk, runs->pid, id, why);
    if (!err)
        err = dm_store__bloom_init(&w.bloom, n);
    for (size_t i = 0; i < n && !err; i++)
        err = dm_store__writer_put(&w, e[i].key, e[i].len, e[i].seq, why);
    uint64_t written = w.written;
    if ((err = s_writer_done(&w, self, runs->pid, id, err, why)))
        return err;
    runs->next_id = id + 1;
    runs->run[runs->n++] = (dm_store__run_t){id, written, 0};
    return DM_OK;
}

/* ---- merging ---- */

/* One input of a merge: a part of db (a run, or pk_recent's part of a
 * product) read in key order from pos. */
typedef struct {
    MDB_dbi db;
    uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
    size_t plen;
    dm_store__iter_t it;
    bool valid;
    dm_buf_t pos; /* the next key to read (without prefix), between chunks */
} s_src;

static int s_src_cmp(const s_src *a, const s_src *b)
{
    return dm_store_key_cmp(a->it.key, a->it.len, b->it.key, b->it.len);
}

/* Appends the next merged entry of src[0..k) (src[0] the newest: it wins
 * a key they share) to chunk as [len u16][key][seq]; *got false at the end. */
static dm_err s_take_one(s_src *src, size_t k, dm_buf_t *chunk, bool *got, dm_buf_t *why)
{
    s_src *win = NULL;
    for (size_t i = 0; i < k; i++)
        if (src[i].it.valid && (!win || s_src_cmp(&src[i], win) < 0))
            win = &src[i];
    *got = win != NULL;
    if (!win)
        return DM_OK;
    uint8_t lb[2] = {(uint8_t)(win->it.len >> 8), (uint8_t)win->it.len}, sb[DM_STORE_SEQ_BYTES];
    dm_store__put_be64(sb, win->it.seq);
    dm_buf_append(chunk, lb, sizeof lb);
    dm_buf_append(chunk, win->it.key, win->it.len);
    dm_buf_append(chunk, sb, sizeof sb);
    dm_err err = DM_OK;
    for (size_t i = 0; i < k && !err; i++) /* win last: the others compare against it */
        if (&src[i] != win && src[i].it.valid && s_src_cmp(&src[i], win) == 0)
            err = dm_store__iter_next(&src[i].it, why);
    return err ? err : dm_store__iter_next(&win->it, why);
}

/* Reads up to max merged entries of src[0..k), each from its pos, into
 * chunk and moves the positions on. *more: entries remain. Cursors are
 * closed before the caller writes (a write may move pages under them). */
static dm_err s_read_chunk(dm_store_t *self, MDB_txn *txn, s_src *src, size_t k, size_t max,
                           dm_buf_t *chunk, size_t *got, bool *more, dm_buf_t *why)
{
    dm_err err = DM_OK;
    *more = false;
    *got = 0;
    for (size_t i = 0; i < k; i++)
        src[i].it.cur = NULL;
    for (size_t i = 0; i < k && !err; i++) {
        if (!src[i].valid)
            continue;
        err = dm_store__iter_open(&src[i].it, txn, src[i].db, src[i].prefix, src[i].plen, why);
        if (!err)
            err = dm_store__iter_seek(&src[i].it, src[i].pos.data, src[i].pos.len,
                                      self->max_key_bytes, why);
    }
    for (bool one = true; *got < max && one && !err;) {
        err = s_take_one(src, k, chunk, &one, why);
        *got += one;
    }
    for (size_t i = 0; i < k; i++) {
        src[i].valid = !err && src[i].it.cur && src[i].it.valid;
        if (src[i].valid) { /* copy: the map moves on writes */
            dm_buf_reset(&src[i].pos);
            dm_buf_append(&src[i].pos, src[i].it.key, src[i].it.len);
            *more = true;
        }
        dm_store__iter_close(&src[i].it);
    }
    return err;
}

/* Merges src[0..k) (newest first, each from its pos) into w until budget
 * entries are written or the inputs end (*done), and writes w's last
 * block. */
static dm_err s_merge_some(dm_store_t *self, MDB_txn *txn, dm_store__writer_t *w, s_src *src,
                           size_t k, uint64_t budget, bool *done, dm_buf_t *why)
{
    dm_buf_t chunk = DM_BUF_INIT;
    dm_err err = DM_OK;
    bool more = true;
    while (more && budget > 0 && !err) {
        size_t got;
        dm_buf_reset(&chunk);
        err = s_read_chunk(self, txn, src, k, budget < S_CHUNK_ENTRIES ? budget : S_CHUNK_ENTRIES,
                           &chunk, &got, &more, why);
        for (size_t off = 0; off < chunk.len && !err;) {
            const uint8_t *p = (const uint8_t *)chunk.data + off;
            size_t len = (size_t)p[0] << 8 | p[1];
            err = dm_store__writer_put(w, p + 2, len, dm_store__get_be64(p + 2 + len), why);
            off += 2 + len + DM_STORE_SEQ_BYTES;
        }
        budget -= got < budget ? got : budget;
    }
    if (!err)
        err = dm_store__writer_flush(w, why);
    dm_buf_free(&chunk);
    *done = !more;
    return err;
}

/* Sets s up to read the part of db with prefix from key pos. */
static void s_src_init(s_src *s, MDB_dbi db, const uint8_t *prefix, size_t plen,
                       const uint8_t *pos, size_t pos_len)
{
    memset(s, 0, sizeof *s);
    s->db = db;
    memcpy(s->prefix, prefix, plen);
    s->plen = plen;
    s->pos = (dm_buf_t)DM_BUF_INIT;
    dm_buf_append(&s->pos, pos, pos_len);
    s->valid = true;
}

/* Sets s up to read run r of runs' product from key pos. */
static void s_src_run(s_src *s, dm_store_t *self, const dm_store__runs_t *runs,
                      const dm_store__run_t *r, const uint8_t *pos, size_t pos_len)
{
    uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
    s_run_prefix(prefix, runs->pid, r->id);
    s_src_init(s, dm_store__run_db(self, r), prefix, sizeof prefix, pos, pos_len);
}

static void s_srcs_free(s_src *src, size_t k)
{
    for (size_t i = 0; i < k; i++)
        dm_buf_free(&src[i].pos);
}

/* Merges src[0..k) whole into a new run in pk on top of runs and deletes
 * them. The caller drops the inputs from runs first (k sources, after). */
static dm_err s_merge_now(dm_store_t *self, MDB_txn *txn, dm_store__runs_t *runs, s_src *src,
                          size_t k, uint64_t most, unsigned level, dm_buf_t *why)
{
    dm_store__writer_t w;
    uint32_t id = runs->next_id++;
    bool done;
    dm_err err = dm_store__writer_init(&w, txn, self->pk, runs->pid, id, why);
    if (!err)
        err = dm_store__bloom_init(&w.bloom, most);
    if (!err)
        err = s_merge_some(self, txn, &w, src, k, UINT64_MAX, &done, why);
    for (size_t i = 0; i < k && !err; i++)
        err = dm_store__range_delete(txn, src[i].db, src[i].prefix, src[i].plen, NULL, 0,
                                     self->max_key_bytes, why);
    uint64_t written = w.written;
    err = s_writer_done(&w, self, runs->pid, id, err, why);
    if (!err && written)
        runs->run[runs->n++] = (dm_store__run_t){id, written, s_level_flags(level)};
    return err;
}

/* Merges the newest k runs into one, at once. */
static dm_err s_merge_top(dm_store_t *self, MDB_txn *txn, dm_store__runs_t *runs, size_t k,
                          dm_buf_t *why)
{
    s_src src[DM_STORE_RUNS_MAX];
    uint64_t most = 0;
    unsigned level = 0;
    dm_err err = DM_OK;
    for (size_t i = 0; i < k; i++) {
        const dm_store__run_t *r = &runs->run[runs->n - 1 - i];
        s_src_run(&src[i], self, runs, r, NULL, 0);
        most += r->entries;
        level = s_level(r) + 1 > level ? s_level(r) + 1 : level;
        if (!err)
            err = dm_store__bloom_delete(self, txn, runs->pid, r->id, why);
    }
    runs->n -= k;
    if (!err)
        err = s_merge_now(self, txn, runs, src, k, most, level, why);
    s_srcs_free(src, k);
    return err;
}

/* Builds and saves the filter of run r, reading it whole: a stepped
 * merge's output is complete only at its last step. */
static dm_err s_bloom_of_run(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                             const dm_store__run_t *r, dm_buf_t *why)
{
    dm_store__bloom_t b;
    if (dm_store__bloom_init(&b, r->entries) != DM_OK)
        return DM_ERR_NOMEM;
    uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
    s_run_prefix(prefix, pid, r->id);
    dm_store__iter_t it;
    dm_err err = dm_store__iter_open(&it, txn, dm_store__run_db(self, r), prefix, sizeof prefix,
                                     why);
    if (!err)
        err = dm_store__iter_seek(&it, NULL, 0, self->max_key_bytes, why);
    for (; !err && it.valid; err = dm_store__iter_next(&it, why))
        dm_store__bloom_add(&b, it.key, it.len);
    dm_store__iter_close(&it);
    if (!err)
        err = dm_store__bloom_save(self, txn, pid, r->id, &b, why);
    dm_store__bloom_free(&b);
    return err;
}

/* One step of the merge in progress: up to budget entries from its inputs
 * into its output (in pk_big, where it is the last range, so MDB_APPEND
 * fills its pages), then the inputs lose the keys below the new position.
 * At the end the inputs go and the output becomes an ordinary run. */
static dm_err s_merge_step(dm_store_t *self, MDB_txn *txn, dm_store__runs_t *runs,
                           uint64_t budget, dm_buf_t *why)
{
    size_t oi = s_merging(runs), k = runs->merge_in;
    if (oi == runs->n || k > oi) {
        dm_buf_why(why, "store: the merge state of product %u is corrupt", runs->pid);
        return DM_ERR_STORE;
    }
    dm_store__run_t *out = &runs->run[oi];
    s_src src[DM_STORE_RUNS_MAX];
    for (size_t i = 0; i < k; i++)
        s_src_run(&src[i], self, runs, &runs->run[oi - 1 - i], runs->pos, runs->pos_len);
    dm_store__writer_t w;
    bool done = false;
    dm_err err = dm_store__writer_init(&w, txn, self->pk_big, runs->pid, out->id, why);
    if (!err)
        err = s_merge_some(self, txn, &w, src, k, budget, &done, why);
    out->entries += w.written;
    if (!err && !done) { /* the least next key: every input is merged below it */
        const dm_buf_t *least = NULL;
        for (size_t i = 0; i < k; i++)
            if (src[i].valid && (!least || dm_store_key_cmp(src[i].pos.data, src[i].pos.len,
                                                     (const uint8_t *)least->data, least->len) < 0))
                least = &src[i].pos;
        runs->pos_len = least->len;
        memcpy(runs->pos, least->data, runs->pos_len);
    }
    for (size_t i = 0; i < k && !err; i++)
        err = dm_store__range_delete(txn, src[i].db, src[i].prefix, src[i].plen,
                                     done ? NULL : runs->pos, done ? 0 : runs->pos_len,
                                     self->max_key_bytes, why);
    s_srcs_free(src, k);
    dm_store__writer_free(&w);
    if (err || !done)
        return err;
    for (size_t i = oi - k; i < oi && !err; i++)
        err = dm_store__bloom_delete(self, txn, runs->pid, runs->run[i].id, why);
    if (err || (err = s_bloom_of_run(self, txn, runs->pid, out, why)))
        return err;
    out->flags &= (uint8_t)~DM_STORE_RUN_MERGING;
    memmove(&runs->run[oi - k], &runs->run[oi], (runs->n - oi) * sizeof runs->run[0]);
    runs->n -= k;
    runs->merge_in = runs->pos_len = 0;
    return DM_OK;
}

/* Whether the newest FANOUT runs, all above a merge in progress, have
 * one level (how many merges made them; a batch's run is level 0): a
 * counter in base FANOUT, so a product of N batches has about
 * log_FANOUT(N) levels and FANOUT - 1 runs a level, whatever the batch
 * sizes. *sum gets their entries. */
static bool s_top_same_level(const dm_store__runs_t *runs, uint64_t *sum)
{
    size_t low = runs->merge_in ? s_merging(runs) + 1 : 0;
    if (runs->n < low + DM_STORE_FANOUT)
        return false;
    unsigned level = s_level(&runs->run[runs->n - 1]);
    *sum = 0;
    for (size_t i = 1; i <= DM_STORE_FANOUT; i++) {
        if (s_level(&runs->run[runs->n - i]) != level)
            return false;
        *sum += runs->run[runs->n - i].entries;
    }
    return true;
}

/* Keeps room for the runs a settle and the next batch add: finishes the
 * merge in progress, else merges the newest two runs. */
static dm_err s_make_room(dm_store_t *self, MDB_txn *txn, dm_store__runs_t *runs, dm_buf_t *why)
{
    dm_err err = DM_OK;
    while (runs->n > DM_STORE_RUNS_MAX - 4 && !err) {
        size_t low = runs->merge_in ? s_merging(runs) + 1 : 0;
        if (runs->n >= low + 2)
            err = s_merge_top(self, txn, runs, 2, why);
        else
            err = s_merge_step(self, txn, runs, UINT64_MAX, why);
    }
    return err;
}

dm_err dm_store__index_settle(dm_store_t *self, MDB_txn *txn, dm_store__runs_t *runs,
                              uint64_t keys, dm_buf_t *why)
{
    MDB_stat st;
    int rc = mdb_stat(txn, self->pk_recent, &st);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("count recent index entries", rc, why);
    dm_err err = s_make_room(self, txn, runs, why);
    if (!err && st.ms_entries > self->pk_recent_max) {
        s_src src;
        uint8_t prefix[DM_STORE_PID_BYTES];
        dm_store__put_be32(prefix, runs->pid);
        s_src_init(&src, self->pk_recent, prefix, sizeof prefix, NULL, 0);
        err = s_merge_now(self, txn, runs, &src, 1, st.ms_entries, 0, why);
        s_srcs_free(&src, 1);
    }
    uint64_t sum = 0;
    while (!err && s_top_same_level(runs, &sum) && sum <= self->sync_merge_max)
        err = s_merge_top(self, txn, runs, DM_STORE_FANOUT, why);
    if (!err && !runs->merge_in && s_top_same_level(runs, &sum)) {
        unsigned level = s_level(&runs->run[runs->n - 1]) + 1;
        runs->run[runs->n++] = (dm_store__run_t){
            runs->next_id++, 0,
            (uint8_t)(DM_STORE_RUN_BIG | DM_STORE_RUN_MERGING | s_level_flags(level))};
        runs->merge_in = DM_STORE_FANOUT;
        runs->pos_len = 0;
    }
    /* The pace spreads a merge over most of the ingest until the next one
     * of its level is due (as many keys as it has entries): 5/4 entries a
     * key, twice that while another merge waits for it. At 2 entries a key
     * a 3.2M merge took 1.6M keys and doubled the writer's CPU for them. */
    uint64_t step = keys > self->merge_step_min ? keys : self->merge_step_min;
    step = step * DM_STORE_MERGE_PACE_NUM / DM_STORE_MERGE_PACE_DEN;
    if (!err && runs->merge_in)
        err = s_merge_step(self, txn, runs, s_top_same_level(runs, &sum) ? 2 * step : step, why);
    return err ? err : s_runs_put(self, txn, runs, why);
}
