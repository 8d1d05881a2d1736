/* reader.c: a read transaction and cursors over the row log and the
 * two-part primary-key index, for the SQL engine (reader.h).
 *
 * A key-order walk merges two LMDB cursors, one on pk_recent and one on
 * pk, like the two runs of a merge sort: the smaller key goes first, and
 * when both hold the same key pk_recent's sequence wins (pk's entry is the
 * stale one that the next index merge overwrites). The row then comes from
 * the log by its sequence number. */
#include "storage/reader.h"

#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

#define S_BOUND_KEY_MAX 1024 /* bound bytes kept; longer bounds are cut (and checked per key) */

struct dm_store_reader {
    dm_store_t *store;
    MDB_txn *txn;
};

/* One side of the merge: an LMDB cursor and its current entry. */
typedef struct {
    MDB_cursor *cur;
    bool valid;
    MDB_val key, val;
} s_side_t;

typedef enum { S_IDLE, S_SCAN, S_RANGE } s_mode;

struct dm_store_cursor {
    dm_reader_t *r;
    s_mode mode;
    uint32_t pid;
    bool started, with_rows;
    MDB_cursor *log;         /* scans; row fetches use mdb_get */
    s_side_t recent, main;   /* range walks */
    uint8_t lo[DM_STORE_PID_BYTES + S_BOUND_KEY_MAX];
    size_t lo_len;           /* without the pid */
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

/* Reads the sequence number an index entry holds. */
static dm_err s_seq(const MDB_val *val, uint32_t pid, uint64_t *seq, dm_buf_t *why)
{
    if (val->mv_size != DM_STORE_SEQ_BYTES) {
        dm_buf_why(why, "store: index entry of product %u is corrupt", pid);
        return DM_ERR_STORE;
    }
    *seq = dm_store__get_be64(val->mv_data);
    return DM_OK;
}

dm_err dm_reader_get(dm_reader_t *self, uint32_t pid, const void *key,
                           size_t key_len, const void **row, size_t *row_len, dm_buf_t *why)
{
    *row = NULL;
    *row_len = 0;
    uint8_t k[DM_STORE_PID_BYTES + S_BOUND_KEY_MAX];
    if (key_len == 0 || key_len > S_BOUND_KEY_MAX ||
        key_len > self->store->max_key_bytes - DM_STORE_PID_BYTES)
        return DM_ERR_NOTFOUND; /* commit_batch never stores such a key */
    dm_store__put_be32(k, pid);
    memcpy(k + DM_STORE_PID_BYTES, key, key_len);
    MDB_val kv = {DM_STORE_PID_BYTES + key_len, k}, val;
    int rc = mdb_get(self->txn, self->store->pk_recent, &kv, &val);
    if (rc == MDB_NOTFOUND)
        rc = mdb_get(self->txn, self->store->pk, &kv, &val);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("look up a key", rc, why);
    uint64_t seq;
    dm_err err = s_seq(&val, pid, &seq, why);
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
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_open(reader->txn, st->pk_recent, &self->recent.cur);
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_open(reader->txn, st->pk, &self->main.cur);
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
    if (self->recent.cur)
        mdb_cursor_close(self->recent.cur);
    if (self->main.cur)
        mdb_cursor_close(self->main.cur);
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

/* Positions side s at the first entry >= start. */
static dm_err s_side_seek(s_side_t *s, const uint8_t *start, size_t len, dm_buf_t *why)
{
    s->key.mv_data = (void *)start;
    s->key.mv_size = len;
    int rc = mdb_cursor_get(s->cur, &s->key, &s->val, MDB_SET_RANGE);
    s->valid = rc == MDB_SUCCESS;
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? DM_OK
                                                   : dm_store__mdb_why("seek the index", rc, why);
}

/* Advances side s by one entry. */
static dm_err s_side_next(s_side_t *s, dm_buf_t *why)
{
    int rc = mdb_cursor_get(s->cur, &s->key, &s->val, MDB_NEXT);
    s->valid = rc == MDB_SUCCESS;
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? DM_OK
                                                   : dm_store__mdb_why("walk the index", rc, why);
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
    dm_store__put_be32(self->lo, pid);
    if (self->lo_len)
        memcpy(self->lo + DM_STORE_PID_BYTES, lo->key, self->lo_len);
    uint8_t start[sizeof self->lo];
    size_t slen = DM_STORE_PID_BYTES + self->lo_len;
    memcpy(start, self->lo, slen);
    if (!self->lo_inclusive && !s_successor(start, &slen)) {
        self->recent.valid = self->main.valid = false;
        return DM_OK;
    }
    size_t max = self->r->store->max_key_bytes;
    if (slen > max) { /* LMDB refuses longer search keys; the per-key lo check covers the cut */
        slen = max;
        self->lo_inclusive = true;
    }
    dm_err err = s_side_seek(&self->recent, start, slen, why);
    return err ? err : s_side_seek(&self->main, start, slen, why);
}

/* Compares key k (without pid) with bound b by b's length: <0, 0, >0. */
static int s_prefix_cmp(const uint8_t *k, size_t klen, const uint8_t *b, size_t blen)
{
    int c = memcmp(k, b, klen < blen ? klen : blen);
    if (c == 0 && klen < blen)
        c = -1;
    return c;
}

/* Whether the index entry key (with pid) is a key of this range: pid and
 * the bounds. *past is set when it is beyond the range (walk ends). */
static bool s_in_range(dm_reader_cursor_t *self, const MDB_val *key, bool *past)
{
    const uint8_t *k = key->mv_data;
    *past = key->mv_size < DM_STORE_PID_BYTES || dm_store__get_be32(k) != self->pid;
    if (*past)
        return false;
    k += DM_STORE_PID_BYTES;
    size_t klen = key->mv_size - DM_STORE_PID_BYTES;
    if (!self->hi_none) {
        int c = s_prefix_cmp(k, klen, self->hi, self->hi_len);
        if (self->hi_inclusive ? c > 0 : c >= 0) {
            *past = true;
            return false;
        }
    }
    if (!self->lo_done) {
        int c = s_prefix_cmp(k, klen, self->lo + DM_STORE_PID_BYTES, self->lo_len);
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

/* LMDB's default key order: memcmp, then the shorter key first. */
static int s_key_cmp(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = memcmp(a->mv_data, b->mv_data, n);
    if (c == 0 && a->mv_size != b->mv_size)
        c = a->mv_size < b->mv_size ? -1 : 1;
    return c;
}

/* One step of a key-range walk: the smaller key of the two sides; on a
 * tie pk_recent's entry, skipping pk's stale one. */
static dm_err s_next_range(dm_reader_cursor_t *self, uint64_t *seq, const void **row,
                           size_t *row_len, const void **key, size_t *key_len, dm_buf_t *why)
{
    s_side_t *r = &self->recent, *m = &self->main;
    for (;;) {
        if (!r->valid && !m->valid)
            return DM_ERR_NOTFOUND;
        int c = !r->valid ? 1 : !m->valid ? -1 : s_key_cmp(&r->key, &m->key);
        s_side_t *win = c <= 0 ? r : m;
        MDB_val k = win->key, v = win->val;
        dm_err err = DM_OK;
        if (c == 0)
            err = s_side_next(m, why); /* pk's entry for this key is stale */
        if (!err)
            err = s_side_next(win, why);
        if (err)
            return err;
        bool past;
        if (!s_in_range(self, &k, &past)) {
            if (past) {
                r->valid = m->valid = false;
                return DM_ERR_NOTFOUND;
            }
            continue;
        }
        if ((err = s_seq(&v, self->pid, seq, why)))
            return err;
        *key = (const uint8_t *)k.mv_data + DM_STORE_PID_BYTES;
        *key_len = k.mv_size - DM_STORE_PID_BYTES;
        if (!self->with_rows)
            return DM_OK;
        return s_fetch(self->r, self->pid, *seq, row, row_len, why);
    }
}

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
