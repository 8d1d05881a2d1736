/* quarantine.c: invalid records kept with their raw bytes and reasons, per
 * product, in arrival order.
 *
 * Key: [pid u32 BE][qseq u64 BE]. Value, integers big-endian:
 *   u64 line, u64 orig_len, i64 at_ms,
 *   u32 source_len, u32 reasons_len, u32 raw_len,
 *   source NUL reasons NUL raw NUL
 * The NULs let the scan hand out borrowed C strings straight from the map. */
#include "storage/store_int.h"

#include <string.h>


#define S_HEADER_BYTES (3 * 8 + 3 * 4)

dm_err dm_store__can_append(MDB_cursor *cur, const uint8_t *first, bool *yes, dm_buf_t *why)
{
    MDB_val key, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        *yes = true;
        return DM_OK;
    }
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("find the last log key", rc, why);
    size_t n = key.mv_size < DM_STORE_LOG_KEY_BYTES ? key.mv_size : DM_STORE_LOG_KEY_BYTES;
    int cmp = memcmp(key.mv_data, first, n);
    *yes = cmp < 0 || (cmp == 0 && key.mv_size < DM_STORE_LOG_KEY_BYTES);
    return DM_OK;
}

dm_err dm_store__quarantine_append(dm_store_t *self, MDB_txn *txn, uint32_t pid, uint64_t first,
                                   const dm_quarantine_in_t *q, size_t n, const char *source,
                                   int64_t at_ms, dm_buf_t *scratch, dm_buf_t *why)
{
    if (n == 0)
        return DM_OK;
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, self->quarantine, &cur);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("open a quarantine cursor", rc, why);
    uint8_t k[DM_STORE_LOG_KEY_BYTES];
    dm_store__log_key(k, pid, first);
    bool append = false;
    dm_err err = dm_store__can_append(cur, k, &append, why);
    size_t slen = strlen(source);
    for (size_t i = 0; i < n && !err; i++) {
        const char *reasons = q[i].reasons ? q[i].reasons : "";
        size_t rlen = strlen(reasons);
        uint8_t h[S_HEADER_BYTES];
        dm_store__put_be64(h, q[i].line);
        dm_store__put_be64(h + 8, q[i].orig_len > q[i].raw_len ? q[i].orig_len : q[i].raw_len);
        dm_store__put_be64(h + 16, (uint64_t)at_ms);
        dm_store__put_be32(h + 24, (uint32_t)slen);
        dm_store__put_be32(h + 28, (uint32_t)rlen);
        dm_store__put_be32(h + 32, (uint32_t)q[i].raw_len);
        dm_buf_reset(scratch);
        dm_buf_append(scratch, h, sizeof h);
        dm_buf_append(scratch, source, slen + 1);
        dm_buf_append(scratch, reasons, rlen + 1);
        dm_buf_append(scratch, q[i].raw ? q[i].raw : "", q[i].raw_len);
        dm_buf_putc(scratch, 0);
        dm_store__log_key(k, pid, first + i);
        MDB_val key = {sizeof k, k}, val = {scratch->len, scratch->data};
        err = dm_store__mdb_why("write a quarantine entry",
                                mdb_cursor_put(cur, &key, &val, append ? MDB_APPEND : 0), why);
    }
    mdb_cursor_close(cur);
    return err;
}

/* Decodes a stored value into item (borrowing from the map). */
static dm_err s_decode(const MDB_val *val, dm_quarantine_item_t *item, dm_buf_t *why)
{
    const uint8_t *p = val->mv_data;
    if (val->mv_size < S_HEADER_BYTES)
        goto corrupt;
    item->line = dm_store__get_be64(p);
    item->orig_len = dm_store__get_be64(p + 8);
    item->at_ms = (int64_t)dm_store__get_be64(p + 16);
    size_t slen = dm_store__get_be32(p + 24), rlen = dm_store__get_be32(p + 28);
    size_t raw_len = dm_store__get_be32(p + 32);
    if (val->mv_size != S_HEADER_BYTES + slen + 1 + rlen + 1 + raw_len + 1)
        goto corrupt;
    item->source = (const char *)p + S_HEADER_BYTES;
    item->reasons = item->source + slen + 1;
    item->raw = item->reasons + rlen + 1;
    item->raw_len = raw_len;
    return DM_OK;
corrupt:
    dm_buf_why(why, "store: a quarantine entry is corrupt (%zu bytes)", val->mv_size);
    return DM_ERR_STORE;
}

dm_err dm_store_quarantine_scan(dm_store_t *self, uint32_t pid, uint64_t after, size_t limit,
                                dm_quarantine_fn fn, void *ctx, bool *more, dm_buf_t *why)
{
    *more = false;
    if (after == UINT64_MAX)
        return DM_OK;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    dm_err err = dm_store__read_begin(self, &txn, why);
    if (err)
        return err;
    int rc = mdb_cursor_open(txn, self->quarantine, &cur);
    if (rc != MDB_SUCCESS) {
        err = dm_store__mdb_why("open a quarantine cursor", rc, why);
        goto out;
    }
    uint8_t k[DM_STORE_LOG_KEY_BYTES];
    dm_store__log_key(k, pid, after + 1);
    MDB_val key = {sizeof k, k}, val;
    size_t done = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size != DM_STORE_LOG_KEY_BYTES || dm_store__get_be32(key.mv_data) != pid)
            break;
        if (done == limit) {
            *more = true;
            break;
        }
        dm_quarantine_item_t item;
        if ((err = s_decode(&val, &item, why)))
            goto out;
        item.seq = dm_store__get_be64((const uint8_t *)key.mv_data + DM_STORE_PID_BYTES);
        done++;
        if (fn(ctx, &item) != 0) {
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            *more = rc == MDB_SUCCESS && key.mv_size == DM_STORE_LOG_KEY_BYTES &&
                    dm_store__get_be32(key.mv_data) == pid;
            if (rc == MDB_NOTFOUND)
                rc = MDB_SUCCESS;
            break;
        }
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        err = dm_store__mdb_why("scan the quarantine", rc, why);
out:
    mdb_cursor_close(cur);
    dm_store__read_end(self, txn);
    return err;
}
