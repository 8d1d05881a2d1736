/* node_priv.h: what node.c (the loop) and node_reads.c (the read-only
 * request handlers) share: the node's struct and the reply helpers. */
#ifndef DM_NODE_PRIV_H
#define DM_NODE_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "base/clock.h"
#include "base/lines.h"
#include "base/text.h"
#include "catalog/catalog.h"
#include "gossip/gossip.h"
#include "identity/identity.h"
#include "ingest/ingest.h"
#include "proto/mesh.pb-c.h"
#include "server/node.h"
#include "query/query.h"
#include "query/query_pool.h"
#include "record/registry.h"
#include "transport/rpc.h"
#include "storage/store.h"

struct dm_node {
    char *dir;
    char *domain;
    int lock_fd;
    size_t record_limit;
    dm_store_t *store;
    dm_identity_t *id;
    dm_registry_t *registry;
    void *ctx;
    void *inbox_push;  /* to the write pipeline */
    void *outbox_pull; /* its replies */
    dm_ingest_t *ingest;
    dm_query_engine_t *engine;
    dm_query_pool_t *queries;
    dm_rpc_server_t *rpc;
    dm_gossip_t *gossip;
    dm_catalog_t *catalog;
    char address[DM_ADDRESS_MAX];
    char endpoint[256];
    int64_t started_ms;
    bool addr_written;
};

/* Clocks (base/clock.h): wall time (Unix ms) for what users see, monotonic
 * for timers. Thin aliases kept so the loop's call sites read as before. */
static inline int64_t dm_node__wall_ms(void) { return dm_clock_wall_ms(); }
static inline int64_t dm_node__mono_ms(void) { return dm_clock_mono_ms(); }

/* Sends env to the client rid names; drops it if the client left. */
void dm_node__send(dm_node_t *self, zmq_msg_t *rid, Dm__Envelope *env);
void dm_node__send_error(dm_node_t *self, zmq_msg_t *rid, uint64_t id, dm_err code,
                         const char *text);

/* Read-only requests, answered on the node loop (node_reads.c). */
void dm_node__handle_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id);
void dm_node__handle_mesh_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id);
void dm_node__handle_quarantine(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                const Dm__QuarantineReq *req);
void dm_node__handle_describe(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const Dm__DescribeReq *req);
void dm_node__handle_members(dm_node_t *self, zmq_msg_t *rid, uint64_t id);

#endif
