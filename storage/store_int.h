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
#include <string.h>

#include <lmdb.h>

#include "storage/store.h"

#define DM_STORE_PID_BYTES 4
#define DM_STORE_SEQ_BYTES 8
#define DM_STORE_LOG_KEY_BYTES (DM_STORE_PID_BYTES + DM_STORE_SEQ_BYTES)
#define DM_STORE_FIRST_SEQ 1 /* sequences start here so "after 0" means all */

/* The primary-key index (storage/index.c): pk_recent takes small batches,
 * pk and pk_big hold sorted runs keyed [pid][run id u32 BE][key]. */
#define DM_STORE_RUN_ID_BYTES 4
#define DM_STORE_RUN_PREFIX_BYTES (DM_STORE_PID_BYTES + DM_STORE_RUN_ID_BYTES)
#define DM_STORE_RUNS_MAX 40   /* runs of one product; more are merged at once */
#define DM_STORE_FANOUT 4      /* runs of one level merged into one */
#define DM_STORE_RUN_MIN_DIV 32 /* a batch with pk_recent_max / this many keys is a run */
#define DM_STORE_SYNC_MERGE_MAX ((uint64_t)1 << 20) /* entries: larger merges go in steps */
#define DM_STORE_MERGE_PACE_NUM 5 /* merge step: 5/4 entries per key of the batch */
#define DM_STORE_MERGE_PACE_DEN 4
#define DM_STORE_MERGE_STEP_MIN ((uint64_t)16 << 10) /* entries, for small batches */
#define DM_STORE_POS_MAX 512  /* bytes of a merge position: above LMDB's key size */
#define DM_STORE_RUN_BIG 0x01  /* run flag: in pk_big (written by a stepped merge) */
#define DM_STORE_RUN_MERGING 0x02 /* run flag: output of the merge in progress */
#define DM_STORE_RUN_LEVEL_SHIFT 2 /* flags above: the run's level (merges that made it) */

struct dm_store {
    MDB_env *env;
    MDB_dbi products, rows, pk, pk_recent, pk_big, pk_bloom, quarantine, meta;
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
    size_t pk_recent_max;   /* see dm_store_opts_t: pk_recent's entries before a flush */
    size_t max_key_bytes;   /* mdb_env_get_maxkeysize */
    /* DM_STORE_SYNC_MERGE_MAX and DM_STORE_MERGE_STEP_MIN, here so that
     * tests can make merges in steps happen with a few rows. */
    uint64_t sync_merge_max, merge_step_min;
    /* storage/index_pkf.c's filters, one per product (the writer's). */
    struct dm_store__pkf **pkf;
    size_t npkf, pkf_bytes;
    /* storage/quality_db.h's writer cache and its destructor (NULL: none). */
    void *quality_cache;
    void (*quality_cache_free)(void *cache);
    void (*quality_cache_save)(void *cache, const char *dir);
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

/* ---- the primary-key index (storage/index.c) ---- */

/* One sorted run of a product's index: entries [pid][id][key] -> seq in pk. */
typedef struct {
    uint32_t id;
    uint64_t entries;
    uint8_t flags; /* DM_STORE_RUN_* */
} dm_store__run_t;

/* A product's runs, oldest first: a newer run wins a key it shares with an
 * older one. A stepped merge in progress has its output (flag MERGING)
 * directly above its merge_in inputs; the output holds the merged keys
 * below pos, the inputs only keys from pos on, so they never overlap. */
typedef struct {
    uint32_t pid, next_id;
    size_t n;
    dm_store__run_t run[DM_STORE_RUNS_MAX];
    size_t merge_in;  /* inputs of the merge in progress (0: none) */
    uint8_t pos[DM_STORE_POS_MAX];
    size_t pos_len;
} dm_store__runs_t;

/* The database a run lives in. */
static inline MDB_dbi dm_store__run_db(const dm_store_t *self, const dm_store__run_t *r)
{
    return r->flags & DM_STORE_RUN_BIG ? self->pk_big : self->pk;
}

/* A blocked Bloom filter of one run's keys (storage/index_bloom.c). */
typedef struct {
    uint8_t *bits;
    size_t nblocks;
} dm_store__bloom_t;

/* Sizes b for n keys (DM_ERR_NOMEM). */
DM_NODISCARD dm_err dm_store__bloom_init(dm_store__bloom_t *b, uint64_t n);
void dm_store__bloom_add(dm_store__bloom_t *b, const void *key, size_t len);
void dm_store__bloom_free(dm_store__bloom_t *b);
DM_NODISCARD dm_err dm_store__bloom_save(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                                         uint32_t id, const dm_store__bloom_t *b, dm_buf_t *why);
/* *bits (zero-copy, valid during txn until pk_bloom is written) is NULL
 * when the run has no filter (yet). */
DM_NODISCARD dm_err dm_store__bloom_load(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                                         uint32_t id, const uint8_t **bits, size_t *len,
                                         dm_buf_t *why);
/* False only when a run with filter bits cannot hold key. */
bool dm_store__bloom_maybe(const uint8_t *bits, size_t len, const void *key, size_t klen);
/* The same in parts, so that a lookup through many runs hashes once and
 * fetches every run's block before testing any (the misses overlap):
 * block is NULL for a run without a filter, and then the test says maybe. */
const uint8_t *dm_store__bloom_block(const uint8_t *bits, size_t len, uint64_t h);
bool dm_store__bloom_test(const uint8_t *block, uint64_t h);
DM_NODISCARD dm_err dm_store__bloom_delete(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                                           uint32_t id, dm_buf_t *why);

/* ---- runs as blocks of entries (storage/index_block.c) ---- */

/* A block's LMDB node (8-byte header, key, value) at most: what LMDB keeps
 * inside a 4 KiB leaf page, two to a page (larger values go to overflow
 * pages, and a lookup would touch one more page). */
#define DM_STORE_BLOCK_NODE_BYTES 2030
#define DM_STORE_BLOCK_ENTRIES_MAX 512 /* entries of one block at most (short keys) */
#define DM_STORE_KEY_MAX 1024          /* bytes of an LMDB key the index composes, at most */

/* Walks one part of the index in key order: a run's blocks (keys
 * [pid][run id][last key]) or pk_recent's entries ([pid][key] -> seq, read
 * as one-entry blocks). key points into the map (or a dirty page of the
 * caller's write txn) and stays valid until the txn writes db or ends. */
typedef struct {
    MDB_cursor *cur;
    uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
    size_t plen;
    bool valid;            /* false: past the part's last entry */
    MDB_val bkey;          /* the current block's LMDB key */
    const uint8_t *blk;    /* the current block's value */
    size_t blen, n, i;     /* its size, entries and the current entry */
    const uint8_t *key;    /* the current entry: key without prefix, and seq */
    size_t len;
    uint64_t seq;
} dm_store__iter_t;

/* Opens it on the entries of db whose keys start with prefix (plen bytes);
 * not positioned (valid false) until a seek. */
DM_NODISCARD dm_err dm_store__iter_open(dm_store__iter_t *it, MDB_txn *txn, MDB_dbi db,
                                        const uint8_t *prefix, size_t plen, dm_buf_t *why);
void dm_store__iter_close(dm_store__iter_t *it);
/* Positions it at the first entry whose key is >= start (cut so that the
 * LMDB key fits max_key: then lower than start). */
DM_NODISCARD dm_err dm_store__iter_seek(dm_store__iter_t *it, const void *start, size_t len,
                                        size_t max_key, dm_buf_t *why);
DM_NODISCARD dm_err dm_store__iter_next(dm_store__iter_t *it, dm_buf_t *why);
/* *seq gets key's entry; DM_ERR_NOTFOUND (why untouched) if the part has none. */
DM_NODISCARD dm_err dm_store__iter_find(dm_store__iter_t *it, const void *key, size_t len,
                                        size_t max_key, uint64_t *seq, dm_buf_t *why);

/* Writes one run's entries, in strictly ascending key order, as blocks. */
typedef struct {
    MDB_txn *txn;
    MDB_dbi db;
    uint8_t prefix[DM_STORE_RUN_PREFIX_BYTES];
    unsigned flags;          /* MDB_APPEND when the run is the last range of db */
    dm_buf_t ents, val, key; /* the block being filled; scratch */
    uint16_t off[DM_STORE_BLOCK_ENTRIES_MAX];
    size_t n;
    uint64_t written;
    dm_store__bloom_t bloom; /* bits NULL: none kept */
} dm_store__writer_t;

DM_NODISCARD dm_err dm_store__writer_init(dm_store__writer_t *w, MDB_txn *txn, MDB_dbi db,
                                          uint32_t pid, uint32_t id, dm_buf_t *why);
/* Adds an entry (to the filter too); a full block goes to db first. */
DM_NODISCARD dm_err dm_store__writer_put(dm_store__writer_t *w, const void *key, size_t len,
                                         uint64_t seq, dm_buf_t *why);
/* Writes the block being filled, if any (before anyone reads db's run). */
DM_NODISCARD dm_err dm_store__writer_flush(dm_store__writer_t *w, dm_buf_t *why);
void dm_store__writer_free(dm_store__writer_t *w);

/* Deletes the entries of db's part with prefix (a run, or pk_recent's part
 * of a product) whose keys are below below (NULL: all of them): whole
 * blocks, and the block holding below is rewritten without its lower
 * entries. */
DM_NODISCARD dm_err dm_store__range_delete(MDB_txn *txn, MDB_dbi db, const uint8_t *prefix,
                                           size_t plen, const void *below, size_t below_len,
                                           size_t max_key, dm_buf_t *why);

/* Reads pid's run list from meta (none yet: n 0). */
DM_NODISCARD dm_err dm_store__runs_get(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                                       dm_store__runs_t *runs, dm_buf_t *why);

/* Looks key (the encoded primary key, without pid) of pid up: pk_recent,
 * then the runs newest first. DM_ERR_NOTFOUND (why untouched) if absent. */
DM_NODISCARD dm_err dm_store__index_get(dm_store_t *self, MDB_txn *txn, uint32_t pid,
                                        const void *key, size_t len, uint64_t *seq,
                                        dm_buf_t *why);

/* storage/index_pkf.c: a product's filter over every key of its index, in
 * the writer's memory (only inside a write transaction). */
typedef struct dm_store__pkf {
    uint32_t pid;
    uint8_t *bits; /* NULL: none (not built, or it did not fit) */
    size_t len;
    uint64_t keys, cap, added; /* keys at the build, sized for, added since */
} dm_store__pkf_t;

/* runs' product's filter, built first when it has none or is full; NULL:
 * none (no room, or the build failed: the runs' filters answer). */
dm_store__pkf_t *dm_store__pkf_get(dm_store_t *self, MDB_txn *txn, const dm_store__runs_t *runs);
/* Adds a key (without pid) the index now holds; f may be NULL. */
void dm_store__pkf_add(dm_store__pkf_t *f, const void *key, size_t len);
/* false when no key of hash h (dm_index_bloom_hash) is in f's product. */
bool dm_store__pkf_maybe(const dm_store__pkf_t *f, uint64_t h);
void dm_store__pkf_drop(dm_store_t *self, uint32_t pid);
#define DM_STORE_PKF_BYTES_MAX ((size_t)256 << 20) /* every product filter of a store */
/* storage/index_pkf_file.c: the filters written when the store closes,
 * read back at its next open if nothing wrote to it in between; and all
 * of them freed. */
void dm_store__pkf_save(dm_store_t *self);
void dm_store__pkf_load(dm_store_t *self);
void dm_store__pkf_free_all(dm_store_t *self);

/* Looks keys up in a product's runs, newest first, with one cursor per run;
 * cheapest when the keys come in ascending order. Reads only. */
typedef struct {
    const dm_store__runs_t *runs;
    dm_store__pkf_t *pkf; /* the product's filter, NULL: none */
    size_t oi; /* the output of the merge in progress; runs->n if none */
    size_t max_key;
    dm_store__iter_t it[DM_STORE_RUNS_MAX];
    const uint8_t *bloom[DM_STORE_RUNS_MAX];
    size_t bloom_len[DM_STORE_RUNS_MAX];
} dm_store__probe_t;

DM_NODISCARD dm_err dm_store__probe_open(dm_store__probe_t *p, dm_store_t *self, MDB_txn *txn,
                                         const dm_store__runs_t *runs, dm_buf_t *why);
/* *seq gets the newest run's entry for key; DM_ERR_NOTFOUND if none has it. */
DM_NODISCARD dm_err dm_store__probe_find(dm_store__probe_t *p, const void *key, size_t len,
                                         uint64_t *seq, dm_buf_t *why);
void dm_store__probe_close(dm_store__probe_t *p);

/* One index entry to write: key without pid, and its row's sequence. */
typedef struct {
    const void *key;
    size_t len;
    uint64_t seq;
} dm_store__entry_t;

/* Writes e[0..n) (ascending, distinct keys) as a new newest run of runs'
 * product. The caller has removed those keys from pk_recent. */
DM_NODISCARD dm_err dm_store__run_add(dm_store_t *self, MDB_txn *txn, dm_store__runs_t *runs,
                                      const dm_store__entry_t *e, size_t n, dm_buf_t *why);
/* After a batch of keys entries: flushes the product's part of pk_recent
 * into a run when pk_recent holds more than pk_recent_max entries, merges
 * FANOUT runs of one size class into one (at once up to
 * DM_STORE_SYNC_MERGE_MAX entries, larger ones a step of MERGE_PACE_NUM /
 * MERGE_PACE_DEN entries per key of the batch, twice that while another
 * merge is due), and saves the run list. */
DM_NODISCARD dm_err dm_store__index_settle(dm_store_t *self, MDB_txn *txn,
                                           dm_store__runs_t *runs, uint64_t keys,
                                           dm_buf_t *why);

/* Whether keys of DM_STORE_LOG_KEY_BYTES starting at first can go in with
 * MDB_APPEND: true when the database is empty or its last key is lower.
 * cur is a cursor on that database. */
DM_NODISCARD dm_err dm_store__can_append(MDB_cursor *cur, const uint8_t *first, bool *yes,
                                         dm_buf_t *why);

#endif
