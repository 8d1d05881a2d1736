/* node_priv.h: what the files of node/server/ share: the node's struct,
 * the data directory
 * (node/server/node_dir.c), dispatch and relay (node_dispatch.c), the
 * read-only handlers (node_reads.c), access decisions and the write gate
 * (node_access.c), the admin, grant, whoami and audit requests
 * (node_grant.c), governance (node_policy.c), the audit queue
 * (node_audit.c), and the call into the catalog reconciliation of
 * node/catalog/catalog_local.c (node_policy.c: the loop and a governance
 * change both republish). Calls go one way: node.c calls
 * node_dir.c and node_dispatch.c, which calls node_reads.c,
 * node_grant.c and node_fed.c (federated sessions, the owner's side);
 * those call node_access.c, node_policy.c and node_audit.c;
 * node_access.c calls node_fed.c and node_audit.c; node_fed.c calls
 * node_audit.c. */
#ifndef DM_NODE_PRIV_H
#define DM_NODE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/lines.h"
#include "base/text.h"
#include "catalog/catalog.h"
#include "catalog/search.h"
#include "catalog/lineage.h"
#include "gossip/gossip.h"
#include "identity/identity.h"
#include "ingest/ingest.h"
#include "proto/mesh.pb-c.h"
#include "server/node.h"
#include "query/query.h"
#include "policy/policy.h"
#include "query/query_pool.h"
#include "record/registry.h"
#include "transport/envelope.h"
#include "transport/grant.h"
#include "transport/ctl.h"
#include "transport/rpc.h"
#include "transport/zsock.h"
#include "storage/audit.h"
#include "storage/store.h"

#define DM_NODE_AUDIT_QUEUE 4096      /* audit records waiting for a flush, at most */
#define DM_NODE_AUDIT_FLUSH_MS 200    /* how often the loop flushes them */
#define DM_NODE_ACL_MAX_READERS 4096  /* granted plus revoked readers of one product */
/* Refusals of non-admin callers are audited one by one up to a rate per
 * caller (a token bucket each, in a table of DM_NODE_AUDIT_CALLERS, least
 * recently used first out) under a node-wide rate; past them they are
 * counted and summed up in one record a second per caller, so a stranger
 * cannot push real records (nor others' refusals) out of the retention. */
#define DM_NODE_AUDIT_REFUSALS_PER_S 200  /* node-wide */
#define DM_NODE_AUDIT_REFUSALS_BURST 2000
#define DM_NODE_AUDIT_CALLER_PER_S 5      /* per caller */
#define DM_NODE_AUDIT_CALLER_BURST 50
#define DM_NODE_AUDIT_CALLERS 256         /* callers with a bucket; the rest share one */
#define DM_NODE_AUDIT_SUMMARY_MS 1000 /* one summary of unrecorded refusals at most this often */
/* The rule of a refusal only because the node's domain is uncertified. */
#define DM_NODE_RULE_UNCERTIFIED "governance: domain not certified"
/* The rule of a relayed read its session's grant does not name. */
#define DM_NODE_RULE_FED_GRANT "federation: not in the consumer's grant"
/* The rule of every quarantine decision (node_reads.c). */
#define DM_NODE_RULE_QUARANTINE "owner: quarantine is for admins"

/* The owner's grants and revocations of one of the node's products: its
 * "acl/DOMAIN/NAME" catalog entry, decoded. */
typedef struct {
    char product[DM_AUDIT_PRODUCT_MAX]; /* "domain/name" */
    char **granted, **revoked;          /* "HEX" or "group:NAME", ascending */
    size_t ngranted, nrevoked;
    uint64_t version;                   /* the entry's catalog version */
} dm_node__acl_t;

/* Federated sessions (node_fed.c): the replay table holds every nonce
 * opened until its grant's expiry plus DM_GRANT_SKEW_MS; both tables are
 * bounded in all and per relay (a full one refuses FedOpen with
 * DM_ERR_BUSY naming the cap). */
#define DM_NODE_FED_NONCES_MAX 262144       /* nonces remembered, in all (64 B each) */
#define DM_NODE_FED_NONCES_PER_RELAY 65536  /* of one relay: ~700 queries/s for 60 s grants */
#define DM_NODE_FED_RELAYS_MAX 256          /* relays with nonces remembered */
#define DM_NODE_FED_SESSIONS_MAX 1024       /* open sessions, in all */
#define DM_NODE_FED_SESSIONS_PER_RELAY 256  /* of one relay */
#define DM_NODE_FED_PRODUCTS_MAX 64         /* of this node one session may scan */

typedef struct {
    uint8_t nonce[16];
    uint8_t relay[DM_ID_PUBLIC_BYTES];
    int64_t opened_ms, forget_ms; /* Unix milliseconds */
} dm_node__fed_nonce_t;

typedef struct {
    uint8_t nonce[16];
    uint8_t relay[DM_ID_PUBLIC_BYTES];
    uint8_t consumer[DM_ID_PUBLIC_BYTES];
    int64_t expires_ms;                    /* the grant's, Unix milliseconds */
    char (*products)[DM_AUDIT_PRODUCT_MAX]; /* "domain/name" of this node, malloc'd */
    size_t nproducts;
} dm_node__fed_session_t;

/* One caller's refusal bucket and what it suppressed (node_audit.c). */
typedef struct {
    uint8_t key[DM_AUDIT_KEY_BYTES];
    bool verified, used;
    uint64_t tokens_milli;
    int64_t refill_ms, last_ms, next_summary;
    uint64_t suppressed;
} dm_node__refusals_t;

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
    int64_t query_timeout_ms; /* one query's time limit, as WhoamiRep reports it */
    dm_rpc_server_t *rpc;
    dm_gossip_t *gossip;
    dm_catalog_t *catalog;
    char address[DM_ADDRESS_MAX];
    char endpoint[DM_ID_ENDPOINT_MAX];
    int64_t started_ms;
    int64_t quality_next_ms; /* node_quality.c: when scheduled checks are next looked at */
    bool addr_written;
    /* Access (node_access.c, node_policy.c): written by the loop, read by
     * query workers and the write pipeline, under acc_lock. */
    pthread_rwlock_t acc_lock;
    bool acc_ready;
    uint8_t (*admins)[DM_ID_PUBLIC_BYTES]; /* the node key first, then the stored ones */
    size_t nadmins;
    dm_node__acl_t *acls; /* by product, ascending */
    size_t nacls;
    dm_policy_set_t *gov; /* the active governance set; NULL without a governance key */
    uint64_t gov_generation;
    bool self_certified;  /* the node's domain is certified to it (or no governance key) */
    /* Audit (node_audit.c): a bounded queue filled from any thread. */
    pthread_mutex_t audit_lock;
    bool audit_ready;
    dm_audit_record_t *audit_q;
    size_t audit_n;
    uint64_t audit_dropped;
    dm_audit_retention_t audit_ret;
    int64_t audit_next_flush;
    /* The flusher thread (dm_node__audit_start): writes the queue every
     * DM_NODE_AUDIT_FLUSH_MS so the node loop never waits for the disk;
     * audit_flush_lock serializes it with forced flushes. */
    pthread_t audit_thread;
    bool audit_thread_on, audit_stopping;
    pthread_cond_t audit_wake; /* with audit_lock; CLOCK_MONOTONIC */
    pthread_mutex_t audit_flush_lock;
    /* The refusal buckets (audit_lock): tokens in thousandths, refilled at
     * a rate a second up to a burst (audit_burst 0: no limit); the
     * node-wide one here, one per caller in audit_callers (the last slot:
     * the callers beyond the table); what they suppressed waits for the
     * next summary of its caller. */
    uint64_t audit_rate, audit_burst, audit_tokens_milli;
    int64_t audit_refill_ms;
    uint64_t audit_caller_rate, audit_caller_burst;
    dm_node__refusals_t *audit_callers; /* DM_NODE_AUDIT_CALLERS + 1 */
    /* Federated sessions (node_fed.c): opened and closed by the loop,
     * read by query workers, under fed_lock. */
    pthread_mutex_t fed_lock;
    bool fed_ready;
    dm_node__fed_nonce_t *fed_nonces;     /* DM_NODE_FED_NONCES_MAX slots */
    size_t fed_nnonces;
    struct dm_node__fed_index *fed_index; /* nonce lookups and per-relay counts */
    dm_node__fed_session_t *fed_sessions; /* DM_NODE_FED_SESSIONS_MAX slots */
    size_t fed_nsessions;
    size_t fed_relay_nonces; /* a relay's share of fed_nonces (--fed-relay-nonces) */
    int fed_fd;             /* DIR/fed-nonces, appended (-1: not open) */
    size_t fed_appended;    /* records appended since it was last rewritten */
    /* Federation, the relay's side (node_remote.c, node_relay.c): the
     * directory of other nodes' products, rebuilt by the loop and swapped
     * under remote_lock; the loop's own bookkeeping of it; the relay the
     * query workers reach owners through. */
    pthread_mutex_t remote_lock;
    bool remote_ready, remote_built;
    struct dm_node__remote_dir *remote_dir;
    struct dm_node__remote_since *remote_since; /* per member, by id */
    size_t remote_nsince;
    uint64_t remote_print;
    int64_t remote_next, remote_full;
    struct dm_node__fedrelay *relay;
    struct dm_node__relayloop *relay_loop; /* node_relay_loop.c: the loop's passed queries */
    struct dm_node__health *health; /* node_health.c */
    /* Lineage and search (node_lineage.c): the loop's snapshots of the
     * catalog's graph and search index, each rebuilt on use when the
     * fingerprint of the catalog's products moved from its print;
     * lineage_health (set by node.c; NULL: health unknown) judges a
     * product's own health for LineageNode.health and "upstream degraded". */
    dm_lineage_t *lineage;
    dm_search_t *search;
    uint64_t lineage_print, search_print;
    dm_lineage_health_fn lineage_health;
    void *lineage_health_ctx;
    /* meshd --openlineage FILE (node_openlineage.c); NULL when off. */
    struct dm_node__openlineage *openlineage;
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
void dm_node__handle_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const dm_rpc_caller_t *caller);
void dm_node__handle_mesh_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                   const dm_rpc_caller_t *caller);
void dm_node__handle_quarantine(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                const Dm__QuarantineReq *req, const dm_rpc_caller_t *caller);
void dm_node__handle_describe(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const Dm__DescribeReq *req, const dm_rpc_caller_t *caller);
void dm_node__handle_members(dm_node_t *self, zmq_msg_t *rid, uint64_t id);
/* node_quality.c: QualityReq (dmctl quality), and the checks the contracts
 * schedule (spec.quality.schedule), run from the loop's tick. */
void dm_node__handle_quality(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                             const Dm__QualityReq *req, const dm_rpc_caller_t *caller);
void dm_node__quality_tick(dm_node_t *self, int64_t now_mono);

/* ---- lineage and search (node_lineage.c) ---- */

/* The lineage graph of the catalog as it is now (rebuilt first if the
 * catalog moved), or NULL if it could not be built. Borrowed until the
 * next call. Loop only. */
const dm_lineage_t *dm_node__lineage(dm_node_t *self);
/* Frees the graph and the search index. */
void dm_node__lineage_close(dm_node_t *self);
void dm_node__handle_lineage(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                             const Dm__LineageReq *req, const dm_rpc_caller_t *caller);
void dm_node__handle_search(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                            const Dm__SearchReq *req, const dm_rpc_caller_t *caller);

/* ---- meshd --openlineage (node_openlineage.c) ---- */

/* Opens path (NULL: nothing to do) for appending and installs the write
 * pipeline's run hook that appends an event per run start and end.
 * DM_ERR_IO (a line in why naming the file) when it cannot be opened. */
DM_NODISCARD dm_err dm_node__openlineage_start(dm_node_t *self, const char *path,
                                               dm_buf_t *why);
/* Closes the file; after the write pipeline stopped. */
void dm_node__openlineage_close(dm_node_t *self);
/* Appends run as one OpenLineage 2-0-2 RunEvent in JSON (no newline) to
 * out, with ups (the contract's lineage.upstream) as its inputs. Pure. */
void dm_node__openlineage_event(const dm_ingest_run_t *run, const dm_upstream_t *ups,
                                size_t nups, dm_buf_t *out);

/* ---- access (node_access.c) ---- */

/* Loads the admins and the acl entries of the node's products, and
 * installs the SQL access decision on the query pool. */
DM_NODISCARD dm_err dm_node__access_open(dm_node_t *self, dm_buf_t *why);
void dm_node__access_close(dm_node_t *self);
/* Re-reads the acl entries of the node's products (after the catalog
 * changed them: a grant, a deregistration). */
void dm_node__acl_reload(dm_node_t *self);
/* Whether caller is a verified admin of the node's domain. Thread-safe. */
bool dm_node__is_admin(dm_node_t *self, const dm_rpc_caller_t *caller);
/* Decides action on the node's product domain/name (name NULL: a request
 * naming no product) for caller, as policy.h says, with the product's
 * contract, its acl and the active set; fills *out (clear it). A product
 * the node does not serve is DM_ERR_NOTFOUND with a line in why, unless
 * action is DM_POLICY_WRITE (a register of a new product). Thread-safe. */
DM_NODISCARD dm_err dm_node__decide(dm_node_t *self, const dm_rpc_caller_t *caller,
                                    dm_policy_action action, const char *domain,
                                    const char *name, dm_policy_decision_t *out, dm_buf_t *why);
/* Another node's product domain/name as the catalog holds it: the live
 * contract its domain's owner published, parsed without compiling (its
 * patterns are not compiled on the node loop), into *list (one contract;
 * free with dm_contract_list_destroy(list, 1)); *owner its publisher.
 * DM_ERR_NOTFOUND: no pinned owner, no such entry, or a tombstone;
 * DM_ERR_INVALID: it does not parse here; DM_ERR_NOMEM. Loop thread. */
DM_NODISCARD dm_err dm_node__catalog_contract(dm_node_t *self, const char *domain,
                                              const char *name, dm_contract_t ***list,
                                              uint8_t owner[DM_ID_PUBLIC_BYTES]);
/* Decides action on another node's product c (its contract from the
 * catalog, published by origin) for caller: its owner's admins and grants
 * are not known here, so only the governance part can refuse when action
 * is describe (the owner's part lets anyone describe); and, as for the
 * node's own products, a domain governance does not certify to origin is
 * not served (rule DM_NODE_RULE_UNCERTIFIED: a listing still shows it,
 * marked). Fills *out (clear it); DM_ERR_NOMEM only. Thread-safe. */
DM_NODISCARD dm_err dm_node__decide_remote(dm_node_t *self, const dm_rpc_caller_t *caller,
                                           dm_policy_action action, const dm_contract_t *c,
                                           const uint8_t origin[DM_ID_PUBLIC_BYTES],
                                           dm_policy_decision_t *out);
/* Appends what dm_registry_unknown says of qualified ("domain/name", not
 * registered), naming the node's domain, with its "did you mean" only
 * when caller may describe the product it would name. Thread-safe. */
void dm_node__unknown(dm_node_t *self, const dm_rpc_caller_t *caller, const char *qualified,
                      dm_buf_t *out);
/* The effective readers of domain/name ((contract readers + granted) -
 * revoked), comma-separated, appended to out. Thread-safe. */
void dm_node__readers(dm_node_t *self, const dm_contract_t *c, dm_buf_t *out);
/* Judges a write request (field: its body) before it is forwarded: true
 * when caller may; otherwise the client got DM_ERR_DENIED. Audited. */
bool dm_node__write_allowed(dm_node_t *self, zmq_msg_t *rid, zmq_msg_t *payload, unsigned field,
                            const dm_rpc_caller_t *caller);
/* What a gate decided when it let a caller through: the rule and the
 * policy version the request's audit record names once its outcome is
 * known (dm_node__audit_outcome). */
typedef struct {
    char rule[DM_POLICY_RULE_MAX];
    uint64_t version;
} dm_node__verdict_t;
/* The admin check and the governance write decision for action ("ingest",
 * "grant", ...) on domain/name (name NULL or "": none); what names it in
 * the refusal ("ingest into commerce/orders"). false: text holds
 * "permission denied: WHAT needs a DOMAIN admin; you are KEY" or
 * "permission denied: WHAT: governance policy P rule R (version V) denies
 * write to KEY", audited. true: audited now when v is NULL; otherwise *v
 * holds the rule and the caller audits the outcome. */
bool dm_node__gate(dm_node_t *self, const dm_rpc_caller_t *caller, const char *action,
                   const char *what, const char *domain, const char *name, dm_node__verdict_t *v,
                   dm_buf_t *text);
/* Audits the outcome of a request its gate let through with v: the rule
 * is "V's RULE; DETAIL" when allowed, "V's RULE; refused: DETAIL" when the
 * request failed after the permission check. */
void dm_node__audit_outcome(dm_node_t *self, const dm_rpc_caller_t *caller, const char *action,
                            const char *domain, const char *name, const dm_node__verdict_t *v,
                            bool allowed, const char *fmt, ...) DM_PRINTF(8, 9);
/* The write pipeline's decision on a register's parsed contract
 * (ingest.h's dm_ingest_register_fn; ctx the node): the governance write
 * decision on c's domain, name, tags and fields, audited with the product
 * and with refused (the pipeline's own reason) when given. Any thread. */
bool dm_node__register_gate(void *ctx, const dm_rpc_caller_t *caller, const dm_contract_t *c,
                            const char *refused, dm_buf_t *text);
/* Re-reads the stored admins (after dmctl admins add/remove). */
DM_NODISCARD dm_err dm_node__admins_reload(dm_node_t *self, dm_buf_t *why);
/* The acl of product ("domain/name") or NULL; acc_lock held. */
const dm_node__acl_t *dm_node__acl_find(const dm_node_t *self, const char *product);
/* (c's readers + acl's granted) - acl's revoked, ascending and unique, as
 * pointers into c and acl (may be NULL); *out malloc'd. Returns the count
 * (0 with *out NULL when out of memory). acc_lock held while used. */
size_t dm_node__readers_of(const dm_contract_t *c, const dm_node__acl_t *acl, const char ***out);
void dm_node__handle_admins(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                            const Dm__AdminsReq *req, const dm_rpc_caller_t *caller);
void dm_node__handle_grant(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const Dm__GrantReq *req,
                           const dm_rpc_caller_t *caller);
void dm_node__handle_whoami(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                            const dm_rpc_caller_t *caller);

/* ---- governance (node_policy.c) ---- */

/* Sets the governance key (hex; NULL: none, which is logged once), installs
 * the catalog's document check and builds the active set. A key the
 * catalog refuses fails the start with its reason. */
DM_NODISCARD dm_err dm_node__policy_start(dm_node_t *self, const char *governance,
                                          dm_buf_t *why);
/* Rebuilds the active set when the catalog's governance generation moved
 * (after a publish, or gossip applying deltas). Loop only. */
void dm_node__policy_refresh(dm_node_t *self);
/* A reference to the active set (NULL: none); drop it with
 * dm_policy_set_unref. Thread-safe. */
dm_policy_set_t *dm_node__policy_get(dm_node_t *self);
void dm_node__handle_policy_publish(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                    const Dm__PolicyPublishReq *req,
                                    const dm_rpc_caller_t *caller);
void dm_node__handle_policy_get(dm_node_t *self, zmq_msg_t *rid, uint64_t id);

/* ---- audit (node_audit.c) ---- */

DM_NODISCARD dm_err dm_node__audit_open(dm_node_t *self, const dm_node_opts_t *opts,
                                        dm_buf_t *why);
/* Writes what is queued (dm_node__audit_flush(self, true)), then frees. */
void dm_node__audit_close(dm_node_t *self);
/* Queues one decision; never blocks on the store: past DM_NODE_AUDIT_QUEUE
 * the record is counted as dropped. policy_version 0 records the version
 * of the set in force (0 only without one). Any thread. */
void dm_node__audit(dm_node_t *self, const dm_rpc_caller_t *caller, bool allowed,
                    const char *action, const char *domain, const char *name, const char *rule,
                    uint64_t policy_version);
/* Writes the queued records when due (or now when force). Loop only. */
void dm_node__audit_flush(dm_node_t *self, bool force);
/* Starts the thread that flushes the queue every DM_NODE_AUDIT_FLUSH_MS,
 * after which dm_node__audit_flush(self, false) does nothing (the loop's
 * call): a flush's commit waits for the disk, milliseconds under load,
 * which the loop would make every request arriving meanwhile wait too.
 * Without it (unit tests) the loop's calls flush. DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_node__audit_start(dm_node_t *self, dm_buf_t *why);
void dm_node__handle_audit(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const Dm__AuditReq *req,
                           const dm_rpc_caller_t *caller);
/* The relay's record of a consumer's query it sends on to another node:
 * consumer (the caller of the query) read domain/name through owner
 * (the owning node's key), action "relay", rule "relayed to owner HEX".
 * Any thread. */
void dm_node__audit_relay(dm_node_t *self, const dm_rpc_caller_t *consumer, const char *domain,
                          const char *name, const uint8_t owner[DM_ID_PUBLIC_BYTES]);

/* ---- health (node_health.c): SLA measures and the health entries ---- */

#define DM_NODE_HEALTH_TICK_MS 1000     /* the loop looks at its products' health this often */
#define DM_NODE_HEALTH_MIN_GAP_MS 2000  /* a product's entry is republished at most this often */
#define DM_NODE_HEALTH_REFRESH_MS 60000 /* ... and this often when only numbers changed */
#define DM_NODE_HEARTBEAT_MS 10000      /* the heartbeat (availability) is written this often */

typedef struct dm_node__health dm_node__health_t;
/* Reads the heartbeat (the time since it counts as down), writes a new one
 * and installs the query pool's latency observer. After the store, the
 * catalog, gossip and the query pool are up, before the loop runs.
 * DM_ERR_NOMEM with a line in why. */
DM_NODISCARD dm_err dm_node__health_open(dm_node_t *self, dm_buf_t *why);
/* Writes a last heartbeat and frees. After the query pool stopped;
 * NULL-safe (self->health NULL). */
void dm_node__health_close(dm_node_t *self);
/* Every DM_NODE_HEALTH_TICK_MS: refutations, the heartbeat, and each owned
 * product's health entry published when due. Loop only. */
void dm_node__health_tick(dm_node_t *self, int64_t mono_ms);
/* A listing's health of domain/name into health ("pass", "warn", "fail",
 * "error", "sla breached", "upstream degraded", or "" unknown) and why
 * into cause (reset; "" for pass). Loop only. */
void dm_node__health_show(dm_node_t *self, const dm_lineage_t *g, const char *domain,
                          const char *name, dm_buf_t *health, dm_buf_t *cause);
/* lineage.h's dm_lineage_health_fn over the catalog's health entries (ctx
 * the node): false when domain/name has none; else *failing when it fails
 * or errs or breaches an SLA term (a warn is not failing), and why into cause ("fails
 * unique(sku)"). Loop only. */
bool dm_node__health_of(void *ctx, const char *domain, const char *name, bool *failing,
                        dm_buf_t *cause);
/* One request's health of every product of the catalog: each health
 * entry decoded once and "upstream degraded" worked out for all products
 * in one pass over the lineage graph (dm_lineage_degraded_all), so a
 * listing or a lineage answer costs O(products + edges), not a walk and
 * decodes per product. NULL when the node has no health or memory runs
 * out (callers fall back to dm_node__health_show). g: the request's
 * graph (dm_node__lineage, its fingerprint computed once per request; the
 * health functions take it so they never rebuild it). Loop only. */
typedef struct dm_node__health_view dm_node__health_view_t;
dm_node__health_view_t *dm_node__health_view(dm_node_t *self, const dm_lineage_t *g);
void dm_node__health_view_free(dm_node__health_view_t **v_p);
/* As dm_node__health_show, from the view ("" for a product not in it). */
void dm_node__health_view_show(const dm_node__health_view_t *v, const char *domain,
                               const char *name, dm_buf_t *health, dm_buf_t *cause);
/* The product's own health (false: unknown, nothing judged yet): its
 * cause, or the listing's word when there is none ("pass"; borrowed from
 * the view). */
bool dm_node__health_view_own(const dm_node__health_view_t *v, const char *domain,
                              const char *name, const char **cause);
/* Its "upstream degraded: ..." text, NULL when it is not. */
const char *dm_node__health_view_degraded(const dm_node__health_view_t *v, const char *domain,
                                          const char *name);
/* The owner's health entry of domain/name, decoded (free with
 * dm__health_record__free_unpacked; NULL when there is none), and the
 * upstream-degraded cause into degraded (reset; "" when none). Loop only. */
Dm__HealthRecord *dm_node__health_describe(dm_node_t *self, const dm_lineage_t *g,
                                           const char *domain, const char *name,
                                           dm_buf_t *degraded);

/* ---- federated sessions, the owner's side (node_fed.c) ---- */

DM_NODISCARD dm_err dm_node__fed_open(dm_node_t *self, dm_buf_t *why);
void dm_node__fed_close(dm_node_t *self);
/* FedOpen from caller (the relay): verifies the grant for caller over
 * req->sql, records its nonce and the session; replies FedOpenRep or an
 * Error (DM_ERR_DENIED naming the cause, DM_ERR_BUSY naming a cap).
 * Audited. Loop only. */
void dm_node__handle_fed_open(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const Dm__FedOpen *req, const dm_rpc_caller_t *caller);
/* FedClose: ends caller's session (its nonce stays in the replay table);
 * replies FedOpenRep{session} with no products, or DM_ERR_NOTFOUND. */
void dm_node__handle_fed_close(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                               const Dm__FedClose *req, const dm_rpc_caller_t *caller);
/* The caller a QueryReq with session (len bytes) from relay runs as: the
 * session's consumer, verified, relayed. DM_ERR_DENIED with a line in why
 * when relay has no such open session. Thread-safe. */
DM_NODISCARD dm_err dm_node__fed_caller(dm_node_t *self, const dm_rpc_caller_t *relay,
                                        const uint8_t *session, size_t len,
                                        dm_rpc_caller_t *out, dm_buf_t *why);
/* Whether the relay with key may open federated sessions here
 * (node_fed_admit.c): a member this node sees alive and, when the catalog
 * has a governance key, one whose node record's domain is certified to
 * it. DM_ERR_DENIED with the cause in why. Loop only. */
DM_NODISCARD dm_err dm_node__fed_admit_relay(dm_node_t *self,
                                             const uint8_t key[DM_ID_PUBLIC_BYTES], dm_buf_t *why);
/* Calls fn(ctx, domain, name) for every `domain . name` pair of names in
 * sql (len bytes) as the query engine reads them (quotes undone, comments
 * and string literals skipped; names cut to DM_AUDIT_PRODUCT_MAX - 1
 * bytes), in order, until fn returns false. The owner reads a federated
 * session's products with it, the relay its pass-through plan. */
typedef bool (*dm_node__sql_pair_fn)(void *ctx, const char *domain, const char *name);
void dm_node__sql_pairs(const char *sql, size_t len, dm_node__sql_pair_fn fn, void *ctx);
/* Whether relayed caller's session is open and names domain/name.
 * Thread-safe. */
bool dm_node__fed_allows(dm_node_t *self, const dm_rpc_caller_t *caller, const char *domain,
                         const char *name);


/* ---- federation: the relay's side (node_remote.c, node_relay.c) ----
 * node.c calls node_relay_start.c, which sets up both; node_relay.c
 * reads node_remote.c's snapshots and reaches the node only through the
 * callbacks it is given. */

#define DM_NODE_REMOTE_REFRESH_MS 200    /* the loop checks the directory's sources this often */
#define DM_NODE_REMOTE_REBUILD_MS 10000  /* and rebuilds it this often whatever they say */
#define DM_NODE_REMOTE_MAX 65536         /* products in the directory, at most */

/* One product another node owns, as the relay knows it. */
typedef struct {
    char domain[DM_CATALOG_NAME_MAX + 1], name[DM_CATALOG_NAME_MAX + 1];
    char *contract; /* canonical JSON, NUL-terminated (owned by the directory) */
    size_t contract_len;
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    char address[DM_ADDRESS_MAX]; /* the owner's "HEX@tcp://..."; "" unknown */
    int state;                    /* dm_member_state; DM_MEMBER_UNKNOWN when not a member */
    int64_t since_ms;             /* Unix ms this node saw that state begin */
    bool certified;               /* governance binds the domain to owner (or none is set) */
    uint64_t rows;                /* the owner's record count as known; 0 unknown */
} dm_node__remote_t;

/* The owners' record counts a relay learnt (node_remote.c): the catalog
 * carries none, and without them the engine plans every remote table as
 * 1,000,000 rows and never reads a small one whole for a join's probes.
 * A relay asks an owner its ProductsReq listing when a query names one of
 * its products and what it knows is older than DM_NODE_ROWS_TTL_MS; a
 * product the owner does not list to this node stays unknown (0) as long.
 * Thread-safe (its own mutex); at most DM_NODE_ROWS_MAX products. */
#define DM_NODE_ROWS_TTL_MS 10000
#define DM_NODE_ROWS_MAX 4096
#define DM_NODE_ROWS_WAIT_MS 1000 /* one listing is waited for this long at most */
typedef struct dm_node__rows dm_node__rows_t;
dm_node__rows_t *dm_node__rows_new(void);
void dm_node__rows_destroy(dm_node__rows_t **self_p);
/* True with *rows (0: the owner does not list it) when e's count is fresh. */
bool dm_node__rows_get(dm_node__rows_t *self, const dm_node__remote_t *e, uint64_t *rows);
/* Asks e's owner over c (a connection to it as this node) for its listing
 * and records every product in it, and e as unknown when it is missing,
 * fresh from now. DM_OK, or the failure of the request (nothing recorded:
 * the next query asks again); c's late replies are the caller's to skip. */
dm_err dm_node__rows_fetch(dm_node__rows_t *self, dm_rpc_client_t *c,
                           const dm_node__remote_t *e);

/* An immutable, refcounted snapshot of them, ordered by domain and name. */
typedef struct dm_node__remote_dir dm_node__remote_dir_t;
typedef struct dm_node__remote_since dm_node__remote_since_t;
/* A new empty directory (one reference); NULL when out of memory. */
dm_node__remote_dir_t *dm_node__remote_dir_new(void);
/* Adds a copy of e (its contract copied too) to d before it is sealed.
 * DM_ERR_TOOBIG past DM_NODE_REMOTE_MAX, DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_node__remote_dir_add(dm_node__remote_dir_t *d, const dm_node__remote_t *e);
/* Orders d for lookups; nothing is added after. */
void dm_node__remote_dir_seal(dm_node__remote_dir_t *d);
/* The entry of domain.name, borrowed while the caller holds d; NULL. */
const dm_node__remote_t *dm_node__remote_dir_find(const dm_node__remote_dir_t *d,
                                                  const char *domain, const char *name);
size_t dm_node__remote_dir_count(const dm_node__remote_dir_t *d);
/* Whether d holds a product of domain. */
bool dm_node__remote_dir_has_domain(const dm_node__remote_dir_t *d, const char *domain);
/* Takes one more reference (d may be NULL); any thread. */
dm_node__remote_dir_t *dm_node__remote_dir_ref(dm_node__remote_dir_t *d);
/* Drops one; the last frees d. NULL-safe; clears *d_p. */
void dm_node__remote_dir_unref(dm_node__remote_dir_t **d_p);
/* The node's directory: set up (one built at once), and freed. */
DM_NODISCARD dm_err dm_node__remote_open(dm_node_t *self);
void dm_node__remote_close(dm_node_t *self);
/* Rebuilds the directory when the catalog or membership moved (looked at
 * every DM_NODE_REMOTE_REFRESH_MS at most). Loop only. */
void dm_node__remote_refresh(dm_node_t *self, int64_t now_ms);
/* A reference to the current directory (drop it with
 * dm_node__remote_dir_unref); NULL before open. Any thread. */
dm_node__remote_dir_t *dm_node__remote_get(dm_node_t *self);

/* The relay (node_relay.c): how the query workers reach the owners. */
#define DM_NODE_RELAY_POLL_MS 50          /* a wait looks at the cancel flag this often */
#define DM_NODE_RELAY_SCAN_MS 30000       /* one wait for an owner, at most */
#define DM_NODE_RELAY_WAIT_MS 5000        /* an owner silent this long fails the wait (below
                                             the clients' default 10 s timeout) */
#define DM_NODE_RELAY_OWNERS_MAX 16       /* owners one query reaches */
#define DM_NODE_RELAY_BATCH_ROWS DM_QUERY_BATCH_ROWS /* rows per batch asked of an owner */
#define DM_NODE_RELAY_IDLE_PER_OWNER 4    /* idle connections kept per owner */
#define DM_NODE_RELAY_IDLE_MAX 64         /* and in all */
#define DM_NODE_RELAY_IDLE_MS 30000       /* an idle connection is closed after this */
#define DM_NODE_RELAY_SESSIONS_MAX 256    /* owners' sessions kept for reuse, in all */
#define DM_NODE_RELAY_SESSIONS_PER_OWNER 32 /* of one owner (it allows a relay
                                               DM_NODE_FED_SESSIONS_PER_RELAY) */

/* The relay's table of owners' open sessions (node_relay_sess.c): a later
 * query of the same consumer scanning only a session's products is sent
 * on it instead of a FedOpen of its own. Any thread. */
typedef struct dm_node__fedsess dm_node__fedsess_t;
/* An empty table; NULL when out of memory. */
dm_node__fedsess_t *dm_node__fedsess_new(void);
/* Forgets every session (the owners close them at their grants' expiry).
 * NULL-safe. */
void dm_node__fedsess_destroy(dm_node__fedsess_t **self_p);
/* A session of consumer with owner that may scan product ("domain.name")
 * and whose grant expires at until_ms or later: true with its nonce. */
bool dm_node__fedsess_find(dm_node__fedsess_t *self, const uint8_t consumer[DM_ID_PUBLIC_BYTES],
                           const uint8_t owner[DM_ID_PUBLIC_BYTES], const char *product,
                           int64_t until_ms, uint8_t nonce[DM_GRANT_NONCE_BYTES]);
/* Keeps a session owner opened (its FedOpenRep's products, hostile: copied
 * when 1..DM_NODE_FED_PRODUCTS_MAX names of sane length), dropping those
 * expired at now_ms. False when not kept (no products, out of room or
 * memory): the caller closes the session. */
bool dm_node__fedsess_put(dm_node__fedsess_t *self, const uint8_t consumer[DM_ID_PUBLIC_BYTES],
                          const uint8_t owner[DM_ID_PUBLIC_BYTES],
                          const uint8_t nonce[DM_GRANT_NONCE_BYTES], int64_t expires_ms,
                          char *const *products, size_t nproducts, int64_t now_ms);
/* Forgets owner's session nonce (the owner no longer knows it). */
void dm_node__fedsess_drop(dm_node__fedsess_t *self, const uint8_t owner[DM_ID_PUBLIC_BYTES],
                           const uint8_t nonce[DM_GRANT_NONCE_BYTES]);

typedef struct dm_node__fedrelay dm_node__fedrelay_t;
/* Where the relay reads the directory: a new reference, or NULL. */
typedef dm_node__remote_dir_t *(*dm_node__fedrelay_dir_fn)(void *ctx);
/* How it audits the consumer's query: sent on to owner (allowed, rule
 * "relayed to owner HEX...") or refused at the relay (rule: the refusal's
 * line), naming the product. */
typedef void (*dm_node__fedrelay_audit_fn)(void *ctx, const dm_rpc_caller_t *caller,
                                           bool allowed, const char *domain, const char *name,
                                           const uint8_t owner[DM_ID_PUBLIC_BYTES],
                                           const char *rule);
/* A relay acting as identity id (borrowed, outlives it), reading the
 * directory through dir and auditing through audit (may be NULL).
 * DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_node__fedrelay_new(const dm_identity_t *id, dm_node__fedrelay_dir_fn dir,
                                          void *dir_ctx, dm_node__fedrelay_audit_fn audit,
                                          void *audit_ctx, dm_node__fedrelay_t **out);
/* Closes the idle connections and frees. NULL-safe. No query may run. */
void dm_node__fedrelay_destroy(dm_node__fedrelay_t **self_p);
/* Reuses an owner's session for a query only while its grant has at least
 * ms left (the node's query time limit; default DM_QUERY_DEFAULT_TIMEOUT_MS). */
void dm_node__fedrelay_set_time_limit(dm_node__fedrelay_t *self, int64_t ms);
/* The query pool's make and free (query_pool.h's
 * dm_query_pool_remote_make_fn; ctx the relay). make takes a reference to
 * the directory and checks the grant's parts the relay can (consumer =
 * the verified caller, relay = this node, not expired); a query without a
 * usable grant fails only when it opens a remote scan. */
DM_NODISCARD dm_err dm_node__fedrelay_make(void *ctx, const dm_rpc_caller_t *caller,
                                           const uint8_t *grant, size_t grant_len,
                                           const char *sql, dm_query_remote_t **out,
                                           dm_buf_t *why);
void dm_node__fedrelay_free(void *ctx, dm_query_remote_t *remote);
/* The query pool's pass-through (query_pool.h's dm_query_pool_pass_fn;
 * node_relay_pass.c): a query naming only products of one other node,
 * none of this node's, goes whole to that owner in the consumer's
 * session, no SQLite here. */
DM_NODISCARD dm_err dm_node__fedrelay_pass(void *ctx, dm_query_remote_t *remote,
                                           const Dm__QueryReq *req, int64_t deadline_ns,
                                           const atomic_bool *cancel, Dm__Envelope **rep,
                                           dm_buf_t *why);
/* Tells the relay this node's products (registry, borrowed: outlives it)
 * and domain: a query naming one of them is never passed through. */
void dm_node__fedrelay_set_local(dm_node__fedrelay_t *self, dm_registry_t *registry,
                                 const char *domain);
/* The relay's pass-through served by the node loop (node_relay_loop.c).
 * Loop only. */
#define DM_NODE_RELAY_LOOP_MAX 16 /* passed queries the loop holds at once */
typedef struct dm_node__relayloop dm_node__relayloop_t;
/* Sets it up (after dm_node__fed_start). DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_node__relayloop_open(dm_node_t *self);
/* Drops every query it holds (their owners cancel them) and frees it,
 * before the relay and the pool go. NULL-safe. */
void dm_node__relayloop_close(dm_node_t *self);
/* Takes a client's QueryReq (*env, taken: set NULL, when true) when the
 * loop can pass it to its owner itself, and sends it on; false when the
 * workers take it (nothing was sent, nothing taken). */
bool dm_node__relayloop_try(dm_node_t *self, zmq_msg_t *rid, zmq_msg_t *payload,
                            Dm__Envelope **env, const dm_rpc_caller_t *caller);
/* Fills up to cap poll items with the owners' connections it waits on;
 * the count. dm_node__relayloop_ready reads those the poll found readable
 * (items as filled), before any other request of that poll is handled. */
size_t dm_node__relayloop_items(dm_node_t *self, zmq_pollitem_t *items, size_t cap);
void dm_node__relayloop_ready(dm_node_t *self, const zmq_pollitem_t *items);
/* The longest the loop may sleep while it holds queries (their checks);
 * -1 when it holds none. */
long dm_node__relayloop_wait_ms(const dm_node_t *self);
/* Ends the held queries whose client left, whose time ran out or whose
 * owner went silent or is gone, each answered as a worker would. */
void dm_node__relayloop_tick(dm_node_t *self);

/* Sets up the directory and the relay and installs them on the query
 * pool (node_relay_start.c). */
DM_NODISCARD dm_err dm_node__fed_start(dm_node_t *self, dm_buf_t *why);
void dm_node__fed_stop(dm_node_t *self);

#endif
