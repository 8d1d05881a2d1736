/* index_block.c: an index run stored as blocks of sorted entries, and the
 * iterator every reader of the index walks it with (storage/index.c).
 *
 * Why: with one LMDB entry per index key, a merge paid LMDB's per-entry
 * put and delete for every entry it moved: perf on meshd's writer while
 * ingesting 1M keys into a 14M-row product put ~0.5 us per merged entry
 * into mdb_cursor_put/mdb_cursor_del, the page copies (memmove) and the
 * rebalancing of pages emptied from their end. A block packs a run's next
 * entries into one LMDB value (a node of at most DM_STORE_BLOCK_NODE_BYTES:
 * ~70 16-byte uuid keys), so a merge reads and writes whole blocks with
 * MDB_APPEND and deleting a run deletes one node per ~70 entries. With
 * blocks LMDB's share of the writer fell from ~27% to ~3% (same ingest).
 * Blocks stay inside leaf pages, two a page: as 4 KiB overflow pages (~145
 * keys) a lookup touched the block's page besides the leaf, and in a
 * process that had not mapped them yet each cold page is a page fault.
 *
 * A block's LMDB key is [pid][run id][its LAST key], so MDB_SET_RANGE on
 * [pid][run id][k] lands on the only block that can hold k (the first whose
 * last key is >= k), and a binary search inside it finishes the lookup; a
 * range walk starts the same way and steps block by block.
 *
 * Block value: [n u16 BE][offset u16 BE x n][entries], an entry being
 * [key length u16 BE][key][seq u64 BE]; offsets count from the value's
 * start. A value of exactly DM_STORE_SEQ_BYTES is one entry whose key is
 * the LMDB key itself: pk_recent's entries and the runs of stores written
 * before blocks (format 2 unchanged) read through the same iterator, and
 * the merges turn old runs into blocks as they go. No block is 8 bytes
 * (the least is 15). */
#include "storage/store_int.h"

#include <string.h>

#define S_HEAD_BYTES 2  /* entry count */
#define S_OFF_BYTES 2   /* one entry's offset */
#define S_KLEN_BYTES 2  /* one entry's key length */
#define S_NODE_HEAD_BYTES 8 /* LMDB's header of a leaf node */

static uint16_t s_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void s_put_be16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static dm_err s_corrupt(const dm_store__iter_t *it, dm_buf_t *why)
{
    dm_buf_why(why, "store: an index block of product %u is corrupt (%zu bytes)",
               dm_store__get_be32(it->prefix), it->blen);
    return DM_ERR_STORE;
}

/* Decodes entry i of the current block into it->key/len/seq. */
static dm_err s_entry(dm_store__iter_t *it, size_t i, dm_buf_t *why)
{
    if (it->blen == DM_STORE_SEQ_BYTES) {
        it->key = (const uint8_t *)it->bkey.mv_data + it->plen;
        it->len = it->bkey.mv_size - it->plen;
        it->seq = dm_store__get_be64(it->blk);
        return DM_OK;
    }
    size_t off = s_be16(it->blk + S_HEAD_BYTES + i * S_OFF_BYTES);
    if (off + S_KLEN_BYTES > it->blen)
        return s_corrupt(it, why);
    size_t len = s_be16(it->blk + off);
    if (off + S_KLEN_BYTES + len + DM_STORE_SEQ_BYTES > it->blen)
        return s_corrupt(it, why);
    it->key = it->blk + off + S_KLEN_BYTES;
    it->len = len;
    it->seq = dm_store__get_be64(it->key + len);
    return DM_OK;
}

/* Takes the block the cursor returned (rc) as current, if it has the prefix. */
static dm_err s_block(dm_store__iter_t *it, int rc, MDB_val *val, dm_buf_t *why)
{
    it->valid = rc == MDB_SUCCESS && it->bkey.mv_size > it->plen &&
                memcmp(it->bkey.mv_data, it->prefix, it->plen) == 0;
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return dm_store__mdb_why("read the index", rc, why);
    if (!it->valid)
        return DM_OK;
    it->blk = val->mv_data;
    it->blen = val->mv_size;
    it->i = 0;
    if (it->blen == DM_STORE_SEQ_BYTES) {
        it->n = 1;
        return DM_OK;
    }
    it->n = it->blen >= S_HEAD_BYTES ? s_be16(it->blk) : 0;
    if (it->n == 0 || S_HEAD_BYTES + it->n * S_OFF_BYTES > it->blen)
        return s_corrupt(it, why);
    return DM_OK;
}

dm_err dm_store__iter_open(dm_store__iter_t *it, MDB_txn *txn, MDB_dbi db, const uint8_t *prefix,
                           size_t plen, dm_buf_t *why)
{
    memset(it, 0, sizeof *it);
    memcpy(it->prefix, prefix, plen);
    it->plen = plen;
    int rc = mdb_cursor_open(txn, db, &it->cur);
    if (rc != MDB_SUCCESS) {
        it->cur = NULL;
        return dm_store__mdb_why("open an index cursor", rc, why);
    }
    return DM_OK;
}

void dm_store__iter_close(dm_store__iter_t *it)
{
    if (it->cur)
        mdb_cursor_close(it->cur);
    it->cur = NULL;
    it->valid = false;
}

dm_err dm_store__iter_seek(dm_store__iter_t *it, const void *start, size_t len, size_t max_key,
                           dm_buf_t *why)
{
    uint8_t k[DM_STORE_KEY_MAX];
    size_t cap = max_key < sizeof k ? max_key : sizeof k;
    if (it->plen + len > cap)
        len = cap - it->plen; /* a cut start is lower: the caller checks its bound per key */
    memcpy(k, it->prefix, it->plen);
    if (len) /* start may be NULL for the part's first entry */
        memcpy(k + it->plen, start, len);
    it->bkey = (MDB_val){it->plen + len, k};
    MDB_val val;
    dm_err err = s_block(it, mdb_cursor_get(it->cur, &it->bkey, &val, MDB_SET_RANGE), &val, why);
    if (err || !it->valid)
        return err;
    size_t lo = 0, hi = it->n; /* the first entry >= start: the block's last one is */
    while (lo < hi && !err) {
        size_t mid = lo + (hi - lo) / 2;
        if (!(err = s_entry(it, mid, why))) {
            if (dm_store_key_cmp(it->key, it->len, start, len) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    if (err)
        return err;
    if (lo == it->n) { /* only with a corrupt block: go on past it */
        it->i = it->n - 1;
        return dm_store__iter_next(it, why);
    }
    it->i = lo;
    return s_entry(it, lo, why);
}

dm_err dm_store__iter_next(dm_store__iter_t *it, dm_buf_t *why)
{
    if (!it->valid)
        return DM_OK;
    if (++it->i < it->n)
        return s_entry(it, it->i, why);
    MDB_val val;
    dm_err err = s_block(it, mdb_cursor_get(it->cur, &it->bkey, &val, MDB_NEXT), &val, why);
    return err || !it->valid ? err : s_entry(it, 0, why);
}

dm_err dm_store__iter_find(dm_store__iter_t *it, const void *key, size_t len, size_t max_key,
                           uint64_t *seq, dm_buf_t *why)
{
    dm_err err = dm_store__iter_seek(it, key, len, max_key, why);
    if (err)
        return err;
    if (!it->valid || it->len != len || memcmp(it->key, key, len) != 0)
        return DM_ERR_NOTFOUND;
    *seq = it->seq;
    return DM_OK;
}

/* ---- writing ---- */

dm_err dm_store__writer_init(dm_store__writer_t *w, MDB_txn *txn, MDB_dbi db, uint32_t pid,
                             uint32_t id, dm_buf_t *why)
{
    memset(w, 0, sizeof *w);
    w->txn = txn;
    w->db = db;
    w->ents = w->val = w->key = (dm_buf_t)DM_BUF_INIT;
    dm_store__put_be32(w->prefix, pid);
    dm_store__put_be32(w->prefix + DM_STORE_PID_BYTES, id);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db, &cur);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("open an index cursor", rc, why);
    MDB_val last, val;
    rc = mdb_cursor_get(cur, &last, &val, MDB_LAST);
    if (rc == MDB_NOTFOUND)
        w->flags = MDB_APPEND;
    else if (rc == MDB_SUCCESS) {
        /* The run is the last range of db: its blocks append. So is a
         * stepped merge's output that db ends with: each step writes keys
         * above the last one's (without MDB_APPEND, LMDB split its pages in
         * the middle and left pk_big's leaves half empty). A key that is
         * not above the last fails the put (MDB_KEYEXIST), never the tree. */
        size_t n = last.mv_size < sizeof w->prefix ? last.mv_size : sizeof w->prefix;
        w->flags = memcmp(last.mv_data, w->prefix, n) <= 0 ? MDB_APPEND : 0;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? DM_OK : dm_store__mdb_why("find the index's end", rc, why);
}

dm_err dm_store__writer_flush(dm_store__writer_t *w, dm_buf_t *why)
{
    if (w->n == 0)
        return DM_OK;
    size_t head = S_HEAD_BYTES + w->n * S_OFF_BYTES;
    dm_buf_reset(&w->val);
    dm_buf_reserve(&w->val, head + w->ents.len);
    uint8_t *v = (uint8_t *)w->val.data;
    s_put_be16(v, w->n);
    for (size_t i = 0; i < w->n; i++)
        s_put_be16(v + S_HEAD_BYTES + i * S_OFF_BYTES, head + w->off[i]);
    memcpy(v + head, w->ents.data, w->ents.len);
    const uint8_t *last = (const uint8_t *)w->ents.data + w->off[w->n - 1];
    dm_buf_reset(&w->key);
    dm_buf_append(&w->key, w->prefix, sizeof w->prefix);
    dm_buf_append(&w->key, last + S_KLEN_BYTES, s_be16(last));
    MDB_val k = {w->key.len, w->key.data}, val = {head + w->ents.len, v};
    w->n = 0;
    dm_buf_reset(&w->ents);
    return dm_store__mdb_why("write an index block", mdb_put(w->txn, w->db, &k, &val, w->flags),
                             why);
}

dm_err dm_store__writer_put(dm_store__writer_t *w, const void *key, size_t len, uint64_t seq,
                            dm_buf_t *why)
{
    size_t add = S_OFF_BYTES + S_KLEN_BYTES + len + DM_STORE_SEQ_BYTES;
    size_t node = S_NODE_HEAD_BYTES + sizeof w->prefix + len; /* the entry as the block's last */
    dm_err err = DM_OK;
    if (w->n == DM_STORE_BLOCK_ENTRIES_MAX ||
        (w->n && node + S_HEAD_BYTES + w->n * S_OFF_BYTES + w->ents.len + add >
                     DM_STORE_BLOCK_NODE_BYTES))
        err = dm_store__writer_flush(w, why);
    if (err)
        return err;
    if (w->bloom.bits)
        dm_store__bloom_add(&w->bloom, key, len);
    uint8_t lb[S_KLEN_BYTES], sb[DM_STORE_SEQ_BYTES];
    s_put_be16(lb, len);
    dm_store__put_be64(sb, seq);
    w->off[w->n++] = (uint16_t)w->ents.len;
    dm_buf_append(&w->ents, lb, sizeof lb);
    dm_buf_append(&w->ents, key, len);
    dm_buf_append(&w->ents, sb, sizeof sb);
    w->written++;
    return DM_OK;
}

void dm_store__writer_free(dm_store__writer_t *w)
{
    dm_store__bloom_free(&w->bloom);
    dm_buf_free(&w->ents);
    dm_buf_free(&w->val);
    dm_buf_free(&w->key);
}

/* Rewrites the block under it->cur with its entries from it->i on (its
 * last key, so its LMDB key, stays). */
static dm_err s_trim(dm_store__iter_t *it, dm_buf_t *why)
{
    size_t keep = it->n - it->i, head = S_HEAD_BYTES + keep * S_OFF_BYTES;
    size_t from = s_be16(it->blk + S_HEAD_BYTES + it->i * S_OFF_BYTES);
    if (from > it->blen)
        return s_corrupt(it, why);
    dm_buf_t v = DM_BUF_INIT;
    dm_buf_reserve(&v, head + it->blen - from);
    uint8_t *p = (uint8_t *)v.data;
    s_put_be16(p, keep);
    for (size_t j = 0; j < keep; j++) {
        size_t off = s_be16(it->blk + S_HEAD_BYTES + (it->i + j) * S_OFF_BYTES);
        s_put_be16(p + S_HEAD_BYTES + j * S_OFF_BYTES, off - from + head);
    }
    memcpy(p + head, it->blk + from, it->blen - from);
    MDB_val val = {head + it->blen - from, p};
    /* The key in a buffer of its own: a put that changes the value's size
     * deletes the node the map's key lives in before adding it again. */
    dm_buf_t k = DM_BUF_INIT;
    dm_buf_append(&k, it->bkey.mv_data, it->bkey.mv_size);
    MDB_val key = {k.len, k.data};
    int rc = mdb_cursor_put(it->cur, &key, &val, MDB_CURRENT);
    dm_buf_free(&k);
    dm_buf_free(&v);
    return dm_store__mdb_why("trim an index block", rc, why);
}

/* Positions it->cur on the last block of its run (rc MDB_NOTFOUND or a key
 * without the prefix when the run is empty). */
static int s_run_last(dm_store__iter_t *it)
{
    uint8_t upper[DM_STORE_RUN_PREFIX_BYTES];
    MDB_val val;
    size_t ulen = it->plen;
    memcpy(upper, it->prefix, ulen);
    while (ulen > 0 && upper[ulen - 1] == 0xff)
        ulen--;
    if (ulen == 0)
        return mdb_cursor_get(it->cur, &it->bkey, &val, MDB_LAST);
    upper[ulen - 1]++; /* the least key above every key with the prefix */
    it->bkey = (MDB_val){ulen, upper};
    int rc = mdb_cursor_get(it->cur, &it->bkey, &val, MDB_SET_RANGE);
    return rc == MDB_SUCCESS    ? mdb_cursor_get(it->cur, &it->bkey, &val, MDB_PREV)
           : rc == MDB_NOTFOUND ? mdb_cursor_get(it->cur, &it->bkey, &val, MDB_LAST)
                                : rc;
}

dm_err dm_store__range_delete(MDB_txn *txn, MDB_dbi db, const uint8_t *prefix, size_t plen,
                              const void *below, size_t below_len, size_t max_key, dm_buf_t *why)
{
    dm_store__iter_t it;
    dm_err err = dm_store__iter_open(&it, txn, db, prefix, plen, why);
    if (err)
        return err;
    int rc;
    MDB_val val;
    if (below && (err = dm_store__iter_seek(&it, below, below_len, max_key, why)))
        goto out;
    if (below && it.valid) { /* the block holding below keeps its entries from below on */
        if (it.i > 0 && (err = s_trim(&it, why)))
            goto out;
        rc = mdb_cursor_get(it.cur, &it.bkey, &val, MDB_PREV);
    } else {
        rc = s_run_last(&it);
    }
    /* Last first: on pages filled in key order the last node sits lowest,
     * so nothing moves. */
    while (rc == MDB_SUCCESS && it.bkey.mv_size >= plen &&
           memcmp(it.bkey.mv_data, prefix, plen) == 0) {
        if ((rc = mdb_cursor_del(it.cur, 0)) != MDB_SUCCESS)
            break;
        rc = mdb_cursor_get(it.cur, &it.bkey, &val, MDB_PREV);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        err = dm_store__mdb_why("delete a run", rc, why);
out:
    dm_store__iter_close(&it);
    return err;
}
