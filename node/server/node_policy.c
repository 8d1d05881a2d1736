/* node_policy.c: the mesh's governance on this node: the governance key
 * given at start (meshd --governance, kept by the catalog as a key chain),
 * the check every "gov/doc/NAME" entry passes before the catalog stores it
 * (it parses, and it does not tie with the active documents), the active
 * policy set rebuilt whenever the catalog's governance generation moves
 * (after a publish, or gossip), and the requests that publish and show it
 * (PolicyPublishReq, PolicyGetReq).
 *
 * The set is immutable once sealed and shared by reference: a decision
 * takes the set that was active when it began (policy/policy.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "base/log.h"
#include "catalog/catalog_local.h"
#include "server/node_priv.h"

/* PolicyGetRep carries the documents' YAML up to this many bytes in all,
 * well under the transport's message bound. */
#define DM_NODE_POLICY_REPLY_BYTES (12 << 20)

/* A document as the catalog holds it (copied out of its callback). */
typedef struct {
    char *key;
    uint64_t version;
    int64_t issued_at_ms;
    uint8_t *yaml;
    size_t len;
} s_doc;

typedef struct {
    s_doc *docs;
    size_t n, cap, bytes, max_bytes;
    bool nomem;
} s_docs;

static int s_collect_doc(void *ctx, const dm_catalog_entry_t *e)
{
    s_docs *d = ctx;
    if (d->max_bytes && d->bytes + e->payload_len > d->max_bytes) {
        dm_log_warn("policy: %s is left out of the reply: the documents exceed %zu bytes",
                    e->key, d->max_bytes);
        return 0;
    }
    s_doc doc = {strdup(e->key), e->version, e->issued_at_ms, malloc(e->payload_len + 1),
                 e->payload_len};
    if (!doc.key || !doc.yaml || !dm_array_reserve(&d->docs, &d->cap, d->n + 1, sizeof doc, 8)) {
        free(doc.key);
        free(doc.yaml);
        d->nomem = true;
        return 1;
    }
    memcpy(doc.yaml, e->payload, e->payload_len);
    doc.yaml[e->payload_len] = 0;
    d->docs[d->n++] = doc;
    d->bytes += e->payload_len;
    return 0;
}

static void s_docs_free(s_docs *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->docs[i].key);
        free(d->docs[i].yaml);
    }
    free(d->docs);
    memset(d, 0, sizeof *d);
}

/* Parses the document named key into *doc; else a line in why that says
 * why it does not parse. */
static dm_err s_parse(const char *key, const uint8_t *yaml, size_t len, dm_policy_doc_t **doc,
                      dm_buf_t *why)
{
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_policy_doc_parse(key, (const char *)yaml, len, doc, &diags);
    if (rc != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        dm_buf_why(why, "%s does not parse: %s", key, text.len ? text.data : dm_err_str(rc));
        dm_buf_free(&text);
    }
    dm_diags_clear(&diags);
    return rc;
}

/* Parses and adds one document to s; false with a line in why. */
static bool s_add(dm_policy_set_t *s, const char *key, const uint8_t *yaml, size_t len,
                  dm_buf_t *why)
{
    dm_policy_doc_t *doc = NULL;
    dm_err rc = s_parse(key, yaml, len, &doc, why);
    if (rc != DM_OK)
        return false;
    dm_buf_t reason = DM_BUF_INIT;
    rc = dm_policy_set_add(s, &doc, &reason);
    if (rc != DM_OK)
        dm_buf_why(why, "%s: %s", key, reason.len ? reason.data : dm_err_str(rc));
    dm_buf_free(&reason);
    return rc == DM_OK;
}

/* The catalog's check of a "gov/doc/NAME" payload: it parses, and adding
 * it to the active set (replacing a document of the same name) makes no
 * tie. Runs on the loop, the only thread that swaps the set. When the
 * governance entries changed since the set was built (a rotation earlier
 * in the same delta) the set may be another key's: ties are then left to
 * the rebuild, which logs and leaves out a document that ties. */
static bool s_gov_check(void *ctx, const char *key, const uint8_t *payload, size_t len,
                        dm_buf_t *why)
{
    dm_node_t *self = ctx;
    dm_policy_doc_t *doc = NULL;
    dm_err rc = s_parse(key, payload, len, &doc, why);
    if (rc == DM_OK && self->gov &&
        dm_catalog_gov_generation(self->catalog) == self->gov_generation) {
        dm_buf_t reason = DM_BUF_INIT;
        if ((rc = dm_policy_set_check(self->gov, doc, &reason)) != DM_OK)
            dm_buf_why(why, "%s: %s", key, reason.len ? reason.data : dm_err_str(rc));
        dm_buf_free(&reason);
    }
    dm_policy_doc_destroy(&doc);
    return rc == DM_OK;
}

static void s_cert(void *ctx, const char *domain, const uint8_t node[DM_POLICY_KEY_BYTES])
{
    s_docs *c = ctx; /* reused as a list: key = domain, yaml = node key */
    s_doc d = {strdup(domain), 0, 0, malloc(DM_POLICY_KEY_BYTES), DM_POLICY_KEY_BYTES};
    if (!d.key || !d.yaml || !dm_array_reserve(&c->docs, &c->cap, c->n + 1, sizeof d, 8)) {
        free(d.key);
        free(d.yaml);
        c->nomem = true;
        return;
    }
    memcpy(d.yaml, node, DM_POLICY_KEY_BYTES);
    c->docs[c->n++] = d;
}

/* Whether this node's domain is pinned to this node. */
static bool s_own_domain(dm_node_t *self)
{
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    return dm_catalog_owner(self->catalog, self->domain, owner) &&
           memcmp(owner, dm_identity_public(self->id), DM_ID_PUBLIC_BYTES) == 0;
}

/* Here rather than in node.c, which calls this file: the republish below
 * needs it too, and calls go one way (node_priv.h). */
bool dm_node__catalog_reconcile(dm_node_t *self, bool node_record)
{
    dm_catalog_local_t what = {dm_identity_public(self->id), self->domain, self->address,
                               node_record};
    dm_diags_t diags = DM_DIAGS_INIT;
    bool changed = dm_catalog_local_reconcile(self->catalog, self->store, &what,
                                              dm_clock_wall_ms(), &diags);
    for (size_t i = 0; i < diags.count; i++)
        dm_log_err("catalog: %s", diags.items[i].message);
    dm_diags_clear(&diags);
    return changed;
}

/* Publishes this node's node record and products and tells gossip. */
static void s_republish(dm_node_t *self)
{
    if (dm_node__catalog_reconcile(self, true) && self->gossip)
        dm_gossip_catalog_changed(self->gossip, dm_clock_mono_ms());
}

/* Hands the set's certificates to the catalog (domain ownership). When a
 * certificate moved this node's domain to it, its node record and products
 * are published at once: their publication was refused while the domain
 * was another node's, and nothing else would publish them before the
 * once-a-minute retry, while the mesh lists nothing of the domain. */
static void s_certificates(dm_node_t *self, const dm_policy_set_t *set)
{
    bool owned = s_own_domain(self);
    s_docs c = {0};
    if (set)
        dm_policy_set_each_certificate(set, s_cert, &c);
    const char **domains = calloc(c.n ? c.n : 1, sizeof *domains);
    uint8_t (*nodes)[DM_ID_PUBLIC_BYTES] = calloc(c.n ? c.n : 1, sizeof *nodes);
    if (!domains || !nodes || c.nomem) {
        dm_log_err("policy: certificates not applied: out of memory");
    } else {
        for (size_t i = 0; i < c.n; i++) {
            domains[i] = c.docs[i].key;
            memcpy(nodes[i], c.docs[i].yaml, DM_ID_PUBLIC_BYTES);
        }
        dm_buf_t why = DM_BUF_INIT;
        if (dm_catalog_set_certificates(self->catalog, domains,
                                        (const uint8_t(*)[DM_ID_PUBLIC_BYTES])nodes, c.n,
                                        &why) != DM_OK)
            dm_log_err("policy: certificates not applied: %s", why.len ? why.data : "error");
        dm_buf_free(&why);
    }
    if (!owned && s_own_domain(self))
        s_republish(self);
    free(domains);
    free(nodes);
    s_docs_free(&c);
}

/* Builds the set of the active documents (dm_catalog_gov_docs: per name the
 * newest chain key's) and makes it
 * the active one. A document that fails to parse or ties is logged and
 * left out (the catalog's check refuses both, so this only happens when
 * two new documents tie with each other). */
static void s_rebuild(dm_node_t *self)
{
    uint8_t key[DM_ID_PUBLIC_BYTES];
    uint64_t root = 0;
    dm_policy_set_t *set = NULL;
    if (dm_catalog_governance(self->catalog, key, &root)) {
        s_docs docs = {0};
        dm_catalog_gov_docs(self->catalog, s_collect_doc, &docs);
        /* withdrawals count: the set's version names it (catalog.h) */
        uint64_t version = dm_catalog_gov_docs_version(self->catalog);
        if (docs.nomem || dm_policy_set_new(version, &set) != DM_OK) {
            dm_log_err("policy: the governance set was not rebuilt: out of memory; the "
                       "previous one stays active");
            s_docs_free(&docs);
            return;
        }
        for (size_t i = 0; i < docs.n; i++) {
            dm_buf_t why = DM_BUF_INIT;
            if (!s_add(set, docs.docs[i].key, docs.docs[i].yaml, docs.docs[i].len, &why))
                dm_log_err("policy: document left out of the active set: %s", why.data);
            dm_buf_free(&why);
        }
        s_docs_free(&docs);
        if (dm_policy_set_seal(set) != DM_OK) {
            dm_log_err("policy: the governance set could not be sealed (out of memory); the "
                       "previous one stays active");
            dm_policy_set_unref(&set);
            return;
        }
    }
    s_certificates(self, set);
    bool certified = dm_catalog_certified(self->catalog, self->domain, dm_identity_public(self->id));
    pthread_rwlock_wrlock(&self->acc_lock);
    dm_policy_set_t *old = self->gov;
    self->gov = set;
    self->self_certified = certified;
    pthread_rwlock_unlock(&self->acc_lock);
    dm_policy_set_unref(&old);
    if (set)
        dm_log_info("policy: governance set version %" PRIu64 " active (%zu document(s), root "
                    "version %" PRIu64 ")%s",
                    dm_policy_set_version(set), dm_policy_set_ndocs(set), root,
                    certified ? "" : "; this node's domain is not certified: its products are "
                                     "served to its admins only");
}

void dm_node__policy_refresh(dm_node_t *self)
{
    uint64_t gen = dm_catalog_gov_generation(self->catalog);
    if (gen == self->gov_generation)
        return;
    self->gov_generation = gen;
    s_rebuild(self);
}

dm_policy_set_t *dm_node__policy_get(dm_node_t *self)
{
    pthread_rwlock_rdlock(&self->acc_lock);
    dm_policy_set_t *s = self->gov ? dm_policy_set_ref(self->gov) : NULL;
    pthread_rwlock_unlock(&self->acc_lock);
    return s;
}

dm_err dm_node__policy_start(dm_node_t *self, const char *governance, dm_buf_t *why)
{
    dm_catalog_set_gov_check(self->catalog, s_gov_check, self);
    if (governance) {
        uint8_t key[DM_ID_PUBLIC_BYTES];
        if (strlen(governance) != 2 * DM_ID_PUBLIC_BYTES ||
            !dm_identity_key_parse(governance, key)) {
            dm_buf_why(why, "invalid --governance '%.80s': expected the governance identity's "
                            "public key, 64 hex digits (dmctl whoami prints it)", governance);
            return DM_ERR_USAGE;
        }
        dm_buf_t reason = DM_BUF_INIT;
        dm_err rc = dm_catalog_set_governance(self->catalog, key, &reason);
        if (rc != DM_OK) {
            dm_buf_why(why, "--governance %s refused: %s", governance,
                       reason.len ? reason.data : dm_err_str(rc));
            dm_buf_free(&reason);
            return rc;
        }
        dm_buf_free(&reason);
    }
    uint8_t key[DM_ID_PUBLIC_BYTES];
    uint64_t root = 0;
    if (dm_catalog_governance(self->catalog, key, &root)) {
        char hex[DM_ID_HEX_BYTES];
        dm_identity_key_hex(key, hex);
        dm_log_info("governance key %s (root version %" PRIu64 ")", hex, root);
    } else {
        dm_log_info("no governance key: owner rules only (meshd --governance KEY)");
    }
    self->gov_generation = dm_catalog_gov_generation(self->catalog);
    s_rebuild(self);
    return DM_OK;
}

/* ---- requests ---- */

static dm_err s_verdict_code(dm_catalog_verdict v)
{
    return v == DM_CATALOG_MALFORMED ? DM_ERR_INVALID : DM_ERR_DENIED;
}

void dm_node__handle_policy_publish(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                                    const Dm__PolicyPublishReq *req,
                                    const dm_rpc_caller_t *caller)
{
    dm_catalog_entry_t e;
    memset(&e, 0, sizeof e);
    dm_buf_t why = DM_BUF_INIT, text = DM_BUF_INIT;
    size_t plen = strlen(DM_CATALOG_GOV_DOC_PREFIX);
    if (!dm_catalog_governance(self->catalog, (uint8_t[DM_ID_PUBLIC_BYTES]){0}, &(uint64_t){0})) {
        dm_buf_printf(&text, "this node has no governance key, so it takes no "
                             "governance documents (meshd --governance KEY)");
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_DENIED, text.data);
        goto out;
    }
    if (dm_catalog_entry_decode(req->entry.data, req->entry.len, &e) != DM_OK ||
        (strcmp(e.key, DM_CATALOG_GOV_ROOT_KEY) != 0 &&
         (strncmp(e.key, DM_CATALOG_GOV_DOC_PREFIX, plen) != 0 || !e.key[plen]))) {
        dm_buf_printf(&text, "the entry (%zu bytes) is not an encoded catalog "
                             "entry with key %s or %sNAME",
                      req->entry.len, DM_CATALOG_GOV_ROOT_KEY, DM_CATALOG_GOV_DOC_PREFIX);
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_INVALID, text.data);
        dm_node__audit(self, caller, false, "policy publish", NULL, NULL, "malformed entry", 0);
        goto out;
    }
    dm_catalog_verdict v = DM_CATALOG_MALFORMED;
    dm_err rc = dm_catalog_apply(self->catalog, &e, dm_clock_wall_ms(), &v, &why);
    if (rc != DM_OK) {
        dm_buf_printf(&text, "publishing %s failed: %s", e.key,
                      why.len ? why.data : dm_err_str(rc));
        dm_log_err("%s", text.data);
        dm_rpc_server_send_error(self->rpc, rid, id, rc, text.data);
        goto out;
    }
    char rule[DM_AUDIT_RULE_MAX];
    snprintf(rule, sizeof rule, "%s v%" PRIu64 "%s: %s", e.key, e.version,
             e.tombstone ? " (withdrawal)" : "", dm_catalog_verdict_name(v));
    if (v != DM_CATALOG_ACCEPTED) {
        dm_buf_printf(&text, "%s version %" PRIu64 " refused (%s): %s", e.key,
                      e.version, dm_catalog_verdict_name(v), why.len ? why.data : "no reason");
        dm_log_warn("%s", text.data);
        dm_rpc_server_send_error(self->rpc, rid, id, s_verdict_code(v), text.data);
    } else {
        dm_node__policy_refresh(self);
        /* The catalog does not advertise an entry a client handed it (it
         * may lag behind peers): offer it to a few members by digest. */
        dm_gossip_catalog_offer(self->gossip, dm_clock_mono_ms());
        Dm__PolicyPublishRep rep = DM__POLICY_PUBLISH_REP__INIT;
        rep.key = e.key;
        rep.version = e.version;
        dm_policy_set_t *set = dm_node__policy_get(self);
        rep.policy_version = set ? dm_policy_set_version(set) : 0;
        dm_policy_set_unref(&set);
        Dm__Envelope env;
        dm_envelope_init(&env, id, DM__ENVELOPE__BODY_POLICY_PUBLISH_REP, &rep);
        dm_rpc_server_send(self->rpc, rid, &env);
    }
    dm_node__audit(self, caller, v == DM_CATALOG_ACCEPTED, "policy publish", NULL, NULL, rule,
                   0);
out:
    dm_catalog_entry_clear(&e);
    dm_buf_free(&why);
    dm_buf_free(&text);
}

void dm_node__handle_policy_get(dm_node_t *self, zmq_msg_t *rid, uint64_t id)
{
    Dm__PolicyGetRep rep = DM__POLICY_GET_REP__INIT;
    uint8_t key[DM_ID_PUBLIC_BYTES];
    s_docs docs = {.max_bytes = DM_NODE_POLICY_REPLY_BYTES};
    Dm__PolicyDoc *pbs = NULL;
    Dm__PolicyDoc **ptrs = NULL;
    if (dm_catalog_governance(self->catalog, key, &rep.root_version)) {
        rep.governance_key.data = key;
        rep.governance_key.len = DM_ID_PUBLIC_BYTES;
        rep.max_version = dm_catalog_gov_max_version(self->catalog); /* the whole chain's */
        dm_catalog_gov_docs(self->catalog, s_collect_doc, &docs);
    }
    dm_policy_set_t *set = dm_node__policy_get(self);
    rep.policy_version = set ? dm_policy_set_version(set) : 0;
    dm_policy_set_unref(&set);
    pbs = calloc(docs.n ? docs.n : 1, sizeof *pbs);
    ptrs = calloc(docs.n ? docs.n : 1, sizeof *ptrs);
    if (docs.nomem || !pbs || !ptrs) {
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOMEM, "the node is out of memory");
        goto out;
    }
    for (size_t i = 0; i < docs.n; i++) {
        dm__policy_doc__init(&pbs[i]);
        pbs[i].key = docs.docs[i].key;
        pbs[i].version = docs.docs[i].version;
        pbs[i].issued_at_ms = docs.docs[i].issued_at_ms;
        pbs[i].yaml.data = docs.docs[i].yaml;
        pbs[i].yaml.len = docs.docs[i].len;
        ptrs[i] = &pbs[i];
    }
    rep.n_docs = docs.n;
    rep.docs = ptrs;
    Dm__Envelope env;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_POLICY_GET_REP, &rep);
    dm_rpc_server_send(self->rpc, rid, &env);
out:
    free(pbs);
    free(ptrs);
    s_docs_free(&docs);
}
