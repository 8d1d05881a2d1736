/* quality_db.c: the "quality" database (quality_db.h): [pid][key] -> value,
 * read and written inside the caller's transaction. */
#include "storage/quality_db.h"

#include <string.h>

#include "storage/store_int.h"

#define S_FULL_KEY_MAX (DM_STORE_PID_BYTES + DM_QDB_KEY_MAX)

typedef struct {
    dm_store_t *store;
    dm_quality_db_fn fn;
    void *ctx;
} s_run_ctx;

static dm_err s_write_body(MDB_txn *txn, void *arg, dm_buf_t *why)
{
    s_run_ctx *r = arg;
    dm_store_txn_t t = {r->store, txn};
    return r->fn(&t, r->ctx, why);
}

dm_err dm_quality_db_update(dm_store_t *store, dm_quality_db_fn fn, void *ctx, dm_buf_t *why)
{
    s_run_ctx r = {store, fn, ctx};
    return dm_store__write_opts(store, "quality", s_write_body, &r, false, why);
}

dm_err dm_quality_db_view(dm_store_t *store, dm_quality_db_fn fn, void *ctx, dm_buf_t *why)
{
    MDB_txn *txn;
    dm_err err = dm_store__read_begin(store, &txn, why);
    if (err)
        return err;
    dm_store_txn_t t = {store, txn};
    err = fn(&t, ctx, why);
    dm_store__read_end(store, txn);
    return err;
}

/* Builds [pid][key] in buf; false when key is too long. */
static bool s_key(uint8_t *buf, uint32_t pid, const void *key, size_t klen, MDB_val *out)
{
    if (klen > DM_QDB_KEY_MAX)
        return false;
    dm_store__put_be32(buf, pid);
    if (klen)
        memcpy(buf + DM_STORE_PID_BYTES, key, klen);
    out->mv_size = DM_STORE_PID_BYTES + klen;
    out->mv_data = buf;
    return true;
}

static dm_err s_toobig(size_t klen, dm_buf_t *why)
{
    dm_buf_why(why, "quality: a state key of %zu bytes is over the limit of %d", klen,
               DM_QDB_KEY_MAX);
    return DM_ERR_TOOBIG;
}

dm_err dm_quality_db_get(dm_store_txn_t *t, uint32_t pid, const void *key, size_t klen,
                         dm_buf_t *val, dm_buf_t *why)
{
    uint8_t kb[S_FULL_KEY_MAX];
    MDB_val k, v;
    if (!s_key(kb, pid, key, klen, &k))
        return s_toobig(klen, why);
    dm_buf_reset(val);
    int rc = mdb_get(t->txn, t->store->quality, &k, &v);
    if (rc == MDB_SUCCESS)
        dm_buf_append(val, v.mv_data, v.mv_size);
    return dm_store__mdb_txn(t->store, "read quality state", rc, why);
}

dm_err dm_quality_db_put(dm_store_txn_t *t, uint32_t pid, const void *key, size_t klen,
                         const void *val, size_t vlen, dm_buf_t *why)
{
    uint8_t kb[S_FULL_KEY_MAX];
    MDB_val k, v = {vlen, (void *)val};
    if (!s_key(kb, pid, key, klen, &k))
        return s_toobig(klen, why);
    return dm_store__mdb_txn(t->store, "write quality state",
                             mdb_put(t->txn, t->store->quality, &k, &v, 0), why);
}

dm_err dm_quality_db_del(dm_store_txn_t *t, uint32_t pid, const void *key, size_t klen,
                         dm_buf_t *why)
{
    uint8_t kb[S_FULL_KEY_MAX];
    MDB_val k;
    if (!s_key(kb, pid, key, klen, &k))
        return s_toobig(klen, why);
    int rc = mdb_del(t->txn, t->store->quality, &k, NULL);
    return rc == MDB_NOTFOUND ? DM_OK
                              : dm_store__mdb_txn(t->store, "delete quality state", rc, why);
}

/* A counter's value after adding delta to was: below 0 it stays at 0. */
static uint64_t s_counter_next(uint64_t was, int64_t delta)
{
    return delta < 0 && (uint64_t)-delta > was ? 0 : was + (uint64_t)delta;
}

dm_err dm_quality_db_add(dm_store_txn_t *t, uint32_t pid, const void *key, size_t klen,
                         int64_t delta, uint64_t *before, uint64_t *after, dm_buf_t *why)
{
    uint8_t kb[S_FULL_KEY_MAX];
    MDB_val k, v;
    if (!s_key(kb, pid, key, klen, &k))
        return s_toobig(klen, why);
    uint64_t was = 0, now;
    uint8_t vb[DM_STORE_SEQ_BYTES];
    int rc;
    if (delta > 0) { /* most values are new: insert in one descent when absent */
        dm_store__put_be64(vb, (uint64_t)delta);
        v.mv_size = sizeof vb;
        v.mv_data = vb;
        rc = mdb_put(t->txn, t->store->quality, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_SUCCESS) {
            if (before)
                *before = 0;
            if (after)
                *after = (uint64_t)delta;
            return DM_OK;
        }
        if (rc != MDB_KEYEXIST) /* on MDB_KEYEXIST v holds the stored value */
            return dm_store__mdb_txn(t->store, "write a quality counter", rc, why);
    } else {
        rc = mdb_get(t->txn, t->store->quality, &k, &v);
    }
    if ((rc == MDB_SUCCESS || rc == MDB_KEYEXIST) && v.mv_size == DM_STORE_SEQ_BYTES)
        was = dm_store__get_be64(v.mv_data);
    else if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND && rc != MDB_KEYEXIST)
        return dm_store__mdb_txn(t->store, "read a quality counter", rc, why);
    now = s_counter_next(was, delta);
    if (before)
        *before = was;
    if (after)
        *after = now;
    if (now == was)
        return DM_OK;
    if (now == 0) {
        rc = mdb_del(t->txn, t->store->quality, &k, NULL);
        return rc == MDB_NOTFOUND ? DM_OK
                                  : dm_store__mdb_txn(t->store, "delete a quality counter", rc,
                                                      why);
    }
    dm_store__put_be64(vb, now);
    v.mv_size = sizeof vb;
    v.mv_data = vb;
    return dm_store__mdb_txn(t->store, "write a quality counter",
                             mdb_put(t->txn, t->store->quality, &k, &v, 0), why);
}

/* True when k is under [pid][prefix]. */
static bool s_under(const MDB_val *k, const uint8_t *full, size_t flen)
{
    return k->mv_size >= flen && memcmp(k->mv_data, full, flen) == 0;
}

/* Positions cur on the last key under full (flen bytes): the key after
 * the prefix range, then one back. */
static int s_seek_last(MDB_cursor *cur, const uint8_t *full, size_t flen, MDB_val *k, MDB_val *v)
{
    uint8_t next[S_FULL_KEY_MAX];
    memcpy(next, full, flen);
    size_t i = flen;
    while (i > 0 && next[i - 1] == 0xFF)
        i--;
    int rc;
    if (i == 0) {
        rc = mdb_cursor_get(cur, k, v, MDB_LAST);
    } else {
        next[i - 1]++;
        MDB_val nk = {i, next};
        *k = nk;
        rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
        rc = rc == MDB_SUCCESS ? mdb_cursor_get(cur, k, v, MDB_PREV)
             : rc == MDB_NOTFOUND ? mdb_cursor_get(cur, k, v, MDB_LAST)
                                  : rc;
    }
    return rc;
}

/* A cursor on the quality database over the keys under [pid][prefix]
 * (full, flen bytes). */
typedef struct {
    uint8_t full[S_FULL_KEY_MAX];
    size_t flen;
    MDB_cursor *cur;
} s_range_t;

/* Opens r on the keys under [pid][prefix]. */
static dm_err s_cursor(dm_store_txn_t *t, uint32_t pid, const void *prefix, size_t plen,
                       s_range_t *r, dm_buf_t *why)
{
    MDB_val k;
    r->cur = NULL;
    if (!s_key(r->full, pid, prefix, plen, &k))
        return s_toobig(plen, why);
    r->flen = k.mv_size;
    int rc = mdb_cursor_open(t->txn, t->store->quality, &r->cur);
    return rc == MDB_SUCCESS ? DM_OK
                             : dm_store__mdb_txn(t->store, "open a quality cursor", rc, why);
}

/* Closes r's cursor; rc is the walk's last LMDB code (MDB_NOTFOUND: the
 * end of the range, not an error), what names the walk in an error. */
static dm_err s_range_end(dm_store_txn_t *t, s_range_t *r, int rc, const char *what,
                          dm_buf_t *why)
{
    mdb_cursor_close(r->cur);
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? DM_OK
                                                   : dm_store__mdb_txn(t->store, what, rc, why);
}

dm_err dm_quality_db_each(dm_store_txn_t *t, uint32_t pid, const void *prefix, size_t plen,
                          bool reverse, dm_quality_db_each_fn fn, void *ctx, dm_buf_t *why)
{
    s_range_t r;
    dm_err err = s_cursor(t, pid, prefix, plen, &r, why);
    if (err)
        return err;
    MDB_val k = {r.flen, r.full}, v;
    int rc = reverse ? s_seek_last(r.cur, r.full, r.flen, &k, &v)
                     : mdb_cursor_get(r.cur, &k, &v, MDB_SET_RANGE);
    for (; rc == MDB_SUCCESS && s_under(&k, r.full, r.flen);
         rc = mdb_cursor_get(r.cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT))
        if (fn(ctx, (const uint8_t *)k.mv_data + DM_STORE_PID_BYTES,
               k.mv_size - DM_STORE_PID_BYTES, v.mv_data, v.mv_size))
            break;
    return s_range_end(t, &r, rc, "walk quality state", why);
}

/* Deletes the first key under [pid][prefix], or every one when all; what
 * names the deletion in an error. */
static dm_err s_del(dm_store_txn_t *t, uint32_t pid, const void *prefix, size_t plen, bool all,
                    const char *what, dm_buf_t *why)
{
    s_range_t r;
    dm_err err = s_cursor(t, pid, prefix, plen, &r, why);
    if (err)
        return err;
    MDB_val k = {r.flen, r.full}, v;
    int rc;
    /* Seek again after each delete: a deleted cursor's position is LMDB's
     * subtle part, a seek from the prefix is not. */
    while ((rc = mdb_cursor_get(r.cur, &k, &v, MDB_SET_RANGE)) == MDB_SUCCESS &&
           s_under(&k, r.full, r.flen)) {
        if ((rc = mdb_cursor_del(r.cur, 0)) != MDB_SUCCESS || !all)
            break;
        k = (MDB_val){r.flen, r.full};
    }
    return s_range_end(t, &r, rc, what, why);
}

dm_err dm_quality_db_del_first(dm_store_txn_t *t, uint32_t pid, const void *prefix, size_t plen,
                               dm_buf_t *why)
{
    return s_del(t, pid, prefix, plen, false, "trim quality history", why);
}

dm_err dm_quality_db_del_prefix(dm_store_txn_t *t, uint32_t pid, const void *prefix, size_t plen,
                                dm_buf_t *why)
{
    return s_del(t, pid, prefix, plen, true, "delete quality state", why);
}

/* Positions cur at [full][key] (flen bytes of prefix already in full):
 * *exact says whether that key is there, *count its counter (0 when
 * absent). k gets the full key. Returns LMDB's code (MDB_NOTFOUND: past
 * the last key, not an error). */
static int s_seek_counter(MDB_cursor *cur, uint8_t *full, size_t flen, const void *key,
                          size_t klen, MDB_val *k, bool *exact, uint64_t *count)
{
    memcpy(full + flen, key, klen);
    MDB_val want = {flen + klen, full}, v;
    *k = want;
    *exact = false;
    *count = 0;
    int rc = mdb_cursor_get(cur, k, &v, MDB_SET_RANGE);
    if (rc == MDB_SUCCESS && k->mv_size == want.mv_size &&
        memcmp(k->mv_data, want.mv_data, want.mv_size) == 0) {
        *exact = true;
        if (v.mv_size == DM_STORE_SEQ_BYTES)
            *count = dm_store__get_be64(v.mv_data);
    }
    *k = want;
    return rc;
}

dm_err dm_quality_db_get_sorted(dm_store_txn_t *t, uint32_t pid, const void *prefix, size_t plen,
                                const dm_quality_db_delta_t *d, size_t n, uint64_t *counts,
                                dm_buf_t *why)
{
    s_range_t r;
    dm_err err = s_cursor(t, pid, prefix, plen, &r, why);
    if (err)
        return err;
    for (size_t i = 0; i < n && !err; i++) {
        MDB_val k;
        bool exact;
        if (plen + d[i].klen > DM_QDB_KEY_MAX) {
            err = s_toobig(plen + d[i].klen, why);
            break;
        }
        int rc = s_seek_counter(r.cur, r.full, r.flen, d[i].key, d[i].klen, &k, &exact,
                                &counts[i]);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
            err = dm_store__mdb_txn(t->store, "read a quality counter", rc, why);
    }
    mdb_cursor_close(r.cur);
    return err;
}

/* One counter of add_sorted: the cursor is on it when *exact. */
static int s_add_one(MDB_cursor *cur, MDB_val *k, bool exact, uint64_t was, int64_t delta,
                     int64_t *entries)
{
    uint64_t now = s_counter_next(was, delta);
    if (now == was)
        return MDB_SUCCESS;
    if (now == 0) {
        (*entries)--;
        return mdb_cursor_del(cur, 0);
    }
    uint8_t vb[DM_STORE_SEQ_BYTES];
    dm_store__put_be64(vb, now);
    MDB_val v = {sizeof vb, vb};
    *entries += !exact;
    return mdb_cursor_put(cur, k, &v, exact ? MDB_CURRENT : 0);
}

dm_err dm_quality_db_add_sorted(dm_store_txn_t *t, uint32_t pid, const void *prefix, size_t plen,
                                const dm_quality_db_delta_t *d, size_t n, int64_t *entries,
                                dm_buf_t *why)
{
    s_range_t r;
    int64_t made = 0;
    dm_err err = s_cursor(t, pid, prefix, plen, &r, why);
    if (err)
        return err;
    int rc = MDB_SUCCESS;
    for (size_t i = 0; i < n; i++) {
        MDB_val k;
        bool exact;
        uint64_t was;
        if (plen + d[i].klen > DM_QDB_KEY_MAX) {
            err = s_toobig(plen + d[i].klen, why);
            break;
        }
        rc = s_seek_counter(r.cur, r.full, r.flen, d[i].key, d[i].klen, &k, &exact, &was);
        if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND)
            rc = s_add_one(r.cur, &k, exact, was, d[i].delta, &made);
        if (rc != MDB_SUCCESS) {
            err = dm_store__mdb_txn(t->store, "write a quality counter", rc, why);
            break;
        }
    }
    mdb_cursor_close(r.cur);
    if (entries)
        *entries = made;
    return err;
}

void *dm_quality_db_cache(dm_store_txn_t *t) { return t->store->quality_cache; }

void dm_quality_db_cache_set(dm_store_txn_t *t, void *cache, void (*free_fn)(void *cache),
                             void (*save_fn)(void *cache, const char *dir))
{
    t->store->quality_cache = cache;
    t->store->quality_cache_free = free_fn;
    t->store->quality_cache_save = save_fn;
}

const char *dm_quality_db_dir(dm_store_txn_t *t)
{
    const char *dir = NULL;
    return mdb_env_get_path(t->store->env, &dir) == MDB_SUCCESS ? dir : NULL;
}

dm_err dm_quality_db_counts(dm_store_txn_t *t, uint32_t pid, uint64_t *records,
                            uint64_t *quarantined, dm_buf_t *why)
{
    dm_store_counters_t c;
    dm_err err = dm_store__counters_get(t->store, t->txn, pid, &c, why);
    *records = err ? 0 : c.records;
    *quarantined = err ? 0 : c.quarantined;
    return err;
}

dm_err dm_quality_db_rows(dm_store_txn_t *t, uint32_t pid, dm_row_fn fn, void *ctx, dm_buf_t *why)
{
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(t->txn, t->store->rows, &cur);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_txn(t->store, "open a log cursor", rc, why);
    uint8_t kb[DM_STORE_LOG_KEY_BYTES];
    dm_store__log_key(kb, pid, 0);
    MDB_val k = {sizeof kb, kb}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != DM_STORE_LOG_KEY_BYTES || dm_store__get_be32(k.mv_data) != pid)
            break;
        uint64_t seq = dm_store__get_be64((const uint8_t *)k.mv_data + DM_STORE_PID_BYTES);
        if (fn(ctx, seq, v.mv_data, v.mv_size) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND
               ? DM_OK
               : dm_store__mdb_txn(t->store, "scan rows", rc, why);
}
