/* node_lineage.c: the node's lineage graph and search index of the whole
 * catalog (catalog/lineage.h, catalog/search.h), and the LineageReq
 * and SearchReq requests answered from them on the node loop.
 *
 * Each is a snapshot of the catalog, rebuilt on its first use after the
 * catalog's products moved: a fingerprint of the live product entries
 * (origin, name, version; one pass over the listing, no parsing) and the
 * governance generation tells. Graph and index are built apart, so a
 * lineage question never pays for the index nor a search for the graph. A product the caller may not describe is left out of answers
 * (with its edges), as the mesh listing withholds it; with no governance
 * key, other nodes' products are open to describe and nothing is parsed
 * for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/node_priv.h"

/* Edges of one answer at most: with DM_LINEAGE_WALK_MAX nodes the reply
 * stays a few MiB, far under DM_RPC_MAX_MSG_BYTES, however many upstreams
 * the contracts name. Past it the walk stops and says truncated. */
#define DM_NODE_LINEAGE_EDGES_MAX 50000

#define S_MIX(h, p, len)                                                                         \
    do {                                                                                         \
        const uint8_t *b_ = (const uint8_t *)(p);                                                \
        for (size_t i_ = 0; i_ < (len); i_++)                                                    \
            (h) = ((h) ^ b_[i_]) * 1099511628211ULL;                                             \
    } while (0)

static int s_print_product(void *ctx, const dm_catalog_product_t *p)
{
    uint64_t *h = ctx;
    S_MIX(*h, p->origin, DM_ID_PUBLIC_BYTES);
    S_MIX(*h, p->domain, strlen(p->domain) + 1);
    S_MIX(*h, p->name, strlen(p->name) + 1);
    S_MIX(*h, &p->version, sizeof p->version);
    return 0;
}

/* FNV-1a over what the graph and the index are built from: each live
 * product's entry (origin, name, version) in the catalog's order, and the
 * governance generation (certificates move domains). Health and acl
 * entries do not move it. 0 when the products cannot be listed. */
static uint64_t s_fingerprint(dm_node_t *self)
{
    uint64_t h = 1469598103934665603ULL;
    if (dm_catalog_products(self->catalog, false, s_print_product, &h) != DM_OK)
        return 0;
    uint64_t gen = dm_catalog_gov_generation(self->catalog);
    S_MIX(h, &gen, sizeof gen);
    return h;
}

const dm_lineage_t *dm_node__lineage(dm_node_t *self)
{
    uint64_t print = s_fingerprint(self);
    if (self->lineage && print && print == self->lineage_print)
        return self->lineage;
    dm_lineage_t *g = NULL;
    dm_buf_t why = DM_BUF_INIT;
    if (dm_lineage_build(self->catalog, &g, &why) == DM_OK) {
        dm_lineage_destroy(&self->lineage);
        self->lineage = g;
        self->lineage_print = print;
    } else {
        dm_log_err("%s (the previous graph is kept)", why.data);
    }
    dm_buf_free(&why);
    return self->lineage;
}

/* The search index of the catalog as it is now (rebuilt first if the
 * products moved), or NULL if it could not be built. */
static const dm_search_t *s_search_index(dm_node_t *self)
{
    uint64_t print = s_fingerprint(self);
    if (self->search && print && print == self->search_print)
        return self->search;
    dm_search_t *s = NULL;
    dm_buf_t why = DM_BUF_INIT;
    if (dm_search_build(self->catalog, &s, &why) == DM_OK) {
        dm_search_destroy(&self->search);
        self->search = s;
        self->search_print = print;
    } else {
        dm_log_err("%s (the previous index is kept)", why.data);
    }
    dm_buf_free(&why);
    return self->search;
}

void dm_node__lineage_close(dm_node_t *self)
{
    dm_lineage_destroy(&self->lineage);
    dm_search_destroy(&self->search);
}

/* Whether caller may describe the catalog's product domain/name, as the
 * mesh listing decides: the node's own by its own rules, another node's
 * by governance (its contract parsed only when a governance set is
 * active). A product with no live contract has nothing to withhold. */
static bool s_describable(dm_node_t *self, const dm_rpc_caller_t *caller, const char *domain,
                          const char *name)
{
    dm_policy_decision_t d;
    if (strcmp(domain, self->domain) == 0) {
        if (dm_node__decide(self, caller, DM_POLICY_DESCRIBE, domain, name, &d, NULL) != DM_OK)
            return true; /* not served here (deregistered meanwhile): the catalog's name only */
        bool yes = d.allow || strcmp(d.rule, DM_NODE_RULE_UNCERTIFIED) == 0;
        dm_policy_decision_clear(&d);
        return yes;
    }
    if (!self->gov)
        return true;
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    dm_contract_t **list = NULL;
    if (dm_node__catalog_contract(self, domain, name, &list, owner) != DM_OK)
        return true; /* no live contract that parses: nothing to judge by */
    bool yes = dm_node__decide_remote(self, caller, DM_POLICY_DESCRIBE, list[0], owner, &d) ==
                   DM_OK &&
               (d.allow || strcmp(d.rule, DM_NODE_RULE_UNCERTIFIED) == 0);
    dm_policy_decision_clear(&d);
    dm_contract_list_destroy(&list, 1);
    return yes;
}

/* ---- LineageReq ---- */

typedef struct {
    dm_node_t *self;
    const dm_rpc_caller_t *caller;
    Dm__LineageNode *nodes;
    Dm__LineageEdge *edges;
    size_t n, ncap, nedges, ecap;
    char **hidden; /* "domain.name" of withheld nodes, to drop their edges */
    size_t nhidden, hcap;
    size_t withheld;
    bool nomem, start_withheld, edges_cut;
} s_lineage_t;

static char *s_qname(const char *domain, const char *name)
{
    size_t n = strlen(domain) + strlen(name) + 2;
    char *q = malloc(n);
    if (q)
        snprintf(q, n, "%s.%s", domain, name);
    return q;
}

/* Where q is or would go in the sorted hidden names; *found says which. */
static size_t s_hidden_at(const s_lineage_t *l, const char *q, bool *found)
{
    size_t lo = 0, hi = l->nhidden;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->hidden[mid], q);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool s_hidden(const s_lineage_t *l, const char *q)
{
    bool found;
    (void)s_hidden_at(l, q, &found);
    return found;
}

static bool s_grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, c * size);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static int s_lineage_node(void *ctx, const dm_lineage_node_t *n)
{
    s_lineage_t *l = ctx;
    if (n->exists && !s_describable(l->self, l->caller, n->domain, n->name)) {
        if (n->depth == 0) {
            l->start_withheld = true; /* answered as unknown: nothing of it is told */
            return 1;
        }
        char *q = s_qname(n->domain, n->name);
        if (!q || !s_grow((void **)&l->hidden, &l->hcap, l->nhidden, sizeof *l->hidden)) {
            free(q);
            l->nomem = true;
            return 1;
        }
        bool found;
        size_t at = s_hidden_at(l, q, &found);
        memmove(&l->hidden[at + 1], &l->hidden[at], (l->nhidden - at) * sizeof *l->hidden);
        l->hidden[at] = q;
        l->nhidden++;
        l->withheld++;
        return 0;
    }
    if (!s_grow((void **)&l->nodes, &l->ncap, l->n, sizeof *l->nodes)) {
        l->nomem = true;
        return 1;
    }
    Dm__LineageNode *x = &l->nodes[l->n++];
    dm__lineage_node__init(x);
    x->domain = strdup(n->domain);
    x->product = strdup(n->name);
    x->exists = n->exists;
    x->depth = n->depth;
    x->health = x->degraded = NULL;
    if (!x->domain || !x->product) {
        l->nomem = true;
        return 1;
    }
    return 0;
}

static int s_lineage_edge(void *ctx, const dm_lineage_node_t *from, const dm_lineage_node_t *to)
{
    s_lineage_t *l = ctx;
    if (l->nedges >= DM_NODE_LINEAGE_EDGES_MAX) {
        l->edges_cut = true;
        return 1;
    }
    char *f = s_qname(from->domain, from->name), *t = s_qname(to->domain, to->name);
    if (!f || !t || !s_grow((void **)&l->edges, &l->ecap, l->nedges, sizeof *l->edges)) {
        free(f);
        free(t);
        l->nomem = true;
        return 1;
    }
    if (s_hidden(l, f) || s_hidden(l, t)) {
        free(f);
        free(t);
        return 0;
    }
    Dm__LineageEdge *e = &l->edges[l->nedges++];
    dm__lineage_edge__init(e);
    e->from = f;
    e->to = t;
    return 0;
}

/* Fills each node's health and "upstream degraded" from one view of
 * every product's health (node_health.c: each entry decoded once, one pass
 * over the graph), whatever the number of nodes; nothing without the
 * node's health callback or when the view cannot be built. */
static void s_lineage_health(dm_node_t *self, const dm_lineage_t *g, s_lineage_t *l)
{
    if (!self->lineage_health)
        return;
    dm_node__health_view_t *v = dm_node__health_view(self, g);
    if (!v)
        return;
    for (size_t i = 0; i < l->n; i++) {
        Dm__LineageNode *x = &l->nodes[i];
        const char *cause = "";
        /* a warn shows its cause too, as listings show "warn" */
        if (x->exists && dm_node__health_view_own(v, x->domain, x->product, &cause))
            x->health = strdup(cause); /* the listing's word when there is no cause */
        const char *deg = dm_node__health_view_degraded(v, x->domain, x->product);
        if (deg)
            x->degraded = strdup(deg);
    }
    dm_node__health_view_free(&v);
}

static void s_lineage_free(s_lineage_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->nodes[i].domain);
        free(l->nodes[i].product);
        free(l->nodes[i].health);
        free(l->nodes[i].degraded);
    }
    for (size_t i = 0; i < l->nedges; i++) {
        free(l->edges[i].from);
        free(l->edges[i].to);
    }
    for (size_t i = 0; i < l->nhidden; i++)
        free(l->hidden[i]);
    free(l->nodes);
    free(l->edges);
    free(l->hidden);
}

/* Sends the walk's answer: nodes and edges as pointer arrays. */
static void s_lineage_send(dm_node_t *self, zmq_msg_t *rid, uint64_t id, s_lineage_t *l,
                           bool truncated)
{
    Dm__LineageNode **np = calloc(l->n + 1, sizeof *np);
    Dm__LineageEdge **ep = calloc(l->nedges + 1, sizeof *ep);
    if (!np || !ep) {
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOMEM, "the node is out of memory");
    } else {
        for (size_t i = 0; i < l->n; i++) {
            np[i] = &l->nodes[i];
            if (!np[i]->health)
                np[i]->health = (char *)protobuf_c_empty_string;
            if (!np[i]->degraded)
                np[i]->degraded = (char *)protobuf_c_empty_string;
        }
        for (size_t i = 0; i < l->nedges; i++)
            ep[i] = &l->edges[i];
        Dm__LineageRep rep = DM__LINEAGE_REP__INIT;
        rep.n_nodes = l->n;
        rep.nodes = np;
        rep.n_edges = l->nedges;
        rep.edges = ep;
        rep.truncated = truncated;
        Dm__Envelope env;
        dm_envelope_init(&env, id, DM__ENVELOPE__BODY_LINEAGE_REP, &rep);
        dm_rpc_server_send(self->rpc, rid, &env);
        for (size_t i = 0; i < l->n; i++) { /* s_lineage_free must not free the empty string */
            if (np[i]->health == protobuf_c_empty_string)
                np[i]->health = NULL;
            if (np[i]->degraded == protobuf_c_empty_string)
                np[i]->degraded = NULL;
        }
    }
    free(np);
    free(ep);
}

void dm_node__handle_lineage(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                             const Dm__LineageReq *req, const dm_rpc_caller_t *caller)
{
    const char *domain = req->domain ? req->domain : "", *name = req->product ? req->product : "";
    char text[512];
    if (!dm_text_is_name(domain) || !dm_text_is_name(name)) {
        snprintf(text, sizeof text,
                 "lineage: '%.70s/%.70s' is not DOMAIN/PRODUCT (each a name: a lowercase letter, "
                 "then up to 62 lowercase letters, digits, '_' or '-')",
                 domain, name);
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_INVALID, text);
        return;
    }
    const dm_lineage_t *g = dm_node__lineage(self);
    if (!g) {
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOMEM,
                                 "lineage: the node could not build the graph (see its log)");
        return;
    }
    unsigned dirs = (req->upstream ? DM_LINEAGE_UP : 0) | (req->downstream ? DM_LINEAGE_DOWN : 0);
    if (!dirs)
        dirs = DM_LINEAGE_UP | DM_LINEAGE_DOWN;
    unsigned depth = req->depth > DM_LINEAGE_DEPTH_MAX ? DM_LINEAGE_DEPTH_MAX : req->depth;
    s_lineage_t l = {.self = self, .caller = caller};
    bool truncated = false;
    dm_err rc = dm_lineage_walk(g, domain, name, dirs, depth, s_lineage_node, s_lineage_edge, &l,
                                &truncated);
    if (rc == DM_OK && (l.nomem || l.start_withheld))
        rc = l.nomem ? DM_ERR_NOMEM : DM_ERR_NOTFOUND;
    if (rc == DM_ERR_NOTFOUND) {
        snprintf(text, sizeof text,
                 "lineage: no product %.70s/%.70s in the mesh's catalog, and no contract names it "
                 "upstream (meshq products lists the mesh's products)",
                 domain, name);
        dm_rpc_server_send_error(self->rpc, rid, id, rc, text);
        if (l.start_withheld)
            dm_node__audit(self, caller, false, "lineage", domain, name,
                           "describe (lineage): the start is withheld", 0);
    } else if (rc != DM_OK) {
        dm_rpc_server_send_error(self->rpc, rid, id, rc, "lineage: the node is out of memory");
    } else {
        s_lineage_health(self, g, &l);
        s_lineage_send(self, rid, id, &l, truncated || l.edges_cut);
        char rule[DM_AUDIT_RULE_MAX];
        snprintf(rule, sizeof rule, "describe (lineage): %zu nodes, %zu withheld", l.n,
                 l.withheld);
        dm_node__audit(self, caller, true, "lineage", domain, name, rule, 0);
    }
    s_lineage_free(&l);
}

/* ---- SearchReq ---- */

typedef struct {
    dm_node_t *self;
    const dm_rpc_caller_t *caller;
    Dm__SearchHit *hits;
    size_t n, limit, withheld;
    bool nomem;
} s_search_t;

static int s_search_hit(void *ctx, const dm_search_hit_t *h)
{
    s_search_t *s = ctx;
    if (!s_describable(s->self, s->caller, h->domain, h->name)) {
        s->withheld++;
        return 0;
    }
    Dm__SearchHit *x = &s->hits[s->n++];
    dm__search_hit__init(x);
    x->domain = strdup(h->domain);
    x->product = strdup(h->name);
    x->description = strdup(h->description);
    x->matched = strdup(h->matched);
    x->score = h->score;
    if (!x->domain || !x->product || !x->description || !x->matched)
        s->nomem = true;
    return s->nomem || s->n >= s->limit;
}

void dm_node__handle_search(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                            const Dm__SearchReq *req, const dm_rpc_caller_t *caller)
{
    const dm_search_t *index = s_search_index(self);
    if (!index) {
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOMEM,
                                 "search: the node could not index the catalog (see its log)");
        return;
    }
    s_search_t s = {.self = self, .caller = caller};
    s.limit = req->limit == 0 ? DM_SEARCH_RESULTS_DEFAULT
              : req->limit > DM_SEARCH_RESULTS_MAX ? DM_SEARCH_RESULTS_MAX
                                                   : req->limit;
    s.hits = calloc(s.limit, sizeof *s.hits);
    Dm__SearchHit **ptrs = calloc(s.limit, sizeof *ptrs);
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = s.hits && ptrs ? dm_search_run(index, req->words ? req->words : "",
                                               s_search_hit, &s, &why)
                               : DM_ERR_NOMEM;
    if (rc == DM_OK && s.nomem)
        rc = DM_ERR_NOMEM;
    if (rc != DM_OK) {
        dm_rpc_server_send_error(self->rpc, rid, id, rc,
                                 why.len ? why.data : "search: the node is out of memory");
    } else {
        for (size_t i = 0; i < s.n; i++)
            ptrs[i] = &s.hits[i];
        Dm__SearchRep rep = DM__SEARCH_REP__INIT;
        rep.n_hits = s.n;
        rep.hits = ptrs;
        Dm__Envelope env;
        dm_envelope_init(&env, id, DM__ENVELOPE__BODY_SEARCH_REP, &rep);
        dm_rpc_server_send(self->rpc, rid, &env);
        char rule[DM_AUDIT_RULE_MAX];
        snprintf(rule, sizeof rule, "describe (search): %zu hits, %zu withheld", s.n, s.withheld);
        dm_node__audit(self, caller, true, "search", NULL, NULL, rule, 0);
    }
    for (size_t i = 0; s.hits && i < s.n; i++) {
        free(s.hits[i].domain);
        free(s.hits[i].product);
        free(s.hits[i].description);
        free(s.hits[i].matched);
    }
    free(s.hits);
    free(ptrs);
    dm_buf_free(&why);
}
