/* reader.c: a read transaction and cursors over the row log and the
 * primary-key index, for the SQL engine (reader.h).
 *
 * A key-order walk merges one LMDB cursor per part of the index (pk_recent
 * and each sorted run of the product, storage/index.c), like the runs of a
 * merge sort: the smallest key goes first, and when several hold the same
 * key the newest part's sequence wins (pk_recent, then the runs by
 * descending id; the older entries are stale ones a merge drops later).
 * Every part is sought to the range's start, so a walk steps over the
 * range's entries only. The row then comes from the log by its sequence. */
#include "storage/reader.h"

#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

#define S_BOUND_KEY_MAX 1024 /* bound bytes kept; longer bounds are cut (and checked per key) */

struct dm_store_reader {
    dm_store_t *store;
    MDB_txn *txn;
};

/* One side of the merge: an iterator on one part of the index (a run's
 * blocks or pk_recent's entries, storage/index_block.c). */
typedef dm_store__iter_t s_side_t;

typedef enum { S_IDLE, S_SCAN, S_RANGE } s_mode;

struct dm_store_cursor {
    dm_reader_t *r;
    s_mode mode;
    uint32_t pid;
    bool started, with_rows;
    MDB_cursor *log;         /* scans; row fetches use mdb_get */
    s_side_t side[DM_STORE_RUNS_MAX + 1]; /* range walks: pk_recent, runs newest first */
    size_t nsides;
    uint64_t walked;         /* index entries stepped over by range walks */
    uint8_t lo[S_BOUND_KEY_MAX];
    size_t lo_len;
    bool lo_inclusive, lo_done; /* lo_done: a key passed lo, the rest do too */
    uint8_t hi[S_BOUND_KEY_MAX];
    size_t hi_len;
    bool hi_inclusive, hi_none;
};

dm_err dm_reader_open(dm_store_t *store, dm_reader_t **out, dm_buf_t *why)
{
    *out = NULL;
    /* Refuse rather than wait: the thread asking may hold another reader
     * (a query worker keeps cursors open), and the grower waits for it. */
    if (atomic_load(&store->growers) > 0)
        return DM_ERR_BUSY;
    dm_reader_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->store = store;
    dm_err err = dm_store__read_begin(store, &self->txn, why);
    if (err) {
        free(self);
        return err;
    }
    *out = self;
    return DM_OK;
}

void dm_reader_close(dm_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_reader_t *self = *self_p;
    dm_store__read_end(self->store, self->txn);
    free(self);
    *self_p = NULL;
}

dm_err dm_reader_count(dm_reader_t *self, uint32_t pid, uint64_t *records, dm_buf_t *why)
{
    dm_store_counters_t c;
    dm_err err = dm_store__counters_get(self->store, self->txn, pid, &c, why);
    *records = err ? 0 : c.records;
    return err;
}

/* Reads the log row of pid with sequence seq. A missing row means the
 * index is corrupt (replacing a row rewrites its index entry first). */
static dm_err s_fetch(dm_reader_t *self, uint32_t pid, uint64_t seq, const void **row,
                      size_t *row_len, dm_buf_t *why)
{
    uint8_t lk[DM_STORE_LOG_KEY_BYTES];
    dm_store__log_key(lk, pid, seq);
    MDB_val key = {sizeof lk, lk}, val;
    int rc = mdb_get(self->txn, self->store->rows, &key, &val);
    if (rc == MDB_NOTFOUND) {
        dm_buf_why(why, "store: product %u: index points at missing row %llu", pid,
                   (unsigned long long)seq);
        return DM_ERR_STORE;
    }
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("read a row", rc, why);
    *row = val.mv_data;
    *row_len = val.mv_size;
    return DM_OK;
}

dm_err dm_reader_get(dm_reader_t *self, uint32_t pid, const void *key,
                           size_t key_len, const void **row, size_t *row_len, dm_buf_t *why)
{
    *row = NULL;
    *row_len = 0;
    uint64_t seq;
    dm_err err = dm_store__index_get(self->store, self->txn, pid, key, key_len, &seq, why);
    return err ? err : s_fetch(self, pid, seq, row, row_len, why);
}

dm_err dm_reader_cursor_open(dm_reader_t *reader, dm_reader_cursor_t **out, dm_buf_t *why)
{
    *out = NULL;
    dm_reader_cursor_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->r = reader;
    dm_store_t *st = reader->store;
    int rc = mdb_cursor_open(reader->txn, st->rows, &self->log);
    if (rc != MDB_SUCCESS) {
        dm_reader_cursor_close(&self);
        return dm_store__mdb_why("open a query cursor", rc, why);
    }
    *out = self;
    return DM_OK;
}

void dm_reader_cursor_close(dm_reader_cursor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_reader_cursor_t *self = *self_p;
    if (self->log)
        mdb_cursor_close(self->log);
    for (size_t i = 0; i < sizeof self->side / sizeof self->side[0]; i++)
        dm_store__iter_close(&self->side[i]);
    free(self);
    *self_p = NULL;
}

dm_err dm_reader_cursor_scan(dm_reader_cursor_t *self, uint32_t pid)
{
    self->mode = S_SCAN;
    self->pid = pid;
    self->started = false;
    return DM_OK;
}

/* The smallest key above every key that starts with k[0..*len): k with its
 * trailing 0xFF bytes dropped and the last byte incremented. Returns false
 * when there is none (all bytes 0xFF). */
static bool s_successor(uint8_t *k, size_t *len)
{
    while (*len > 0 && k[*len - 1] == 0xff)
        (*len)--;
    if (*len == 0)
        return false;
    k[*len - 1]++;
    return true;
}

/* Opens one side per part of pid's index: pk_recent, then runs newest
 * first. */
static dm_err s_sides_open(dm_reader_cursor_t *self, uint32_t pid, dm_buf_t *why)
{
    dm_store_t *st = self->r->store;
    dm_store__runs_t runs;
    dm_err err = dm_store__runs_get(st, self->r->txn, pid, &runs, why);
    if (err)
        return err;
    self->nsides = 1 + runs.n;
    for (size_t i = 0; i < sizeof self->side / sizeof self->side[0]; i++)
        dm_store__iter_close(&self->side[i]); /* a run may live in another database */
    for (size_t i = 0; i < self->nsides && !err; i++) {
        uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
        size_t plen = DM_STORE_PID_BYTES;
        dm_store__put_be32(prefix, pid);
        if (i > 0) {
            dm_store__put_be32(prefix + DM_STORE_PID_BYTES, runs.run[runs.n - i].id);
            plen = DM_STORE_RUN_PREFIX_BYTES;
        }
        MDB_dbi db = i == 0 ? st->pk_recent : dm_store__run_db(st, &runs.run[runs.n - i]);
        err = dm_store__iter_open(&self->side[i], self->r->txn, db, prefix, plen, why);
    }
    return err;
}

dm_err dm_reader_cursor_range(dm_reader_cursor_t *self, uint32_t pid, const dm_store_bound_t *lo,
                             const dm_store_bound_t *hi, bool with_rows, dm_buf_t *why)
{
    self->mode = S_RANGE;
    self->pid = pid;
    self->with_rows = with_rows;
    self->started = true;
    self->lo_len = lo->len < S_BOUND_KEY_MAX ? lo->len : S_BOUND_KEY_MAX;
    self->lo_inclusive = lo->inclusive || lo->len > self->lo_len; /* a cut bound is weaker */
    self->lo_done = false;
    self->hi_len = hi->len < S_BOUND_KEY_MAX ? hi->len : S_BOUND_KEY_MAX;
    self->hi_none = hi->len > S_BOUND_KEY_MAX || (hi->len == 0 && hi->inclusive);
    self->hi_inclusive = hi->inclusive;
    if (self->hi_len)
        memcpy(self->hi, hi->key, self->hi_len);
    if (self->lo_len)
        memcpy(self->lo, lo->key, self->lo_len);
    dm_err err = s_sides_open(self, pid, why);
    if (err) {
        self->nsides = 0;
        return err;
    }
    uint8_t start[S_BOUND_KEY_MAX + 1];
    size_t slen = self->lo_len;
    memcpy(start, self->lo, slen);
    if (!self->lo_inclusive && !s_successor(start, &slen)) {
        self->nsides = 0; /* nothing is above an all-0xFF bound */
        return DM_OK;
    }
    for (size_t i = 0; i < self->nsides && !err; i++)
        err = dm_store__iter_seek(&self->side[i], start, slen, self->r->store->max_key_bytes,
                                  why);
    return err;
}

/* Compares key k (without pid) with bound b by b's length: <0, 0, >0. */
static int s_prefix_cmp(const uint8_t *k, size_t klen, const uint8_t *b, size_t blen)
{
    int c = memcmp(k, b, klen < blen ? klen : blen);
    if (c == 0 && klen < blen)
        c = -1;
    return c;
}

/* Whether primary key k is inside this range's bounds. *past is set
 * when it is beyond the range (the walk ends). */
static bool s_in_range(dm_reader_cursor_t *self, const uint8_t *k, size_t klen, bool *past)
{
    *past = false;
    if (!self->hi_none) {
        int c = s_prefix_cmp(k, klen, self->hi, self->hi_len);
        if (self->hi_inclusive ? c > 0 : c >= 0) {
            *past = true;
            return false;
        }
    }
    if (!self->lo_done) {
        int c = s_prefix_cmp(k, klen, self->lo, self->lo_len);
        if (self->lo_inclusive ? c < 0 : c <= 0)
            return false;
        self->lo_done = true;
    }
    return true;
}

/* One step of a log scan. */
static dm_err s_next_scan(dm_reader_cursor_t *self, uint64_t *seq, const void **row,
                          size_t *row_len, dm_buf_t *why)
{
    MDB_val key, val;
    int rc;
    if (!self->started) {
        uint8_t k[DM_STORE_LOG_KEY_BYTES];
        dm_store__log_key(k, self->pid, 0);
        key.mv_size = sizeof k;
        key.mv_data = k;
        rc = mdb_cursor_get(self->log, &key, &val, MDB_SET_RANGE);
        self->started = true;
    } else {
        rc = mdb_cursor_get(self->log, &key, &val, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND)
        return DM_ERR_NOTFOUND;
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("scan rows", rc, why);
    if (key.mv_size != DM_STORE_LOG_KEY_BYTES || dm_store__get_be32(key.mv_data) != self->pid) {
        self->mode = S_IDLE;
        return DM_ERR_NOTFOUND;
    }
    *seq = dm_store__get_be64((const uint8_t *)key.mv_data + DM_STORE_PID_BYTES);
    *row = val.mv_data;
    *row_len = val.mv_size;
    return DM_OK;
}

/* Compares the primary keys of two sides in LMDB's default order:
 * memcmp, then the shorter key first. */
static int s_side_cmp(const s_side_t *a, const s_side_t *b)
{
    return dm_store_key_cmp(a->key, a->len, b->key, b->len);
}

/* One step of a key-range walk: the smallest key of the sides; on a tie
 * the newest side's entry, stepping over the older sides' stale ones. */
static dm_err s_next_range(dm_reader_cursor_t *self, uint64_t *seq, const void **row,
                           size_t *row_len, const void **key, size_t *key_len, dm_buf_t *why)
{
    for (;;) {
        s_side_t *win = NULL;
        for (size_t i = 0; i < self->nsides; i++)
            if (self->side[i].valid && (!win || s_side_cmp(&self->side[i], win) < 0))
                win = &self->side[i];
        if (!win)
            return DM_ERR_NOTFOUND;
        const uint8_t *pk = win->key; /* in the map: valid while the read txn lasts */
        size_t pklen = win->len;
        *seq = win->seq;
        dm_err err = DM_OK;
        for (size_t i = 0; i < self->nsides && !err; i++)
            if (&self->side[i] != win && self->side[i].valid && s_side_cmp(&self->side[i], win) == 0) {
                self->walked++;
                err = dm_store__iter_next(&self->side[i], why);
            }
        self->walked++;
        if (!err)
            err = dm_store__iter_next(win, why);
        if (err)
            return err;
        bool past;
        if (!s_in_range(self, pk, pklen, &past)) {
            if (past) {
                self->nsides = 0;
                return DM_ERR_NOTFOUND;
            }
            continue;
        }
        *key = pk;
        *key_len = pklen;
        if (!self->with_rows)
            return DM_OK;
        return s_fetch(self->r, self->pid, *seq, row, row_len, why);
    }
}

uint64_t dm_reader_cursor_walked(const dm_reader_cursor_t *self) { return self->walked; }

dm_err dm_reader_cursor_next(dm_reader_cursor_t *self, uint64_t *seq, const void **row,
                            size_t *row_len, const void **key, size_t *key_len, dm_buf_t *why)
{
    uint64_t s = 0;
    const void *rw = NULL, *k = NULL;
    size_t rlen = 0, klen = 0;
    dm_err err = DM_ERR_NOTFOUND;
    if (self->mode == S_SCAN)
        err = s_next_scan(self, &s, &rw, &rlen, why);
    else if (self->mode == S_RANGE)
        err = s_next_range(self, &s, &rw, &rlen, &k, &klen, why);
    if (seq)
        *seq = s;
    if (row)
        *row = rw;
    if (row_len)
        *row_len = rlen;
    if (key)
        *key = k;
    if (key_len)
        *key_len = klen;
    return err;
}
