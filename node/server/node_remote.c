/* node_remote.c: the directory of products other nodes own, as the query
 * workers of a relaying node read it (federated SQL, node_relay.c).
 *
 * The catalog and membership belong to the node loop and are not
 * thread-safe, so the loop builds an immutable snapshot from them: per
 * product of another node, its contract, its owner's key and address, the
 * owner's member state with the time this node saw that state begin, and
 * whether governance certifies the owner for the domain. The snapshot is
 * refcounted and swapped under a mutex: a worker takes a reference once
 * per query and reads it without locks, however long the query runs. The
 * loop looks at most every DM_NODE_REMOTE_REFRESH_MS whether anything it is
 * built from moved (a cheap fingerprint) and rebuilds only then, or every
 * DM_NODE_REMOTE_REBUILD_MS anyway. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "base/log.h"
#include "membership/membership.h"
#include "server/node_priv.h"

struct dm_node__remote_dir {
    atomic_uint refs;
    dm_node__remote_t *items; /* by domain then name once sealed */
    size_t n, cap;
};

/* When this node saw a member's current state begin. */
struct dm_node__remote_since {
    uint8_t id[DM_ID_PUBLIC_BYTES];
    dm_member_state state;
    int64_t since_ms; /* Unix ms */
};

dm_node__remote_dir_t *dm_node__remote_dir_new(void)
{
    dm_node__remote_dir_t *d = calloc(1, sizeof *d);
    if (d)
        atomic_init(&d->refs, 1);
    return d;
}

dm_err dm_node__remote_dir_add(dm_node__remote_dir_t *d, const dm_node__remote_t *e)
{
    if (d->n >= DM_NODE_REMOTE_MAX)
        return DM_ERR_TOOBIG;
    if (!dm_array_reserve(&d->items, &d->cap, d->n + 1, sizeof *d->items, 16))
        return DM_ERR_NOMEM;
    dm_node__remote_t *x = &d->items[d->n];
    *x = *e;
    x->contract = malloc(e->contract_len + 1);
    if (!x->contract)
        return DM_ERR_NOMEM;
    memcpy(x->contract, e->contract, e->contract_len);
    x->contract[e->contract_len] = 0;
    d->n++;
    return DM_OK;
}

static int s_cmp_entry(const void *a, const void *b)
{
    const dm_node__remote_t *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : strcmp(x->name, y->name);
}

void dm_node__remote_dir_seal(dm_node__remote_dir_t *d)
{
    if (d->n > 1)
        qsort(d->items, d->n, sizeof *d->items, s_cmp_entry);
}

const dm_node__remote_t *dm_node__remote_dir_find(const dm_node__remote_dir_t *d,
                                                  const char *domain, const char *name)
{
    if (!d || !d->n || !domain || !name)
        return NULL;
    dm_node__remote_t key;
    snprintf(key.domain, sizeof key.domain, "%s", domain);
    snprintf(key.name, sizeof key.name, "%s", name);
    if (strcmp(key.domain, domain) != 0 || strcmp(key.name, name) != 0)
        return NULL; /* longer than any name the catalog takes */
    return bsearch(&key, d->items, d->n, sizeof *d->items, s_cmp_entry);
}

static int s_cmp_domain(const void *key, const void *item)
{
    return strcmp(key, ((const dm_node__remote_t *)item)->domain);
}

bool dm_node__remote_dir_has_domain(const dm_node__remote_dir_t *d, const char *domain)
{
    return d && d->n && domain &&
           bsearch(domain, d->items, d->n, sizeof *d->items, s_cmp_domain) != NULL;
}

size_t dm_node__remote_dir_count(const dm_node__remote_dir_t *d) { return d ? d->n : 0; }

dm_node__remote_dir_t *dm_node__remote_dir_ref(dm_node__remote_dir_t *d)
{
    if (d)
        atomic_fetch_add(&d->refs, 1);
    return d;
}

void dm_node__remote_dir_unref(dm_node__remote_dir_t **d_p)
{
    if (!d_p || !*d_p)
        return;
    dm_node__remote_dir_t *d = *d_p;
    *d_p = NULL;
    if (atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].contract);
    free(d->items);
    free(d);
}

/* ---- building the snapshot on the loop ---- */

/* One member as the build needs it (membership's strings live only
 * during its callback). */
typedef struct {
    uint8_t id[DM_ID_PUBLIC_BYTES];
    dm_member_state state;
    char address[DM_ADDRESS_MAX];
    int64_t last_heard_ms; /* monotonic */
} s_member;

typedef struct {
    s_member *items;
    size_t n, cap;
    bool nomem;
} s_members;

static void s_collect_member(void *ctx, const dm_member_t *m)
{
    s_members *ms = ctx;
    if (ms->nomem || ms->n >= DM_MEMBERSHIP_MAX_MEMBERS + 1)
        return;
    if (!dm_array_reserve(&ms->items, &ms->cap, ms->n + 1, sizeof *ms->items, 16)) {
        ms->nomem = true;
        return;
    }
    s_member *x = &ms->items[ms->n++];
    memcpy(x->id, m->id, DM_ID_PUBLIC_BYTES);
    x->state = m->state;
    snprintf(x->address, sizeof x->address, "%s", m->address ? m->address : "");
    x->last_heard_ms = m->last_heard_ms;
}

static int s_cmp_member(const void *a, const void *b)
{
    return memcmp(((const s_member *)a)->id, ((const s_member *)b)->id, DM_ID_PUBLIC_BYTES);
}

static const s_member *s_member_find(const s_members *ms, const uint8_t *id)
{
    if (!ms->n)
        return NULL;
    s_member key;
    memcpy(key.id, id, DM_ID_PUBLIC_BYTES);
    return bsearch(&key, ms->items, ms->n, sizeof *ms->items, s_cmp_member);
}

static int s_cmp_since(const void *a, const void *b)
{
    return memcmp(((const dm_node__remote_since_t *)a)->id,
                  ((const dm_node__remote_since_t *)b)->id, DM_ID_PUBLIC_BYTES);
}

/* FNV-1a over what the snapshot is built from: the members (id, state,
 * address), the catalog's size, each member's highest catalog version and
 * the governance generation. */
static uint64_t s_fingerprint(const dm_node_t *self, const s_members *ms)
{
    uint64_t h = 1469598103934665603ULL;
#define S_MIX(p, len)                                                                            \
    do {                                                                                         \
        const uint8_t *b_ = (const uint8_t *)(p);                                                \
        for (size_t i_ = 0; i_ < (len); i_++)                                                    \
            h = (h ^ b_[i_]) * 1099511628211ULL;                                                 \
    } while (0)
    for (size_t i = 0; i < ms->n; i++) {
        const s_member *m = &ms->items[i];
        uint64_t v = dm_catalog_max_version(self->catalog, m->id);
        S_MIX(m->id, DM_ID_PUBLIC_BYTES);
        S_MIX(&m->state, sizeof m->state);
        S_MIX(m->address, strlen(m->address));
        S_MIX(&v, sizeof v);
    }
    uint64_t tail[2] = {dm_catalog_count(self->catalog), dm_catalog_gov_generation(self->catalog)};
    S_MIX(tail, sizeof tail);
#undef S_MIX
    return h;
}

typedef struct {
    dm_node_t *node;
    dm_node__remote_dir_t *dir;
    const s_members *members;
    const dm_node__remote_since_t *since;
    size_t nsince;
    dm_err rc;
} s_build;

/* The Unix ms this node saw member m's state begin: kept from the last
 * build while the state holds; else now, or, for a member first seen in a
 * state other than alive, about when it was last heard. */
static int64_t s_since(const s_build *b, const s_member *m, int64_t wall, int64_t mono)
{
    dm_node__remote_since_t key;
    memcpy(key.id, m->id, DM_ID_PUBLIC_BYTES);
    const dm_node__remote_since_t *old =
        b->nsince ? bsearch(&key, b->since, b->nsince, sizeof *b->since, s_cmp_since) : NULL;
    if (old && old->state == m->state)
        return old->since_ms;
    if (!old && m->state != DM_MEMBER_ALIVE && m->last_heard_ms > 0)
        return wall - (mono - m->last_heard_ms);
    return wall;
}

static int s_add_product(void *ctx, const dm_catalog_product_t *p)
{
    s_build *b = ctx;
    if (p->tombstone || !p->contract ||
        memcmp(p->origin, dm_identity_public(b->node->id), DM_ID_PUBLIC_BYTES) == 0)
        return 0;
    dm_node__remote_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.domain, sizeof e.domain, "%s", p->domain);
    snprintf(e.name, sizeof e.name, "%s", p->name);
    e.contract = (char *)p->contract;
    e.contract_len = p->contract_len;
    memcpy(e.owner, p->origin, DM_ID_PUBLIC_BYTES);
    e.certified = dm_catalog_certified(b->node->catalog, p->domain, p->origin);
    const s_member *m = s_member_find(b->members, p->origin);
    e.state = m ? m->state : DM_MEMBER_UNKNOWN;
    if (m) /* since_ms is filled after the walk */
        snprintf(e.address, sizeof e.address, "%s", m->address);
    b->rc = dm_node__remote_dir_add(b->dir, &e);
    return b->rc != DM_OK;
}

/* Addresses membership lacks, from the owners' node records. */
static int s_node_address(void *ctx, const dm_catalog_node_t *n)
{
    s_build *b = ctx;
    for (size_t i = 0; i < b->dir->n; i++) {
        dm_node__remote_t *e = &b->dir->items[i];
        if (!e->address[0] && n->address &&
            memcmp(e->owner, n->origin, DM_ID_PUBLIC_BYTES) == 0)
            snprintf(e->address, sizeof e->address, "%s", n->address);
    }
    return 0;
}

/* Builds a snapshot from the catalog and the members ms (sorted), and the
 * new since table into *since_out (malloc'd, sorted). */
static dm_err s_build_dir(dm_node_t *self, const s_members *ms, dm_node__remote_dir_t **out,
                          dm_node__remote_since_t **since_out, size_t *nsince_out)
{
    *out = NULL;
    *since_out = NULL;
    *nsince_out = 0;
    s_build b = {self, dm_node__remote_dir_new(), ms, self->remote_since, self->remote_nsince,
                 DM_OK};
    dm_node__remote_since_t *since = calloc(ms->n ? ms->n : 1, sizeof *since);
    if (!b.dir || !since) {
        dm_node__remote_dir_unref(&b.dir);
        free(since);
        return DM_ERR_NOMEM;
    }
    int64_t wall = dm_clock_wall_ms(), mono = dm_clock_mono_ms();
    for (size_t i = 0; i < ms->n; i++) { /* ms is sorted: so is since */
        memcpy(since[i].id, ms->items[i].id, DM_ID_PUBLIC_BYTES);
        since[i].state = ms->items[i].state;
        since[i].since_ms = s_since(&b, &ms->items[i], wall, mono);
    }
    dm_err rc = dm_catalog_products(self->catalog, false, s_add_product, &b);
    if (rc == DM_OK)
        rc = b.rc;
    if (rc != DM_OK) {
        dm_node__remote_dir_unref(&b.dir);
        free(since);
        return rc;
    }
    dm_catalog_nodes(self->catalog, s_node_address, &b);
    for (size_t i = 0; i < b.dir->n; i++) {
        dm_node__remote_t *e = &b.dir->items[i];
        dm_node__remote_since_t key;
        memcpy(key.id, e->owner, DM_ID_PUBLIC_BYTES);
        const dm_node__remote_since_t *s =
            ms->n ? bsearch(&key, since, ms->n, sizeof *since, s_cmp_since) : NULL;
        e->since_ms = s ? s->since_ms : wall;
    }
    dm_node__remote_dir_seal(b.dir);
    *out = b.dir;
    *since_out = since;
    *nsince_out = ms->n;
    return DM_OK;
}

dm_err dm_node__remote_open(dm_node_t *self)
{
    if (pthread_mutex_init(&self->remote_lock, NULL) != 0)
        return DM_ERR_NOMEM;
    self->remote_ready = true;
    self->remote_dir = dm_node__remote_dir_new();
    if (!self->remote_dir)
        return DM_ERR_NOMEM;
    dm_node__remote_refresh(self, dm_clock_mono_ms());
    return DM_OK;
}

void dm_node__remote_close(dm_node_t *self)
{
    if (!self->remote_ready)
        return;
    dm_node__remote_dir_unref(&self->remote_dir);
    free(self->remote_since);
    self->remote_since = NULL;
    pthread_mutex_destroy(&self->remote_lock);
    self->remote_ready = false;
}

void dm_node__remote_refresh(dm_node_t *self, int64_t now_ms)
{
    if (!self->remote_ready || !self->gossip || !self->catalog ||
        (self->remote_built && now_ms < self->remote_next))
        return;
    self->remote_next = now_ms + DM_NODE_REMOTE_REFRESH_MS;
    s_members ms = {NULL, 0, 0, false};
    dm_membership_list(dm_gossip_membership(self->gossip), s_collect_member, &ms);
    if (ms.nomem) {
        free(ms.items);
        return; /* the next refresh tries again */
    }
    if (ms.n > 1)
        qsort(ms.items, ms.n, sizeof *ms.items, s_cmp_member);
    uint64_t print = s_fingerprint(self, &ms);
    if (self->remote_built && print == self->remote_print && now_ms < self->remote_full) {
        free(ms.items);
        return;
    }
    dm_node__remote_dir_t *dir = NULL;
    dm_node__remote_since_t *since = NULL;
    size_t nsince = 0;
    dm_err rc = s_build_dir(self, &ms, &dir, &since, &nsince);
    free(ms.items);
    if (rc != DM_OK) {
        dm_log_warn("federation: cannot rebuild the directory of remote products (%s); "
                    "queries keep the previous one",
                    dm_err_str(rc));
        return;
    }
    free(self->remote_since);
    self->remote_since = since;
    self->remote_nsince = nsince;
    self->remote_print = print;
    self->remote_built = true;
    self->remote_full = now_ms + DM_NODE_REMOTE_REBUILD_MS;
    pthread_mutex_lock(&self->remote_lock);
    dm_node__remote_dir_t *old = self->remote_dir;
    self->remote_dir = dir;
    pthread_mutex_unlock(&self->remote_lock);
    dm_node__remote_dir_unref(&old);
}

dm_node__remote_dir_t *dm_node__remote_get(dm_node_t *self)
{
    if (!self->remote_ready)
        return NULL;
    pthread_mutex_lock(&self->remote_lock);
    dm_node__remote_dir_t *d = dm_node__remote_dir_ref(self->remote_dir);
    pthread_mutex_unlock(&self->remote_lock);
    return d;
}

/* ---- the owners' record counts (a relay's) ---- */

typedef struct {
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    char domain[DM_CATALOG_NAME_MAX + 1], name[DM_CATALOG_NAME_MAX + 1];
    uint64_t rows;
    int64_t at_ms; /* monotonic ms it was learnt */
} s_rows_item;

struct dm_node__rows {
    pthread_mutex_t lock;
    s_rows_item items[DM_NODE_ROWS_MAX];
    size_t n;
};

dm_node__rows_t *dm_node__rows_new(void)
{
    dm_node__rows_t *self = calloc(1, sizeof *self);
    if (self && pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        self = NULL;
    }
    return self;
}

void dm_node__rows_destroy(dm_node__rows_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy(&(*self_p)->lock);
    free(*self_p);
    *self_p = NULL;
}

/* The item of owner's domain.name, or NULL; lock held. */
static s_rows_item *s_rows_find(dm_node__rows_t *self, const uint8_t *owner, const char *domain,
                                const char *name)
{
    for (size_t i = 0; i < self->n; i++) {
        s_rows_item *x = &self->items[i];
        if (memcmp(x->owner, owner, DM_ID_PUBLIC_BYTES) == 0 && strcmp(x->name, name) == 0 &&
            strcmp(x->domain, domain) == 0)
            return x;
    }
    return NULL;
}

bool dm_node__rows_get(dm_node__rows_t *self, const dm_node__remote_t *e, uint64_t *rows)
{
    *rows = 0;
    int64_t now = dm_clock_mono_ms();
    pthread_mutex_lock(&self->lock);
    const s_rows_item *x = s_rows_find(self, e->owner, e->domain, e->name);
    bool fresh = x && now - x->at_ms < DM_NODE_ROWS_TTL_MS;
    if (fresh)
        *rows = x->rows;
    pthread_mutex_unlock(&self->lock);
    return fresh;
}

/* Records owner's domain.name as rows at now (replacing the stalest item
 * when full); lock held. */
static void s_rows_put(dm_node__rows_t *self, const uint8_t *owner, const char *domain,
                       const char *name, uint64_t rows, int64_t now)
{
    if (strlen(domain) > DM_CATALOG_NAME_MAX || strlen(name) > DM_CATALOG_NAME_MAX)
        return;
    s_rows_item *x = s_rows_find(self, owner, domain, name);
    if (!x && self->n < DM_NODE_ROWS_MAX)
        x = &self->items[self->n++];
    for (size_t i = 0; !x && i < self->n; i++)
        if (now - self->items[i].at_ms >= DM_NODE_ROWS_TTL_MS)
            x = &self->items[i];
    if (!x)
        return; /* all fresh: this one stays unknown */
    memcpy(x->owner, owner, DM_ID_PUBLIC_BYTES);
    snprintf(x->domain, sizeof x->domain, "%s", domain);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->rows = rows;
    x->at_ms = now;
}

dm_err dm_node__rows_fetch(dm_node__rows_t *self, dm_rpc_client_t *c,
                           const dm_node__remote_t *e)
{
    Dm__Envelope env, *rep = NULL;
    Dm__ProductsReq req = DM__PRODUCTS_REQ__INIT;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_PRODUCTS_REQ, &req);
    uint64_t id;
    dm_err rc = dm_rpc_client_send(c, &env, &id, NULL);
    int64_t deadline = dm_clock_mono_ms() + DM_NODE_ROWS_WAIT_MS;
    while (rc == DM_OK) {
        rc = dm_rpc_client_recv(c, &rep, NULL);
        if (rc == DM_ERR_TIMEOUT && dm_clock_mono_ms() < deadline) {
            rc = DM_OK;
            continue;
        }
        if (rc != DM_OK || rep->id == id)
            break;
        dm__envelope__free_unpacked(rep, NULL); /* a late reply of an earlier request */
        rep = NULL;
    }
    if (rc != DM_OK)
        return rc;
    if (rep->body_case != DM__ENVELOPE__BODY_PRODUCTS_REP) {
        dm__envelope__free_unpacked(rep, NULL);
        return DM_ERR_PROTO;
    }
    int64_t now = dm_clock_mono_ms();
    const Dm__ProductsRep *pr = rep->products_rep;
    pthread_mutex_lock(&self->lock);
    s_rows_put(self, e->owner, e->domain, e->name, 0, now); /* unknown unless listed */
    for (size_t i = 0; i < pr->n_products && i < DM_NODE_ROWS_MAX; i++) {
        const Dm__ProductInfo *p = pr->products[i];
        if (p->domain && p->name && !p->remote)
            s_rows_put(self, e->owner, p->domain, p->name, p->records, now);
    }
    pthread_mutex_unlock(&self->lock);
    dm__envelope__free_unpacked(rep, NULL);
    return DM_OK;
}
