/* node.c: the meshd event loop: data directory, RPC dispatch, relay of the
 * write pipeline's replies. */
#include "node.h"

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

#include "catalog.h"
#include "contract.h"
#include "gossip.h"
#include "identity.h"
#include "ingest.h"
#include "query.h"
#include "query_pool.h"
#include "log.h"
#include "registry.h"
#include "rpc.h"
#include "schema.h"
#include "store.h"
#include "version.h"

#define DM_NODE_TICK_MS 1000              /* poll timeout: housekeeping cadence */
#define DM_NODE_READER_CHECK_MS 60000     /* stale LMDB reader sweep */
#define DM_NODE_DRAIN_MS 30000            /* how long shutdown waits for queued writes */
#define DM_NODE_BURST 64                  /* requests handled per poll wake-up */
#define DM_PATH_MAX 4096

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

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
        snprintf(err, cap, "cannot list stored products: %s", dm_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < n && rc == DM_OK; i++) {
        rc = dm_registry_install(self->registry, list[i].id, list[i].contract,
                                 list[i].contract_len);
        if (rc != DM_OK)
            snprintf(err, cap, "stored contract %s/%s cannot be loaded: %s", list[i].domain,
                     list[i].name, dm_strerror(rc));
    }
    for (size_t i = 0; i < n; i++)
        dm_product_clear(&list[i]);
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
    int64_t now = s_wall_ms();
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
        dm_product_clear(&list[i]);
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
    self->started_ms = s_mono_ms();
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
                 rc != DM_OK ? dm_strerror(rc) : strerror(errno));
        rc = rc != DM_OK ? rc : DM_ERR_IO;
        goto fail;
    }
    if ((rc = dm_identity_load(self->dir, &self->id)) != DM_OK) {
        snprintf(err, errcap, "cannot load the node identity in %s: %s", self->dir,
                 dm_strerror(rc));
        goto fail;
    }
    if ((rc = dm_registry_new(&self->registry)) != DM_OK ||
        (rc = s_load_products(self, err, errcap)) != DM_OK)
        goto fail;

    self->ctx = zmq_ctx_new();
    self->inbox_push = self->ctx ? zmq_socket(self->ctx, ZMQ_PUSH) : NULL;
    self->outbox_pull = self->ctx ? zmq_socket(self->ctx, ZMQ_PULL) : NULL;
    int hwm = DM_INGEST_QUEUE_MSGS, linger = 0;
    if (!self->inbox_push || !self->outbox_pull ||
        zmq_setsockopt(self->inbox_push, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(self->inbox_push, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(self->outbox_pull, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(self->inbox_push, DM_INGEST_INBOX) != 0 ||
        zmq_bind(self->outbox_pull, DM_INGEST_OUTBOX) != 0) {
        snprintf(err, errcap, "cannot set up internal sockets: %s", zmq_strerror(errno));
        rc = DM_ERR_NET;
        goto fail;
    }
    if ((rc = dm_ingest_new(self->ctx, self->store, self->registry, self->domain,
                            self->record_limit, &self->ingest)) != DM_OK) {
        snprintf(err, errcap, "cannot start the write pipeline: %s", dm_strerror(rc));
        goto fail;
    }
    dm_query_limits_t limits = {.timeout_ms = opts->query_timeout_ms};
    if ((rc = dm_query_engine_new(self->store, self->registry, &limits, &self->engine)) != DM_OK ||
        (rc = dm_query_pool_new(self->ctx, self->engine, opts->query_workers,
                                opts->query_timeout_ms, &self->queries)) != DM_OK) {
        snprintf(err, errcap, "cannot start the query engine: %s", dm_strerror(rc));
        goto fail;
    }
    uint8_t cpub[32], csec[32];
    if ((rc = dm_identity_curve_keys(self->id, cpub, csec)) != DM_OK) {
        snprintf(err, errcap, "cannot derive the CURVE keys: %s", dm_strerror(rc));
        goto fail;
    }
    const char *listen = opts->listen ? opts->listen : DM_RPC_DEFAULT_ENDPOINT;
    rc = dm_rpc_server_new(self->ctx, listen, csec, &self->rpc, err, errcap);
    sodium_memzero(csec, sizeof csec);
    if (rc != DM_OK)
        goto fail;
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
    if ((rc = dm_address_format(dm_identity_public(self->id), self->endpoint, self->address,
                                sizeof self->address)) != DM_OK ||
        (rc = dm_address_parse(self->address, (uint8_t[32]){0}, (char[256]){0}, 256, why,
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
        snprintf(err, errcap, "cannot load the catalog: %s", dm_strerror(rc));
        goto fail;
    }
    s_catalog_publish_local(self, true);
    dm_gossip_opts_t gopts = {self->dir, self->domain, self->address, opts->seeds, opts->nseeds,
                              opts->membership, self->catalog};
    if ((rc = dm_gossip_new(self->ctx, self->id, &gopts, s_mono_ms(), &self->gossip)) != DM_OK) {
        snprintf(err, errcap, "cannot start membership: %s", dm_strerror(rc));
        goto fail;
    }
    dm_log_info("serving domain %s at %s (data %s)", self->domain, self->address, self->dir);
    *out = self;
    return DM_OK;
fail:
    dm_node_destroy(&self);
    return rc;
}

const char *dm_node_address(const dm_node_t *self) { return self->address; }

/* ---- request handling ---- */

static void s_send(dm_node_t *self, zmq_msg_t *rid, Dm__Envelope *env)
{
    zmq_msg_t msg;
    if (dm_rpc_pack(env, &msg) != DM_OK)
        return;
    void *router = dm_rpc_server_socket(self->rpc);
    if (zmq_msg_send(rid, router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&msg, router, ZMQ_DONTWAIT) < 0) {
        /* The client left (EHOSTUNREACH) or its queue is full: drop. */
        dm_log_debug("reply dropped: %s", zmq_strerror(errno));
        zmq_msg_close(&msg);
    }
}

static void s_send_error(dm_node_t *self, zmq_msg_t *rid, uint64_t id, dm_err code,
                         const char *text)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__Error e = DM__ERROR__INIT;
    e.code = (uint32_t)code;
    e.message = (char *)text;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_ERROR;
    env.error = &e;
    s_send(self, rid, &env);
}

static void s_handle_ping(dm_node_t *self, zmq_msg_t *rid, uint64_t id)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__Pong pong = DM__PONG__INIT;
    pong.domain = self->domain;
    pong.node_id.data = (uint8_t *)dm_identity_public(self->id);
    pong.node_id.len = DM_ID_PUBLIC_BYTES;
    pong.endpoint = self->endpoint;
    pong.uptime_ms = (uint64_t)(s_mono_ms() - self->started_ms);
    pong.software = "meshd " DM_VERSION;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_PONG;
    env.pong = &pong;
    s_send(self, rid, &env);
}

typedef struct {
    dm_node_t *node;
    Dm__ProductInfo *items;
    size_t n, cap;
} s_mesh_products;

/* One catalog product as a ProductInfo: owner and access read from its
 * contract, records known only for this node's own products. */
static int s_collect_product(void *ctx, const dm_catalog_product_t *p)
{
    s_mesh_products *mp = ctx;
    if (mp->n == mp->cap) {
        size_t cap = mp->cap ? mp->cap * 2 : 16;
        Dm__ProductInfo *items = realloc(mp->items, cap * sizeof *items);
        if (!items)
            return 1;
        mp->items = items;
        mp->cap = cap;
    }
    Dm__ProductInfo *pi = &mp->items[mp->n];
    dm__product_info__init(pi);
    pi->domain = strdup(p->domain);
    pi->name = strdup(p->name);
    pi->origin.len = DM_ID_PUBLIC_BYTES;
    pi->origin.data = malloc(DM_ID_PUBLIC_BYTES);
    if (!pi->domain || !pi->name || !pi->origin.data) {
        free(pi->domain);
        free(pi->name);
        free(pi->origin.data);
        return 1;
    }
    memcpy(pi->origin.data, p->origin, DM_ID_PUBLIC_BYTES);
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    if (p->contract && dm_contract_parse("catalog", p->contract, p->contract_len, NULL, &list, &n,
                                         &diags) == DM_OK && n == 1) {
        pi->version = strdup(list[0]->version);
        pi->owner_team = strdup(list[0]->owner_team);
        pi->owner_contact = strdup(list[0]->owner_contact);
        pi->access = strdup(dm_access_name(list[0]->access));
    }
    for (size_t i = 0; i < n; i++)
        dm_contract_destroy(&list[i]);
    free(list);
    dm_diags_clear(&diags);
    dm_product_t local = {0};
    pi->remote = memcmp(p->origin, dm_identity_public(mp->node->id), DM_ID_PUBLIC_BYTES) != 0;
    if (!pi->remote &&
        dm_store_product_get(mp->node->store, p->domain, p->name, &local) == DM_OK) {
        pi->records = local.records;
        pi->quarantined = local.quarantined;
        dm_product_clear(&local);
    }
    mp->n++;
    return 0;
}

static void s_handle_mesh_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id)
{
    s_mesh_products mp = {self, NULL, 0, 0};
    dm_catalog_products(self->catalog, false, s_collect_product, &mp);
    Dm__ProductInfo **ptrs = calloc(mp.n ? mp.n : 1, sizeof *ptrs);
    if (ptrs) {
        for (size_t i = 0; i < mp.n; i++)
            ptrs[i] = &mp.items[i];
        Dm__Envelope env = DM__ENVELOPE__INIT;
        Dm__ProductsRep rep = DM__PRODUCTS_REP__INIT;
        rep.n_products = mp.n;
        rep.products = ptrs;
        env.id = id;
        env.body_case = DM__ENVELOPE__BODY_PRODUCTS_REP;
        env.products_rep = &rep;
        s_send(self, rid, &env);
    } else {
        s_send_error(self, rid, id, DM_ERR_NOMEM, "the node is out of memory");
    }
    for (size_t i = 0; i < mp.n; i++) {
        Dm__ProductInfo *pi = &mp.items[i];
        free(pi->domain);
        free(pi->name);
        free(pi->origin.data);
        if (pi->version != protobuf_c_empty_string)
            free(pi->version);
        if (pi->owner_team != protobuf_c_empty_string)
            free(pi->owner_team);
        if (pi->owner_contact != protobuf_c_empty_string)
            free(pi->owner_contact);
        if (pi->access != protobuf_c_empty_string)
            free(pi->access);
    }
    free(mp.items);
    free(ptrs);
}

static void s_handle_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id)
{
    dm_product_t *list = NULL;
    size_t n = 0;
    dm_err rc = dm_store_product_list(self->store, &list, &n);
    if (rc != DM_OK) {
        s_send_error(self, rid, id, rc, "the node could not read its product list");
        return;
    }
    Dm__ProductInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Dm__ProductInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    const dm_product_ref_t **refs = calloc(n ? n : 1, sizeof *refs);
    if (!infos || !ptrs || !refs) {
        s_send_error(self, rid, id, DM_ERR_NOMEM, "the node is out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        Dm__ProductInfo *p = &infos[i];
        dm__product_info__init(p);
        p->domain = list[i].domain;
        p->name = list[i].name;
        p->version = list[i].version;
        p->records = list[i].records;
        p->quarantined = list[i].quarantined;
        char q[256];
        int qn = snprintf(q, sizeof q, "%s/%s", list[i].domain, list[i].name);
        if (qn > 0 && (size_t)qn < sizeof q &&
            dm_registry_acquire(self->registry, q, (size_t)qn, &refs[i]) == DM_OK) {
            p->owner_team = refs[i]->contract->owner_team;
            p->owner_contact = refs[i]->contract->owner_contact;
            p->access = (char *)dm_access_name(refs[i]->contract->access);
        }
        ptrs[i] = p;
    }
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__ProductsRep rep = DM__PRODUCTS_REP__INIT;
    rep.n_products = n;
    rep.products = ptrs;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_PRODUCTS_REP;
    env.products_rep = &rep;
    s_send(self, rid, &env);
out:
    for (size_t i = 0; refs && i < n; i++)
        dm_registry_release(self->registry, refs[i]);
    for (size_t i = 0; i < n; i++)
        dm_product_clear(&list[i]);
    free(list);
    free(infos);
    free(ptrs);
    free(refs);
}

typedef struct {
    Dm__QuarantineItem *items;
    size_t n, cap;
    size_t bytes;
    bool cut; /* stopped by the byte budget */
} s_qpage;

static int s_collect_quarantine(void *ctx, const dm_quarantine_item_t *it)
{
    s_qpage *pg = ctx;
    if (pg->n == pg->cap)
        return 1;
    Dm__QuarantineItem *q = &pg->items[pg->n++];
    dm__quarantine_item__init(q);
    q->seq = it->seq;
    q->line = it->line;
    q->at_ms = it->at_ms;
    q->raw_len = it->orig_len;
    q->source = strdup(it->source ? it->source : "");
    q->reasons = strdup(it->reasons ? it->reasons : "");
    q->raw.data = malloc(it->raw_len ? it->raw_len : 1);
    if (q->raw.data && it->raw_len)
        memcpy(q->raw.data, it->raw, it->raw_len);
    q->raw.len = q->raw.data ? it->raw_len : 0;
    pg->bytes += it->raw_len + strlen(q->reasons);
    if (pg->bytes >= DM_NODE_QUARANTINE_PAGE_BYTES) {
        pg->cut = true;
        return 1;
    }
    return 0;
}

static void s_handle_quarantine(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                const Dm__QuarantineReq *req)
{
    dm_product_t p = {0};
    const char *domain = req->domain ? req->domain : "";
    const char *name = req->product ? req->product : "";
    if (dm_store_product_get(self->store, domain, name, &p) != DM_OK) {
        char text[512];
        snprintf(text, sizeof text,
                 "unknown product '%.100s/%.100s' on this node (domain %s); dmctl products "
                 "lists them",
                 domain, name, self->domain);
        s_send_error(self, rid, id, DM_ERR_NOTFOUND, text);
        return;
    }
    size_t limit = req->limit && req->limit < DM_NODE_QUARANTINE_PAGE ? req->limit
                                                                      : DM_NODE_QUARANTINE_PAGE;
    s_qpage pg = {calloc(limit, sizeof(Dm__QuarantineItem)), 0, limit, 0, false};
    Dm__QuarantineItem **ptrs = calloc(limit, sizeof *ptrs);
    bool more = false;
    dm_err rc = DM_ERR_NOMEM;
    if (pg.items && ptrs)
        rc = dm_store_quarantine_scan(self->store, p.id, req->after, limit,
                                      s_collect_quarantine, &pg, &more);
    if (rc != DM_OK) {
        s_send_error(self, rid, id, rc, "the node could not read the quarantine");
    } else {
        for (size_t i = 0; i < pg.n; i++)
            ptrs[i] = &pg.items[i];
        Dm__Envelope env = DM__ENVELOPE__INIT;
        Dm__QuarantineRep rep = DM__QUARANTINE_REP__INIT;
        rep.n_items = pg.n;
        rep.items = ptrs;
        rep.more = more || pg.cut;
        env.id = id;
        env.body_case = DM__ENVELOPE__BODY_QUARANTINE_REP;
        env.quarantine_rep = &rep;
        s_send(self, rid, &env);
    }
    for (size_t i = 0; i < pg.n; i++) {
        free(pg.items[i].source);
        free(pg.items[i].reasons);
        free(pg.items[i].raw.data);
    }
    free(pg.items);
    free(ptrs);
    dm_product_clear(&p);
}

static void s_handle_describe(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const Dm__DescribeReq *req)
{
    dm_product_t p = {0};
    const char *domain = req->domain ? req->domain : "";
    const char *name = req->product ? req->product : "";
    if (dm_store_product_get(self->store, domain, name, &p) != DM_OK) {
        char text[512];
        dm_buf_t hint = DM_BUF_INIT;
        char q[256];
        snprintf(q, sizeof q, "%.120s/%.120s", domain, name);
        dm_registry_suggest(self->registry, q, &hint);
        snprintf(text, sizeof text, "unknown product '%s' on this node (domain %s)%s%s%s", q,
                 self->domain, hint.len ? "; did you mean '" : "", hint.len ? hint.data : "",
                 hint.len ? "'?" : "");
        dm_buf_free(&hint);
        s_send_error(self, rid, id, DM_ERR_NOTFOUND, text);
        return;
    }
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__DescribeRep rep = DM__DESCRIBE_REP__INIT;
    rep.contract.data = (uint8_t *)p.contract;
    rep.contract.len = p.contract_len;
    rep.records = p.records;
    rep.quarantined = p.quarantined;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_DESCRIBE_REP;
    env.describe_rep = &rep;
    s_send(self, rid, &env);
    dm_product_clear(&p);
}

typedef struct {
    Dm__MemberInfo *items;
    size_t n, cap;
    const uint8_t *self_id;
    int64_t mono_now, wall_now;
} s_members;

static void s_collect_member(void *ctx, const dm_member_t *mb)
{
    s_members *ms = ctx;
    if (ms->n == ms->cap)
        return;
    Dm__MemberInfo *m = &ms->items[ms->n++];
    dm__member_info__init(m);
    m->node_id.data = malloc(DM_ID_PUBLIC_BYTES); /* mb lives only during this call */
    m->node_id.len = m->node_id.data ? DM_ID_PUBLIC_BYTES : 0;
    if (m->node_id.data)
        memcpy(m->node_id.data, mb->id, DM_ID_PUBLIC_BYTES);
    m->domain = strdup(mb->domain ? mb->domain : "");
    m->address = strdup(mb->address ? mb->address : "");
    m->state = (char *)dm_member_state_name(mb->state);
    m->incarnation = mb->incarnation;
    m->self = memcmp(mb->id, ms->self_id, DM_ID_PUBLIC_BYTES) == 0;
    m->last_heard_ms = m->self ? 0 : ms->wall_now - (ms->mono_now - mb->last_heard_ms);
}

typedef struct {
    Dm__DomainConflict pb;
    char domain[DM_CATALOG_NAME_MAX + 1];
    uint8_t owner[DM_ID_PUBLIC_BYTES], claimant[DM_ID_PUBLIC_BYTES];
} s_conflict;

typedef struct {
    s_conflict *items;
    size_t n, cap;
} s_conflicts;

/* Copies one conflict: the catalog's pointers live only during the call. */
static int s_collect_conflict(void *ctx, const dm_catalog_conflict_t *k)
{
    s_conflicts *sc = ctx;
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 8;
        s_conflict *items = realloc(sc->items, cap * sizeof *items);
        if (!items)
            return 1;
        sc->items = items;
        sc->cap = cap;
    }
    s_conflict *c = &sc->items[sc->n++];
    snprintf(c->domain, sizeof c->domain, "%s", k->domain);
    memcpy(c->owner, k->owner, DM_ID_PUBLIC_BYTES);
    memcpy(c->claimant, k->claimant, DM_ID_PUBLIC_BYTES);
    dm__domain_conflict__init(&c->pb);
    c->pb.first_seen_ms = k->first_seen_ms;
    c->pb.refusals = k->refusals;
    return 0;
}

static void s_handle_members(dm_node_t *self, zmq_msg_t *rid, uint64_t id)
{
    const dm_membership_t *m = dm_gossip_membership(self->gossip);
    s_members ms = {NULL, 0, dm_membership_count(m) + 1, dm_identity_public(self->id),
                    s_mono_ms(), s_wall_ms()};
    ms.items = calloc(ms.cap, sizeof *ms.items);
    Dm__MemberInfo **ptrs = calloc(ms.cap, sizeof *ptrs);
    if (!ms.items || !ptrs) {
        s_send_error(self, rid, id, DM_ERR_NOMEM, "the node is out of memory");
    } else {
        dm_membership_list(m, s_collect_member, &ms);
        for (size_t i = 0; i < ms.n; i++)
            ptrs[i] = &ms.items[i];
        Dm__Envelope env = DM__ENVELOPE__INIT;
        Dm__MembersRep rep = DM__MEMBERS_REP__INIT;
        rep.n_members = ms.n;
        rep.members = ptrs;
        dm_gossip_stats(self->gossip, &rep.gossip_bytes_sent, &rep.gossip_msgs_sent);
        rep.uptime_ms = (uint64_t)(s_mono_ms() - self->started_ms);
        s_conflicts sc = {NULL, 0, 0};
        dm_catalog_conflicts(self->catalog, s_collect_conflict, &sc);
        Dm__DomainConflict **cptrs = calloc(sc.n ? sc.n : 1, sizeof *cptrs);
        for (size_t i = 0; cptrs && i < sc.n; i++) {
            s_conflict *c = &sc.items[i]; /* the array no longer moves: point into it */
            c->pb.domain = c->domain;
            c->pb.owner.data = c->owner;
            c->pb.owner.len = DM_ID_PUBLIC_BYTES;
            c->pb.claimant.data = c->claimant;
            c->pb.claimant.len = DM_ID_PUBLIC_BYTES;
            cptrs[i] = &c->pb;
        }
        rep.n_conflicts = cptrs ? sc.n : 0;
        rep.conflicts = cptrs;
        env.id = id;
        env.body_case = DM__ENVELOPE__BODY_MEMBERS_REP;
        env.members_rep = &rep;
        s_send(self, rid, &env);
        free(cptrs);
        free(sc.items);
    }
    for (size_t i = 0; ms.items && i < ms.n; i++) {
        free(ms.items[i].node_id.data);
        free(ms.items[i].domain);
        free(ms.items[i].address);
    }
    free(ms.items);
    free(ptrs);
}

/* Returns the envelope's body field number by reading the wire format
 * just far enough, so write requests are forwarded without unpacking
 * their (large) payload here. 0 if the bytes do not look like one. */
static unsigned s_body_field(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint64_t key = 0;
        for (unsigned shift = 0; i < len && shift < 64; shift += 7) {
            uint8_t b = p[i++];
            key |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80))
                break;
        }
        unsigned field = (unsigned)(key >> 3), wire = (unsigned)(key & 7);
        if (field >= 2)
            return field;
        if (field != 1 || wire != 0)
            return 0;
        while (i < len && (p[i] & 0x80))
            i++;
        i++;
    }
    return 0;
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
        goto out;
    }
    unsigned field = s_body_field(zmq_msg_data(&payload), zmq_msg_size(&payload));
    if (field == DM__ENVELOPE__BODY_INGEST_REQ || field == DM__ENVELOPE__BODY_REGISTER_REQ ||
        field == DM__ENVELOPE__BODY_DEREGISTER_REQ) {
        zmq_msg_t rid_copy;
        zmq_msg_init(&rid_copy);
        zmq_msg_copy(&rid_copy, &rid);
        if (zmq_msg_send(&rid_copy, self->inbox_push, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid_copy);
            Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
            s_send_error(self, &rid, env ? env->id : 0, DM_ERR_TOOBIG,
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
            s_send_error(self, &rid, 0, DM_ERR_PROTO, "malformed request envelope");
            goto out;
        }
        uint64_t id = env->id;
        uint64_t cursor = env->body_case == DM__ENVELOPE__BODY_QUERY_NEXT    ? env->query_next->cursor
                          : env->body_case == DM__ENVELOPE__BODY_QUERY_CLOSE ? env->query_close->cursor
                                                                             : 0;
        bool is_query = env->body_case == field;
        dm__envelope__free_unpacked(env, NULL);
        if (!is_query) {
            s_send_error(self, &rid, id, DM_ERR_PROTO, "malformed query request");
            goto out;
        }
        zmq_msg_t rid_copy;
        zmq_msg_init(&rid_copy);
        zmq_msg_copy(&rid_copy, &rid);
        dm_err qrc = dm_query_pool_forward(self->queries, cursor, &rid_copy, &payload);
        zmq_msg_close(&rid_copy);
        if (qrc == DM_ERR_NOTFOUND)
            s_send_error(self, &rid, id, qrc, "no such open query on this node");
        else if (qrc != DM_OK)
            s_send_error(self, &rid, id, qrc, "the node is busy: its query queue is full; retry shortly");
        goto out;
    }
    Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
    if (!env) {
        dm_log_warn("dropped a malformed request (%zu bytes)", zmq_msg_size(&payload));
        s_send_error(self, &rid, 0, DM_ERR_PROTO, "malformed request envelope");
        goto out;
    }
    switch (env->body_case) {
    case DM__ENVELOPE__BODY_PING:
        s_handle_ping(self, &rid, env->id);
        break;
    case DM__ENVELOPE__BODY_PRODUCTS_REQ:
        if (env->products_req->mesh)
            s_handle_mesh_products(self, &rid, env->id);
        else
            s_handle_products(self, &rid, env->id);
        break;
    case DM__ENVELOPE__BODY_QUARANTINE_REQ:
        s_handle_quarantine(self, &rid, env->id, env->quarantine_req);
        break;
    case DM__ENVELOPE__BODY_DESCRIBE_REQ:
        s_handle_describe(self, &rid, env->id, env->describe_req);
        break;
    case DM__ENVELOPE__BODY_MEMBERS_REQ:
        s_handle_members(self, &rid, env->id);
        break;
    case DM__ENVELOPE__BODY_CATALOG_SYNC:
        dm_gossip_catalog_receive(self->gossip, env->catalog_sync,
                                  zmq_msg_gets(&payload, "User-Id"), s_mono_ms());
        break;
    case DM__ENVELOPE__BODY_SWIM:
        /* One-way: the answer (an ACK) travels on this node's own socket. */
        dm_gossip_receive(self->gossip, env->swim.data, env->swim.len,
                          zmq_msg_gets(&payload, "User-Id"), s_mono_ms());
        break;
    default:
        s_send_error(self, &rid, env->id, DM_ERR_PROTO, "unsupported request");
        break;
    }
    dm__envelope__free_unpacked(env, NULL);
out:
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
}

/* Relays one reply of the write pipeline to its client. Returns 1 when the
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
        /* A notice from the write pipeline: "STOPPED", or "CATALOG" after a
         * product was registered or upgraded. */
        if (zmq_msg_size(&rid) == 7 && memcmp(zmq_msg_data(&rid), "CATALOG", 7) == 0) {
            if (s_catalog_publish_local(self, false))
                dm_gossip_catalog_changed(self->gossip, s_mono_ms());
            goto out;
        }
        ret = 1;
        goto out;
    }
    zmq_msg_recv(&payload, self->outbox_pull, 0);
    void *router = dm_rpc_server_socket(self->rpc);
    if (zmq_msg_send(&rid, router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&payload, router, ZMQ_DONTWAIT) < 0)
        dm_log_debug("write reply dropped: %s", zmq_strerror(errno));
out:
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    return ret;
}

dm_err dm_node_run(dm_node_t *self, volatile sig_atomic_t *stop)
{
    void *router = dm_rpc_server_socket(self->rpc);
    zmq_pollitem_t items[2] = {{router, 0, ZMQ_POLLIN, 0}, {self->outbox_pull, 0, ZMQ_POLLIN, 0}};
    int64_t next_sweep = s_mono_ms() + DM_NODE_READER_CHECK_MS;
    int64_t leave_until = -1; /* set once stopping: keep gossiping the leave */
    for (;;) {
        if (*stop && leave_until < 0) {
            dm_log_info("stopping: announcing that this node leaves");
            dm_gossip_leave(self->gossip, s_mono_ms());
            leave_until = s_mono_ms() + DM_GOSSIP_LEAVE_MS;
        }
        if (leave_until >= 0 && s_mono_ms() >= leave_until)
            break;
        long wait = dm_gossip_wait_ms(self->gossip, s_mono_ms());
        if (wait > DM_NODE_TICK_MS)
            wait = DM_NODE_TICK_MS;
        if (leave_until >= 0 && wait > leave_until - s_mono_ms())
            wait = (long)(leave_until - s_mono_ms());
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
        int64_t now = s_mono_ms();
        dm_gossip_tick(self->gossip, now);
        if (now >= next_sweep) {
            int cleared = dm_store_reader_check(self->store);
            if (cleared > 0)
                dm_log_info("cleared %d stale LMDB reader slot(s)", cleared);
            next_sweep = now + DM_NODE_READER_CHECK_MS;
        }
    }
    dm_log_info("stopping: finishing queued writes");
    dm_ingest_stop(self->ingest, self->inbox_push);
    int64_t deadline = s_mono_ms() + DM_NODE_DRAIN_MS;
    zmq_pollitem_t out = {self->outbox_pull, 0, ZMQ_POLLIN, 0};
    for (;;) {
        int64_t left = deadline - s_mono_ms();
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
    return DM_OK;
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
