/* store_int.h: what the storage files share and nobody else sees: the store
 * struct, big-endian key helpers, LMDB error translation and the
 * transaction wrappers that make map growth safe.
 *
 * Every transaction runs with the gate held shared; growing the map takes
 * it exclusive, because mdb_env_set_mapsize needs a process without active
 * transactions. The gate is a mutex, a condition and a count rather than a
 * pthread rwlock because a query's reader is released by whichever thread
 * closes it (a worker, the watcher, the node loop), and unlocking a rwlock
 * from a thread that does not hold it is undefined. Callbacks that run inside a read transaction (scans) must
 * therefore not start a write on the same store: a write that has to grow
 * the map would wait for the scan that is waiting for it. */
#ifndef DM_STORE_INT_H
#define DM_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <lmdb.h>

#include "storage/store.h"

#define DM_STORE_PID_BYTES 4
#define DM_STORE_SEQ_BYTES 8
#define DM_STORE_LOG_KEY_BYTES (DM_STORE_PID_BYTES + DM_STORE_SEQ_BYTES)
#define DM_STORE_FIRST_SEQ 1 /* sequences start here so "after 0" means all */

struct dm_store {
    MDB_env *env;
    MDB_dbi products, rows, pk, pk_recent, quarantine, meta;
    MDB_dbi catalog;        /* storage/catalog_db.h */
    MDB_dbi acl;            /* storage/acl_db.h: the domain's admins */
    MDB_dbi audit;          /* storage/audit.h: decisions, by sequence */
    MDB_dbi quality;        /* storage/quality_db.h: check state and reports */
    /* The gate: txns shared (holders counted), map resize exclusive. Shared
     * entry waits only for a resize in progress, never for a waiting
     * grower (so nested or short transactions cannot deadlock it). */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    size_t gate_holders;
    bool gate_resizing;
    /* Threads waiting to grow the map. While it is not 0, new long-lived
     * readers (dm_reader_open) are refused, so a steady overlap of
     * queries cannot starve growth. */
    atomic_uint growers;
    /* Set once LMDB reports MDB_PANIC (a failed meta-page write): the
     * environment refuses every transaction until it is reopened. */
    atomic_bool failed;
    size_t max_map_bytes;
    size_t pk_recent_max;   /* see dm_store_opts_t */
    size_t max_key_bytes;   /* mdb_env_get_maxkeysize */
};

/* store.h's dm_store_txn_t: the write transaction a batch hook may add to. */
struct dm_store_txn {
    dm_store_t *store;
    MDB_txn *txn;
};

/* Per-product counters, kept in meta under DM_STORE_COUNTERS_TAG + pid so a
 * batch commit rewrites 32 bytes, not the whole product record. */
typedef struct {
    uint64_t records, quarantined, next_seq, next_qseq;
} dm_store_counters_t;

#define DM_STORE_COUNTERS_TAG 'c'
#define DM_STORE_COUNTERS_KEY_BYTES (1 + DM_STORE_PID_BYTES)
#define DM_STORE_COUNTERS_BYTES 32

static inline void dm_store__put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

static inline void dm_store__put_be64(uint8_t *p, uint64_t v)
{
    dm_store__put_be32(p, (uint32_t)(v >> 32));
    dm_store__put_be32(p + 4, (uint32_t)v);
}

static inline uint32_t dm_store__get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t dm_store__get_be64(const uint8_t *p)
{
    return (uint64_t)dm_store__get_be32(p) << 32 | dm_store__get_be32(p + 4);
}

/* Writes the log key [pid][seq] (DM_STORE_LOG_KEY_BYTES). */
static inline void dm_store__log_key(uint8_t *k, uint32_t pid, uint64_t seq)
{
    dm_store__put_be32(k, pid);
    dm_store__put_be64(k + DM_STORE_PID_BYTES, seq);
}

/* Translates an LMDB return code: 0 -> DM_OK, MDB_NOTFOUND ->
 * DM_ERR_NOTFOUND and MDB_MAP_FULL -> DM_ERR_MAPFULL with why untouched
 * (callers handle them); anything else appends "store: OP: mdb_strerror" to
 * why and returns DM_ERR_STORE. Never logs. */
dm_err dm_store__mdb_why(const char *op, int rc, dm_buf_t *why);

/* dm_store__mdb_why for a transaction of self: also records MDB_PANIC in
 * self->failed and says once, loudly, that the store must be reopened (an
 * event of the environment, not of this call: dm_store_failed). */
dm_err dm_store__mdb_txn(dm_store_t *self, const char *op, int rc, dm_buf_t *why);

/* The gate: shared around every transaction, exclusive around a resize.
 * Any thread may leave a shared hold another thread took. */
void dm_store__shared_enter(dm_store_t *self);
void dm_store__shared_leave(dm_store_t *self);

/* Begins a read transaction with the gate held shared. On error nothing is
 * held and why has a line (not logged). End it with dm_store__read_end. */
DM_NODISCARD dm_err dm_store__read_begin(dm_store_t *self, MDB_txn **txn, dm_buf_t *why);
void dm_store__read_end(dm_store_t *self, MDB_txn *txn);

/* Body of a write transaction. Returns DM_OK to commit, another dm_err to
 * abort (with a line in why). It may run more than once (after the map
 * grew), so it must reset whatever it reports through ctx at its start;
 * DM_ERR_MAPFULL, the only code that reruns it, adds nothing to why. */
typedef dm_err (*dm_store__write_fn)(MDB_txn *txn, void *ctx, dm_buf_t *why);

/* Runs fn in a write transaction and commits it synchronously. On
 * DM_ERR_MAPFULL (from fn or the commit) it aborts, grows the map and runs
 * fn again; gives up with DM_ERR_MAPFULL at the maximum size. op names the
 * operation in why's line. Never logs a failure. */
DM_NODISCARD dm_err dm_store__write(dm_store_t *self, const char *op, dm_store__write_fn fn,
                                    void *ctx, dm_buf_t *why);
/* dm_store__write; with may_wait false, a write that needs a bigger map
 * while any transaction is open (a query's reader, for as long as its time
 * limit) gives up with DM_ERR_BUSY instead of waiting: for writes on a
 * thread that must not block, such as the node loop's catalog. */
DM_NODISCARD dm_err dm_store__write_opts(dm_store_t *self, const char *op,
                                         dm_store__write_fn fn, void *ctx, bool may_wait,
                                         dm_buf_t *why);

/* Reads pid's counters. DM_ERR_NOTFOUND (why untouched) if pid is not
 * registered. */
DM_NODISCARD dm_err dm_store__counters_get(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                                           dm_store_counters_t *c, dm_buf_t *why);
DM_NODISCARD dm_err dm_store__counters_put(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                                           const dm_store_counters_t *c, dm_buf_t *why);

/* Writes quarantine entries q[0..n) of pid with sequences first.. and time
 * at_ms, in the caller's write transaction. scratch is reused for values. */
DM_NODISCARD dm_err dm_store__quarantine_append(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                                                uint64_t first, const dm_quarantine_in_t *q,
                                                size_t n, const char *source, int64_t at_ms,
                                                dm_buf_t *scratch, dm_buf_t *why);

/* Whether keys of DM_STORE_LOG_KEY_BYTES starting at first can go in with
 * MDB_APPEND: true when the database is empty or its last key is lower.
 * cur is a cursor on that database. */
DM_NODISCARD dm_err dm_store__can_append(MDB_cursor *cur, const uint8_t *first, bool *yes,
                                         dm_buf_t *why);

#endif
