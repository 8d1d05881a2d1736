/* node.c: the meshd node: start-up (store, identity, pipelines, RPC
 * socket, catalog, membership, in that order), the event loop and its
 * timers, and shutdown. The data directory is node_dir.c; what arrives on
 * the sockets is routed in node_dispatch.c. */
#include "server/node.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "base/log.h"
#include "record/schema.h"
#include "server/node_priv.h"

#define DM_NODE_OWN_SOCKETS 64   /* RPC, pipelines, catalog and spare (not per worker) */
#define DM_NODE_WORKER_SOCKETS 4 /* sockets one query worker may hold */
#define DM_NODE_MAX_SOCKETS                                                                     \
    (DM_GOSSIP_MAX_PEERS + DM_NODE_WORKER_SOCKETS * DM_QUERY_POOL_MAX_WORKERS + DM_NODE_OWN_SOCKETS)
#define DM_NODE_TICK_MS 1000              /* poll timeout: housekeeping cadence */
#define DM_NODE_SWEEP_MS 60000     /* sweep: stale LMDB readers, the catalog publication retry */
#define DM_NODE_DRAIN_MS 30000            /* how long shutdown waits for queued writes */
#define DM_NODE_BURST 64                  /* requests handled per poll wake-up */

/* struct dm_node: node_priv.h */

/* Installs every stored contract in the registry. A contract this node
 * now refuses is logged and skipped (its records are kept); any other
 * failure stops the start. */
static dm_err s_load_products(dm_node_t *self, dm_buf_t *why)
{
    dm_product_t *list = NULL;
    size_t n = 0;
    dm_buf_t reason = DM_BUF_INIT;
    dm_err rc = dm_store_product_list(self->store, &list, &n, &reason);
    if (rc != DM_OK) {
        dm_buf_printf(why, "cannot list stored products: %s",
                      reason.len ? reason.data : dm_err_str(rc));
        dm_buf_free(&reason);
        return rc;
    }
    dm_buf_free(&reason);
    for (size_t i = 0; i < n && rc == DM_OK; i++) {
        dm_buf_t reason = DM_BUF_INIT;
        rc = dm_registry_install(self->registry, list[i].id, list[i].contract,
                                 list[i].contract_len, &reason);
        if (rc == DM_ERR_INVALID) { /* e.g. a pattern over limits newer than the contract */
            dm_log_err("product %s/%s is not served: its stored contract %s is refused by this "
                       "node (%s); its records are kept; register a corrected "
                       "contract with a higher version to serve it again",
                       list[i].domain, list[i].name, list[i].version,
                       reason.len ? reason.data : "no reason given");
            rc = DM_OK;
        }
        if (rc != DM_OK)
            dm_buf_printf(why, "stored contract %s/%s cannot be loaded: %s", list[i].domain,
                          list[i].name, reason.len ? reason.data : dm_err_str(rc));
        dm_buf_free(&reason);
    }
    for (size_t i = 0; i < n; i++)
        dm_store_product_clear(&list[i]);
    free(list);
    if (rc == DM_OK)
        dm_log_info("loaded %zu product(s)", n);
    return rc;
}

/* The catalog takes entries of origins membership knows (any state);
 * others only within its stranger quota (dm_catalog_set_known). */
static bool s_catalog_origin_known(void *ctx, const uint8_t origin[DM_ID_PUBLIC_BYTES])
{
    return dm_membership_state_of(dm_gossip_membership(ctx), origin) != DM_MEMBER_UNKNOWN;
}

/* Opens the store, the node identity and the registry of served
 * products, in the data directory opened before. */
static dm_err s_open_state(dm_node_t *self, const dm_node_opts_t *opts, dm_buf_t *why)
{
    char path[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", self->dir, DM_NODE_ADDR_FILE);
    unlink(path); /* a stale address from a crash must not look live */

    snprintf(path, sizeof path, "%s/%s", self->dir, DM_NODE_STORE_DIR);
    dm_store_opts_t sopts = {.initial_map_bytes = opts->initial_map_bytes};
    if (dm_node__mkdirs(path) != 0) {
        dm_buf_printf(why, "cannot open the store in %s: %s", path, strerror(errno));
        return DM_ERR_IO;
    }
    dm_buf_t reason = DM_BUF_INIT;
    dm_err rc = dm_store_open(path, &sopts, &self->store, &reason);
    if (rc != DM_OK) {
        dm_buf_printf(why, "cannot open the store in %s: %s", path,
                      reason.len ? reason.data : dm_err_str(rc));
        dm_buf_free(&reason);
        return rc;
    }
    rc = dm_identity_load(self->dir, &self->id, &reason);
    if (rc != DM_OK) {
        dm_buf_printf(why, "cannot load the node identity in %s: %s", self->dir,
                      reason.len ? reason.data : dm_err_str(rc));
        dm_buf_free(&reason);
        return rc;
    }
    if ((rc = dm_registry_new(&self->registry)) != DM_OK)
        return rc;
    return s_load_products(self, why);
}

/* Creates the ZeroMQ context, the write pipeline with its inbox and
 * outbox, and the query engine and its workers. */
static dm_err s_start_pipelines(dm_node_t *self, const dm_node_opts_t *opts, dm_buf_t *why)
{
    self->ctx = zmq_ctx_new();
    /* Deliberate, not ZeroMQ's 1,023: peers (bounded by gossip's LRU)
     * plus the node's own sockets (RPC, pipelines, query workers). */
    if (self->ctx)
        (void)zmq_ctx_set(self->ctx, ZMQ_MAX_SOCKETS, DM_NODE_MAX_SOCKETS);
    dm_zsock_opts_t inbox = {.sndhwm = DM_INGEST_QUEUE_MSGS};
    self->inbox_push = dm_zsock_new(self->ctx, ZMQ_PUSH, &inbox, NULL);
    self->outbox_pull = self->inbox_push ? dm_zsock_new(self->ctx, ZMQ_PULL, NULL, NULL) : NULL;
    if (!self->inbox_push || !self->outbox_pull ||
        zmq_bind(self->inbox_push, DM_INGEST_INBOX) != 0 ||
        zmq_bind(self->outbox_pull, DM_CTL_OUTBOX) != 0) {
        dm_buf_printf(why, "cannot set up internal sockets: %s", zmq_strerror(errno));
        return DM_ERR_NET;
    }
    dm_buf_t sub_why = DM_BUF_INIT;
    dm_err rc = dm_ingest_new(self->ctx, self->store, self->registry, self->domain,
                              self->record_limit, &self->ingest, &sub_why);
    if (rc != DM_OK) {
        dm_buf_printf(why, "cannot start the write pipeline: %s",
                      sub_why.len ? sub_why.data : dm_err_str(rc));
        dm_buf_free(&sub_why);
        return rc;
    }
    dm_query_limits_t limits = {.timeout_ms = opts->query_timeout_ms};
    self->query_timeout_ms =
        opts->query_timeout_ms > 0 ? opts->query_timeout_ms : DM_QUERY_DEFAULT_TIMEOUT_MS;
    self->fed_relay_nonces = opts->fed_relay_nonces > 0 && opts->fed_relay_nonces <
                                     DM_NODE_FED_NONCES_PER_RELAY
                                 ? opts->fed_relay_nonces
                                 : DM_NODE_FED_NONCES_PER_RELAY;
    dm_buf_t engine_why = DM_BUF_INIT;
    if ((rc = dm_query_engine_new(self->store, self->registry, &limits, &self->engine,
                                  &engine_why)) != DM_OK ||
        (rc = dm_query_pool_new(self->ctx, self->engine, opts->query_workers,
                                opts->query_timeout_ms, &self->queries, &engine_why)) != DM_OK) {
        dm_buf_printf(why, "cannot start the query engine: %s",
                      engine_why.len ? engine_why.data : dm_err_str(rc));
        dm_buf_free(&engine_why);
        return rc;
    }
    dm_buf_free(&engine_why);
    return DM_OK;
}

static bool s_wildcard(const char *endpoint)
{
    return strstr(endpoint, "://0.0.0.0:") || strstr(endpoint, "://*:") ||
           strstr(endpoint, "://[::]:");
}

/* Binds the RPC socket with the node's CURVE key, then works out the
 * address clients dial and writes it to DIR/node.addr. */
static dm_err s_start_rpc(dm_node_t *self, const dm_node_opts_t *opts, dm_buf_t *why)
{
    uint8_t cpub[DM_ID_CURVE_BYTES], csec[DM_ID_CURVE_BYTES];
    dm_err rc = dm_identity_curve_keys(self->id, cpub, csec, NULL);
    if (rc != DM_OK) {
        dm_buf_printf(why, "cannot derive the CURVE keys: %s", dm_err_str(rc));
        return rc;
    }
    const char *listen = opts->listen ? opts->listen : DM_RPC_DEFAULT_ENDPOINT;
    rc = dm_rpc_server_new(self->ctx, listen, csec, &self->rpc, why);
    sodium_memzero(csec, sizeof csec);
    if (rc != DM_OK)
        return rc;
    dm_buf_t watch_why = DM_BUF_INIT;
    if (dm_query_pool_watch(self->queries, dm_rpc_server_socket(self->rpc), &watch_why) != DM_OK)
        dm_log_warn("%s; queries of clients that disconnect will run to their time limit",
                    watch_why.data);
    dm_buf_free(&watch_why);
    const char *bound = dm_rpc_server_endpoint(self->rpc);
    if (!opts->advertise && s_wildcard(bound)) {
        dm_buf_printf(why,
                      "listening on a wildcard address (%s) needs --advertise tcp://HOST:PORT, "
                      "the endpoint clients and peers dial",
                      bound);
        return DM_ERR_USAGE;
    }
    snprintf(self->endpoint, sizeof self->endpoint, "%s", opts->advertise ? opts->advertise : bound);
    dm_buf_t reason = DM_BUF_INIT;
    if (dm_identity_address_format(dm_identity_public(self->id), self->endpoint, self->address,
                                   sizeof self->address, &reason) != DM_OK ||
        dm_identity_address_parse(self->address, (uint8_t[DM_ID_PUBLIC_BYTES]){0},
                                  (char[DM_ID_ENDPOINT_MAX]){0}, DM_ID_ENDPOINT_MAX, &reason) != DM_OK) {
        dm_buf_printf(why, "invalid advertised endpoint '%s' (valid: tcp://HOST:PORT)%s%s",
                      self->endpoint, reason.len ? ": " : "", reason.len ? reason.data : "");
        dm_buf_free(&reason);
        return DM_ERR_USAGE;
    }
    if (dm_node__write_file(self->dir, DM_NODE_ADDR_FILE, self->address) != 0) {
        dm_buf_printf(why, "cannot write %s/%s: %s", self->dir, DM_NODE_ADDR_FILE,
                      strerror(errno));
        return DM_ERR_IO;
    }
    self->addr_written = true;
    return DM_OK;
}

/* Loads the catalog, publishes what the store holds, and starts
 * membership, which then vouches for the origins the catalog takes. */
static dm_err s_start_mesh(dm_node_t *self, const dm_node_opts_t *opts, dm_buf_t *why)
{
    dm_buf_t reason = DM_BUF_INIT;
    dm_err rc = dm_catalog_open(self->store, self->id, &self->catalog, &reason);
    if (rc != DM_OK) {
        dm_buf_printf(why, "cannot load the catalog: %s",
                      reason.len ? reason.data : dm_err_str(rc));
        dm_buf_free(&reason);
        return rc;
    }
    dm_buf_free(&reason);
    dm_node__catalog_reconcile(self, true);
    dm_gossip_opts_t gopts = {self->dir, self->domain, self->address, opts->seeds, opts->nseeds,
                              opts->membership, self->catalog};
    if ((rc = dm_gossip_new(self->ctx, self->id, &gopts, dm_clock_mono_ms(), &self->gossip)) !=
        DM_OK) {
        dm_buf_printf(why, "cannot start membership: %s", dm_err_str(rc));
        return rc;
    }
    dm_catalog_set_known(self->catalog, s_catalog_origin_known, self->gossip);
    return DM_OK;
}

/* The governance set a register is checked against (the write pipeline's
 * validator thread calls it). */
static dm_policy_set_t *s_policy_for_ingest(void *ctx) { return dm_node__policy_get(ctx); }

/* Access control: the audit queue, the admins and grants, the governance
 * key and its set. Before the loop runs, so the first request is judged. */
static dm_err s_start_access(dm_node_t *self, const dm_node_opts_t *opts, dm_buf_t *why)
{
    dm_err rc;
    if ((rc = dm_node__audit_open(self, opts, why)) != DM_OK ||
        (rc = dm_node__audit_start(self, why)) != DM_OK ||
        (rc = dm_node__fed_open(self, why)) != DM_OK ||
        (rc = dm_node__access_open(self, why)) != DM_OK ||
        (rc = dm_node__policy_start(self, opts->governance, why)) != DM_OK)
        return rc;
    dm_ingest_set_policy(self->ingest, s_policy_for_ingest, self);
    dm_ingest_set_register_gate(self->ingest, dm_node__register_gate, self);
    return DM_OK;
}

/* Lineage: the health of a product for LineageNode.health and "upstream
 * degraded" (catalog/lineage.h), from the health entries (node_health.c). */
static void s_start_lineage(dm_node_t *self)
{
    self->lineage_health = dm_node__health_of;
    self->lineage_health_ctx = self;
}

dm_err dm_node_new(const dm_node_opts_t *opts, dm_node_t **out, dm_buf_t *why)
{
    *out = NULL;
    dm_node_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    dm_buf_t local = DM_BUF_INIT; /* the reason when the caller passed no why */
    dm_buf_t *w = why ? why : &local;
    self->lock_fd = -1;
    self->started_ms = dm_clock_mono_ms();
    self->record_limit = opts->record_limit ? opts->record_limit : DM_RECORD_LIMIT_DEFAULT;
    dm_err rc;
    if ((rc = dm_node__dir_open(self, opts, w)) != DM_OK ||
        (rc = s_open_state(self, opts, w)) != DM_OK ||
        (rc = s_start_pipelines(self, opts, w)) != DM_OK ||
        (rc = s_start_rpc(self, opts, w)) != DM_OK || (rc = s_start_mesh(self, opts, w)) != DM_OK ||
        (rc = s_start_access(self, opts, w)) != DM_OK ||
        (rc = dm_node__openlineage_start(self, opts->openlineage, w)) != DM_OK ||
        (rc = dm_node__fed_start(self, w)) != DM_OK ||
        (rc = dm_node__relayloop_open(self)) != DM_OK ||
        (rc = dm_node__health_open(self, w)) != DM_OK) {
        dm_node_destroy(&self);
        dm_buf_free(&local);
        return rc;
    }
    s_start_lineage(self);
    dm_log_info("serving domain %s at %s (data %s)", self->domain, self->address, self->dir);
    *out = self;
    return DM_OK;
}

const char *dm_node_address(const dm_node_t *self) { return self->address; }

/* Relays one reply or notice from the outbox; a catalog notice is acted
 * on here. Returns what was relayed. */
static dm_node__relay_t s_relay(dm_node_t *self)
{
    dm_node__relay_t r = dm_node__relay_one(self);
    if (r == DM_NODE_RELAY_CATALOG) {
        if (dm_node__catalog_reconcile(self, false))
            dm_gossip_catalog_changed(self->gossip, dm_clock_mono_ms());
        dm_node__acl_reload(self); /* a deregistration takes its grants along */
    }
    return r;
}

/* How long the loop may sleep in its poll: until the next gossip timer,
 * the audit flush or tick, the end of a leave (leave_until >= 0), or the
 * next check of a query it holds. */
static long s_wait_ms(const dm_node_t *self, int64_t leave_until)
{
    long wait = dm_gossip_wait_ms(self->gossip, dm_clock_mono_ms());
    if (wait > DM_NODE_TICK_MS)
        wait = DM_NODE_TICK_MS;
    if (wait > DM_NODE_AUDIT_FLUSH_MS)
        wait = DM_NODE_AUDIT_FLUSH_MS;
    if (leave_until >= 0 && wait > leave_until - dm_clock_mono_ms())
        wait = (long)(leave_until - dm_clock_mono_ms());
    long held = dm_node__relayloop_wait_ms(self);
    if (held >= 0 && wait > held)
        wait = held;
    return wait;
}

/* The sweep: stale LMDB reader slots, and the catalog publication retried. */
static void s_sweep(dm_node_t *self, int64_t now)
{
    int cleared = 0;
    dm_buf_t why = DM_BUF_INIT;
    if (dm_store_reader_check(self->store, &cleared, &why) != DM_OK)
        dm_log_err("%s", why.data);
    dm_buf_free(&why);
    if (cleared > 0)
        dm_log_warn("store: cleared %d reader slot(s) left by dead processes", cleared);
    /* A publication that failed (a catalog write that would have had to
     * wait for query readers to grow the map) is retried here: the
     * reconciliation is idempotent and cheap when nothing changed. */
    if (dm_node__catalog_reconcile(self, false))
        dm_gossip_catalog_changed(self->gossip, now);
}

dm_err dm_node_run(dm_node_t *self, volatile sig_atomic_t *stop)
{
    void *router = dm_rpc_server_socket(self->rpc);
    /* The router, the outbox, then the owners' connections of the passed
     * queries the loop holds (node_relay_loop.c). */
    zmq_pollitem_t items[2 + DM_NODE_RELAY_LOOP_MAX] = {{router, 0, ZMQ_POLLIN, 0},
                                                        {self->outbox_pull, 0, ZMQ_POLLIN, 0}};
    int64_t next_sweep = dm_clock_mono_ms() + DM_NODE_SWEEP_MS;
    int64_t leave_until = -1; /* set once stopping: keep gossiping the leave */
    dm_err result = DM_OK;
    for (;;) {
        if (result == DM_OK && dm_store_failed(self->store)) {
            /* Reads would go on, every write would fail: a node that looks
             * healthy but cannot store is worse than one that is down. */
            dm_log_err("stopping: the store failed and must be reopened; restart meshd (every "
                       "acknowledged record is on disk)");
            result = DM_ERR_STORE;
            *stop = 1;
        }
        if (*stop && leave_until < 0) {
            dm_log_info("stopping: announcing that this node leaves");
            dm_gossip_leave(self->gossip, dm_clock_mono_ms());
            leave_until = dm_clock_mono_ms() + DM_GOSSIP_LEAVE_MS;
        }
        if (leave_until >= 0 && dm_clock_mono_ms() >= leave_until)
            break;
        long wait = s_wait_ms(self, leave_until);
        size_t nheld = dm_node__relayloop_items(self, items + 2, DM_NODE_RELAY_LOOP_MAX);
        int rc = zmq_poll(items, 2 + (int)nheld, wait < 0 ? 0 : wait);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            dm_log_err("poll failed: %s", zmq_strerror(errno));
            return DM_ERR_NET;
        }
        dm_node__relayloop_ready(self, items + 2);
        if (items[1].revents & ZMQ_POLLIN)
            for (dm_node__relay_t r = s_relay(self);
                 r == DM_NODE_RELAY_DONE || r == DM_NODE_RELAY_CATALOG; r = s_relay(self))
                ;
        if (items[0].revents & ZMQ_POLLIN) {
            for (int i = 0; i < DM_NODE_BURST; i++) {
                int events = 0;
                size_t sz = sizeof events;
                zmq_getsockopt(router, ZMQ_EVENTS, &events, &sz);
                if (!(events & ZMQ_POLLIN))
                    break;
                dm_node__handle_request(self, router);
            }
        }
        dm_node__relayloop_tick(self);
        int64_t now = dm_clock_mono_ms();
        dm_gossip_tick(self->gossip, now);
        dm_node__remote_refresh(self, now); /* federation: what other nodes own */
        /* Gossip may have brought governance documents or a rotation. */
        dm_node__policy_refresh(self);
        dm_node__health_tick(self, now); /* SLA measures, health entries */
        dm_node__audit_flush(self, false);
        dm_node__quality_tick(self, now);
        if (now >= next_sweep) {
            s_sweep(self, now);
            next_sweep = now + DM_NODE_SWEEP_MS;
        }
    }
    dm_node__audit_flush(self, true);
    dm_log_info("stopping: finishing queued writes");
    dm_ingest_stop(self->ingest, self->inbox_push);
    int64_t deadline = dm_clock_mono_ms() + DM_NODE_DRAIN_MS;
    zmq_pollitem_t out = {self->outbox_pull, 0, ZMQ_POLLIN, 0};
    for (;;) {
        int64_t left = deadline - dm_clock_mono_ms();
        if (left <= 0) {
            dm_log_warn("queued writes did not finish within %d ms", DM_NODE_DRAIN_MS);
            break;
        }
        if (zmq_poll(&out, 1, (long)left) <= 0)
            continue;
        dm_node__relay_t r;
        while ((r = s_relay(self)) != DM_NODE_RELAY_EMPTY && r != DM_NODE_RELAY_STOPPED)
            ;
        if (r == DM_NODE_RELAY_STOPPED) {
            dm_ingest_destroy(&self->ingest);
            break;
        }
    }
    return result;
}

void dm_node_destroy(dm_node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_node_t *self = *self_p;
    dm_node__relayloop_close(self); /* before the relay and the pool it uses */
    if (self->addr_written) {
        char path[DM_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", self->dir, DM_NODE_ADDR_FILE);
        unlink(path);
    }
    if (self->ingest) {
        /* Not drained by dm_node_run (start-up failure): stop it now. */
        dm_ingest_stop(self->ingest, self->inbox_push);
        dm_ingest_destroy(&self->ingest);
    }
    dm_node__openlineage_close(self); /* the writer, its one user, has stopped */
    dm_node__lineage_close(self);
    dm_gossip_destroy(&self->gossip);
    dm_rpc_server_destroy(&self->rpc);
    dm_query_pool_destroy(&self->queries); /* its workers decide with the tables below */
    dm_node__health_close(self);           /* and record latencies into it */
    dm_node__fed_stop(self);
    dm_query_engine_destroy(&self->engine);
    dm_node__audit_close(self);
    dm_node__access_close(self);
    dm_node__fed_close(self);
    dm_catalog_destroy(&self->catalog);
    if (self->inbox_push)
        zmq_close(self->inbox_push);
    if (self->outbox_pull)
        zmq_close(self->outbox_pull);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    dm_registry_destroy(&self->registry);
    dm_identity_destroy(&self->id);
    dm_store_destroy(&self->store);
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    free(self->dir);
    free(self->domain);
    free(self);
    *self_p = NULL;
}
