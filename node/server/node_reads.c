/* node_reads.c: the node's read-only requests (products of the node and
 * of the mesh, quarantine pages, describe, members), answered on the node
 * loop from short LMDB read transactions and in-memory state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/contract.h"
#include "base/array.h"
#include "base/log.h"
#include "server/node_priv.h"

/* Answers a request whose store read failed for another reason than "not
 * found": the store does not log its failures, so this logs the cause once
 * and gives the client the same line with the store's code (DM_ERR_STORE
 * for an LMDB failure or a corrupt value), never "unknown product". */
static void s_store_failed(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const char *what,
                           dm_err rc, const dm_buf_t *why)
{
    const char *cause = why->len ? why->data : dm_err_str(rc);
    dm_log_err("%s: %s", what, cause);
    char text[1024];
    snprintf(text, sizeof text, "%s: %s", what, cause);
    dm_rpc_server_send_error(self->rpc, rid, id, rc, text);
}

/* Acts on decision d (rc: how deciding went, why its failure) on
 * domain/name for caller: audits it as what (its rule followed by
 * suffix), and sends the refusal or the failure; true to serve. */
static bool s_decided(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const dm_rpc_caller_t *caller,
                      const char *what, const char *domain, const char *name, dm_err rc,
                      const dm_policy_decision_t *d, const char *why, const char *suffix)
{
    bool allow = rc == DM_OK && d->allow;
    if (rc != DM_OK)
        dm_rpc_server_send_error(self->rpc, rid, id, rc, why);
    else if (!allow)
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_DENIED,
                                 d->reason[0] ? d->reason : d->rule);
    if (rc == DM_OK && !suffix[0]) {
        dm_node__audit(self, caller, allow, what, domain, name, d->rule, d->policy_version);
    } else if (rc == DM_OK) {
        char rule[DM_AUDIT_RULE_MAX];
        snprintf(rule, sizeof rule, "%.200s%s", d->rule, suffix);
        dm_node__audit(self, caller, allow, what, domain, name, rule, d->policy_version);
    }
    return allow;
}

/* Decides action (audited as what) on the node's product domain/name for
 * caller: true to serve; otherwise the client got the refusal. */
static bool s_allowed(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const dm_rpc_caller_t *caller,
                      dm_policy_action action, const char *what, const char *domain,
                      const char *name)
{
    dm_policy_decision_t d;
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_node__decide(self, caller, action, domain, name, &d, &why);
    bool allow = s_decided(self, rid, id, caller, what, domain, name, rc, &d, why.data, "");
    dm_policy_decision_clear(&d);
    dm_buf_free(&why);
    return allow;
}

/* Whether caller may see the node's product c in its listing: what it may
 * describe (a domain that is only uncertified is still listed, marked). */
static bool s_listable(dm_node_t *self, const dm_rpc_caller_t *caller, const dm_contract_t *c)
{
    dm_policy_decision_t d;
    dm_err rc = dm_node__decide(self, caller, DM_POLICY_DESCRIBE, c->domain, c->name, &d, NULL);
    bool yes = rc == DM_OK && (d.allow || strcmp(d.rule, DM_NODE_RULE_UNCERTIFIED) == 0);
    dm_policy_decision_clear(&d);
    return yes;
}

typedef struct {
    dm_node_t *node;
    const dm_rpc_caller_t *caller;
    Dm__ProductInfo *items;
    size_t n, cap, withheld;
    bool nomem; /* the walk stopped short: answer "out of memory", not a short list */
    const dm_lineage_t *graph;      /* the request's, built or checked once */
    dm_node__health_view_t *health; /* every product's, worked out once; NULL: one by one */
} s_mesh_products;

/* Whether the mesh listing shows p (contract c, NULL when it does not
 * parse) to the caller, and for the node's own product its effective
 * readers into readers. The node's own products are decided as its own
 * listing decides them; another node's by governance only: its owner's
 * admins and grants are not known here (dm_node__decide_remote), and its
 * own node judges describes and reads of it. */
static bool s_mesh_listable(s_mesh_products *mp, const dm_catalog_product_t *p,
                            const dm_contract_t *c, bool remote, dm_buf_t *readers)
{
    if (!remote) {
        char q[DM_AUDIT_PRODUCT_MAX];
        int qn = snprintf(q, sizeof q, "%s/%s", p->domain, p->name);
        const dm_product_ref_t *ref = NULL;
        if (qn <= 0 || (size_t)qn >= sizeof q ||
            dm_registry_acquire(mp->node->registry, q, (size_t)qn, &ref) != DM_OK)
            return true; /* deregistered meanwhile: listed as the catalog still has it */
        bool yes = s_listable(mp->node, mp->caller, ref->contract);
        if (yes)
            dm_node__readers(mp->node, ref->contract, readers);
        dm_registry_release(mp->node->registry, ref);
        return yes;
    }
    if (!c)
        return true; /* nothing to judge by: its node decides describes */
    dm_policy_decision_t d;
    bool yes = dm_node__decide_remote(mp->node, mp->caller, DM_POLICY_DESCRIBE, c, p->origin,
                                      &d) == DM_OK &&
               (d.allow || strcmp(d.rule, DM_NODE_RULE_UNCERTIFIED) == 0);
    dm_policy_decision_clear(&d);
    return yes;
}

/* Frees what s_collect_product allocated in pi. */
static void s_product_info_free(Dm__ProductInfo *pi)
{
    char *strs[] = {pi->domain,        pi->name,   pi->version, pi->owner_team,
                    pi->owner_contact, pi->access, pi->readers, pi->health,
                    pi->health_cause};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        if (strs[i] != protobuf_c_empty_string)
            free(strs[i]);
    free(pi->origin.data);
}

/* One catalog product as a ProductInfo when the caller may describe it:
 * owner and access read from its contract, readers and records known only
 * for this node's own products. */
static int s_collect_product(void *ctx, const dm_catalog_product_t *p)
{
    s_mesh_products *mp = ctx;
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    if (p->contract && /* on the node loop: peers' patterns are not compiled here */
        dm_contract_parse_opts("catalog", p->contract, p->contract_len, NULL,
                               DM_CONTRACT_NO_COMPILE, &list, &n, &diags) != DM_OK)
        n = 0;
    dm_diags_clear(&diags);
    const dm_contract_t *c = n == 1 ? list[0] : NULL;
    bool remote = memcmp(p->origin, dm_identity_public(mp->node->id), DM_ID_PUBLIC_BYTES) != 0;
    dm_buf_t readers = DM_BUF_INIT;
    int stop = 0;
    if (!s_mesh_listable(mp, p, c, remote, &readers)) {
        mp->withheld++;
        goto out;
    }
    if (!dm_array_reserve(&mp->items, &mp->cap, mp->n + 1, sizeof *mp->items, 16)) {
        mp->nomem = true;
        stop = 1;
        goto out;
    }
    Dm__ProductInfo *pi = &mp->items[mp->n];
    dm__product_info__init(pi);
    pi->domain = strdup(p->domain);
    pi->name = strdup(p->name);
    pi->origin.len = DM_ID_PUBLIC_BYTES;
    pi->origin.data = malloc(DM_ID_PUBLIC_BYTES);
    if (c) {
        pi->version = strdup(c->version);
        pi->owner_team = strdup(c->owner_team);
        pi->owner_contact = strdup(c->owner_contact);
        pi->access = strdup(dm_contract_access_name(c->access));
    }
    if (!remote)
        pi->readers = strdup(readers.data ? readers.data : "");
    dm_buf_t health = DM_BUF_INIT, cause = DM_BUF_INIT; /* node_health.c */
    if (mp->health)
        dm_node__health_view_show(mp->health, p->domain, p->name, &health, &cause);
    else
        dm_node__health_show(mp->node, mp->graph, p->domain, p->name, &health, &cause);
    pi->health = strdup(health.data ? health.data : "");
    pi->health_cause = strdup(cause.data ? cause.data : "");
    dm_buf_free(&health);
    dm_buf_free(&cause);
    if (!pi->domain || !pi->name || !pi->origin.data || !pi->version || !pi->owner_team ||
        !pi->owner_contact || !pi->access || !pi->readers || !pi->health || !pi->health_cause) {
        s_product_info_free(pi);
        mp->nomem = true;
        stop = 1;
        goto out;
    }
    memcpy(pi->origin.data, p->origin, DM_ID_PUBLIC_BYTES);
    pi->remote = remote;
    pi->uncertified = !dm_catalog_certified(mp->node->catalog, p->domain, p->origin);
    dm_product_t local = {0};
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = pi->remote ? DM_ERR_NOTFOUND
                           : dm_store_product_get(mp->node->store, p->domain, p->name, &local,
                                                  &why);
    if (rc == DM_OK) {
        pi->records = local.records;
        pi->quarantined = local.quarantined;
        dm_store_product_clear(&local);
    } else if (rc != DM_ERR_NOTFOUND) { /* the list goes out without this product's counts */
        dm_log_err("mesh products: counts of %s/%s are not shown: %s", p->domain, p->name,
                   why.len ? why.data : dm_err_str(rc));
    }
    dm_buf_free(&why);
    mp->n++;
out:
    dm_buf_free(&readers);
    dm_contract_list_destroy(&list, n);
    return stop;
}

void dm_node__handle_mesh_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                   const dm_rpc_caller_t *caller)
{
    s_mesh_products mp = {self, caller, NULL, 0, 0, 0, false, dm_node__lineage(self), NULL};
    mp.health = dm_node__health_view(self, mp.graph);
    bool listed = dm_catalog_products(self->catalog, false, s_collect_product, &mp) == DM_OK;
    Dm__ProductInfo **ptrs = calloc(mp.n ? mp.n : 1, sizeof *ptrs);
    if (ptrs && listed && !mp.nomem) {
        for (size_t i = 0; i < mp.n; i++)
            ptrs[i] = &mp.items[i];
        char rule[DM_AUDIT_RULE_MAX];
        snprintf(rule, sizeof rule, "describe (mesh): %zu listed, %zu withheld", mp.n,
                 mp.withheld);
        dm_node__audit(self, caller, true, "products", NULL, NULL, rule, 0);
        Dm__Envelope env;
        Dm__ProductsRep rep = DM__PRODUCTS_REP__INIT;
        rep.n_products = mp.n;
        rep.products = ptrs;
        dm_envelope_init(&env, id, DM__ENVELOPE__BODY_PRODUCTS_REP, &rep);
        dm_rpc_server_send(self->rpc, rid, &env);
    } else {
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOMEM, "the node is out of memory");
    }
    for (size_t i = 0; i < mp.n; i++)
        s_product_info_free(&mp.items[i]);
    free(mp.items);
    free(ptrs);
    dm_node__health_view_free(&mp.health);
}

void dm_node__handle_products(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const dm_rpc_caller_t *caller)
{
    dm_product_t *list = NULL;
    size_t n = 0, k = 0;
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_store_product_list(self->store, &list, &n, &why);
    if (rc != DM_OK) {
        s_store_failed(self, rid, id, "the node could not read its product list", rc, &why);
        dm_buf_free(&why);
        return;
    }
    dm_buf_free(&why);
    Dm__ProductInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Dm__ProductInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    const dm_product_ref_t **refs = calloc(n ? n : 1, sizeof *refs);
    dm_buf_t *readers = calloc(n ? n : 1, sizeof *readers); /* zeroed: DM_BUF_INIT */
    if (!infos || !ptrs || !refs || !readers) {
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOMEM, "the node is out of memory");
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
            /* Governance may deny describing it: then it is not listed. */
            if (!s_listable(self, caller, refs[i]->contract))
                continue;
            p->owner_team = refs[i]->contract->owner_team;
            p->owner_contact = refs[i]->contract->owner_contact;
            p->access = (char *)dm_contract_access_name(refs[i]->contract->access);
            dm_buf_reset(&readers[i]);
            dm_node__readers(self, refs[i]->contract, &readers[i]);
            p->readers = readers[i].data ? readers[i].data : (char *)"";
        }
        p->uncertified = !self->self_certified;
        ptrs[k++] = p;
    }
    char rule[DM_AUDIT_RULE_MAX];
    snprintf(rule, sizeof rule, "describe: %zu listed, %zu withheld", k, n - k);
    dm_node__audit(self, caller, true, "products", NULL, NULL, rule, 0);
    Dm__Envelope env;
    Dm__ProductsRep rep = DM__PRODUCTS_REP__INIT;
    rep.n_products = k;
    rep.products = ptrs;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_PRODUCTS_REP, &rep);
    dm_rpc_server_send(self->rpc, rid, &env);
out:
    for (size_t i = 0; refs && i < n; i++)
        if (refs[i])
            dm_registry_release(self->registry, refs[i]);
    for (size_t i = 0; readers && i < n; i++)
        dm_buf_free(&readers[i]);
    free(readers);
    for (size_t i = 0; i < n; i++)
        dm_store_product_clear(&list[i]);
    free(list);
    free(infos);
    free(ptrs);
    free(refs);
}

/* Quarantined lines are raw, invalid records: no mask or row filter can
 * apply to them, so they are the owner's: domain admins only, and only
 * when the read decision allows the admin (a governance deny on read, or
 * an allow gate the admin is not in, refuses it too). Audited; true to
 * serve, otherwise the client got the refusal naming the rule. */
static bool s_quarantine_allowed(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                 const dm_rpc_caller_t *caller, const char *domain,
                                 const char *name)
{
    bool admin = dm_node__is_admin(self, caller);
    dm_policy_decision_t d;
    memset(&d, 0, sizeof d);
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = admin ? dm_node__decide(self, caller, DM_POLICY_READ, domain, name, &d, &why)
                      : DM_OK;
    bool allow = admin && rc == DM_OK && d.allow;
    char rule[DM_AUDIT_RULE_MAX], text[768];
    char hex[DM_RPC_CALLER_HEX_BYTES];
    dm_rpc_caller_hex(caller, hex);
    if (!admin) {
        snprintf(rule, sizeof rule, "%s; not an admin", DM_NODE_RULE_QUARANTINE);
        snprintf(text, sizeof text,
                 "access denied to %.63s.%.63s quarantine: it holds raw records; only %s admins "
                 "may read it; you are %s",
                 domain, name, self->domain, hex);
    } else if (rc != DM_OK) {
        snprintf(rule, sizeof rule, "%s; refused: %.200s", DM_NODE_RULE_QUARANTINE,
                 why.len ? why.data : dm_err_str(rc));
        snprintf(text, sizeof text, "%.500s", why.len ? why.data : dm_err_str(rc));
    } else if (!allow) {
        snprintf(rule, sizeof rule, "%s; refused: %.200s", DM_NODE_RULE_QUARANTINE, d.rule);
        /* The reason's "access denied to D.N (ACCESS): " is said already. */
        const char *r = d.reason[0] ? d.reason : d.rule;
        const char *tail = strncmp(r, "access denied to ", 17) == 0 ? strstr(r, ": ") : NULL;
        snprintf(text, sizeof text, "access denied to %.63s.%.63s quarantine: %.500s", domain,
                 name, tail ? tail + 2 : r);
    } else {
        snprintf(rule, sizeof rule, "%s; %.200s", DM_NODE_RULE_QUARANTINE, d.rule);
    }
    dm_node__audit(self, caller, allow, "quarantine", domain, name, rule, d.policy_version);
    if (!allow)
        dm_rpc_server_send_error(self->rpc, rid, id, rc != DM_OK ? rc : DM_ERR_DENIED, text);
    dm_policy_decision_clear(&d);
    dm_buf_free(&why);
    return allow;
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
    size_t cost = it->raw_len + strlen(it->reasons ? it->reasons : "") +
                  strlen(it->source ? it->source : "");
    /* Stop before an item that would break the page's byte budget, so a
     * reply always fits the message bound; a single item always goes. */
    if (pg->n == pg->cap || (pg->n > 0 && pg->bytes + cost > DM_NODE_QUARANTINE_PAGE_BYTES)) {
        pg->cut = true;
        return 1;
    }
    Dm__QuarantineItem *q = &pg->items[pg->n];
    dm__quarantine_item__init(q);
    q->seq = it->seq;
    q->line = it->line;
    q->at_ms = it->at_ms;
    q->raw_len = it->orig_len;
    q->source = strdup(it->source ? it->source : "");
    q->reasons = strdup(it->reasons ? it->reasons : "");
    q->raw.data = malloc(it->raw_len ? it->raw_len : 1);
    if (!q->source || !q->reasons || !q->raw.data) {
        free(q->source);
        free(q->reasons);
        free(q->raw.data);
        pg->cut = true;
        return 1;
    }
    if (it->raw_len)
        memcpy(q->raw.data, it->raw, it->raw_len);
    q->raw.len = it->raw_len;
    pg->n++;
    pg->bytes += cost;
    return 0;
}

void dm_node__handle_quarantine(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                const Dm__QuarantineReq *req, const dm_rpc_caller_t *caller)
{
    dm_product_t p = {0};
    const char *domain = req->domain ? req->domain : "";
    const char *name = req->product ? req->product : "";
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_store_product_get(self->store, domain, name, &p, &why);
    if (rc == DM_ERR_NOTFOUND) {
        char text[512];
        snprintf(text, sizeof text,
                 "unknown product '%.100s/%.100s' on this node (domain %s); dmctl products "
                 "lists them",
                 domain, name, self->domain);
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOTFOUND, text);
    } else if (rc != DM_OK) {
        char what[320];
        snprintf(what, sizeof what, "the node could not read product '%.100s/%.100s'", domain,
                 name);
        s_store_failed(self, rid, id, what, rc, &why);
    }
    if (rc != DM_OK || !s_quarantine_allowed(self, rid, id, caller, domain, name)) {
        dm_buf_free(&why);
        dm_store_product_clear(&p);
        return;
    }
    size_t limit = req->limit && req->limit < DM_NODE_QUARANTINE_PAGE ? req->limit
                                                                      : DM_NODE_QUARANTINE_PAGE;
    s_qpage pg = {calloc(limit, sizeof(Dm__QuarantineItem)), 0, limit, 0, false};
    Dm__QuarantineItem **ptrs = calloc(limit, sizeof *ptrs);
    bool more = false;
    rc = DM_ERR_NOMEM;
    if (pg.items && ptrs)
        rc = dm_store_quarantine_scan(self->store, p.id, req->after, limit,
                                      s_collect_quarantine, &pg, &more, &why);
    if (rc == DM_ERR_NOMEM) {
        dm_rpc_server_send_error(self->rpc, rid, id, rc, "the node could not read the quarantine");
    } else if (rc != DM_OK) {
        s_store_failed(self, rid, id, "the node could not read the quarantine", rc, &why);
    } else {
        for (size_t i = 0; i < pg.n; i++)
            ptrs[i] = &pg.items[i];
        Dm__Envelope env;
        Dm__QuarantineRep rep = DM__QUARANTINE_REP__INIT;
        rep.n_items = pg.n;
        rep.items = ptrs;
        rep.more = more || pg.cut;
        dm_envelope_init(&env, id, DM__ENVELOPE__BODY_QUARANTINE_REP, &rep);
        dm_rpc_server_send(self->rpc, rid, &env);
    }
    for (size_t i = 0; i < pg.n; i++) {
        free(pg.items[i].source);
        free(pg.items[i].reasons);
        free(pg.items[i].raw.data);
    }
    free(pg.items);
    free(ptrs);
    dm_buf_free(&why);
    dm_store_product_clear(&p);
}

/* Sends the describe reply: contract, counts, health and what degrades it. */
static void s_describe_send(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const char *domain,
                            const char *name, const void *contract, size_t len,
                            const dm_product_t *local)
{
    Dm__Envelope env;
    Dm__DescribeRep rep = DM__DESCRIBE_REP__INIT;
    rep.contract.data = (uint8_t *)(uintptr_t)contract;
    rep.contract.len = len;
    dm_buf_t degraded = DM_BUF_INIT; /* node_health.c */
    rep.health = dm_node__health_describe(self, dm_node__lineage(self), domain, name, &degraded);
    rep.degraded = degraded.data ? degraded.data : (char *)"";
    rep.from_catalog = local == NULL;
    rep.records = local ? local->records : rep.health ? rep.health->records : 0;
    rep.quarantined = local ? local->quarantined : rep.health ? rep.health->quarantined : 0;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_DESCRIBE_REP, &rep);
    dm_rpc_server_send(self->rpc, rid, &env);
    if (rep.health)
        dm__health_record__free_unpacked(rep.health, NULL);
    dm_buf_free(&degraded);
}

/* Describes another node's product from the catalog, as the mesh listing
 * shows it: its owner's signed contract and last health entry, decided by
 * dm_node__decide_remote (governance only: its owner's own admins and
 * grants are not known here; a domain not certified to its publisher, an
 * impostor's claim perhaps, is refused), audited with "(catalog)". false,
 * nothing sent, when the catalog does not hold it. */
static bool s_describe_remote(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const dm_rpc_caller_t *caller, const char *domain,
                              const char *name)
{
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    dm_contract_t **list = NULL;
    dm_err rc = dm_node__catalog_contract(self, domain, name, &list, owner);
    if (rc == DM_ERR_NOTFOUND)
        return false;
    dm_policy_decision_t d;
    memset(&d, 0, sizeof d);
    if (rc == DM_OK)
        rc = dm_node__decide_remote(self, caller, DM_POLICY_DESCRIBE, list[0], owner, &d);
    const char *why = rc == DM_ERR_INVALID ? "describe: the catalog's contract of this product "
                                             "does not parse here (its owner's node answers for "
                                             "it)"
                                           : "describe: the node is out of memory";
    if (s_decided(self, rid, id, caller, "describe", domain, name, rc, &d, why, " (catalog)")) {
        dm_buf_t canonical = DM_BUF_INIT; /* what the owner signed, as this node writes it */
        dm_contract_canonical(list[0], &canonical);
        s_describe_send(self, rid, id, domain, name, canonical.data, canonical.len, NULL);
        dm_buf_free(&canonical);
    }
    dm_policy_decision_clear(&d);
    if (list)
        dm_contract_list_destroy(&list, 1);
    return true;
}

void dm_node__handle_describe(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const Dm__DescribeReq *req, const dm_rpc_caller_t *caller)
{
    dm_product_t p = {0};
    const char *domain = req->domain ? req->domain : "";
    const char *name = req->product ? req->product : "";
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_store_product_get(self->store, domain, name, &p, &why);
    if (rc != DM_OK && rc != DM_ERR_NOTFOUND) {
        char what[320];
        snprintf(what, sizeof what, "the node could not read product '%.100s/%.100s'", domain,
                 name);
        s_store_failed(self, rid, id, what, rc, &why);
    }
    dm_buf_free(&why);
    if (rc == DM_ERR_NOTFOUND && strcmp(domain, self->domain) != 0 &&
        s_describe_remote(self, rid, id, caller, domain, name))
        return;
    if (rc == DM_ERR_NOTFOUND) {
        dm_buf_t text = DM_BUF_INIT;
        char q[256];
        snprintf(q, sizeof q, "%.120s/%.120s", domain, name);
        dm_node__unknown(self, caller, q, &text);
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOTFOUND, text.data);
        dm_buf_free(&text);
    }
    if (rc == DM_OK &&
        !s_allowed(self, rid, id, caller, DM_POLICY_DESCRIBE, "describe", domain, name))
        rc = DM_ERR_DENIED;
    if (rc != DM_OK) {
        dm_store_product_clear(&p);
        return;
    }
    s_describe_send(self, rid, id, domain, name, p.contract, p.contract_len, &p);
    dm_store_product_clear(&p);
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
    m->state = (char *)dm_membership_state_name(mb->state);
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
    if (!dm_array_reserve(&sc->items, &sc->cap, sc->n + 1, sizeof *sc->items, 8))
        return 1;
    s_conflict *c = &sc->items[sc->n++];
    snprintf(c->domain, sizeof c->domain, "%s", k->domain);
    memcpy(c->owner, k->owner, DM_ID_PUBLIC_BYTES);
    memcpy(c->claimant, k->claimant, DM_ID_PUBLIC_BYTES);
    dm__domain_conflict__init(&c->pb);
    c->pb.first_seen_ms = k->first_seen_ms;
    c->pb.refusals = k->refusals;
    return 0;
}

void dm_node__handle_members(dm_node_t *self, zmq_msg_t *rid, uint64_t id)
{
    const dm_membership_t *m = dm_gossip_membership(self->gossip);
    s_members ms = {NULL, 0, dm_membership_count(m) + 1, dm_identity_public(self->id),
                    dm_clock_mono_ms(), dm_clock_wall_ms()};
    ms.items = calloc(ms.cap, sizeof *ms.items);
    Dm__MemberInfo **ptrs = calloc(ms.cap, sizeof *ptrs);
    if (!ms.items || !ptrs) {
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOMEM, "the node is out of memory");
    } else {
        dm_membership_list(m, s_collect_member, &ms);
        for (size_t i = 0; i < ms.n; i++)
            ptrs[i] = &ms.items[i];
        Dm__Envelope env;
        Dm__MembersRep rep = DM__MEMBERS_REP__INIT;
        rep.n_members = ms.n;
        rep.members = ptrs;
        dm_gossip_stats(self->gossip, &rep.gossip_bytes_sent, &rep.gossip_msgs_sent);
        rep.uptime_ms = (uint64_t)(dm_clock_mono_ms() - self->started_ms);
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
        dm_envelope_init(&env, id, DM__ENVELOPE__BODY_MEMBERS_REP, &rep);
        dm_rpc_server_send(self->rpc, rid, &env);
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

