/* catalog_db.h: the "catalog" database of the node's LMDB environment,
 * where node/catalog keeps its signed entries, per-origin versions, domain
 * pins, refused claims and the governance key chain.
 *
 * The storage layer sees opaque keys and values; node/catalog/ owns their
 * meaning. Keys start with a one-byte tag:
 *   'e' origin[32] key   -> the entry, encoded as dm.CatalogEntry
 *   'v' origin[32]       -> u64 BE: the highest version seen from origin
 *   'p' domain           -> the domain's pin (owner, first seen)
 *   'c' domain 0 claimant[32] -> a refused claim on a pinned domain
 *   'g' root_version (u64 BE) -> a key of the governance key chain (32 bytes)
 *   'h'                  -> the node's heartbeat and down intervals
 *                           (node/server/node_health.c; quality/sla.h's
 *                           record; the catalog skips it)
 * A write is a batch of puts and deletes committed in one synchronous
 * transaction, so a process killed at any moment leaves either all of a
 * batch or none of it. */
#ifndef DM_CATALOG_DB_H
#define DM_CATALOG_DB_H

#include <stddef.h>

#include "base/err.h"
#include "storage/store.h"

#define DM_STORE_CATALOG_ENTRY 'e'
#define DM_STORE_CATALOG_ORIGIN 'v'
#define DM_STORE_CATALOG_PIN 'p'
#define DM_STORE_CATALOG_CONFLICT 'c'
#define DM_STORE_CATALOG_GOV 'g'
#define DM_STORE_CATALOG_HEARTBEAT 'h'

/* One put (val not NULL) or delete (val NULL; absent keys are fine). */
typedef struct {
    const void *key;
    size_t key_len;
    const void *val;
    size_t val_len;
} dm_store_catalog_op_t;

/* Applies ops[0..n) in order in one write transaction and commits it
 * durably before returning. On error nothing of the batch is stored;
 * DM_ERR_TOOBIG for a key longer than LMDB allows (or empty), else
 * DM_ERR_STORE / DM_ERR_MAPFULL, or DM_ERR_BUSY when the map must grow
 * while queries hold readers (it never waits for them: the caller is the
 * node loop; retry later). n == 0 is DM_OK without a transaction. A
 * failure other than DM_ERR_BUSY appends a line to why (base/err.h; not
 * logged: the caller reports it). */
DM_NODISCARD dm_err dm_catalog_db_write(dm_store_t *self, const dm_store_catalog_op_t *ops,
                                           size_t n, dm_buf_t *why);

/* Calls fn for every record in key order inside one read transaction; key
 * and val are valid only during the call and fn must not write to the
 * store. fn returns non-zero to stop early. A failure appends a line to why
 * (not logged). */
typedef int (*dm_store_catalog_fn)(void *ctx, const void *key, size_t key_len, const void *val,
                                   size_t val_len);
DM_NODISCARD dm_err dm_catalog_db_scan(dm_store_t *self, dm_store_catalog_fn fn, void *ctx,
                                       dm_buf_t *why);

#endif
