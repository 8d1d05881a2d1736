/* node_priv.h: what the files of node/server/ share: the node's struct,
 * the data directory
 * (node/server/node_dir.c), dispatch and relay (node_dispatch.c), the
 * read-only handlers (node_reads.c), and the loop's call into the catalog
 * reconciliation of node/catalog/catalog_local.c (node.c). Calls go one
 * way: node.c calls node_dir.c and node_dispatch.c, which calls
 * node_reads.c. */
#ifndef DM_NODE_PRIV_H
#define DM_NODE_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "base/buf.h"
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
#include "transport/envelope.h"
#include "transport/ctl.h"
#include "transport/rpc.h"
#include "transport/zsock.h"
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
    char endpoint[DM_ID_ENDPOINT_MAX];
    int64_t started_ms;
    bool addr_written;
};

/* Creates the data directory if needed, takes its lock and checks or
 * records its domain; sets self->dir, domain and lock_fd. On error one
 * line naming the directory and what would be valid is appended to why. */
DM_NODISCARD dm_err dm_node__dir_open(dm_node_t *self, const dm_node_opts_t *opts,
                                      dm_buf_t *why);
/* mkdir -p with mode 0700 for what it creates; -1 with errno on error. */
int dm_node__mkdirs(const char *path);
/* Writes text to dir/name atomically (temp file, fsync, rename); -1 with
 * errno on error. */
int dm_node__write_file(const char *dir, const char *name, const char *text);

/* Brings this node's catalog entries up to date with its store
 * (catalog_local.h) and logs what failed. Returns true if anything was
 * published. */
bool dm_node__catalog_reconcile(dm_node_t *self, bool node_record);

/* Reads one request from router and routes it (node_dispatch.c). */
void dm_node__handle_request(dm_node_t *self, void *router);
typedef enum {
    DM_NODE_RELAY_DONE,    /* a reply was relayed (or dropped: its client left) */
    DM_NODE_RELAY_EMPTY,   /* nothing was waiting */
    DM_NODE_RELAY_CATALOG, /* the pipeline changed a product: reconcile the catalog */
    DM_NODE_RELAY_STOPPED  /* the pipeline stopped */
} dm_node__relay_t;
/* Relays one reply from the outbox (the write pipeline's or a query
 * worker's) to its client, or reads one notice and says which. */
dm_node__relay_t dm_node__relay_one(dm_node_t *self);

/* Read-only requests, answered on the node loop (node_reads.c). */
void dm_node__handle_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id);
void dm_node__handle_mesh_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id);
void dm_node__handle_quarantine(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                const Dm__QuarantineReq *req);
void dm_node__handle_describe(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const Dm__DescribeReq *req);
void dm_node__handle_members(dm_node_t *self, zmq_msg_t *rid, uint64_t id);

#endif
