/* lineage.c: the mesh-wide lineage graph of lineage.h, built from the
 * catalog's live contracts (spec.interoperability.lineage.upstream).
 *
 * Nodes are kept sorted by (domain, name) so lookups are a binary search;
 * edges are stored once and reached from both ends through two index
 * arrays (compressed adjacency: the upstream edges of node i are
 * up_idx[up_off[i] .. up_off[i + 1]), the downstream ones likewise), so a
 * walk costs O(nodes + edges) it reaches, never the whole graph. */
#include "catalog/lineage.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

typedef struct {
    char *domain, *name;
    bool exists;
} s_node_t;

typedef struct {
    uint32_t from, to; /* node indices: upstream, downstream */
} s_edge_t;

struct dm_lineage {
    s_node_t *nodes;
    size_t n;
    s_edge_t *edges;
    size_t nedges;
    uint32_t *up_off, *up_idx;     /* edges into node i (its upstreams) */
    uint32_t *down_off, *down_idx; /* edges out of node i (its downstreams) */
};

/* An upstream named by a product's contract, before nodes are numbered. */
typedef struct {
    char *up_domain, *up_name; /* owned, as is all of it */
    char *domain, *name;       /* the product's */
} s_pending_t;

typedef struct {
    s_node_t *nodes;
    size_t n, cap;
    s_pending_t *pend;
    size_t npend, cappend;
    bool nomem;
} s_build_t;

static int s_node_cmp(const void *a, const void *b)
{
    const s_node_t *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : strcmp(x->name, y->name);
}

/* The index of (domain, name) in the sorted nodes, or -1. */
static long s_find(const s_node_t *nodes, size_t n, const char *domain, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(nodes[mid].domain, domain);
        if (!c)
            c = strcmp(nodes[mid].name, name);
        if (!c)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Appends a node with copies of domain and name; false on out of memory. */
static bool s_add_node(s_build_t *b, const char *domain, const char *name, bool exists)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        s_node_t *p = realloc(b->nodes, cap * sizeof *p);
        if (!p)
            return false;
        b->nodes = p;
        b->cap = cap;
    }
    s_node_t *nd = &b->nodes[b->n];
    nd->domain = strdup(domain);
    nd->name = strdup(name);
    nd->exists = exists;
    if (!nd->domain || !nd->name) {
        free(nd->domain);
        free(nd->name);
        return false;
    }
    b->n++;
    return true;
}

static bool s_add_pending(s_build_t *b, const char *up_domain, const char *up_name,
                          const char *domain, const char *name)
{
    if (b->npend == b->cappend) {
        size_t cap = b->cappend ? b->cappend * 2 : 64;
        s_pending_t *p = realloc(b->pend, cap * sizeof *p);
        if (!p)
            return false;
        b->pend = p;
        b->cappend = cap;
    }
    s_pending_t *e = &b->pend[b->npend];
    e->up_domain = strdup(up_domain);
    e->up_name = strdup(up_name);
    e->domain = strdup(domain);
    e->name = strdup(name);
    if (!e->up_domain || !e->up_name || !e->domain || !e->name) {
        free(e->up_domain);
        free(e->up_name);
        free(e->domain);
        free(e->name);
        return false;
    }
    b->npend++;
    return true;
}

/* Records the upstreams of one contract. Entries that are not a pair of
 * names are skipped: the catalog accepted only contracts that parse, so
 * such an entry cannot come from it, and the graph stays names only. */
static bool s_read_upstreams(s_build_t *b, const dm_catalog_product_t *p, const char *domain,
                             const char *name)
{
    cJSON *root = cJSON_ParseWithLength(p->contract, p->contract_len);
    const cJSON *v = root;
    static const char *const path[] = {"spec", "interoperability", "lineage", "upstream"};
    for (size_t i = 0; v && i < sizeof path / sizeof path[0]; i++)
        v = cJSON_GetObjectItemCaseSensitive(v, path[i]);
    bool ok = true;
    const cJSON *item;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(item, v) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(item, "domain");
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "product");
            if (!cJSON_IsString(d) || !cJSON_IsString(n) || !dm_text_is_name(d->valuestring) ||
                !dm_text_is_name(n->valuestring))
                continue;
            if (!(ok = s_add_pending(b, d->valuestring, n->valuestring, domain, name)))
                break;
        }
    }
    cJSON_Delete(root);
    return ok;
}

static int s_on_product(void *ctx, const dm_catalog_product_t *p)
{
    s_build_t *b = ctx;
    if (p->tombstone || !p->contract)
        return 0;
    if (!s_add_node(b, p->domain, p->name, true) || !s_read_upstreams(b, p, p->domain, p->name)) {
        b->nomem = true;
        return 1;
    }
    return 0;
}

static int s_edge_cmp(const void *a, const void *b)
{
    const s_edge_t *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return x->to < y->to ? -1 : x->to > y->to;
}

/* Builds one side of the adjacency: off[i] .. off[i + 1] index idx, the
 * edges whose end (from or to, by by_to) is node i. */
static bool s_index(dm_lineage_t *g, bool by_to, uint32_t **off_out, uint32_t **idx_out)
{
    uint32_t *off = calloc(g->n + 1, sizeof *off);
    uint32_t *idx = malloc((g->nedges ? g->nedges : 1) * sizeof *idx);
    uint32_t *fill = calloc(g->n + 1, sizeof *fill);
    if (!off || !idx || !fill) {
        free(off);
        free(idx);
        free(fill);
        return false;
    }
    for (size_t e = 0; e < g->nedges; e++)
        off[(by_to ? g->edges[e].to : g->edges[e].from) + 1]++;
    for (size_t i = 0; i < g->n; i++)
        off[i + 1] += off[i];
    for (size_t e = 0; e < g->nedges; e++) {
        uint32_t k = by_to ? g->edges[e].to : g->edges[e].from;
        idx[off[k] + fill[k]++] = (uint32_t)e;
    }
    free(fill);
    *off_out = off;
    *idx_out = idx;
    return true;
}

/* Adds the dangling upstreams as nodes, sorts the nodes, numbers the
 * edges and indexes them. */
static bool s_link(s_build_t *b, dm_lineage_t *g)
{
    if (b->n)
        qsort(b->nodes, b->n, sizeof *b->nodes, s_node_cmp);
    size_t nproducts = b->n;
    for (size_t i = 0; i < b->npend; i++) {
        const s_pending_t *e = &b->pend[i];
        if (s_find(b->nodes, nproducts, e->up_domain, e->up_name) < 0 &&
            !s_add_node(b, e->up_domain, e->up_name, false))
            return false;
    }
    /* A missing one named by several products repeats: sort all, then
     * drop the repeats (a node exists if any of its copies does). */
    if (b->n)
        qsort(b->nodes, b->n, sizeof *b->nodes, s_node_cmp);
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (w && s_node_cmp(&b->nodes[w - 1], &b->nodes[i]) == 0) {
            b->nodes[w - 1].exists |= b->nodes[i].exists;
            free(b->nodes[i].domain);
            free(b->nodes[i].name);
            continue;
        }
        b->nodes[w++] = b->nodes[i];
    }
    b->n = w;
    g->nodes = b->nodes;
    g->n = b->n;
    b->nodes = NULL;
    b->n = b->cap = 0;
    g->edges = malloc((b->npend ? b->npend : 1) * sizeof *g->edges);
    if (!g->edges)
        return false;
    for (size_t i = 0; i < b->npend; i++) {
        long f = s_find(g->nodes, g->n, b->pend[i].up_domain, b->pend[i].up_name);
        long t = s_find(g->nodes, g->n, b->pend[i].domain, b->pend[i].name);
        if (f >= 0 && t >= 0)
            g->edges[g->nedges++] = (s_edge_t){(uint32_t)f, (uint32_t)t};
    }
    qsort(g->edges, g->nedges, sizeof *g->edges, s_edge_cmp);
    w = 0;
    for (size_t i = 0; i < g->nedges; i++)
        if (!w || s_edge_cmp(&g->edges[w - 1], &g->edges[i]) != 0)
            g->edges[w++] = g->edges[i];
    g->nedges = w;
    return s_index(g, true, &g->up_off, &g->up_idx) &&
           s_index(g, false, &g->down_off, &g->down_idx);
}

static void s_build_free(s_build_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->nodes[i].domain);
        free(b->nodes[i].name);
    }
    free(b->nodes);
    for (size_t i = 0; i < b->npend; i++) {
        free(b->pend[i].up_domain);
        free(b->pend[i].up_name);
        free(b->pend[i].domain);
        free(b->pend[i].name);
    }
    free(b->pend);
}

dm_err dm_lineage_build(const dm_catalog_t *c, dm_lineage_t **out, dm_buf_t *why)
{
    *out = NULL;
    s_build_t b = {0};
    dm_lineage_t *g = calloc(1, sizeof *g);
    dm_err rc = g ? dm_catalog_products(c, false, s_on_product, &b) : DM_ERR_NOMEM;
    if (rc == DM_OK && (b.nomem || !s_link(&b, g)))
        rc = DM_ERR_NOMEM;
    /* The node indices are 32-bit: a catalog is far below that (its
     * products are bounded by its limits), but say so rather than wrap. */
    if (rc == DM_OK && (g->n > UINT32_MAX / 2 || g->nedges > UINT32_MAX / 2))
        rc = DM_ERR_TOOBIG;
    s_build_free(&b);
    if (rc != DM_OK) {
        dm_buf_why(why, "lineage: cannot build the graph of the catalog: %s", dm_err_str(rc));
        dm_lineage_destroy(&g);
        return rc;
    }
    *out = g;
    return DM_OK;
}

void dm_lineage_destroy(dm_lineage_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_lineage_t *g = *self_p;
    for (size_t i = 0; i < g->n; i++) {
        free(g->nodes[i].domain);
        free(g->nodes[i].name);
    }
    free(g->nodes);
    free(g->edges);
    free(g->up_off);
    free(g->up_idx);
    free(g->down_off);
    free(g->down_idx);
    free(g);
    *self_p = NULL;
}

/* One walk's state: per node the depth it was reached at plus one (0:
 * not reached), a FIFO of reached nodes with the direction they go on
 * in, and a bit per edge already passed to edge_fn. */
typedef struct {
    const dm_lineage_t *g;
    unsigned *seen;
    uint32_t *queue;
    unsigned char *qdirs;
    size_t qhead, qtail, reported;
    unsigned char *edone;
    dm_lineage_node_fn node_fn;
    dm_lineage_edge_fn edge_fn;
    void *ctx;
} s_walk_t;

static dm_lineage_node_t s_view(const s_walk_t *w, uint32_t i)
{
    const s_node_t *nd = &w->g->nodes[i];
    return (dm_lineage_node_t){nd->domain, nd->name, nd->exists, w->seen[i] ? w->seen[i] - 1 : 0};
}

/* Reaches node v from u at depth d (going on in dir). Returns non-zero
 * when a callback asked to stop. */
static int s_reach(s_walk_t *w, uint32_t v, unsigned d, unsigned char dir)
{
    w->seen[v] = d + 1;
    w->queue[w->qtail] = v;
    w->qdirs[w->qtail++] = dir;
    w->reported++;
    dm_lineage_node_t nv = s_view(w, v);
    return w->node_fn ? w->node_fn(w->ctx, &nv) : 0;
}

/* Follows the edges of u in direction dir. Returns non-zero to stop. */
static int s_expand(s_walk_t *w, uint32_t u, unsigned dir, unsigned max_depth, bool *truncated)
{
    const dm_lineage_t *g = w->g;
    bool up = dir == DM_LINEAGE_UP;
    const uint32_t *off = up ? g->up_off : g->down_off, *idx = up ? g->up_idx : g->down_idx;
    unsigned d = w->seen[u] - 1;
    for (uint32_t k = off[u]; k < off[u + 1]; k++) {
        uint32_t e = idx[k];
        uint32_t v = up ? g->edges[e].from : g->edges[e].to;
        if (!w->seen[v]) {
            if (d >= max_depth || w->reported >= DM_LINEAGE_WALK_MAX) {
                *truncated = true;
                continue;
            }
            if (s_reach(w, v, d + 1, (unsigned char)dir))
                return 1;
        }
        if (w->edone[e / 8] & (1u << (e % 8)))
            continue;
        w->edone[e / 8] |= (unsigned char)(1u << (e % 8));
        if (w->edge_fn) {
            dm_lineage_node_t from = s_view(w, g->edges[e].from), to = s_view(w, g->edges[e].to);
            if (w->edge_fn(w->ctx, &from, &to))
                return 1;
        }
    }
    return 0;
}

dm_err dm_lineage_walk(const dm_lineage_t *g, const char *domain, const char *name,
                       unsigned dirs, unsigned depth, dm_lineage_node_fn node_fn,
                       dm_lineage_edge_fn edge_fn, void *ctx, bool *truncated)
{
    bool cut = false;
    if (truncated)
        *truncated = false;
    long start = s_find(g->nodes, g->n, domain, name);
    if (start < 0)
        return DM_ERR_NOTFOUND;
    if (depth == 0)
        depth = DM_LINEAGE_DEPTH_DEFAULT;
    if (depth > DM_LINEAGE_DEPTH_MAX)
        depth = DM_LINEAGE_DEPTH_MAX;
    s_walk_t w = {.g = g, .node_fn = node_fn, .edge_fn = edge_fn, .ctx = ctx};
    w.seen = calloc(g->n, sizeof *w.seen);
    w.queue = malloc(g->n * sizeof *w.queue);
    w.qdirs = malloc(g->n);
    w.edone = calloc(g->nedges / 8 + 1, 1);
    dm_err rc = DM_OK;
    if (!w.seen || !w.queue || !w.qdirs || !w.edone) {
        rc = DM_ERR_NOMEM;
        goto out;
    }
    if (s_reach(&w, (uint32_t)start, 0, (unsigned char)(dirs & (DM_LINEAGE_UP | DM_LINEAGE_DOWN))))
        goto out;
    while (w.qhead < w.qtail) {
        uint32_t u = w.queue[w.qhead];
        unsigned char dir = w.qdirs[w.qhead++];
        if (((dir & DM_LINEAGE_UP) && s_expand(&w, u, DM_LINEAGE_UP, depth, &cut)) ||
            ((dir & DM_LINEAGE_DOWN) && s_expand(&w, u, DM_LINEAGE_DOWN, depth, &cut)))
            break;
    }
out:
    if (truncated)
        *truncated = cut;
    free(w.seen);
    free(w.queue);
    free(w.qdirs);
    free(w.edone);
    return rc;
}

typedef struct {
    dm_lineage_health_fn health;
    void *ctx;
    dm_buf_t *cause;
    dm_buf_t one;
    bool found;
} s_degraded_t;

static int s_degraded_node(void *ctx, const dm_lineage_node_t *n)
{
    s_degraded_t *s = ctx;
    bool failing = false;
    if (n->depth == 0 || !n->exists)
        return 0;
    dm_buf_reset(&s->one);
    if (!s->health(s->ctx, n->domain, n->name, &failing, &s->one) || !failing)
        return 0;
    s->found = true;
    if (s->cause) {
        dm_buf_printf(s->cause, "upstream degraded: %s.%s", n->domain, n->name);
        if (s->one.len)
            dm_buf_printf(s->cause, " %s", s->one.data);
    }
    return 1;
}

bool dm_lineage_degraded(const dm_lineage_t *g, const char *domain, const char *name,
                         dm_lineage_health_fn health, void *ctx, dm_buf_t *cause)
{
    s_degraded_t s = {health, ctx, cause, DM_BUF_INIT, false};
    if (cause)
        dm_buf_reset(cause);
    if (!g || !health)
        return false;
    /* Breadth first, so the nearest failing upstream is the one named. */
    dm_err rc = dm_lineage_walk(g, domain, name, DM_LINEAGE_UP, DM_LINEAGE_DEPTH_MAX,
                                s_degraded_node, NULL, &s, NULL);
    dm_buf_free(&s.one);
    return rc == DM_OK && s.found;
}

/* The nearest failing node upstream of every node at once: a breadth-first
 * pass from all failing nodes together along the downstream edges gives
 * each node the distance to the nearest failing node at or above it (0:
 * itself) and which one; a node's own degradation is the best of its
 * direct upstreams' plus one (its own failure is not an upstream's, nor,
 * in a cycle, is it its own upstream). */
typedef struct {
    unsigned *dist; /* UINT_MAX: no failing node at or above it */
    uint32_t *src, *queue;
    char **why; /* per failing node, its cause */
} s_all_t;

static void s_all_free(s_all_t *a, size_t n)
{
    for (size_t i = 0; a->why && i < n; i++)
        free(a->why[i]);
    free(a->why);
    free(a->dist);
    free(a->src);
    free(a->queue);
}

/* Asks health once per existing node; queues the failing ones. */
static bool s_all_seed(const dm_lineage_t *g, s_all_t *a, dm_lineage_health_fn health, void *ctx,
                       size_t *qtail)
{
    dm_buf_t one = DM_BUF_INIT;
    bool ok = true;
    for (size_t i = 0; ok && i < g->n; i++) {
        bool failing = false;
        a->dist[i] = UINT_MAX;
        dm_buf_reset(&one);
        if (!g->nodes[i].exists ||
            !health(ctx, g->nodes[i].domain, g->nodes[i].name, &failing, &one) || !failing)
            continue;
        a->why[i] = strdup(one.len ? one.data : "");
        ok = a->why[i] != NULL;
        a->dist[i] = 0;
        a->src[i] = (uint32_t)i;
        a->queue[(*qtail)++] = (uint32_t)i;
    }
    dm_buf_free(&one);
    return ok;
}

dm_err dm_lineage_degraded_all(const dm_lineage_t *g, dm_lineage_health_fn health, void *hctx,
                               dm_lineage_degraded_fn fn, void *ctx)
{
    if (!g || !g->n || !health)
        return DM_OK;
    size_t n = g->n, qhead = 0, qtail = 0;
    s_all_t a = {malloc(n * sizeof *a.dist), malloc(n * sizeof *a.src),
                 malloc(n * sizeof *a.queue), calloc(n, sizeof *a.why)};
    dm_buf_t cause = DM_BUF_INIT;
    dm_err rc = DM_ERR_NOMEM;
    if (!a.dist || !a.src || !a.queue || !a.why || !s_all_seed(g, &a, health, hctx, &qtail))
        goto out;
    while (qhead < qtail) {
        uint32_t u = a.queue[qhead++];
        if (a.dist[u] >= DM_LINEAGE_DEPTH_MAX)
            continue;
        for (uint32_t k = g->down_off[u]; k < g->down_off[u + 1]; k++) {
            uint32_t v = g->edges[g->down_idx[k]].to;
            if (a.dist[v] != UINT_MAX)
                continue;
            a.dist[v] = a.dist[u] + 1;
            a.src[v] = a.src[u];
            a.queue[qtail++] = v;
        }
    }
    rc = DM_OK;
    for (uint32_t v = 0; v < n; v++) {
        unsigned best = UINT_MAX;
        uint32_t from = 0;
        for (uint32_t k = g->up_off[v]; k < g->up_off[v + 1]; k++) {
            uint32_t u = g->edges[g->up_idx[k]].from;
            if (a.dist[u] < best && a.src[u] != v) {
                best = a.dist[u];
                from = a.src[u];
            }
        }
        if (best >= DM_LINEAGE_DEPTH_MAX)
            continue;
        dm_buf_reset(&cause);
        dm_buf_printf(&cause, "upstream degraded: %s.%s", g->nodes[from].domain,
                      g->nodes[from].name);
        if (a.why[from][0])
            dm_buf_printf(&cause, " %s", a.why[from]);
        if (fn(ctx, g->nodes[v].domain, g->nodes[v].name, cause.data))
            break;
    }
out:
    dm_buf_free(&cause);
    s_all_free(&a, n);
    return rc;
}
