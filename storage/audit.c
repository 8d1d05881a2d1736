/* audit.c: the audit log in the "audit" database (audit.h).
 *
 * Key: the record's sequence, u64 big-endian, so keys sort in append
 * order and a new record always goes at the end. The next sequence lives
 * in meta (S_META_NEXT), not in the log, so it keeps growing after
 * retention emptied the log and a client paging with "after" never sees
 * a number twice. Value (S_FORMAT 1):
 *   [format u8][at_ms i64 BE][caller 32][flags u8: 1 verified, 2 allowed]
 *   [policy_version u64 BE][len u8][action][len u8][product][len u8][rule]
 * Appends run on the node loop (its flush of the in-memory queue), so they
 * never wait for query readers to grow the map: DM_ERR_BUSY then, and the
 * caller keeps its queue for the next flush. */
#include "storage/audit.h"

#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

#define S_FORMAT 1
#define S_META_NEXT "audit_next"
#define S_FLAG_VERIFIED 1u
#define S_FLAG_ALLOWED 2u
#define S_FIXED_BYTES (1 + 8 + DM_AUDIT_KEY_BYTES + 1 + 8)
#define S_VALUE_MAX \
    (S_FIXED_BYTES + 3 + DM_AUDIT_ACTION_MAX + DM_AUDIT_PRODUCT_MAX + DM_AUDIT_RULE_MAX)
/* Records one append deletes at most: a lowered retention converges over
 * the next appends instead of holding the node loop in one huge txn. */
#define S_PRUNE_MAX 10000

/* Appends a string of at most cap - 1 bytes with its length byte. */
static size_t s_put_str(uint8_t *p, const char *s, size_t cap)
{
    size_t len = strnlen(s, cap - 1);
    p[0] = (uint8_t)len;
    memcpy(p + 1, s, len);
    return 1 + len;
}

/* Encodes r into out (S_VALUE_MAX bytes); returns the length. */
static size_t s_encode(const dm_audit_record_t *r, uint8_t *out)
{
    uint8_t *p = out;
    *p++ = S_FORMAT;
    dm_store__put_be64(p, (uint64_t)r->at_ms);
    p += 8;
    memcpy(p, r->caller, DM_AUDIT_KEY_BYTES);
    p += DM_AUDIT_KEY_BYTES;
    *p++ = (uint8_t)((r->verified ? S_FLAG_VERIFIED : 0) | (r->allowed ? S_FLAG_ALLOWED : 0));
    dm_store__put_be64(p, r->policy_version);
    p += 8;
    p += s_put_str(p, r->action, DM_AUDIT_ACTION_MAX);
    p += s_put_str(p, r->product, DM_AUDIT_PRODUCT_MAX);
    p += s_put_str(p, r->rule, DM_AUDIT_RULE_MAX);
    return (size_t)(p - out);
}

/* Reads a length-prefixed string into out (cap bytes with its NUL).
 * False if it overruns the value or the field. */
static bool s_get_str(const uint8_t **p, const uint8_t *end, char *out, size_t cap)
{
    if (*p >= end)
        return false;
    size_t len = **p;
    if (len >= cap || (size_t)(end - *p - 1) < len)
        return false;
    memcpy(out, *p + 1, len);
    out[len] = 0;
    *p += 1 + len;
    return true;
}

/* Decodes the value v of the record with key k into r. DM_ERR_STORE with a
 * line naming the sequence if it is malformed. */
static dm_err s_decode(const MDB_val *k, const MDB_val *v, dm_audit_record_t *r, dm_buf_t *why)
{
    memset(r, 0, sizeof *r);
    if (k->mv_size != 8) {
        dm_buf_why(why, "store: an audit key of %zu bytes (expected 8)", k->mv_size);
        return DM_ERR_STORE;
    }
    r->seq = dm_store__get_be64(k->mv_data);
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    if (v->mv_size < S_FIXED_BYTES || p[0] != S_FORMAT)
        goto bad;
    p++;
    r->at_ms = (int64_t)dm_store__get_be64(p);
    p += 8;
    memcpy(r->caller, p, DM_AUDIT_KEY_BYTES);
    p += DM_AUDIT_KEY_BYTES;
    r->verified = *p & S_FLAG_VERIFIED;
    r->allowed = *p & S_FLAG_ALLOWED;
    p++;
    r->policy_version = dm_store__get_be64(p);
    p += 8;
    if (!s_get_str(&p, end, r->action, sizeof r->action) ||
        !s_get_str(&p, end, r->product, sizeof r->product) ||
        !s_get_str(&p, end, r->rule, sizeof r->rule) || p != end)
        goto bad;
    return DM_OK;
bad:
    dm_buf_why(why, "store: audit record %llu is malformed (%zu bytes, format %d expected)",
               (unsigned long long)r->seq, v->mv_size, S_FORMAT);
    return DM_ERR_STORE;
}

typedef struct {
    dm_store_t *store;
    dm_audit_record_t *recs;
    size_t n;
    int64_t cutoff_ms;    /* records older than this go */
    uint64_t max_records;
} s_append_ctx;

/* Deletes the oldest records: those before c->cutoff_ms and those past
 * c->max_records, at most S_PRUNE_MAX. */
static dm_err s_prune(MDB_txn *txn, s_append_ctx *c, dm_buf_t *why)
{
    MDB_stat st;
    int rc = mdb_stat(txn, c->store->audit, &st);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("count the audit records", rc, why);
    size_t held = st.ms_entries;
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(txn, c->store->audit, &cur);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("open an audit cursor", rc, why);
    MDB_val k, v;
    size_t deleted = 0;
    /* The oldest record is always the first: look again after each delete. */
    while (deleted < S_PRUNE_MAX &&
           (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == MDB_SUCCESS) {
        /* A record too short to hold its time is pruned as if old. */
        bool old = v.mv_size < 9 || (int64_t)dm_store__get_be64((uint8_t *)v.mv_data + 1) <
                                        c->cutoff_ms;
        if (!old && held <= c->max_records)
            break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != MDB_SUCCESS)
            break;
        held--;
        deleted++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return dm_store__mdb_why("prune the audit log", rc, why);
    return DM_OK;
}

/* Appends c->recs with sequences from meta's counter, then prunes. May
 * rerun after the map grew: it assigns the sequences afresh each time. */
static dm_err s_append(MDB_txn *txn, void *arg, dm_buf_t *why)
{
    s_append_ctx *c = arg;
    dm_store_t *s = c->store;
    MDB_val mk = {strlen(S_META_NEXT), S_META_NEXT}, mv;
    uint64_t next = DM_STORE_FIRST_SEQ;
    int rc = mdb_get(txn, s->meta, &mk, &mv);
    if (rc == MDB_SUCCESS && mv.mv_size == 8)
        next = dm_store__get_be64(mv.mv_data);
    else if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS)
        return dm_store__mdb_why("read the next audit sequence", rc, why);
    uint8_t key[8], val[S_VALUE_MAX];
    for (size_t i = 0; i < c->n; i++) {
        c->recs[i].seq = next++;
        dm_store__put_be64(key, c->recs[i].seq);
        MDB_val k = {sizeof key, key}, v = {s_encode(&c->recs[i], val), val};
        rc = mdb_put(txn, s->audit, &k, &v, MDB_APPEND);
        if (rc != MDB_SUCCESS)
            return dm_store__mdb_why("append an audit record", rc, why);
    }
    uint8_t nb[8];
    dm_store__put_be64(nb, next);
    mv.mv_size = sizeof nb;
    mv.mv_data = nb;
    rc = mdb_put(txn, s->meta, &mk, &mv, 0);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("write the next audit sequence", rc, why);
    return s_prune(txn, c, why);
}

dm_err dm_audit_append(dm_store_t *s, dm_audit_record_t *recs, size_t n,
                       const dm_audit_retention_t *ret, int64_t now_ms, dm_buf_t *why)
{
    int64_t max_age = ret && ret->max_age_ms > 0 ? ret->max_age_ms : DM_AUDIT_DEFAULT_MAX_AGE_MS;
    uint64_t max_records =
        ret && ret->max_records ? ret->max_records : DM_AUDIT_DEFAULT_MAX_RECORDS;
    if (max_records > DM_AUDIT_DEFAULT_MAX_RECORDS)
        max_records = DM_AUDIT_DEFAULT_MAX_RECORDS; /* the bound is also the ceiling */
    s_append_ctx c = {s, recs, n, now_ms - max_age, max_records};
    return dm_store__write_opts(s, "append to the audit log", s_append, &c, false, why);
}

/* Finds the first sequence in [lo, hi) whose record has at_ms >= since_ms,
 * by bisection: records are appended in time order (a clock stepped back
 * only shifts where listing starts). Sequences in the log are contiguous:
 * appended at the end, pruned from the front. */
static dm_err s_seek_since(MDB_txn *txn, dm_store_t *s, int64_t since_ms, uint64_t lo,
                           uint64_t hi, uint64_t *first, dm_buf_t *why)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint8_t kb[8];
        dm_store__put_be64(kb, mid);
        MDB_val k = {sizeof kb, kb}, v;
        int rc = mdb_get(txn, s->audit, &k, &v);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
            return dm_store__mdb_why("seek in the audit log", rc, why);
        bool before = rc == MDB_SUCCESS && v.mv_size >= 9 &&
                      (int64_t)dm_store__get_be64((uint8_t *)v.mv_data + 1) < since_ms;
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    return DM_OK;
}

/* The sequences of the first and last records; false if the log is empty. */
static dm_err s_bounds(MDB_cursor *cur, uint64_t *first, uint64_t *last, bool *any,
                       dm_buf_t *why)
{
    MDB_val k, v;
    *any = false;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc == MDB_NOTFOUND)
        return DM_OK;
    if (rc == MDB_SUCCESS && k.mv_size == 8) {
        *first = dm_store__get_be64(k.mv_data);
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("read the audit log's ends", rc, why);
    if (k.mv_size != 8) {
        dm_buf_why(why, "store: an audit key of %zu bytes (expected 8)", k.mv_size);
        return DM_ERR_STORE;
    }
    *last = dm_store__get_be64(k.mv_data);
    *any = true;
    return DM_OK;
}

dm_err dm_audit_list(dm_store_t *s, int64_t since_ms, uint64_t after, size_t limit,
                     dm_audit_record_t **out, size_t *n, bool *more, dm_buf_t *why)
{
    *out = NULL;
    *n = 0;
    *more = false;
    if (limit == 0 || limit > DM_AUDIT_PAGE_MAX)
        limit = DM_AUDIT_PAGE_MAX;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    dm_audit_record_t *recs = NULL;
    size_t count = 0;
    dm_err err = dm_store__read_begin(s, &txn, why);
    if (err)
        return err;
    err = dm_store__mdb_why("open an audit cursor", mdb_cursor_open(txn, s->audit, &cur), why);
    uint64_t first = 0, last = 0;
    bool any = false;
    if (!err)
        err = s_bounds(cur, &first, &last, &any, why);
    if (err || !any || after >= last)
        goto out;
    uint64_t start = after + 1 > first ? after + 1 : first;
    err = s_seek_since(txn, s, since_ms, start, last + 1, &start, why);
    if (err || start > last)
        goto out;
    recs = malloc(limit * sizeof *recs);
    if (!recs) {
        err = DM_ERR_NOMEM;
        goto out;
    }
    uint8_t kb[8];
    dm_store__put_be64(kb, start);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS) {
        dm_audit_record_t r;
        err = s_decode(&k, &v, &r, why);
        if (err)
            goto out;
        if (r.at_ms >= since_ms && r.seq > after) {
            if (count == limit) {
                *more = true;
                break;
            }
            recs[count++] = r;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        err = dm_store__mdb_why("list the audit log", rc, why);
out:
    if (cur)
        mdb_cursor_close(cur);
    dm_store__read_end(s, txn);
    if (err) {
        free(recs);
        *more = false;
        return err;
    }
    *out = recs;
    *n = count;
    return DM_OK;
}

dm_err dm_audit_count(dm_store_t *s, uint64_t *n, dm_buf_t *why)
{
    *n = 0;
    MDB_txn *txn = NULL;
    dm_err err = dm_store__read_begin(s, &txn, why);
    if (err)
        return err;
    MDB_stat st;
    err = dm_store__mdb_why("count the audit records", mdb_stat(txn, s->audit, &st), why);
    if (!err)
        *n = st.ms_entries;
    dm_store__read_end(s, txn);
    return err;
}
