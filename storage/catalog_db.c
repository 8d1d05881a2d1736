/* catalog_db.c: batched writes to and a full scan of the "catalog"
 * database (catalog_db.h). The catalog is small next to the record log and
 * is read whole at start-up, so these two calls are all it needs. */
#include "storage/catalog_db.h"

#include "storage/store_int.h"

typedef struct {
    dm_store_t *store;
    const dm_store_catalog_op_t *ops;
    size_t n;
} s_write_ctx;

static dm_err s_write(MDB_txn *txn, void *arg, dm_buf_t *why)
{
    s_write_ctx *w = arg;
    for (size_t i = 0; i < w->n; i++) {
        const dm_store_catalog_op_t *op = &w->ops[i];
        MDB_val key = {op->key_len, (void *)op->key};
        int rc;
        if (op->val) {
            MDB_val val = {op->val_len, (void *)op->val};
            rc = mdb_put(txn, w->store->catalog, &key, &val, 0);
        } else {
            rc = mdb_del(txn, w->store->catalog, &key, NULL);
            if (rc == MDB_NOTFOUND)
                rc = MDB_SUCCESS;
        }
        if (rc != MDB_SUCCESS)
            return dm_store__mdb_why(op->val ? "write a catalog record"
                                             : "delete a catalog record",
                                     rc, why);
    }
    return DM_OK;
}

dm_err dm_catalog_db_write(dm_store_t *self, const dm_store_catalog_op_t *ops, size_t n,
                          dm_buf_t *why)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].key_len == 0 || ops[i].key_len > self->max_key_bytes) {
            dm_buf_why(why, "store: catalog key of %zu bytes (LMDB allows 1 to %zu)",
                       ops[i].key_len, self->max_key_bytes);
            return DM_ERR_TOOBIG;
        }
    if (n == 0)
        return DM_OK;
    s_write_ctx w = {self, ops, n};
    /* Runs on the node loop: never wait for query readers to grow the map. */
    return dm_store__write_opts(self, "write the catalog", s_write, &w, false, why);
}

dm_err dm_catalog_db_scan(dm_store_t *self, dm_store_catalog_fn fn, void *ctx, dm_buf_t *why)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    dm_err err = dm_store__read_begin(self, &txn, why);
    if (err)
        return err;
    err = dm_store__mdb_why("open a catalog cursor", mdb_cursor_open(txn, self->catalog, &cur),
                            why);
    if (err)
        goto out;
    MDB_val key, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
        if (fn(ctx, key.mv_data, key.mv_size, val.mv_data, val.mv_size))
            goto out;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND)
        err = dm_store__mdb_why("scan the catalog", rc, why);
out:
    if (cur)
        mdb_cursor_close(cur);
    dm_store__read_end(self, txn);
    return err;
}
