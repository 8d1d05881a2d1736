/* index_pkf.c: one Bloom filter per product over every key its index
 * holds, kept in the writer's memory (docs/architecture.md "Storage").
 *
 * Why: a batch of new random keys into a big product asks every run's
 * filter about every key. With 13 runs at 10M rows the runs' filter tests
 * (one cache miss per run and key) were ~15% of meshd's CPU during an
 * ingest (perf: dm_store__bloom_test and dm_store__bloom_block), the
 * largest cost that grew with the product. One filter over the whole
 * product answers "new" with one test; only a key it may hold (an upsert,
 * or one of its false positives) asks the runs' filters.
 *
 * It only has to be a superset of the keys stored: it is built at the
 * product's first batch after a start by a walk of its runs and of its
 * part of pk_recent; every new key a batch writes is added (a batch that
 * aborts leaves extra bits: a false positive costs only the runs' tests);
 * keys deleted stay until the next build; a deleted product's filter goes
 * with it. It is sized at S_BITS_PER_KEY for twice the keys at a build
 * (at least S_MIN_KEYS), and built again once it holds three times them
 * (then ~11 bits a key, under 1% false positives): a build walks the
 * product's keys once per two keys added since, about 0.1 us a key added.
 * Memory: DM_STORE_PKF_BYTES_MAX for every product of a store (40 MB at 10M keys);
 * a product whose filter does not fit has none, and its runs' filters
 * answer as before.
 * It is touched only inside the store's write transaction (one writer at
 * a time), so it needs no lock. */
#include "storage/index_bloom.h"
#include "storage/store_int.h"

#include <stdlib.h>
#include <string.h>

#define S_MIN_KEYS ((uint64_t)1 << 16) /* a small product: a 128 KB filter */
#define S_BITS_PER_KEY 16
#define S_BLOCK_BYTES 64
#define S_WALK_AHEAD 32 /* keys hashed before their bits are set (build) */

static dm_store__pkf_t *s_find(dm_store_t *self, uint32_t pid)
{
    for (size_t i = 0; i < self->npkf; i++)
        if (self->pkf[i]->pid == pid)
            return self->pkf[i];
    return NULL;
}

static void s_clear(dm_store_t *self, dm_store__pkf_t *f)
{
    self->pkf_bytes -= f->len;
    free(f->bits);
    f->bits = NULL;
    f->len = 0;
    f->cap = f->added = f->keys = 0;
}

/* Adds every key of db's part with prefix to f: hashes S_WALK_AHEAD keys
 * and prefetches their blocks before setting them, so the cache misses of
 * a filter far larger than the cache overlap. */
static dm_err s_walk(dm_store_t *self, MDB_txn *txn, MDB_dbi db, const uint8_t *prefix,
                     size_t plen, dm_store__pkf_t *f, dm_buf_t *why)
{
    uint64_t h[S_WALK_AHEAD];
    size_t n = 0;
    dm_store__iter_t it;
    dm_err err = dm_store__iter_open(&it, txn, db, prefix, plen, why);
    if (!err)
        err = dm_store__iter_seek(&it, NULL, 0, self->max_key_bytes, why);
    for (; !err; err = dm_store__iter_next(&it, why)) {
        if (it.valid) {
            h[n] = dm_index_bloom_hash(it.key, it.len);
            (void)dm_store__bloom_block(f->bits, f->len, h[n++]); /* prefetches */
        }
        if (n == S_WALK_AHEAD || (!it.valid && n)) {
            for (size_t i = 0; i < n; i++)
                dm_index_bloom_set(f->bits, f->len, h[i]);
            n = 0;
        }
        if (!it.valid)
            break;
    }
    dm_store__iter_close(&it);
    return err;
}

/* Builds f for runs' product: false when it does not fit or fails (f then
 * holds nothing). */
static bool s_build(dm_store_t *self, MDB_txn *txn, const dm_store__runs_t *runs,
                    dm_store__pkf_t *f)
{
    uint64_t keys = self->pk_recent_max;
    for (size_t i = 0; i < runs->n; i++)
        keys += runs->run[i].entries;
    uint64_t cap = 2 * keys > S_MIN_KEYS ? 2 * keys : S_MIN_KEYS;
    uint64_t blocks = (cap * S_BITS_PER_KEY + S_BLOCK_BYTES * 8 - 1) / (S_BLOCK_BYTES * 8);
    size_t len = (size_t)blocks * S_BLOCK_BYTES;
    s_clear(self, f);
    f->keys = keys;
    if (self->pkf_bytes + len > DM_STORE_PKF_BYTES_MAX || !(f->bits = calloc(1, len)))
        return false;
    f->len = len;
    f->cap = cap;
    self->pkf_bytes += len;
    dm_buf_t why = DM_BUF_INIT; /* a failed walk: no filter, the runs' answer */
    uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
    dm_store__put_be32(prefix, runs->pid);
    dm_err err = s_walk(self, txn, self->pk_recent, prefix, DM_STORE_PID_BYTES, f, &why);
    for (size_t i = 0; i < runs->n && !err; i++) {
        dm_store__put_be32(prefix + DM_STORE_PID_BYTES, runs->run[i].id);
        err = s_walk(self, txn, dm_store__run_db(self, &runs->run[i]), prefix, sizeof prefix, f,
                     &why);
    }
    dm_buf_free(&why);
    f->added = 0; /* the keys added since */
    if (err)
        s_clear(self, f);
    return !err;
}

dm_store__pkf_t *dm_store__pkf_get(dm_store_t *self, MDB_txn *txn, const dm_store__runs_t *runs)
{
    dm_store__pkf_t *f = s_find(self, runs->pid);
    if (!f) {
        dm_store__pkf_t **grown = realloc(self->pkf, (self->npkf + 1) * sizeof *grown);
        if (!grown)
            return NULL;
        self->pkf = grown;
        if (!(f = calloc(1, sizeof *f)))
            return NULL;
        f->pid = runs->pid;
        self->pkf[self->npkf++] = f;
    }
    if (f->bits && f->keys + f->added <= f->cap / 2 * 3)
        return f;
    return s_build(self, txn, runs, f) ? f : NULL;
}

void dm_store__pkf_add(dm_store__pkf_t *f, const void *key, size_t len)
{
    if (!f || !f->bits)
        return;
    dm_index_bloom_set(f->bits, f->len, dm_index_bloom_hash(key, len));
    f->added++;
}

bool dm_store__pkf_maybe(const dm_store__pkf_t *f, uint64_t h)
{
    return !f || !f->bits || dm_index_bloom_test(f->bits, f->len, h);
}

void dm_store__pkf_drop(dm_store_t *self, uint32_t pid)
{
    dm_store__pkf_t *f = s_find(self, pid);
    if (f)
        s_clear(self, f);
}
