/* products.c: the products database: register (create, upgrade, unchanged
 * or conflict in one read-compare-write transaction), get, list, and
 * delete (a product with its rows, index, quarantine and counters).
 *
 * Key: "domain/name" (a domain never contains '/', so the key is
 * unambiguous and the list comes out ordered by domain, then name).
 * Value, all integers big-endian:
 *   u8  encoding version (1)
 *   u32 id
 *   u64 version major, minor, patch
 *   i64 registered_ms, updated_ms
 *   32  hash
 *   4 x (u32 length, bytes): domain, name, version, contract
 * The counters (records, quarantined, next sequences) live in meta under
 * 'c' + id, so that batch commits do not rewrite the contract. Product ids
 * come from meta "next_pid" and are never reused. */
#include "storage/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "base/clock.h"

#define S_ENCODING 1u
#define S_FIXED_BYTES (1 + 4 + 3 * 8 + 2 * 8 + DM_STORE_HASH_BYTES)
#define S_META_NEXT_PID "next_pid"
#define S_FIRST_PID 1u

void dm_store_product_clear(dm_product_t *p)
{
    if (!p)
        return;
    free(p->domain);
    free(p->name);
    free(p->version);
    free(p->contract);
    memset(p, 0, sizeof *p);
}

/* strndup that reports failure as DM_ERR_NOMEM. */
static dm_err s_dup(const char *s, size_t len, char **out)
{
    *out = malloc(len + 1);
    if (!*out)
        return DM_ERR_NOMEM;
    if (len)
        memcpy(*out, s, len);
    (*out)[len] = 0;
    return DM_OK;
}

/* Deep-copies in into out (counters and id included). */
static dm_err s_copy(const dm_product_t *in, dm_product_t *out)
{
    *out = *in;
    out->domain = out->name = out->version = out->contract = NULL;
    const char *version = in->version ? in->version : "";
    const char *contract = in->contract ? in->contract : "";
    if (s_dup(in->domain, strlen(in->domain), &out->domain) ||
        s_dup(in->name, strlen(in->name), &out->name) ||
        s_dup(version, strlen(version), &out->version) ||
        s_dup(contract, in->contract ? in->contract_len : 0, &out->contract)) {
        dm_store_product_clear(out);
        return DM_ERR_NOMEM;
    }
    return DM_OK;
}

/* Builds the key "domain/name" into buf. */
static void s_key(dm_buf_t *buf, const char *domain, const char *name)
{
    dm_buf_reset(buf);
    dm_buf_puts(buf, domain);
    dm_buf_putc(buf, '/');
    dm_buf_puts(buf, name);
}

static void s_put_str(dm_buf_t *b, const char *s, size_t len)
{
    uint8_t n[4];
    dm_store__put_be32(n, (uint32_t)len);
    dm_buf_append(b, n, sizeof n);
    dm_buf_append(b, s, len);
}

/* Encodes p (the value layout above) into b. */
static void s_encode(dm_buf_t *b, const dm_product_t *p)
{
    uint8_t f[S_FIXED_BYTES], *q = f;
    *q++ = S_ENCODING;
    dm_store__put_be32(q, p->id), q += 4;
    dm_store__put_be64(q, p->version_major), q += 8;
    dm_store__put_be64(q, p->version_minor), q += 8;
    dm_store__put_be64(q, p->version_patch), q += 8;
    dm_store__put_be64(q, (uint64_t)p->registered_ms), q += 8;
    dm_store__put_be64(q, (uint64_t)p->updated_ms), q += 8;
    memcpy(q, p->hash, DM_STORE_HASH_BYTES);
    dm_buf_reset(b);
    dm_buf_append(b, f, sizeof f);
    s_put_str(b, p->domain, strlen(p->domain));
    s_put_str(b, p->name, strlen(p->name));
    s_put_str(b, p->version ? p->version : "", p->version ? strlen(p->version) : 0);
    s_put_str(b, p->contract ? p->contract : "", p->contract ? p->contract_len : 0);
}

/* Reads one (u32 length, bytes) field at *pp (end at end) into a new
 * string. DM_ERR_STORE if it overruns. */
static dm_err s_get_str(const uint8_t **pp, const uint8_t *end, char **out, size_t *len)
{
    if (end - *pp < 4)
        return DM_ERR_STORE;
    size_t n = dm_store__get_be32(*pp);
    *pp += 4;
    if ((size_t)(end - *pp) < n)
        return DM_ERR_STORE;
    dm_err err = s_dup((const char *)*pp, n, out);
    *pp += n;
    if (len)
        *len = n;
    return err;
}

/* Decodes a stored value into out (counters left zero). A corrupt value
 * is DM_ERR_STORE with a line in why. */
static dm_err s_decode(const MDB_val *val, dm_product_t *out, dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = val->mv_data, *end = p + val->mv_size;
    dm_err err = DM_ERR_STORE;
    if (val->mv_size < S_FIXED_BYTES || p[0] != S_ENCODING)
        goto out;
    p++;
    out->id = dm_store__get_be32(p), p += 4;
    out->version_major = dm_store__get_be64(p), p += 8;
    out->version_minor = dm_store__get_be64(p), p += 8;
    out->version_patch = dm_store__get_be64(p), p += 8;
    out->registered_ms = (int64_t)dm_store__get_be64(p), p += 8;
    out->updated_ms = (int64_t)dm_store__get_be64(p), p += 8;
    memcpy(out->hash, p, DM_STORE_HASH_BYTES), p += DM_STORE_HASH_BYTES;
    if ((err = s_get_str(&p, end, &out->domain, NULL)) ||
        (err = s_get_str(&p, end, &out->name, NULL)) ||
        (err = s_get_str(&p, end, &out->version, NULL)) ||
        (err = s_get_str(&p, end, &out->contract, &out->contract_len)))
        goto out;
out:
    if (err) {
        if (err == DM_ERR_STORE)
            dm_buf_why(why, "store: a product record is corrupt (%zu bytes)", val->mv_size);
        dm_store_product_clear(out);
    }
    return err;
}

/* Fills the counters of p from meta. */
static dm_err s_attach_counters(dm_store_t *self, MDB_txn *txn, dm_product_t *p, dm_buf_t *why)
{
    dm_store_counters_t c;
    dm_err err = dm_store__counters_get(self, txn, p->id, &c, why);
    if (err == DM_ERR_NOTFOUND) {
        dm_buf_why(why, "store: product %s/%s (id %u) has no counters", p->domain, p->name,
                   p->id);
        return DM_ERR_STORE;
    }
    if (err)
        return err;
    p->records = c.records;
    p->quarantined = c.quarantined;
    return DM_OK;
}

/* -1, 0, 1 as a's version is below, equal to, above b's. */
static int s_version_cmp(const dm_product_t *a, const dm_product_t *b)
{
    uint64_t x[3] = {a->version_major, a->version_minor, a->version_patch};
    uint64_t y[3] = {b->version_major, b->version_minor, b->version_patch};
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

typedef struct {
    dm_store_t *self;
    const dm_product_t *in;
    dm_buf_t key, val;
    dm_register_outcome outcome;
    dm_product_t stored;  /* decoded stored product (this attempt) */
    dm_product_t written; /* shallow: in's strings with id, times, counters */
} s_register_ctx;

/* Allocates the next product id from meta. */
static dm_err s_next_pid(dm_store_t *self, MDB_txn *txn, uint32_t *pid, dm_buf_t *why)
{
    MDB_val key = {strlen(S_META_NEXT_PID), S_META_NEXT_PID}, val;
    int rc = mdb_get(txn, self->meta, &key, &val);
    if (rc == MDB_NOTFOUND)
        *pid = S_FIRST_PID;
    else if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("read the next product id", rc, why);
    else if (val.mv_size != 4) {
        dm_buf_why(why, "store: meta next_pid is corrupt");
        return DM_ERR_STORE;
    } else
        *pid = dm_store__get_be32(val.mv_data);
    if (*pid == UINT32_MAX) {
        dm_buf_why(why, "store: product ids exhausted");
        return DM_ERR_TOOBIG;
    }
    uint8_t v[4];
    dm_store__put_be32(v, *pid + 1);
    val.mv_size = sizeof v;
    val.mv_data = v;
    return dm_store__mdb_why("write the next product id", mdb_put(txn, self->meta, &key, &val, 0),
                             why);
}

static dm_err s_register_txn(MDB_txn *txn, void *arg, dm_buf_t *why)
{
    s_register_ctx *c = arg;
    dm_store_t *self = c->self;
    dm_store_product_clear(&c->stored);
    MDB_val key = {c->key.len, c->key.data}, val;
    int rc = mdb_get(txn, self->products, &key, &val);
    dm_err err;
    c->written = *c->in;
    int64_t now = dm_clock_wall_ms();
    if (rc == MDB_NOTFOUND) {
        if ((err = s_next_pid(self, txn, &c->written.id, why)))
            return err;
        dm_store_counters_t zero = {0, 0, DM_STORE_FIRST_SEQ, DM_STORE_FIRST_SEQ};
        if ((err = dm_store__counters_put(self, txn, c->written.id, &zero, why)))
            return err;
        c->written.registered_ms = c->written.updated_ms = now;
        c->written.records = c->written.quarantined = 0;
        c->outcome = DM_REGISTER_CREATED;
    } else if (rc != MDB_SUCCESS) {
        return dm_store__mdb_why("read a product", rc, why);
    } else {
        if ((err = s_decode(&val, &c->stored, why)) ||
            (err = s_attach_counters(self, txn, &c->stored, why)))
            return err;
        int cmp = s_version_cmp(c->in, &c->stored);
        if (cmp < 0)
            return DM_ERR_CONFLICT;
        if (cmp == 0) {
            if (memcmp(c->in->hash, c->stored.hash, DM_STORE_HASH_BYTES) != 0)
                return DM_ERR_CONFLICT;
            c->outcome = DM_REGISTER_UNCHANGED;
            return DM_OK;
        }
        c->written.id = c->stored.id;
        c->written.registered_ms = c->stored.registered_ms;
        c->written.updated_ms = now;
        c->written.records = c->stored.records;
        c->written.quarantined = c->stored.quarantined;
        c->outcome = DM_REGISTER_UPGRADED;
    }
    s_encode(&c->val, &c->written);
    val.mv_size = c->val.len;
    val.mv_data = c->val.data;
    return dm_store__mdb_why("write a product", mdb_put(txn, self->products, &key, &val, 0), why);
}

dm_err dm_store_product_register(dm_store_t *self, const dm_product_t *in,
                                 dm_register_outcome *outcome, dm_product_t *out,
                                 dm_product_t *previous, dm_buf_t *why)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (previous)
        memset(previous, 0, sizeof *previous);
    if (!in->domain || !in->name || !*in->domain || !*in->name || strchr(in->domain, '/')) {
        dm_buf_why(why, "store: product '%s/%s': domain and name must be non-empty and the domain "
                   "must not contain '/'",
                   in->domain ? in->domain : "", in->name ? in->name : "");
        return DM_ERR_INVALID;
    }
    s_register_ctx c = {.self = self, .in = in, .key = DM_BUF_INIT, .val = DM_BUF_INIT};
    s_key(&c.key, in->domain, in->name);
    if (c.key.len > self->max_key_bytes) {
        dm_buf_why(why, "store: product name '%s' is longer than %zu bytes", c.key.data,
                   self->max_key_bytes);
        dm_buf_free(&c.key);
        return DM_ERR_TOOBIG;
    }
    dm_err err = dm_store__write(self, "register a product", s_register_txn, &c, why);
    if (err == DM_ERR_CONFLICT && previous) {
        *previous = c.stored;
        memset(&c.stored, 0, sizeof c.stored);
    }
    if (!err) {
        if (outcome)
            *outcome = c.outcome;
        if (out && c.outcome == DM_REGISTER_UNCHANGED) {
            *out = c.stored;
            memset(&c.stored, 0, sizeof c.stored);
        } else if (out) {
            err = s_copy(&c.written, out);
        }
    }
    dm_store_product_clear(&c.stored);
    dm_buf_free(&c.key);
    dm_buf_free(&c.val);
    return err;
}

dm_err dm_store_product_get(dm_store_t *self, const char *domain, const char *name,
                            dm_product_t *out, dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    dm_buf_t k = DM_BUF_INIT;
    s_key(&k, domain, name);
    MDB_txn *txn;
    dm_err err = dm_store__read_begin(self, &txn, why);
    if (err)
        goto out;
    MDB_val key = {k.len, k.data}, val;
    int rc = mdb_get(txn, self->products, &key, &val);
    err = dm_store__mdb_why("read a product", rc, why);
    if (!err)
        err = s_decode(&val, out, why);
    if (!err)
        err = s_attach_counters(self, txn, out, why);
    dm_store__read_end(self, txn);
    if (err)
        dm_store_product_clear(out);
out:
    dm_buf_free(&k);
    return err;
}

dm_err dm_store_product_list(dm_store_t *self, dm_product_t **out, size_t *n, dm_buf_t *why)
{
    *out = NULL;
    *n = 0;
    dm_product_t *arr = NULL;
    size_t len = 0, cap = 0;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    dm_err err = dm_store__read_begin(self, &txn, why);
    if (err)
        return err;
    int rc = mdb_cursor_open(txn, self->products, &cur);
    if (rc != MDB_SUCCESS) {
        err = dm_store__mdb_why("open a products cursor", rc, why);
        goto out;
    }
    MDB_val key, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (!dm_array_reserve(&arr, &cap, len + 1, sizeof *arr, 8)) {
            err = DM_ERR_NOMEM;
            goto out;
        }
        if ((err = s_decode(&val, &arr[len], why)))
            goto out;
        len++;
        if ((err = s_attach_counters(self, txn, &arr[len - 1], why)))
            goto out;
    }
    if (rc != MDB_NOTFOUND)
        err = dm_store__mdb_why("list products", rc, why);
out:
    mdb_cursor_close(cur);
    dm_store__read_end(self, txn);
    if (err) {
        for (size_t i = 0; i < len; i++)
            dm_store_product_clear(&arr[i]);
        free(arr);
        return err;
    }
    *out = arr;
    *n = len;
    return DM_OK;
}

/* ---- deletion ---- */

typedef struct {
    dm_store_t *self;
    dm_buf_t key;
    dm_product_t removed;
} s_delete_ctx;

/* Deletes every key of db that starts with pid. */
static dm_err s_delete_prefix(MDB_txn *txn, MDB_dbi db, uint32_t pid, dm_buf_t *why)
{
    uint8_t prefix[DM_STORE_PID_BYTES];
    dm_store__put_be32(prefix, pid);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db, &cur);
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("open a cursor", rc, why);
    MDB_val key = {sizeof prefix, prefix}, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && key.mv_size >= sizeof prefix &&
           memcmp(key.mv_data, prefix, sizeof prefix) == 0) {
        if ((rc = mdb_cursor_del(cur, 0)) != MDB_SUCCESS)
            break;
        /* After a delete LMDB's MDB_NEXT yields the entry that followed. */
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == MDB_SUCCESS ? DM_OK
                                                   : dm_store__mdb_why("delete rows", rc, why);
}

static dm_err s_delete_txn(MDB_txn *txn, void *arg, dm_buf_t *why)
{
    s_delete_ctx *c = arg;
    dm_store_t *self = c->self;
    dm_store_product_clear(&c->removed);
    MDB_val key = {c->key.len, c->key.data}, val;
    int rc = mdb_get(txn, self->products, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DM_ERR_NOTFOUND;
    dm_err err;
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("read a product", rc, why);
    if ((err = s_decode(&val, &c->removed, why)) ||
        (err = s_attach_counters(self, txn, &c->removed, why)))
        return err;
    uint32_t pid = c->removed.id;
    dm_store__pkf_drop(self, pid); /* built again if this txn aborts */
    MDB_dbi dbs[] = {self->rows, self->pk, self->pk_recent, self->pk_big,
                     self->pk_bloom, self->quarantine, self->quality};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++)
        if ((err = s_delete_prefix(txn, dbs[i], pid, why)))
            return err;
    uint8_t ck[DM_STORE_COUNTERS_KEY_BYTES];
    ck[0] = DM_STORE_COUNTERS_TAG;
    dm_store__put_be32(ck + 1, pid);
    MDB_val ckey = {sizeof ck, ck};
    rc = mdb_del(txn, self->meta, &ckey, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return dm_store__mdb_why("delete counters", rc, why);
    return dm_store__mdb_why("delete a product", mdb_del(txn, self->products, &key, NULL), why);
}

dm_err dm_store_product_delete(dm_store_t *self, const char *domain, const char *name,
                               dm_product_t *removed, dm_buf_t *why)
{
    if (removed)
        memset(removed, 0, sizeof *removed);
    s_delete_ctx c = {.self = self, .key = DM_BUF_INIT};
    s_key(&c.key, domain, name);
    dm_err err = dm_store__write(self, "delete a product", s_delete_txn, &c, why);
    if (!err && removed) {
        *removed = c.removed;
        memset(&c.removed, 0, sizeof c.removed);
    }
    dm_store_product_clear(&c.removed);
    dm_buf_free(&c.key);
    return err;
}
