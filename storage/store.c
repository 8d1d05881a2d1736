/* store.c: the LMDB environment: open and close, the named databases, the
 * transaction wrappers with LMDB's codes turned into dm_err and a why, map
 * growth, stale-reader cleanup, the failed state after MDB_PANIC, and the
 * per-product counters in meta.
 *
 * Durability: the environment is opened without MDB_NOSYNC, MDB_NOMETASYNC
 * or MDB_WRITEMAP, so every commit fsyncs the data and then the meta page;
 * a process killed at any moment leaves the last committed state, which
 * LMDB reopens without recovery. */
#include "storage/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

#define S_MAX_READERS 256
#define S_MAX_DBS 16 /* 12 named databases, room for a few more */
#define S_FILE_MODE 0600
#define S_FORMAT_VERSION 2u /* 2: pk holds sorted runs [pid][run id][key] (storage/index.c) */
#define S_FORMAT_V1 1u      /* pk held [pid][key]; upgraded at open (s_upgrade_v1) */
#define S_META_FORMAT "format"

dm_err dm_store__mdb_why(const char *op, int rc, dm_buf_t *why)
{
    switch (rc) {
    case MDB_SUCCESS:
        return DM_OK;
    case MDB_NOTFOUND:
        return DM_ERR_NOTFOUND;
    case MDB_MAP_FULL:
        return DM_ERR_MAPFULL;
    default:
        dm_buf_why(why, "store: %s: %s", op, mdb_strerror(rc));
        return DM_ERR_STORE;
    }
}

dm_err dm_store__mdb_txn(dm_store_t *self, const char *op, int rc, dm_buf_t *why)
{
    if (rc == MDB_PANIC && !atomic_exchange(&self->failed, true))
        dm_log_err("store: LMDB reports a fatal error (%s: %s): a write of its meta page failed "
                   "(disk full or an I/O error?); every later write would be refused, so the "
                   "environment must be reopened",
                   op, mdb_strerror(rc));
    return dm_store__mdb_why(op, rc, why);
}

bool dm_store_failed(dm_store_t *self) { return atomic_load(&self->failed); }

void dm_store__shared_enter(dm_store_t *self)
{
    pthread_mutex_lock(&self->gate_mu);
    while (self->gate_resizing)
        pthread_cond_wait(&self->gate_cv, &self->gate_mu);
    self->gate_holders++;
    pthread_mutex_unlock(&self->gate_mu);
}

void dm_store__shared_leave(dm_store_t *self)
{
    pthread_mutex_lock(&self->gate_mu);
    if (--self->gate_holders == 0)
        pthread_cond_broadcast(&self->gate_cv);
    pthread_mutex_unlock(&self->gate_mu);
}

/* Takes the gate exclusive: waits until no transaction is open and no
 * other resize runs. With wait false it gives up at once (returns false)
 * when it would have to wait. */
static bool s_exclusive_try(dm_store_t *self, bool wait)
{
    pthread_mutex_lock(&self->gate_mu);
    while (self->gate_holders > 0 || self->gate_resizing) {
        if (!wait) {
            pthread_mutex_unlock(&self->gate_mu);
            return false;
        }
        pthread_cond_wait(&self->gate_cv, &self->gate_mu);
    }
    self->gate_resizing = true;
    pthread_mutex_unlock(&self->gate_mu);
    return true;
}

static void s_exclusive_enter(dm_store_t *self) { (void)s_exclusive_try(self, true); }

static void s_exclusive_leave(dm_store_t *self)
{
    pthread_mutex_lock(&self->gate_mu);
    self->gate_resizing = false;
    pthread_cond_broadcast(&self->gate_cv);
    pthread_mutex_unlock(&self->gate_mu);
}

size_t dm_store_map_size(dm_store_t *self)
{
    MDB_envinfo info;
    dm_store__shared_enter(self);
    mdb_env_info(self->env, &info);
    dm_store__shared_leave(self);
    return info.me_mapsize;
}

/* Adopts the map size another process set (MDB_MAP_RESIZED). Takes the
 * lock exclusive; the caller holds nothing. */
static dm_err s_adopt_map_size(dm_store_t *self, dm_buf_t *why)
{
    MDB_envinfo info;
    s_exclusive_enter(self);
    int rc = mdb_env_set_mapsize(self->env, 0);
    mdb_env_info(self->env, &info);
    s_exclusive_leave(self);
    if (rc == MDB_SUCCESS)
        dm_log_info("store: adopted the map size %zu set by another process", info.me_mapsize);
    return dm_store__mdb_why("adopt the map size grown by another process", rc, why);
}

/* Doubles the map (capped at max_map_bytes) unless another thread already
 * grew it beyond seen. The caller holds nothing. DM_ERR_MAPFULL at max;
 * DM_ERR_BUSY when wait is false and a transaction is open. */
static dm_err s_grow(dm_store_t *self, size_t seen, bool wait, dm_buf_t *why)
{
    dm_err err = DM_OK;
    MDB_envinfo info;
    atomic_fetch_add(&self->growers, 1); /* from now on new query readers are refused */
    if (!s_exclusive_try(self, wait)) {
        atomic_fetch_sub(&self->growers, 1);
        return DM_ERR_BUSY;
    }
    mdb_env_info(self->env, &info);
    size_t cur = info.me_mapsize;
    if (cur > seen)
        goto out;
    size_t next = cur > self->max_map_bytes / 2 ? self->max_map_bytes : cur * 2;
    if (next <= cur) {
        dm_buf_why(why, "store: map full at its maximum of %zu bytes; raise max_map_bytes", cur);
        err = DM_ERR_MAPFULL;
        goto out;
    }
    err = dm_store__mdb_why("grow the map", mdb_env_set_mapsize(self->env, next), why);
    if (!err)
        dm_log_info("store: map grown from %zu to %zu bytes", cur, next);
out:
    s_exclusive_leave(self);
    atomic_fetch_sub(&self->growers, 1);
    return err;
}

/* After a failed commit: LMDB marks the environment fatal when the meta
 * page could not be written, and says so only at the next begin. Ask now,
 * so the failure is known before the next write arrives. */
static void s_check_fatal(dm_store_t *self)
{
    MDB_txn *probe = NULL;
    int rc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, &probe);
    if (rc == MDB_SUCCESS)
        mdb_txn_abort(probe);
    else if (rc == MDB_PANIC) /* the commit's own line is in why already */
        (void)dm_store__mdb_txn(self, "commit", rc, NULL);
}

/* Begins a transaction (flags 0 or MDB_RDONLY) with the lock held shared,
 * adopting a map grown by another process. *seen receives the map size the
 * transaction runs with. */
static dm_err s_begin(dm_store_t *self, unsigned flags, MDB_txn **txn, size_t *seen,
                      dm_buf_t *why)
{
    for (;;) {
        dm_store__shared_enter(self);
        int rc = mdb_txn_begin(self->env, NULL, flags, txn);
        if (rc == MDB_SUCCESS) {
            if (seen) {
                MDB_envinfo info;
                mdb_env_info(self->env, &info);
                *seen = info.me_mapsize;
            }
            return DM_OK;
        }
        dm_store__shared_leave(self);
        *txn = NULL;
        if (rc != MDB_MAP_RESIZED)
            return dm_store__mdb_txn(self, flags ? "begin a read transaction"
                                                 : "begin a write transaction",
                                     rc, why);
        dm_err err = s_adopt_map_size(self, why);
        if (err)
            return err;
    }
}

dm_err dm_store__read_begin(dm_store_t *self, MDB_txn **txn, dm_buf_t *why)
{
    return s_begin(self, MDB_RDONLY, txn, NULL, why);
}

void dm_store__read_end(dm_store_t *self, MDB_txn *txn)
{
    if (!txn)
        return;
    mdb_txn_abort(txn);
    dm_store__shared_leave(self);
}

dm_err dm_store__write(dm_store_t *self, const char *op, dm_store__write_fn fn, void *ctx,
                      dm_buf_t *why)
{
    return dm_store__write_opts(self, op, fn, ctx, true, why);
}

dm_err dm_store__write_opts(dm_store_t *self, const char *op, dm_store__write_fn fn, void *ctx,
                            bool may_wait, dm_buf_t *why)
{
    for (;;) {
        MDB_txn *txn;
        size_t seen = 0;
        dm_err err = s_begin(self, 0, &txn, &seen, why);
        if (err)
            return err;
        err = fn(txn, ctx, why);
        if (err) {
            mdb_txn_abort(txn);
        } else {
            int rc = mdb_txn_commit(txn); /* frees txn also on failure */
            if (rc == MDB_MAP_FULL)
                err = DM_ERR_MAPFULL;
            else if (rc != MDB_SUCCESS) {
                dm_buf_why(why, "store: %s: commit: %s", op, mdb_strerror(rc));
                err = DM_ERR_STORE;
                s_check_fatal(self);
            }
        }
        dm_store__shared_leave(self);
        if (err != DM_ERR_MAPFULL)
            return err;
        err = s_grow(self, seen, may_wait, why);
        if (err)
            return err;
    }
}

dm_err dm_store_reader_check(dm_store_t *self, int *cleared, dm_buf_t *why)
{
    int dead = 0;
    *cleared = 0;
    int rc = mdb_reader_check(self->env, &dead);
    if (rc != MDB_SUCCESS) {
        dm_buf_why(why, "store: reader check: %s", mdb_strerror(rc));
        return DM_ERR_STORE;
    }
    *cleared = dead;
    return DM_OK;
}

dm_err dm_store__counters_get(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                              dm_store_counters_t *c, dm_buf_t *why)
{
    uint8_t k[DM_STORE_COUNTERS_KEY_BYTES];
    k[0] = DM_STORE_COUNTERS_TAG;
    dm_store__put_be32(k + 1, pid);
    MDB_val key = {sizeof k, k}, val;
    int rc = mdb_get(txn, self->meta, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DM_ERR_NOTFOUND;
    if (rc != MDB_SUCCESS)
        return dm_store__mdb_why("read product counters", rc, why);
    if (val.mv_size != DM_STORE_COUNTERS_BYTES) {
        dm_buf_why(why, "store: counters of product %u are corrupt (%zu bytes)", pid, val.mv_size);
        return DM_ERR_STORE;
    }
    const uint8_t *p = val.mv_data;
    c->records = dm_store__get_be64(p);
    c->quarantined = dm_store__get_be64(p + 8);
    c->next_seq = dm_store__get_be64(p + 16);
    c->next_qseq = dm_store__get_be64(p + 24);
    return DM_OK;
}

dm_err dm_store__counters_put(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                              const dm_store_counters_t *c, dm_buf_t *why)
{
    uint8_t k[DM_STORE_COUNTERS_KEY_BYTES], v[DM_STORE_COUNTERS_BYTES];
    k[0] = DM_STORE_COUNTERS_TAG;
    dm_store__put_be32(k + 1, pid);
    dm_store__put_be64(v, c->records);
    dm_store__put_be64(v + 8, c->quarantined);
    dm_store__put_be64(v + 16, c->next_seq);
    dm_store__put_be64(v + 24, c->next_qseq);
    MDB_val key = {sizeof k, k}, val = {sizeof v, v};
    return dm_store__mdb_why("write product counters", mdb_put(txn, self->meta, &key, &val, 0),
                             why);
}

/* What s_init_dbs works on: the store being opened and its directory. */
typedef struct {
    dm_store_t *self;
    const char *dir;
    dm_buf_t *why;
} s_open_ctx;

/* An LMDB failure while opening dir: appended to why (not logged: the
 * caller of dm_store_open reports it once). Codes as dm_store__mdb_why. */
static dm_err s_open_fail(dm_buf_t *why, const char *dir, const char *op, int rc)
{
    if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND || rc == MDB_MAP_FULL)
        return dm_store__mdb_why(op, rc, why);
    dm_buf_why(why, "store: %s: %s: %s", dir, op, mdb_strerror(rc));
    return DM_ERR_STORE;
}

/* Format 1 kept pk as one tree [pid][key] -> seq, with newer entries in
 * pk_recent (same layout then and now). Upgrading moves pk's entries into
 * pk_recent, where an entry already there is newer and stays, and empties
 * pk: the next batch of each product turns its oversized pk_recent part
 * into a run (index.c), so no data directory has to be re-ingested. */
static dm_err s_upgrade_v1(MDB_txn *txn, s_open_ctx *oc, MDB_val *key)
{
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, oc->self->pk, &cur);
    MDB_val k, v;
    size_t moved = 0;
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
        rc = mdb_put(txn, oc->self->pk_recent, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST)
            rc = MDB_SUCCESS;
        else if (rc == MDB_SUCCESS)
            moved++;
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return s_open_fail(oc->why, oc->dir, "move the format-1 index into pk_recent", rc);
    MDB_val sweep = {strlen("pk_sweep"), "pk_sweep"};
    if ((rc = mdb_drop(txn, oc->self->pk, 0)) != MDB_SUCCESS ||
        ((rc = mdb_del(txn, oc->self->meta, &sweep, NULL)) != MDB_SUCCESS && rc != MDB_NOTFOUND))
        return s_open_fail(oc->why, oc->dir, "empty the format-1 index", rc);
    if (moved)
        dm_log_info("store: %s: upgraded from format 1: %zu index entries moved into "
                    "pk_recent, to become sorted runs at each product's next batch",
                    oc->dir, moved);
    uint8_t ver[4];
    dm_store__put_be32(ver, S_FORMAT_VERSION);
    MDB_val val = {sizeof ver, ver};
    return s_open_fail(oc->why, oc->dir, "write the format version",
                       mdb_put(txn, oc->self->meta, key, &val, 0));
}

/* Opens the named databases and checks or writes the format version. */
static dm_err s_init_dbs(MDB_txn *txn, void *ctx, dm_buf_t *why)
{
    s_open_ctx *oc = ctx;
    oc->why = why;
    dm_store_t *self = oc->self;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"products", &self->products}, {"rows", &self->rows}, {"pk", &self->pk},
               {"pk_recent", &self->pk_recent}, {"pk_big", &self->pk_big},
               {"pk_bloom", &self->pk_bloom},
               {"quarantine", &self->quarantine}, {"meta", &self->meta},
               {"catalog", &self->catalog}, {"acl", &self->acl},
               {"audit", &self->audit}, {"quality", &self->quality}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        int rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
        if (rc != MDB_SUCCESS)
            return s_open_fail(why, oc->dir, dbs[i].name, rc);
    }
    MDB_val key = {strlen(S_META_FORMAT), S_META_FORMAT}, val;
    int rc = mdb_get(txn, self->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        uint8_t v[4];
        dm_store__put_be32(v, S_FORMAT_VERSION);
        val.mv_size = sizeof v;
        val.mv_data = v;
        return s_open_fail(why, oc->dir, "write the format version",
                           mdb_put(txn, self->meta, &key, &val, 0));
    }
    if (rc != MDB_SUCCESS)
        return s_open_fail(why, oc->dir, "read the format version", rc);
    if (val.mv_size == 4 && dm_store__get_be32(val.mv_data) == S_FORMAT_V1)
        return s_upgrade_v1(txn, oc, &key);
    if (val.mv_size != 4 || dm_store__get_be32(val.mv_data) != S_FORMAT_VERSION) {
        dm_buf_why(why, "store: %s: unsupported store format (expected version %u)", oc->dir,
                   S_FORMAT_VERSION);
        return DM_ERR_STORE;
    }
    return DM_OK;
}

dm_err dm_store_open(const char *dir, const dm_store_opts_t *opts, dm_store_t **out,
                     dm_buf_t *why)
{
    *out = NULL;
    dm_err err = DM_OK;
    size_t initial = opts && opts->initial_map_bytes ? opts->initial_map_bytes
                                                     : DM_STORE_DEFAULT_MAP_BYTES;
    size_t max = opts && opts->max_map_bytes ? opts->max_map_bytes
                                             : DM_STORE_DEFAULT_MAX_MAP_BYTES;
    if (max < initial)
        max = initial;
    dm_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->max_map_bytes = max;
    self->pk_recent_max = opts && opts->pk_recent_max ? opts->pk_recent_max
                                                      : DM_STORE_DEFAULT_PK_RECENT_MAX;
    self->sync_merge_max = DM_STORE_SYNC_MERGE_MAX;
    self->merge_step_min = DM_STORE_MERGE_STEP_MIN;
    if (pthread_mutex_init(&self->gate_mu, NULL) != 0) {
        free(self);
        return DM_ERR_NOMEM;
    }
    if (pthread_cond_init(&self->gate_cv, NULL) != 0) {
        pthread_mutex_destroy(&self->gate_mu);
        free(self);
        return DM_ERR_NOMEM;
    }
    int rc = mdb_env_create(&self->env);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxreaders(self->env, S_MAX_READERS);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxdbs(self->env, S_MAX_DBS);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_mapsize(self->env, initial);
    if (rc != MDB_SUCCESS) {
        err = s_open_fail(why, dir, "create the environment", rc);
        goto out;
    }
    rc = mdb_env_open(self->env, dir, MDB_NOTLS, S_FILE_MODE);
    if (rc != MDB_SUCCESS) {
        dm_buf_why(why, "store: open %s: %s", dir, mdb_strerror(rc));
        err = rc == ENOENT || rc == EACCES || rc == ENOTDIR || rc == EROFS ? DM_ERR_IO
                                                                           : DM_ERR_STORE;
        goto out;
    }
    self->max_key_bytes = (size_t)mdb_env_get_maxkeysize(self->env);
    int dead = 0;
    rc = mdb_reader_check(self->env, &dead);
    if (rc != MDB_SUCCESS) {
        err = s_open_fail(why, dir, "reader check", rc);
        goto out;
    }
    if (dead > 0)
        dm_log_warn("store: %s: cleared %d reader slot(s) left by dead processes", dir, dead);
    dm_store__pkf_load(self); /* before anything writes: its transaction id must match */
    s_open_ctx oc = {self, dir, why};
    err = dm_store__write(self, "open the databases", s_init_dbs, &oc, why);
    if (err)
        goto out;
    MDB_envinfo info;
    mdb_env_info(self->env, &info);
    dm_log_debug("store: opened %s (map %zu bytes, max %zu)", dir, info.me_mapsize, max);
out:
    if (err) {
        dm_store_destroy(&self);
        return err;
    }
    *out = self;
    return DM_OK;
}

void dm_store_destroy(dm_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_store_t *self = *self_p;
    const char *dir = NULL;
    if (self->quality_cache_save && self->env && !atomic_load(&self->failed) &&
        mdb_env_get_path(self->env, &dir) == MDB_SUCCESS && dir)
        self->quality_cache_save(self->quality_cache, dir);
    if (self->quality_cache_free)
        self->quality_cache_free(self->quality_cache);
    if (self->env && !atomic_load(&self->failed))
        dm_store__pkf_save(self);
    dm_store__pkf_free_all(self);
    if (self->env)
        mdb_env_close(self->env);
    pthread_cond_destroy(&self->gate_cv);
    pthread_mutex_destroy(&self->gate_mu);
    free(self);
    *self_p = NULL;
}
