/* query_pool.h: the node's SQL worker threads.
 *
 * The node loop forwards QueryReq, QueryNext and QueryClose as two frames
 * [routing id][envelope] to a worker's inbox; the worker runs the query on
 * its own SQLite connection (query.h) and replies, as [routing id][reply],
 * to the shared outbox the node loop relays from (DM_INGEST_OUTBOX). A
 * query's cursor id names its worker, so pulls reach the thread that holds
 * the statement. Queries never run on the node loop, so pings and catalog
 * work stay fast while a heavy query runs. */
#ifndef DM_QUERY_POOL_H
#define DM_QUERY_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "query.h"

#define DM_QUERY_POOL_DEFAULT_WORKERS 2
#define DM_QUERY_POOL_MAX_WORKERS 64
#define DM_QUERY_POOL_CURSORS 16      /* open queries per worker */
#define DM_QUERY_BATCH_ROWS 10000     /* rows per reply at most */
#define DM_QUERY_BATCH_BYTES (1 << 20) /* bytes of rows per reply, about */

typedef struct dm_query_pool dm_query_pool_t;

/* Starts nworkers threads on ctx, each with its inbox bound here. The
 * outbox (DM_INGEST_OUTBOX) must be bound by the node loop already. */
DM_NODISCARD dm_err dm_query_pool_new(void *ctx, dm_query_engine_t *engine, unsigned nworkers,
                                      int64_t lifetime_ms,
                                      dm_query_pool_t **out);
/* Stops the workers (open queries are closed) and frees the pool. NULL-safe. */
void dm_query_pool_destroy(dm_query_pool_t **self_p);

/* Forwards one request (rid and payload messages are moved) to the worker
 * chosen for it: cursor 0 means a new query (least loaded worker). Returns
 * DM_ERR_TOOBIG if that worker's queue is full, DM_ERR_NOTFOUND for a
 * cursor that names no worker. */
DM_NODISCARD dm_err dm_query_pool_forward(dm_query_pool_t *self, uint64_t cursor, void *rid_msg,
                                          void *payload_msg);

#endif
