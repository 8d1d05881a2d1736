/* node.c: the meshd event loop: data directory, RPC dispatch, relay of the
 * write pipeline's replies. */
#include "server/node.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "catalog/catalog.h"
#include "contract/contract.h"
#include "gossip/gossip.h"
#include "identity/identity.h"
#include "ingest/ingest.h"
#include "query/query.h"
#include "query/query_pool.h"

#define DM_NODE_OWN_SOCKETS 64   /* RPC, pipelines, catalog and spare (not per worker) */
#define DM_NODE_WORKER_SOCKETS 4 /* sockets one query worker may hold */
#define DM_NODE_MAX_SOCKETS                                                                     \
    (DM_GOSSIP_MAX_PEERS + DM_NODE_WORKER_SOCKETS * DM_QUERY_POOL_MAX_WORKERS + DM_NODE_OWN_SOCKETS)
#include "base/log.h"
#include "record/registry.h"
#include "transport/rpc.h"
#include "record/schema.h"
#include "storage/store.h"
#include "base/version.h"
#include "server/node_priv.h"

#define DM_NODE_TICK_MS 1000              /* poll timeout: housekeeping cadence */
#define DM_NODE_READER_CHECK_MS 60000     /* stale LMDB reader sweep */
#define DM_NODE_DRAIN_MS 30000            /* how long shutdown waits for queued writes */
#define DM_NODE_BURST 64                  /* requests handled per poll wake-up */

/* struct dm_node: node_priv.h */


/* ---- data directory ---- */

static bool s_valid_domain(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* mkdir -p with mode 0700 for what it creates. */
static int s_mkdirs(const char *path)
{
    char tmp[DM_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Writes text to dir/name atomically (temp file, fsync, rename). */
static int s_write_file(const char *dir, const char *name, const char *text)
{
    char path[DM_PATH_MAX], tmp[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Reads a small text file (trailing whitespace trimmed) into buf. */
static int s_read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    return 0;
}

static dm_err s_open_dir(dm_node_t *self, const dm_node_opts_t *opts, char *err, size_t cap)
{
    if (s_mkdirs(opts->data_dir) != 0) {
        snprintf(err, cap, "cannot create data directory %s: %s", opts->data_dir,
                 strerror(errno));
        return DM_ERR_IO;
    }
    char path[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", opts->data_dir, DM_NODE_LOCK_FILE);
    self->lock_fd = open(path, O_RDWR | O_CREAT, 0600);
    if (self->lock_fd < 0) {
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
        return DM_ERR_IO;
    }
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, cap, "another meshd is already serving %s (its lock %s is held)",
                 opts->data_dir, path);
        return DM_ERR_EXISTS;
    }
    char stored[128] = "";
    snprintf(path, sizeof path, "%s/%s", opts->data_dir, DM_NODE_DOMAIN_FILE);
    bool have = s_read_small(path, stored, sizeof stored) == 0 && stored[0];
    if (opts->domain && !s_valid_domain(opts->domain)) {
        snprintf(err, cap, "invalid --domain '%s': expected ^[a-z][a-z0-9_-]{0,62}$",
                 opts->domain);
        return DM_ERR_USAGE;
    }
    if (have && opts->domain && strcmp(stored, opts->domain) != 0) {
        snprintf(err, cap,
                 "%s belongs to domain '%s', not '%s': a node serves one domain for life "
                 "(use another --data directory)",
                 opts->data_dir, stored, opts->domain);
        return DM_ERR_CONFLICT;
    }
    if (!have && !opts->domain) {
        snprintf(err, cap, "%s is a new data directory: --domain NAME is required",
                 opts->data_dir);
        return DM_ERR_USAGE;
    }
    if (!have && s_write_file(opts->data_dir, DM_NODE_DOMAIN_FILE, opts->domain) != 0) {
        snprintf(err, cap, "cannot write %s: %s", path, strerror(errno));
        return DM_ERR_IO;
    }
    self->domain = strdup(have ? stored : opts->domain);
    self->dir = strdup(opts->data_dir);
    return self->domain && self->dir ? DM_OK : DM_ERR_NOMEM;
}

static dm_err s_load_products(dm_node_t *self, char *err, size_t cap)
{
    dm_product_t *list = NULL;
    size_t n = 0;
    dm_err rc = dm_store_product_list(self->store, &list, &n);
    if (rc != DM_OK) {
        snprintf(err, cap, "cannot list stored products: %s", dm_err_str(rc));
        return rc;
    }
    for (size_t i = 0; i < n && rc == DM_OK; i++) {
        dm_buf_t why = DM_BUF_INIT;
        rc = dm_registry_install(self->registry, list[i].id, list[i].contract,
                                 list[i].contract_len, &why);
        if (rc == DM_ERR_INVALID) { /* e.g. a pattern over limits newer than the contract */
            dm_log_err("product %s/%s is not served: its stored contract %s is refused by this "
                       "node (%s); its records are kept; register a corrected "
                       "contract with a higher version to serve it again",
                       list[i].domain, list[i].name, list[i].version,
                       why.len ? why.data : "no reason given");
            rc = DM_OK;
        }
        dm_buf_free(&why);
        if (rc != DM_OK)
            snprintf(err, cap, "stored contract %s/%s cannot be loaded: %s", list[i].domain,
                     list[i].name, dm_err_str(rc));
    }
    for (size_t i = 0; i < n; i++)
        dm_store_product_clear(&list[i]);
    free(list);
    if (rc == DM_OK)
        dm_log_info("loaded %zu product(s)", n);
    return rc;
}

typedef struct {
    const uint8_t *self_id;
    char **names; /* "DOMAIN/NAME" of this node's live catalog products */
    size_t n, cap;
} s_own_products;

static int s_collect_own(void *ctx, const dm_catalog_product_t *p)
{
    s_own_products *o = ctx;
    if (memcmp(p->origin, o->self_id, DM_ID_PUBLIC_BYTES) != 0 || p->tombstone)
        return 0;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        char **names = realloc(o->names, cap * sizeof *names);
        if (!names)
            return 1;
        o->names = names;
        o->cap = cap;
    }
    size_t len = strlen(p->domain) + strlen(p->name) + 2;
    char *q = malloc(len);
    if (!q)
        return 1;
    snprintf(q, len, "%s/%s", p->domain, p->name);
    o->names[o->n++] = q;
    return 0;
}

/* The catalog takes entries of origins membership knows (any state);
 * others only within its stranger quota (dm_catalog_set_known). */
static bool s_catalog_origin_known(void *ctx, const uint8_t origin[DM_ID_PUBLIC_BYTES])
{
    return dm_membership_state_of(dm_gossip_membership(ctx), origin) != DM_MEMBER_UNKNOWN;
}

/* Brings this node's catalog entries up to date with its store: each
 * product whose canonical contract differs from the published one is
 * published again, then the node record (domain, address, products).
 * Returns true if anything was published. */
static bool s_catalog_publish_local(dm_node_t *self, bool node_record)
{
    dm_product_t *list = NULL;
    size_t n = 0;
    bool changed = false;
    dm_buf_t why = DM_BUF_INIT;
    int64_t now = dm_node__wall_ms();
    if (node_record) {
        if (dm_catalog_publish_node(self->catalog, self->domain, self->address, now, &why) != DM_OK)
            dm_log_err("catalog: cannot publish this node's record: %s", why.data ? why.data : "");
        changed = true;
    }
    if (dm_store_product_list(self->store, &list, &n) != DM_OK) {
        dm_log_err("catalog: cannot list this node's products");
        goto out;
    }
    bool products = false;
    for (size_t i = 0; i < n; i++) {
        char key[DM_CATALOG_KEY_MAX];
        snprintf(key, sizeof key, "%s%s/%s", DM_CATALOG_PRODUCT_PREFIX, list[i].domain, list[i].name);
        dm_catalog_entry_t e = {0};
        bool same = dm_catalog_get(self->catalog, dm_identity_public(self->id), key, &e) == DM_OK &&
                    !e.tombstone && e.payload_len == list[i].contract_len &&
                    memcmp(e.payload, list[i].contract, e.payload_len) == 0;
        dm_catalog_entry_clear(&e);
        if (same)
            continue;
        dm_buf_reset(&why);
        if (dm_catalog_publish(self->catalog, key, list[i].contract, list[i].contract_len, false,
                               now, &why) != DM_OK)
            dm_log_err("catalog: cannot publish %s: %s", key, why.data ? why.data : "");
        else
            products = true;
    }
    /* Products this node published but no longer holds: tombstones. */
    s_own_products own = {dm_identity_public(self->id), NULL, 0, 0};
    dm_catalog_products(self->catalog, false, s_collect_own, &own);
    for (size_t k = 0; k < own.n; k++) {
        bool held = false;
        for (size_t i = 0; i < n && !held; i++) {
            char q[DM_CATALOG_KEY_MAX];
            snprintf(q, sizeof q, "%s/%s", list[i].domain, list[i].name);
            held = strcmp(q, own.names[k]) == 0;
        }
        if (held)
            continue;
        char key[DM_CATALOG_KEY_MAX];
        snprintf(key, sizeof key, "%s%s", DM_CATALOG_PRODUCT_PREFIX, own.names[k]);
        dm_buf_reset(&why);
        if (dm_catalog_publish(self->catalog, key, NULL, 0, true, now, &why) != DM_OK)
            dm_log_err("catalog: cannot publish the tombstone of %s: %s", key,
                       why.data ? why.data : "");
        else
            products = true;
    }
    for (size_t k = 0; k < own.n; k++)
        free(own.names[k]);
    free(own.names);
    if (products) {
        dm_buf_reset(&why);
        if (dm_catalog_publish_node(self->catalog, self->domain, self->address, now, &why) != DM_OK)
            dm_log_err("catalog: cannot publish this node's record: %s", why.data ? why.data : "");
        changed = true;
    }
out:
    for (size_t i = 0; i < n; i++)
        dm_store_product_clear(&list[i]);
    free(list);
    dm_buf_free(&why);
    return changed;
}

static bool s_wildcard(const char *endpoint)
{
    return strstr(endpoint, "://0.0.0.0:") || strstr(endpoint, "://*:") ||
           strstr(endpoint, "://[::]:");
}

dm_err dm_node_new(const dm_node_opts_t *opts, dm_node_t **out, char *err, size_t errcap)
{
    *out = NULL;
    dm_node_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->lock_fd = -1;
    self->started_ms = dm_node__mono_ms();
    self->record_limit = opts->record_limit ? opts->record_limit : DM_RECORD_LIMIT_DEFAULT;
    dm_err rc = s_open_dir(self, opts, err, errcap);
    if (rc != DM_OK)
        goto fail;

    char path[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", self->dir, DM_NODE_ADDR_FILE);
    unlink(path); /* a stale address from a crash must not look live */

    snprintf(path, sizeof path, "%s/%s", self->dir, DM_NODE_STORE_DIR);
    dm_store_opts_t sopts = {.initial_map_bytes = opts->initial_map_bytes};
    if (s_mkdirs(path) != 0 || (rc = dm_store_open(path, &sopts, &self->store)) != DM_OK) {
        snprintf(err, errcap, "cannot open the store in %s: %s", path,
                 rc != DM_OK ? dm_err_str(rc) : strerror(errno));
        rc = rc != DM_OK ? rc : DM_ERR_IO;
        goto fail;
    }
    if ((rc = dm_identity_load(self->dir, &self->id)) != DM_OK) {
        snprintf(err, errcap, "cannot load the node identity in %s: %s", self->dir,
                 dm_err_str(rc));
        goto fail;
    }
    if ((rc = dm_registry_new(&self->registry)) != DM_OK ||
        (rc = s_load_products(self, err, errcap)) != DM_OK)
        goto fail;

    self->ctx = zmq_ctx_new();
    /* Deliberate, not ZeroMQ's 1,023: peers (bounded by gossip's LRU)
     * plus the node's own sockets (RPC, pipelines, query workers). */
    if (self->ctx)
        (void)zmq_ctx_set(self->ctx, ZMQ_MAX_SOCKETS, DM_NODE_MAX_SOCKETS);
    self->inbox_push = self->ctx ? zmq_socket(self->ctx, ZMQ_PUSH) : NULL;
    self->outbox_pull = self->ctx ? zmq_socket(self->ctx, ZMQ_PULL) : NULL;
    int hwm = DM_INGEST_QUEUE_MSGS, linger = 0;
    if (!self->inbox_push || !self->outbox_pull ||
        zmq_setsockopt(self->inbox_push, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(self->inbox_push, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(self->outbox_pull, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(self->inbox_push, DM_INGEST_INBOX) != 0 ||
        zmq_bind(self->outbox_pull, DM_CTL_OUTBOX) != 0) {
        snprintf(err, errcap, "cannot set up internal sockets: %s", zmq_strerror(errno));
        rc = DM_ERR_NET;
        goto fail;
    }
    if ((rc = dm_ingest_new(self->ctx, self->store, self->registry, self->domain,
                            self->record_limit, &self->ingest)) != DM_OK) {
        snprintf(err, errcap, "cannot start the write pipeline: %s", dm_err_str(rc));
        goto fail;
    }
    dm_query_limits_t limits = {.timeout_ms = opts->query_timeout_ms};
    if ((rc = dm_query_engine_new(self->store, self->registry, &limits, &self->engine)) != DM_OK ||
        (rc = dm_query_pool_new(self->ctx, self->engine, opts->query_workers,
                                opts->query_timeout_ms, &self->queries)) != DM_OK) {
        snprintf(err, errcap, "cannot start the query engine: %s", dm_err_str(rc));
        goto fail;
    }
    uint8_t cpub[32], csec[32];
    if ((rc = dm_identity_curve_keys(self->id, cpub, csec)) != DM_OK) {
        snprintf(err, errcap, "cannot derive the CURVE keys: %s", dm_err_str(rc));
        goto fail;
    }
    const char *listen = opts->listen ? opts->listen : DM_RPC_DEFAULT_ENDPOINT;
    rc = dm_rpc_server_new(self->ctx, listen, csec, &self->rpc, err, errcap);
    sodium_memzero(csec, sizeof csec);
    if (rc != DM_OK)
        goto fail;
    if (dm_query_pool_watch(self->queries, dm_rpc_server_socket(self->rpc)) != DM_OK)
        dm_log_warn("queries of clients that disconnect will run to their time limit");
    const char *bound = dm_rpc_server_endpoint(self->rpc);
    if (!opts->advertise && s_wildcard(bound)) {
        snprintf(err, errcap,
                 "listening on a wildcard address (%s) needs --advertise tcp://HOST:PORT, the "
                 "endpoint clients and peers dial",
                 bound);
        rc = DM_ERR_USAGE;
        goto fail;
    }
    snprintf(self->endpoint, sizeof self->endpoint, "%s", opts->advertise ? opts->advertise : bound);
    char why[256];
    if ((rc = dm_identity_address_format(dm_identity_public(self->id), self->endpoint, self->address,
                                sizeof self->address)) != DM_OK ||
        (rc = dm_identity_address_parse(self->address, (uint8_t[32]){0}, (char[256]){0}, 256, why,
                               sizeof why)) != DM_OK) {
        snprintf(err, errcap, "invalid advertised endpoint '%s' (valid: tcp://HOST:PORT)",
                 self->endpoint);
        rc = DM_ERR_USAGE;
        goto fail;
    }
    if (s_write_file(self->dir, DM_NODE_ADDR_FILE, self->address) != 0) {
        snprintf(err, errcap, "cannot write %s/%s: %s", self->dir, DM_NODE_ADDR_FILE,
                 strerror(errno));
        rc = DM_ERR_IO;
        goto fail;
    }
    self->addr_written = true;
    if ((rc = dm_catalog_open(self->store, self->id, &self->catalog)) != DM_OK) {
        snprintf(err, errcap, "cannot load the catalog: %s", dm_err_str(rc));
        goto fail;
    }
    s_catalog_publish_local(self, true);
    dm_gossip_opts_t gopts = {self->dir, self->domain, self->address, opts->seeds, opts->nseeds,
                              opts->membership, self->catalog};
    if ((rc = dm_gossip_new(self->ctx, self->id, &gopts, dm_node__mono_ms(), &self->gossip)) != DM_OK) {
        snprintf(err, errcap, "cannot start membership: %s", dm_err_str(rc));
        goto fail;
    }
    dm_catalog_set_known(self->catalog, s_catalog_origin_known, self->gossip);
    dm_log_info("serving domain %s at %s (data %s)", self->domain, self->address, self->dir);
    *out = self;
    return DM_OK;
fail:
    dm_node_destroy(&self);
    return rc;
}

const char *dm_node_address(const dm_node_t *self) { return self->address; }

/* ---- request handling ---- */

static void s_handle_ping(dm_node_t *self, zmq_msg_t *rid, uint64_t id)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__Pong pong = DM__PONG__INIT;
    pong.domain = self->domain;
    pong.node_id.data = (uint8_t *)dm_identity_public(self->id);
    pong.node_id.len = DM_ID_PUBLIC_BYTES;
    pong.endpoint = self->endpoint;
    pong.uptime_ms = (uint64_t)(dm_node__mono_ms() - self->started_ms);
    pong.software = "meshd " DM_VERSION;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_PONG;
    env.pong = &pong;
    dm_node__send(self, rid, &env);
}

static void s_handle_request(dm_node_t *self, void *router)
{
    zmq_msg_t rid, payload;
    zmq_msg_init(&rid);
    zmq_msg_init(&payload);
    if (zmq_msg_recv(&rid, router, ZMQ_DONTWAIT) < 0)
        goto out;
    if (!zmq_msg_more(&rid) || zmq_msg_recv(&payload, router, 0) < 0)
        goto out;
    if (zmq_msg_more(&payload)) {
        /* Our clients send one frame; drain and drop anything else. */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        while (zmq_msg_more(&payload) && zmq_msg_recv(&extra, router, 0) >= 0)
            zmq_msg_move(&payload, &extra);
        zmq_msg_close(&extra);
        dm_log_warn("dropped a multi-frame request");
        dm_node__send_error(self, &rid, 0, DM_ERR_PROTO,
                            "a request is one frame holding one envelope");
        goto out;
    }
    unsigned field = dm_rpc_body_field(zmq_msg_data(&payload), zmq_msg_size(&payload));
    if (field == DM__ENVELOPE__BODY_INGEST_REQ || field == DM__ENVELOPE__BODY_REGISTER_REQ ||
        field == DM__ENVELOPE__BODY_DEREGISTER_REQ) {
        zmq_msg_t rid_copy;
        zmq_msg_init(&rid_copy);
        zmq_msg_copy(&rid_copy, &rid);
        if (zmq_msg_send(&rid_copy, self->inbox_push, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid_copy);
            Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
            dm_node__send_error(self, &rid, env ? env->id : 0, DM_ERR_BUSY,
                         "the node is busy: its write queue is full; retry shortly");
            if (env)
                dm__envelope__free_unpacked(env, NULL);
            goto out;
        }
        zmq_msg_send(&payload, self->inbox_push, 0);
        goto out;
    }
    if (field == DM__ENVELOPE__BODY_QUERY_REQ || field == DM__ENVELOPE__BODY_QUERY_NEXT ||
        field == DM__ENVELOPE__BODY_QUERY_CLOSE) {
        Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
        if (!env) {
            dm_node__send_error(self, &rid, 0, DM_ERR_PROTO, "malformed request envelope");
            goto out;
        }
        uint64_t id = env->id;
        if (env->body_case != field) {
            dm__envelope__free_unpacked(env, NULL);
            dm_node__send_error(self, &rid, id, DM_ERR_PROTO, "malformed query request");
            goto out;
        }
        /* The pool answers, or says at once why not ("busy" names the cap). */
        char why[DM_QUERY_POOL_WHY_MAX];
        dm_err qrc = dm_query_pool_forward(self->queries, &rid, &payload, &env, why, sizeof why);
        if (qrc != DM_OK)
            dm_node__send_error(self, &rid, id, qrc, why);
        if (env)
            dm__envelope__free_unpacked(env, NULL);
        goto out;
    }
    Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
    if (!env) {
        dm_log_warn("dropped a malformed request (%zu bytes)", zmq_msg_size(&payload));
        dm_node__send_error(self, &rid, 0, DM_ERR_PROTO, "malformed request envelope");
        goto out;
    }
    switch (env->body_case) {
    case DM__ENVELOPE__BODY_PING:
        s_handle_ping(self, &rid, env->id);
        break;
    case DM__ENVELOPE__BODY_PRODUCTS_REQ:
        if (env->products_req->mesh)
            dm_node__handle_mesh_products(self, &rid, env->id);
        else
            dm_node__handle_products(self, &rid, env->id);
        break;
    case DM__ENVELOPE__BODY_QUARANTINE_REQ:
        dm_node__handle_quarantine(self, &rid, env->id, env->quarantine_req);
        break;
    case DM__ENVELOPE__BODY_DESCRIBE_REQ:
        dm_node__handle_describe(self, &rid, env->id, env->describe_req);
        break;
    case DM__ENVELOPE__BODY_MEMBERS_REQ:
        dm_node__handle_members(self, &rid, env->id);
        break;
    case DM__ENVELOPE__BODY_CATALOG_SYNC:
        dm_gossip_catalog_receive(self->gossip, env->catalog_sync,
                                  zmq_msg_gets(&payload, "User-Id"), dm_node__mono_ms());
        break;
    case DM__ENVELOPE__BODY_SWIM:
        /* One-way: the answer (an ACK) travels on this node's own socket. */
        dm_gossip_receive(self->gossip, env->swim.data, env->swim.len,
                          zmq_msg_gets(&payload, "User-Id"), dm_node__mono_ms());
        break;
    default:
        dm_node__send_error(self, &rid, env->id, DM_ERR_PROTO, "unsupported request");
        break;
    }
    dm__envelope__free_unpacked(env, NULL);
out:
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
}

/* Relays one reply from the outbox (the write pipeline's or a query
 * worker's) to its client, or handles one notice. Returns 1 when the
 * pipeline reported that it stopped, -1 if nothing was there. */
static int s_relay_one(dm_node_t *self)
{
    zmq_msg_t rid, payload;
    zmq_msg_init(&rid);
    zmq_msg_init(&payload);
    int ret = 0;
    if (zmq_msg_recv(&rid, self->outbox_pull, ZMQ_DONTWAIT) < 0) {
        ret = -1;
        goto out;
    }
    if (!zmq_msg_more(&rid)) {
        /* A notice from the write pipeline (transport/ctl.h). */
        const void *name = zmq_msg_data(&rid);
        size_t len = zmq_msg_size(&rid);
        if (dm_ctl_is(name, len, DM_CTL_CATALOG)) {
            if (s_catalog_publish_local(self, false))
                dm_gossip_catalog_changed(self->gossip, dm_node__mono_ms());
        } else if (dm_ctl_is(name, len, DM_CTL_STOPPED)) {
            ret = 1;
        } else {
            dm_log_warn("an unknown control message on the outbox was dropped");
        }
        goto out;
    }
    zmq_msg_recv(&payload, self->outbox_pull, 0);
    void *router = dm_rpc_server_socket(self->rpc);
    if (zmq_msg_send(&rid, router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&payload, router, ZMQ_DONTWAIT) < 0)
        dm_log_debug("reply dropped: %s", zmq_strerror(errno));
out:
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    return ret;
}

dm_err dm_node_run(dm_node_t *self, volatile sig_atomic_t *stop)
{
    void *router = dm_rpc_server_socket(self->rpc);
    zmq_pollitem_t items[2] = {{router, 0, ZMQ_POLLIN, 0}, {self->outbox_pull, 0, ZMQ_POLLIN, 0}};
    int64_t next_sweep = dm_node__mono_ms() + DM_NODE_READER_CHECK_MS;
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
            dm_gossip_leave(self->gossip, dm_node__mono_ms());
            leave_until = dm_node__mono_ms() + DM_GOSSIP_LEAVE_MS;
        }
        if (leave_until >= 0 && dm_node__mono_ms() >= leave_until)
            break;
        long wait = dm_gossip_wait_ms(self->gossip, dm_node__mono_ms());
        if (wait > DM_NODE_TICK_MS)
            wait = DM_NODE_TICK_MS;
        if (leave_until >= 0 && wait > leave_until - dm_node__mono_ms())
            wait = (long)(leave_until - dm_node__mono_ms());
        int rc = zmq_poll(items, 2, wait < 0 ? 0 : wait);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            dm_log_err("poll failed: %s", zmq_strerror(errno));
            return DM_ERR_NET;
        }
        if (items[1].revents & ZMQ_POLLIN)
            while (s_relay_one(self) == 0)
                ;
        if (items[0].revents & ZMQ_POLLIN) {
            for (int i = 0; i < DM_NODE_BURST; i++) {
                int events = 0;
                size_t sz = sizeof events;
                zmq_getsockopt(router, ZMQ_EVENTS, &events, &sz);
                if (!(events & ZMQ_POLLIN))
                    break;
                s_handle_request(self, router);
            }
        }
        int64_t now = dm_node__mono_ms();
        dm_gossip_tick(self->gossip, now);
        if (now >= next_sweep) {
            int cleared = dm_store_reader_check(self->store);
            if (cleared > 0)
                dm_log_info("cleared %d stale LMDB reader slot(s)", cleared);
            /* A publication that failed (a catalog write that would have had
             * to wait for query readers to grow the map) is retried here:
             * the reconciliation is idempotent and cheap when nothing changed. */
            if (s_catalog_publish_local(self, false))
                dm_gossip_catalog_changed(self->gossip, now);
            next_sweep = now + DM_NODE_READER_CHECK_MS;
        }
    }
    dm_log_info("stopping: finishing queued writes");
    dm_ingest_stop(self->ingest, self->inbox_push);
    int64_t deadline = dm_node__mono_ms() + DM_NODE_DRAIN_MS;
    zmq_pollitem_t out = {self->outbox_pull, 0, ZMQ_POLLIN, 0};
    for (;;) {
        int64_t left = deadline - dm_node__mono_ms();
        if (left <= 0) {
            dm_log_warn("queued writes did not finish within %d ms", DM_NODE_DRAIN_MS);
            break;
        }
        if (zmq_poll(&out, 1, (long)left) <= 0)
            continue;
        int r;
        while ((r = s_relay_one(self)) == 0)
            ;
        if (r == 1) {
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
    dm_gossip_destroy(&self->gossip);
    dm_catalog_destroy(&self->catalog);
    dm_rpc_server_destroy(&self->rpc);
    dm_query_pool_destroy(&self->queries);
    dm_query_engine_destroy(&self->engine);
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
