/* quality_db.h: the "quality" database of the node's LMDB environment,
 * where node/quality/ keeps each product's check state, uniqueness
 * indexes, row-count measurements and report history.
 *
 * Every key starts with the product id (u32 BE) so that deleting a product
 * deletes its quality state with it (storage/products.c), then a one-byte
 * tag that node/quality/ gives meaning to (docs/quality.md lists them).
 * The storage layer sees opaque keys and values.
 *
 * Writes happen inside a transaction the caller already has: a batch's
 * (dm_store_hook_t's finish) or one from dm_quality_db_update. Reads take a
 * dm_store_txn_t too, from dm_quality_db_view or either of those. Values read are
 * copied out, so nothing borrowed outlives a call. */
#ifndef DM_QUALITY_DB_H
#define DM_QUALITY_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "storage/store.h"

#define DM_QDB_KEY_MAX 480 /* bytes of a key after the product id (LMDB's 511 less room) */

/* Runs fn in a read transaction (view) or a durable write transaction
 * (update; fn may run again after the map grew, so it must reset what it
 * reports through ctx). fn's non-DM_OK aborts and is returned. update never
 * waits for readers: when the map must grow while any transaction is open
 * it gives up with DM_ERR_BUSY (callers on the node loop retry later). */
typedef dm_err (*dm_quality_db_fn)(dm_store_txn_t *t, void *ctx, dm_buf_t *why);
DM_NODISCARD dm_err dm_quality_db_view(dm_store_t *store, dm_quality_db_fn fn, void *ctx,
                                       dm_buf_t *why);
DM_NODISCARD dm_err dm_quality_db_update(dm_store_t *store, dm_quality_db_fn fn, void *ctx,
                                         dm_buf_t *why);

/* Copies the value of [pid][key] into val (reset first). DM_ERR_NOTFOUND
 * (why untouched) when absent. */
DM_NODISCARD dm_err dm_quality_db_get(dm_store_txn_t *t, uint32_t pid, const void *key, size_t klen,
                                      dm_buf_t *val, dm_buf_t *why);
/* Writes [pid][key] = val. DM_ERR_TOOBIG for klen over DM_QDB_KEY_MAX. */
DM_NODISCARD dm_err dm_quality_db_put(dm_store_txn_t *t, uint32_t pid, const void *key, size_t klen,
                                      const void *val, size_t vlen, dm_buf_t *why);
/* Deletes [pid][key]; an absent key is fine. */
DM_NODISCARD dm_err dm_quality_db_del(dm_store_txn_t *t, uint32_t pid, const void *key, size_t klen,
                                      dm_buf_t *why);
/* Adds delta to the u64 counter at [pid][key] (absent: 0); the entry is
 * deleted when it reaches 0. *before and *after (may be NULL) get the
 * values. A counter that would go below 0 stays at 0 (corrupt state is not
 * made worse). */
DM_NODISCARD dm_err dm_quality_db_add(dm_store_txn_t *t, uint32_t pid, const void *key, size_t klen,
                                      int64_t delta, uint64_t *before, uint64_t *after,
                                      dm_buf_t *why);

/* Calls fn for the entries of pid whose key (after the pid) starts with
 * prefix, in key order, or newest (highest) first when reverse, until fn
 * returns non-zero. key and val are borrowed until the next write in t
 * (LMDB's rule), so a caller may keep them while it only reads. */
typedef int (*dm_quality_db_each_fn)(void *ctx, const void *key, size_t klen, const void *val,
                              size_t vlen);
DM_NODISCARD dm_err dm_quality_db_each(dm_store_txn_t *t, uint32_t pid, const void *prefix,
                                       size_t plen, bool reverse, dm_quality_db_each_fn fn,
                                       void *ctx, dm_buf_t *why);
/* Deletes every entry of pid under prefix. */
DM_NODISCARD dm_err dm_quality_db_del_prefix(dm_store_txn_t *t, uint32_t pid, const void *prefix,
                                             size_t plen, dm_buf_t *why);

/* A key after a common prefix, and a counter's change. */
typedef struct {
    const void *key;
    size_t klen;
    int64_t delta;
} dm_quality_db_delta_t;

/* Reads the u64 counters at [pid][prefix][d[i].key] into counts[i] (0 when
 * absent) for keys in ascending order, through one cursor: neighbouring
 * keys cost a search of the leaf page the cursor is on, not a descent.
 * Reads only: nothing is dirtied. d[i].delta is not used. */
DM_NODISCARD dm_err dm_quality_db_get_sorted(dm_store_txn_t *t, uint32_t pid,
                                             const void *prefix, size_t plen,
                                             const dm_quality_db_delta_t *d, size_t n,
                                             uint64_t *counts, dm_buf_t *why);
/* dm_quality_db_add for d[0..n) (ascending keys, each once) under prefix,
 * through one cursor, so each leaf page is found once, not per key.
 * *entries (may be NULL) gets the entries created less those deleted. */
DM_NODISCARD dm_err dm_quality_db_add_sorted(dm_store_txn_t *t, uint32_t pid, const void *prefix,
                                             size_t plen, const dm_quality_db_delta_t *d,
                                             size_t n, int64_t *entries, dm_buf_t *why);

/* Deletes the lowest entry under prefix (the oldest of a history). */
DM_NODISCARD dm_err dm_quality_db_del_first(dm_store_txn_t *t, uint32_t pid, const void *prefix,
                                            size_t plen, dm_buf_t *why);

/* The writer's in-memory cache of quality state for t's store (NULL until
 * set): what node/quality/ keeps across batches so that a batch need not
 * read it back from the store. Set once, with the destructor that
 * dm_store_destroy calls, and save_fn (may be NULL), which it calls
 * before, with the store's directory, when the store did not fail (the
 * cache may keep what it holds in a file there over a clean restart);
 * only the writer thread (the batch hooks) uses it. Whatever it holds must
 * be derivable from the store again (a crash loses it). */
void *dm_quality_db_cache(dm_store_txn_t *t);
void dm_quality_db_cache_set(dm_store_txn_t *t, void *cache, void (*free_fn)(void *cache),
                             void (*save_fn)(void *cache, const char *dir));
/* The directory of t's store (its LMDB environment's); NULL if unknown. */
const char *dm_quality_db_dir(dm_store_txn_t *t);

/* pid's live row and quarantine counts, as the store's counters hold
 * them in t. DM_ERR_NOTFOUND (why untouched) if pid is not registered. */
DM_NODISCARD dm_err dm_quality_db_counts(dm_store_txn_t *t, uint32_t pid, uint64_t *records,
                                         uint64_t *quarantined, dm_buf_t *why);
/* Calls fn for every live row of pid inside t (a rebuild of derived
 * state); fn returns non-zero to stop. */
DM_NODISCARD dm_err dm_quality_db_rows(dm_store_txn_t *t, uint32_t pid, dm_row_fn fn, void *ctx,
                                       dm_buf_t *why);

#endif
