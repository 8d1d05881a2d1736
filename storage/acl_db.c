/* acl_db.c: the domain's added admins in the "acl" database (acl_db.h).
 *
 * The database holds nothing else: key = the admin's 32-byte ed25519 key,
 * value = one format byte. So the number of entries is the number of
 * admins and mdb_stat counts them for the cap. Writes run on the node
 * loop, so they never wait for query readers when the map must grow
 * (DM_ERR_BUSY then, as for the catalog; the client retries). */
#include "storage/acl_db.h"

#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

#define S_VALUE_FORMAT 1 /* the value's one byte */

typedef struct {
    dm_store_t *store;
    const uint8_t *key;
    bool add;
    bool changed;
} s_change_ctx;

/* Adds or removes c->key; may rerun after the map grew, so it resets
 * c->changed first. */
static dm_err s_change(MDB_txn *txn, void *arg, dm_buf_t *why)
{
    s_change_ctx *c = arg;
    c->changed = false;
    MDB_val key = {DM_ACL_DB_KEY_BYTES, (void *)c->key}, val;
    int rc = mdb_get(txn, c->store->acl, &key, &val);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return dm_store__mdb_why("read an admin", rc, why);
    bool present = rc == MDB_SUCCESS;
    if (present == c->add)
        return DM_OK;
    if (!c->add) {
        rc = mdb_del(txn, c->store->acl, &key, NULL);
        if (rc != MDB_SUCCESS)
            return dm_store__mdb_why("remove an admin", rc, why);
        c->changed = true;
        return DM_OK;
    }
    MDB_stat st;
    rc = mdb_stat(txn, c->store->acl, &st);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("count the admins", rc, why);
    if (st.ms_entries >= DM_ACL_DB_MAX_ADMINS) {
        dm_buf_why(why, "store: the domain has %zu admins, the most it may have (%d); remove one "
                   "first",
                   st.ms_entries, DM_ACL_DB_MAX_ADMINS);
        return DM_ERR_TOOBIG;
    }
    uint8_t format = S_VALUE_FORMAT;
    val.mv_size = sizeof format;
    val.mv_data = &format;
    rc = mdb_put(txn, c->store->acl, &key, &val, 0);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("add an admin", rc, why);
    c->changed = true;
    return DM_OK;
}

/* dm_acl_db_admin_add and _remove. */
static dm_err s_change_run(dm_store_t *s, const uint8_t *key, bool add, bool *changed,
                           dm_buf_t *why)
{
    s_change_ctx c = {s, key, add, false};
    dm_err err = dm_store__write_opts(s, add ? "add an admin" : "remove an admin", s_change, &c,
                                      false, why);
    if (changed)
        *changed = err == DM_OK && c.changed;
    return err;
}

dm_err dm_acl_db_admin_add(dm_store_t *s, const uint8_t key[DM_ACL_DB_KEY_BYTES], bool *changed,
                           dm_buf_t *why)
{
    return s_change_run(s, key, true, changed, why);
}

dm_err dm_acl_db_admin_remove(dm_store_t *s, const uint8_t key[DM_ACL_DB_KEY_BYTES],
                              bool *changed, dm_buf_t *why)
{
    return s_change_run(s, key, false, changed, why);
}

dm_err dm_acl_db_admins(dm_store_t *s, uint8_t (**keys)[DM_ACL_DB_KEY_BYTES], size_t *n,
                        dm_buf_t *why)
{
    *keys = NULL;
    *n = 0;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t (*out)[DM_ACL_DB_KEY_BYTES] = NULL;
    size_t count = 0;
    dm_err err = dm_store__read_begin(s, &txn, why);
    if (err)
        return err;
    err = dm_store__mdb_why("open an admins cursor", mdb_cursor_open(txn, s->acl, &cur), why);
    if (err)
        goto out;
    /* At most the cap, whatever the file holds: the list goes to clients. */
    out = calloc(DM_ACL_DB_MAX_ADMINS, sizeof *out);
    if (!out) {
        err = DM_ERR_NOMEM;
        goto out;
    }
    MDB_val key, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == MDB_SUCCESS && count < DM_ACL_DB_MAX_ADMINS) {
        if (key.mv_size != DM_ACL_DB_KEY_BYTES) {
            dm_buf_why(why, "store: an admin key of %zu bytes in the acl database (expected %d)",
                       key.mv_size, DM_ACL_DB_KEY_BYTES);
            err = DM_ERR_STORE;
            goto out;
        }
        memcpy(out[count++], key.mv_data, DM_ACL_DB_KEY_BYTES);
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        err = dm_store__mdb_why("list the admins", rc, why);
out:
    if (cur)
        mdb_cursor_close(cur);
    dm_store__read_end(s, txn);
    if (err) {
        free(out);
        return err;
    }
    *keys = out;
    *n = count;
    return DM_OK;
}
