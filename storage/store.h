/* store.h: the node's LMDB environment and everything kept in it.
 *
 * One environment per node (DIR/store/), named databases inside:
 *   products    "domain/name" -> product record (id, version, hash,
 *               canonical contract, counters)
 *   rows        [pid u32 BE][seq u64 BE] -> encoded row (an append-only log)
 *   pk_recent   [pid u32 BE][primary-key bytes] -> seq u64 BE: small
 *               batches' index entries
 *   pk, pk_big  [pid][run id u32 BE][a block's last primary key] -> a block
 *               of a sorted run's entries (key, seq); pk_bloom [pid][run id]
 *               -> a run's Bloom filter (storage/index.c and index_block.c
 *               explain the layout)
 *   quarantine  [pid u32 BE][qseq u64 BE] -> line, source, time, reasons, raw
 *   meta        node-level values (format version, next product id) and
 *               per-product counters ('c' pid)
 *   catalog     the mesh catalog's entries, versions, pins and refused
 *               claims (storage/catalog_db.h; node/catalog/ gives them
 *               meaning)
 *   quality     [pid u32 BE][tag]... -> check state, uniqueness indexes,
 *               row-count measurements and report history
 *               (storage/quality_db.h; node/quality/ gives them meaning)
 * Write transactions are serialised by LMDB; every dm_store_* write commits
 * durably (synchronous) before it returns DM_OK. When the map is full the
 * store grows it (doubling, up to the configured maximum) and retries.
 * Readers left behind by dead processes are cleared at open and on demand.
 * All functions are thread-safe.
 *
 * Reads (get, list, scan, the reader in storage/reader.h) report like
 * writes (base/err.h): DM_ERR_NOTFOUND, where a function has it, leaves
 * why untouched (the caller words "unknown ..."); any other failure, such
 * as DM_ERR_STORE for an LMDB error or a corrupt value, appends a line to
 * why and is never logged here. The store logs only events of its own:
 * MDB_PANIC (once), map growth and cleared reader slots. */
#ifndef DM_STORE_H
#define DM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"

/* LMDB's default key order, which the store's index and the quality
 * database's keys follow: bytes compared, then the shorter first. a or b
 * may be NULL when its length is 0. */
static inline int dm_store_key_cmp(const void *a, size_t la, const void *b, size_t lb)
{
    size_t n = la < lb ? la : lb;
    int c = n ? memcmp(a, b, n) : 0;
    return c != 0 ? c : la < lb ? -1 : la > lb;
}

#define DM_STORE_DEFAULT_MAP_BYTES ((size_t)64 << 30) /* first map size: address space only, the file stays sparse; large so that growing (which waits for every reader, queries included) is rare */
#define DM_STORE_DEFAULT_MAX_MAP_BYTES ((size_t)1 << 40) /* growth ceiling */
#define DM_STORE_DEFAULT_PK_RECENT_MAX ((size_t)64 << 10) /* index entries */
#define DM_STORE_HASH_BYTES 32

typedef struct dm_store dm_store_t;

typedef struct {
    size_t initial_map_bytes; /* 0: DM_STORE_DEFAULT_MAP_BYTES */
    size_t max_map_bytes;     /* 0: DM_STORE_DEFAULT_MAX_MAP_BYTES */
    size_t pk_recent_max;     /* entries in pk_recent before a product's part
                                 becomes a run (a batch with a 32nd of this
                                 many keys is one at once);
                                 0: DM_STORE_DEFAULT_PK_RECENT_MAX */
} dm_store_opts_t;

/* Opens (creating if needed) the environment in directory dir, which must
 * exist. opts may be NULL. On error *out is NULL, DM_ERR_STORE or DM_ERR_IO
 * (DM_ERR_NOMEM), and why gets a line naming dir and the cause (base/err.h;
 * not logged). */
DM_NODISCARD dm_err dm_store_open(const char *dir, const dm_store_opts_t *opts,
                                  dm_store_t **out, dm_buf_t *why);
/* Closes the environment. NULL-safe; sets *self_p to NULL. All readers
 * and iterators must be gone. */
void dm_store_destroy(dm_store_t **self_p);

/* The current map size in bytes. */
size_t dm_store_map_size(dm_store_t *self);
/* Clears reader slots of dead processes; *cleared receives how many (the
 * caller reports them). DM_ERR_STORE with a line in why if LMDB cannot
 * check them (*cleared 0). */
DM_NODISCARD dm_err dm_store_reader_check(dm_store_t *self, int *cleared, dm_buf_t *why);
/* True once LMDB has reported a fatal error (MDB_PANIC, after a failed
 * meta-page write): the environment refuses every transaction until the
 * process reopens it. Logged once when it happens. Thread-safe. */
bool dm_store_failed(dm_store_t *self);

/* ---- products ---- */

typedef struct {
    uint32_t id;              /* node-local, never reused */
    char *domain, *name, *version;
    uint64_t version_major, version_minor, version_patch;
    uint8_t hash[DM_STORE_HASH_BYTES];
    char *contract;           /* canonical JSON, NUL-terminated */
    size_t contract_len;
    uint64_t records;         /* live rows (upserts do not add) */
    uint64_t quarantined;     /* quarantine entries */
    int64_t registered_ms, updated_ms; /* Unix milliseconds */
} dm_product_t;

/* Frees the strings of p (not p itself). NULL-safe. */
void dm_store_product_clear(dm_product_t *p);

typedef enum {
    DM_REGISTER_CREATED,   /* a new product */
    DM_REGISTER_UPGRADED,  /* a higher version replaced the stored one */
    DM_REGISTER_UNCHANGED  /* same version and hash: nothing written */
} dm_register_outcome;

/* Registers or upgrades a product in one transaction: absent -> created;
 * same version and same hash -> unchanged; higher version -> upgraded
 * (keeps id, rows and counters). Same version with another hash, or a
 * lower version: DM_ERR_CONFLICT and *previous (if not NULL) is filled with
 * the stored product for the error message (caller clears it; why is
 * untouched: the caller words the refusal). *out (may be NULL) receives the
 * stored product after the call. Any other failure appends a line to why
 * (base/err.h; the store never logs a write's failure). */
DM_NODISCARD dm_err dm_store_product_register(dm_store_t *self, const dm_product_t *in,
                                              dm_register_outcome *outcome,
                                              dm_product_t *out, dm_product_t *previous,
                                              dm_buf_t *why);

/* Looks a product up. DM_ERR_NOTFOUND (why untouched) if absent; another
 * failure appends a line to why. *out is the caller's to clear (zeroed on
 * error). */
DM_NODISCARD dm_err dm_store_product_get(dm_store_t *self, const char *domain,
                                         const char *name, dm_product_t *out, dm_buf_t *why);

/* Deletes product domain/name with all its rows, index entries, quarantine
 * and counters, in one durable transaction; its id is never reused.
 * DM_ERR_NOTFOUND (why untouched) if absent. *removed (may be NULL)
 * receives the product as it was (caller clears). Other failures append a
 * line to why. */
DM_NODISCARD dm_err dm_store_product_delete(dm_store_t *self, const char *domain,
                                            const char *name, dm_product_t *removed,
                                            dm_buf_t *why);

/* Lists every product, ordered by "domain/name". *out is an array of *n
 * products; the caller clears each and frees the array. On failure *out is
 * NULL, *n 0 and why has a line. */
DM_NODISCARD dm_err dm_store_product_list(dm_store_t *self, dm_product_t **out, size_t *n,
                                          dm_buf_t *why);

/* ---- records ---- */

/* One valid record of a batch. key/key_len: the encoded primary key, or
 * key_len 0 when the product has none (append). row: the encoded row. */
typedef struct {
    const void *key;
    size_t key_len;
    const void *row;
    size_t row_len;
} dm_row_in_t;

/* One invalid record of a batch. */
typedef struct {
    uint64_t line;        /* line number in the client's input */
    const char *raw;      /* the line as received (maybe cut, see raw_len) */
    size_t raw_len;       /* bytes in raw */
    uint64_t orig_len;    /* the line's full length (>= raw_len) */
    const char *reasons;  /* NUL-terminated, "; "-separated */
} dm_quarantine_in_t;

typedef struct {
    uint64_t inserted;    /* new rows */
    uint64_t updated;     /* rows that replaced a row with the same key */
    uint64_t quarantined;
} dm_batch_result_t;

/* Commits one batch for product pid durably in one transaction: rows in
 * order (a later row with the same key replaces an earlier one, also
 * within the batch), quarantine entries with source (NUL-terminated, may
 * be "") and the current time, counters updated. Returns only after the
 * commit; on error nothing of the batch is stored and why gets a line
 * naming the cause (base/err.h; not logged). DM_ERR_NOTFOUND if pid is not
 * a registered product. */
DM_NODISCARD dm_err dm_store_commit_batch(dm_store_t *self, uint32_t pid,
                                          const dm_row_in_t *rows, size_t nrows,
                                          const dm_quarantine_in_t *quarantine, size_t nq,
                                          const char *source, dm_batch_result_t *result,
                                          dm_buf_t *why);

/* A write transaction in progress, handed to a batch hook so that state
 * derived from the rows (node/quality/'s counts and indexes, through
 * storage/quality_db.h) commits atomically with them. Opaque. */
typedef struct dm_store_txn dm_store_txn_t;

/* Observes the rows a batch makes live, inside its transaction. The
 * transaction may run more than once (after the map grew): begin is called
 * at the start of every attempt and must reset whatever the hook
 * accumulated. row is called once per row that becomes live: old_row is
 * the stored row it replaces (NULL, 0 when the key is new or the product
 * has no primary key); a row replaced by a later row of the same batch is
 * never reported (it was never live). finish runs after every row and
 * before the commit and may write its own state with txn. A non-DM_OK
 * from row or finish (with a line in why) aborts the whole batch.
 * Pointers are valid only during the call. Any callback may be NULL. */
typedef struct {
    void (*begin)(void *ctx);
    dm_err (*row)(void *ctx, const void *old_row, size_t old_len, const void *new_row,
                  size_t new_len, dm_buf_t *why);
    dm_err (*finish)(void *ctx, dm_store_txn_t *txn, const dm_batch_result_t *result,
                     dm_buf_t *why);
    void *ctx;
} dm_store_hook_t;

/* dm_store_commit_batch with a hook (NULL: none). */
DM_NODISCARD dm_err dm_store_commit_batch_hooked(dm_store_t *self, uint32_t pid,
                                                 const dm_row_in_t *rows, size_t nrows,
                                                 const dm_quarantine_in_t *quarantine,
                                                 size_t nq, const char *source,
                                                 const dm_store_hook_t *hook,
                                                 dm_batch_result_t *result, dm_buf_t *why);

/* The most bytes of an encoded primary key dm_store_commit_batch takes
 * (LMDB's key size, fixed when liblmdb is built, less the index run's
 * 8-byte prefix;
 * at most 1 KiB): a longer key fails the whole batch, so the validator
 * quarantines its record first. Needs no open store. */
size_t dm_store_max_key_bytes(void);

/* Copies the row stored under primary key key into row (reset first).
 * DM_ERR_NOTFOUND (why untouched) if there is none; another failure (a
 * corrupt index, an LMDB error) appends a line to why. */
DM_NODISCARD dm_err dm_store_get_by_key(dm_store_t *self, uint32_t pid, const void *key,
                                        size_t key_len, dm_buf_t *row, dm_buf_t *why);

/* Calls fn for every live row of pid in log (sequence) order, inside one
 * read transaction; row is valid only during the call. fn returns non-zero
 * to stop early. fn must not write to the store (a write that has to grow
 * the map would wait for this scan to end). A failure appends a line to
 * why. */
typedef int (*dm_row_fn)(void *ctx, uint64_t seq, const void *row, size_t row_len);
DM_NODISCARD dm_err dm_store_scan(dm_store_t *self, uint32_t pid, dm_row_fn fn, void *ctx,
                                  dm_buf_t *why);

typedef struct {
    uint64_t seq, line, orig_len;
    int64_t at_ms;
    const char *source;  /* borrowed, valid during the callback */
    const char *reasons;
    const char *raw;
    size_t raw_len;
} dm_quarantine_item_t;

/* Calls fn for up to limit quarantine entries of pid with seq > after, in
 * order (quarantine seqs start at 1, so after 0 means from the start).
 * *more is set when entries remain. Borrowed strings are NUL-terminated and
 * valid during the call; fn must not write to the store. A failure (an
 * LMDB error, a corrupt entry) appends a line to why. */
typedef int (*dm_quarantine_fn)(void *ctx, const dm_quarantine_item_t *item);
DM_NODISCARD dm_err dm_store_quarantine_scan(dm_store_t *self, uint32_t pid, uint64_t after,
                                             size_t limit, dm_quarantine_fn fn, void *ctx,
                                             bool *more, dm_buf_t *why);

#endif
