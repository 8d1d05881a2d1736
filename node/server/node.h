/* node.h: one domain node: its data directory, store, identity, RPC socket
 * and write pipeline, driven by one event loop.
 *
 * The loop thread answers pings and reads (products, quarantine pages,
 * describe, members) itself, forwards writes (register, deregister,
 * ingest) to the write pipeline (ingest/ingest.h) and queries to the query
 * pool (query/query_pool.h), so it never waits on an LMDB commit or a query, and
 * relays their replies back to the clients. */
#ifndef DM_NODE_H
#define DM_NODE_H

#include <signal.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"
#include "membership/membership.h"

#define DM_NODE_ADDR_FILE "node.addr"
#define DM_NODE_DOMAIN_FILE "domain"
#define DM_NODE_LOCK_FILE "lock"
#define DM_NODE_STORE_DIR "store"
#define DM_NODE_QUARANTINE_PAGE 500          /* items per quarantine reply at most */
#define DM_NODE_QUARANTINE_PAGE_BYTES (4 << 20) /* raw bytes per quarantine reply */

typedef struct {
    const char *data_dir;  /* required */
    const char *domain;    /* required on first start; must match afterwards */
    const char *listen;    /* NULL: DM_RPC_DEFAULT_ENDPOINT */
    const char *advertise; /* endpoint written to node.addr; NULL: the bound one */
    size_t record_limit;   /* 0: DM_RECORD_LIMIT_DEFAULT */
    size_t initial_map_bytes; /* 0: the store's default */
    unsigned query_workers;   /* 0: DM_QUERY_POOL_DEFAULT_WORKERS */
    int64_t query_timeout_ms; /* 0: the engine's default (30 s) */
    /* Grant nonces one relay may have in the replay table (meshd
     * --fed-relay-nonces); 0: DM_NODE_FED_NONCES_PER_RELAY. */
    unsigned fed_relay_nonces;
    const char *const *seeds; /* --join addresses of mesh members (may be NULL) */
    size_t nseeds;
    const dm_membership_config_t *membership; /* NULL: defaults */
    /* The mesh's governance key, 64 hex digits (meshd --governance); NULL:
     * the one persisted by an earlier start, or none (owner rules only). */
    const char *governance;
    int64_t audit_max_age_ms;   /* 0: DM_AUDIT_DEFAULT_MAX_AGE_MS */
    uint64_t audit_max_records; /* 0: DM_AUDIT_DEFAULT_MAX_RECORDS */
    /* meshd --openlineage FILE: an OpenLineage RunEvent per ingest run's
     * start and end appended to it; NULL: none. */
    const char *openlineage;
} dm_node_opts_t;

typedef struct dm_node dm_node_t;

/* Opens or creates the data directory and everything in it, binds the RPC
 * socket and writes DIR/node.addr. On error one line naming the input and
 * what would be valid is appended to why (may be NULL); nothing of it is
 * logged: the caller reports it. */
DM_NODISCARD dm_err dm_node_new(const dm_node_opts_t *opts, dm_node_t **out, dm_buf_t *why);
/* Serves until *stop becomes non-zero (set it from a signal handler), then
 * finishes queued writes and returns. */
DM_NODISCARD dm_err dm_node_run(dm_node_t *self, volatile sig_atomic_t *stop);
/* Stops the pipeline, closes everything and removes DIR/node.addr.
 * NULL-safe. */
void dm_node_destroy(dm_node_t **self_p);

/* The address clients use: "HEX@tcp://host:port". Borrowed. */
const char *dm_node_address(const dm_node_t *self);

#endif
