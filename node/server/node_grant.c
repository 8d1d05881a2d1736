/* node_grant.c: the requests that change or show who may do what on this
 * node and what it decided: AdminsReq (dmctl admins list|add|remove),
 * GrantReq (dmctl grant|revoke: the product's "acl/DOMAIN/NAME" catalog
 * entry), WhoamiReq (how the node sees its caller) and AuditReq (dmctl
 * audit). The decisions and the tables they change are node_access.c's,
 * the audit queue node_audit.c's. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "identity/identity.h"
#include "proto/catalog.pb-c.h"
#include "server/node_priv.h"
#include "storage/acl_db.h"

#define DM_NODE_AUDIT_REPLY_MAX 1000 /* records in one AuditRep at most */
#define DM_NODE_READER_MAX (sizeof DM_POLICY_GROUP_PREFIX + DM_CATALOG_NAME_MAX)

static void s_deny(dm_node_t *self, zmq_msg_t *rid, uint64_t id, dm_err code, const char *text)
{
    dm_rpc_server_send_error(self->rpc, rid, id, code, text);
}

/* ---- admins ---- */

static void s_admins_reply(dm_node_t *self, zmq_msg_t *rid, uint64_t id, bool changed)
{
    pthread_rwlock_rdlock(&self->acc_lock);
    size_t n = self->nadmins ? self->nadmins - 1 : 0;
    ProtobufCBinaryData *keys = calloc(n ? n : 1, sizeof *keys);
    uint8_t (*copy)[DM_ID_PUBLIC_BYTES] = malloc((n ? n : 1) * sizeof *copy);
    if (keys && copy)
        memcpy(copy, self->admins + 1, n * sizeof *copy);
    pthread_rwlock_unlock(&self->acc_lock);
    if (!keys || !copy) {
        s_deny(self, rid, id, DM_ERR_NOMEM, "the node is out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = (ProtobufCBinaryData){DM_ID_PUBLIC_BYTES, copy[i]};
    Dm__AdminsRep rep = DM__ADMINS_REP__INIT;
    rep.domain = self->domain;
    rep.node_key.data = (uint8_t *)dm_identity_public(self->id);
    rep.node_key.len = DM_ID_PUBLIC_BYTES;
    rep.n_keys = n;
    rep.keys = keys;
    rep.changed = changed;
    Dm__Envelope env;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_ADMINS_REP, &rep);
    dm_rpc_server_send(self->rpc, rid, &env);
out:
    free(keys);
    free(copy);
}

void dm_node__handle_admins(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                            const Dm__AdminsReq *req, const dm_rpc_caller_t *caller)
{
    if (req->op == DM__ADMINS_REQ__OP__LIST) {
        s_admins_reply(self, rid, id, false);
        return;
    }
    bool add = req->op == DM__ADMINS_REQ__OP__ADD;
    if (!add && req->op != DM__ADMINS_REQ__OP__REMOVE) {
        s_deny(self, rid, id, DM_ERR_PROTO, "unknown AdminsReq op (valid: LIST, ADD, REMOVE)");
        return;
    }
    const char *action = add ? "admins add" : "admins remove";
    dm_buf_t text = DM_BUF_INIT;
    dm_node__verdict_t v;
    if (!dm_node__gate(self, caller, action, action, self->domain, NULL, &v, &text)) {
        s_deny(self, rid, id, DM_ERR_DENIED, text.data);
        dm_buf_free(&text);
        return;
    }
    char hex[DM_ID_HEX_BYTES];
    if (req->key.len == DM_ID_PUBLIC_BYTES)
        dm_identity_key_hex(req->key.data, hex);
    if (req->key.len != DM_ID_PUBLIC_BYTES) {
        dm_node__audit_outcome(self, caller, action, NULL, NULL, &v, false,
                               "a key of %zu bytes", req->key.len);
        dm_buf_printf(&text, "the key is %zu bytes; an ed25519 public key is %d bytes (64 hex "
                             "digits)", req->key.len, DM_ID_PUBLIC_BYTES);
        s_deny(self, rid, id, DM_ERR_INVALID, text.data);
    } else if (!add && memcmp(req->key.data, dm_identity_public(self->id), DM_ID_PUBLIC_BYTES) == 0) {
        dm_node__audit_outcome(self, caller, action, NULL, NULL, &v, false,
                               "%s is the node's own key", hex);
        s_deny(self, rid, id, DM_ERR_INVALID,
               "the node's own key is always an admin of its domain and cannot be removed");
    } else {
        bool changed = false;
        dm_err rc = add ? dm_acl_db_admin_add(self->store, req->key.data, &changed, &text)
                        : dm_acl_db_admin_remove(self->store, req->key.data, &changed, &text);
        if (rc == DM_OK && changed)
            rc = dm_node__admins_reload(self, &text);
        if (rc != DM_OK) {
            dm_buf_t msg = DM_BUF_INIT;
            dm_buf_printf(&msg, "%s failed: %s", action, text.len ? text.data : dm_err_str(rc));
            if (rc != DM_ERR_TOOBIG)
                dm_log_err("%s", msg.data);
            dm_node__audit_outcome(self, caller, action, NULL, NULL, &v, false, "%s %s: %s",
                                   add ? "adding" : "removing", hex, dm_err_str(rc));
            s_deny(self, rid, id, rc, msg.data);
            dm_buf_free(&msg);
        } else {
            dm_node__audit_outcome(self, caller, action, NULL, NULL, &v, true, "%s %s%s",
                                   add ? "added" : "removed", hex,
                                   changed ? "" : add ? " (already an admin)" : " (not an admin)");
            if (changed)
                dm_log_info("access: %s %s", action, hex);
            s_admins_reply(self, rid, id, changed);
        }
    }
    dm_buf_free(&text);
}

/* ---- grants ---- */

/* Normalizes reader into out ("HEX" lowercase or "group:NAME"); false with
 * a line in text when it is neither. */
static bool s_reader(const char *reader, char out[DM_NODE_READER_MAX], dm_buf_t *text)
{
    size_t plen = strlen(DM_POLICY_GROUP_PREFIX);
    uint8_t key[DM_ID_PUBLIC_BYTES];
    if (strncmp(reader, DM_POLICY_GROUP_PREFIX, plen) == 0 && dm_text_is_name(reader + plen) &&
        strlen(reader) < DM_NODE_READER_MAX) {
        snprintf(out, DM_NODE_READER_MAX, "%s", reader);
        return true;
    }
    if (strlen(reader) == 2 * DM_ID_PUBLIC_BYTES && dm_identity_key_parse(reader, key)) {
        dm_identity_key_hex(key, out);
        return true;
    }
    dm_buf_printf(text, "reader '%.80s' is neither a key (64 hex digits) nor group:NAME (NAME: "
                        DM_TEXT_NAME_RULE ")", reader);
    return false;
}

/* Adds s to (*v, *n) unless there; removes it when del. true if changed. */
static bool s_set(char ***v, size_t *n, const char *s, bool del)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i], s) != 0)
            continue;
        if (!del)
            return false;
        free((*v)[i]);
        memmove(&(*v)[i], &(*v)[i + 1], (*n - i - 1) * sizeof **v);
        (*n)--;
        return true;
    }
    if (del)
        return false;
    char **grown = realloc(*v, (*n + 1) * sizeof **v);
    char *copy = strdup(s);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            *v = grown;
        return false;
    }
    *v = grown;
    size_t at = 0; /* kept ascending, as the record says */
    while (at < *n && strcmp((*v)[at], s) < 0)
        at++;
    memmove(&(*v)[at + 1], &(*v)[at], (*n - at) * sizeof **v);
    (*v)[at] = copy;
    (*n)++;
    return true;
}

static void s_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Copies the product's current acl lists out of the table. */
static bool s_acl_copy(dm_node_t *self, const char *product, dm_node__acl_t *out)
{
    bool ok = true;
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&self->acc_lock);
    const dm_node__acl_t *a = dm_node__acl_find(self, product);
    for (size_t i = 0; a && ok && i < a->ngranted; i++)
        ok = s_set(&out->granted, &out->ngranted, a->granted[i], false);
    for (size_t i = 0; a && ok && i < a->nrevoked; i++)
        ok = s_set(&out->revoked, &out->nrevoked, a->revoked[i], false);
    pthread_rwlock_unlock(&self->acc_lock);
    return ok;
}

/* Publishes the new acl record of product; DM_OK or the catalog's error. */
static dm_err s_publish_acl(dm_node_t *self, const char *product, const dm_node__acl_t *a,
                            dm_buf_t *why)
{
    Dm__AclRecord r = DM__ACL_RECORD__INIT;
    r.granted = a->granted;
    r.n_granted = a->ngranted;
    r.revoked = a->revoked;
    r.n_revoked = a->nrevoked;
    size_t len = dm__acl_record__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return DM_ERR_NOMEM;
    dm__acl_record__pack(&r, buf);
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "%s%s", DM_CATALOG_ACL_PREFIX, product);
    dm_err rc = dm_catalog_publish(self->catalog, key, buf, len, false, dm_clock_wall_ms(), why);
    free(buf);
    if (rc == DM_OK)
        dm_gossip_catalog_changed(self->gossip, dm_clock_mono_ms());
    return rc;
}

/* Sends GrantRep with the product's effective readers now. */
static void s_grant_reply(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const char *product,
                          bool changed)
{
    const dm_product_ref_t *ref = NULL;
    if (dm_registry_acquire(self->registry, product, strlen(product), &ref) != DM_OK) {
        s_deny(self, rid, id, DM_ERR_NOTFOUND, "the product was deregistered meanwhile");
        return;
    }
    pthread_rwlock_rdlock(&self->acc_lock);
    const dm_node__acl_t *a = dm_node__acl_find(self, product);
    const char **v = NULL;
    size_t n = dm_node__readers_of(ref->contract, a, &v);
    Dm__GrantRep rep = DM__GRANT_REP__INIT;
    rep.readers = (char **)v;
    rep.n_readers = n;
    rep.version = a ? a->version : 0;
    rep.changed = changed;
    Dm__Envelope env;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_GRANT_REP, &rep);
    dm_rpc_server_send(self->rpc, rid, &env);
    pthread_rwlock_unlock(&self->acc_lock);
    free(v);
    dm_registry_release(self->registry, ref);
}

void dm_node__handle_grant(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const Dm__GrantReq *req,
                           const dm_rpc_caller_t *caller)
{
    const char *domain = req->domain ? req->domain : "", *name = req->product ? req->product : "";
    const char *action = req->revoke ? "revoke" : "grant";
    char what[200], product[DM_AUDIT_PRODUCT_MAX], reader[DM_NODE_READER_MAX];
    snprintf(what, sizeof what, "%s on %.63s/%.63s", action, domain, name);
    snprintf(product, sizeof product, "%.63s/%.63s", domain, name);
    dm_buf_t text = DM_BUF_INIT;
    dm_node__acl_t a;
    memset(&a, 0, sizeof a);
    const dm_product_ref_t *ref = NULL;
    dm_node__verdict_t v;
    if (!dm_node__gate(self, caller, action, what, domain, name, &v, &text)) {
        s_deny(self, rid, id, DM_ERR_DENIED, text.data);
        goto out;
    }
    if (strcmp(domain, self->domain) != 0 ||
        dm_registry_acquire(self->registry, product, strlen(product), &ref) != DM_OK) {
        dm_node__audit_outcome(self, caller, action, domain, name, &v, false, "no product %s",
                               product);
        dm_registry_unknown(self->registry, product, self->domain, &text);
        s_deny(self, rid, id, DM_ERR_NOTFOUND, text.data);
        goto out;
    }
    dm_registry_release(self->registry, ref);
    if (!s_reader(req->reader ? req->reader : "", reader, &text)) {
        dm_node__audit_outcome(self, caller, action, domain, name, &v, false,
                               "not a reader: '%.80s'", req->reader ? req->reader : "");
        s_deny(self, rid, id, DM_ERR_INVALID, text.data);
        goto out;
    }
    if (!s_acl_copy(self, product, &a)) {
        dm_node__audit_outcome(self, caller, action, domain, name, &v, false, "out of memory");
        s_deny(self, rid, id, DM_ERR_NOMEM, "the node is out of memory");
        goto out;
    }
    /* Effective readers = (contract readers + granted) - revoked: a grant
     * undoes a revocation, a revocation a grant. */
    bool changed = s_set(&a.revoked, &a.nrevoked, reader, !req->revoke);
    changed = s_set(&a.granted, &a.ngranted, reader, req->revoke) || changed;
    if (a.ngranted + a.nrevoked > DM_NODE_ACL_MAX_READERS) {
        dm_buf_printf(&text, "%s: %s already has %d granted and revoked readers, the most one "
                             "product may have", what, product, DM_NODE_ACL_MAX_READERS);
        dm_node__audit_outcome(self, caller, action, domain, name, &v, false,
                               "%d readers already", DM_NODE_ACL_MAX_READERS);
        s_deny(self, rid, id, DM_ERR_TOOBIG, text.data);
        goto out;
    }
    dm_err rc = changed ? s_publish_acl(self, product, &a, &text) : DM_OK;
    if (rc != DM_OK) {
        dm_buf_t msg = DM_BUF_INIT;
        dm_buf_printf(&msg, "%s failed: %s", what, text.len ? text.data : dm_err_str(rc));
        dm_log_err("%s", msg.data);
        dm_node__audit_outcome(self, caller, action, domain, name, &v, false, "%s %s: %s",
                               action, reader, dm_err_str(rc));
        s_deny(self, rid, id, rc, msg.data);
        dm_buf_free(&msg);
        goto out;
    }
    dm_node__audit_outcome(self, caller, action, domain, name, &v, true, "%s %s%s",
                           req->revoke ? "revoked" : "granted", reader,
                           changed ? "" : " (no change)");
    if (changed) {
        dm_node__acl_reload(self); /* effective at once: decisions read the table */
        dm_log_info("access: %s %s on %s", action, reader, product);
    }
    s_grant_reply(self, rid, id, product, changed);
out:
    s_strv_free(a.granted, a.ngranted);
    s_strv_free(a.revoked, a.nrevoked);
    dm_buf_free(&text);
}

/* ---- whoami ---- */

void dm_node__handle_whoami(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                            const dm_rpc_caller_t *caller)
{
    Dm__WhoamiRep rep = DM__WHOAMI_REP__INIT;
    rep.key.data = (uint8_t *)caller->key;
    rep.key.len = DM_ID_PUBLIC_BYTES;
    rep.verified = caller->verified;
    rep.admin = dm_node__is_admin(self, caller);
    rep.domain = self->domain;
    rep.query_timeout_ms = (uint64_t)self->query_timeout_ms;
    dm_buf_t groups = DM_BUF_INIT;
    dm_policy_set_t *gov = dm_node__policy_get(self);
    if (gov && caller->verified)
        dm_policy_set_groups_of(gov, caller->key, &groups);
    dm_policy_set_unref(&gov);
    rep.groups = groups.len ? groups.data : "";
    Dm__Envelope env;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_WHOAMI_REP, &rep);
    dm_rpc_server_send(self->rpc, rid, &env);
    dm_buf_free(&groups);
}

/* ---- audit ---- */

/* Fills one AuditRecord from r (pointers into r: r must outlive it). */
static void s_record_pb(Dm__AuditRecord *pb, dm_audit_record_t *r)
{
    dm__audit_record__init(pb);
    pb->seq = r->seq;
    pb->at_ms = r->at_ms;
    pb->caller.data = r->caller;
    pb->caller.len = DM_AUDIT_KEY_BYTES;
    pb->verified = r->verified;
    pb->action = r->action;
    pb->product = r->product;
    pb->allowed = r->allowed;
    pb->rule = r->rule;
    pb->policy_version = r->policy_version;
}

void dm_node__handle_audit(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const Dm__AuditReq *req,
                           const dm_rpc_caller_t *caller)
{
    bool admin = dm_node__is_admin(self, caller);
    dm_node__audit(self, caller, admin, "audit", NULL, NULL,
                   admin ? "owner: admin" : "owner: not an admin", 0);
    if (!admin) {
        char hex[DM_RPC_CALLER_HEX_BYTES], text[512];
        dm_rpc_caller_hex(caller, hex);
        snprintf(text, sizeof text,
                 "permission denied: reading the audit of %s needs a %s admin; you are %s",
                 self->domain, self->domain, hex);
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_DENIED, text);
        return;
    }
    /* What this request asks for includes what was decided until now. */
    dm_node__audit_flush(self, true);
    size_t limit = req->limit && req->limit < DM_NODE_AUDIT_REPLY_MAX ? req->limit
                                                                       : DM_NODE_AUDIT_REPLY_MAX;
    dm_audit_record_t *recs = NULL;
    size_t n = 0;
    bool more = false;
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_audit_list(self->store, req->since_ms, req->after, limit, &recs, &n, &more,
                              &why);
    Dm__AuditRecord *pbs = rc == DM_OK ? calloc(n ? n : 1, sizeof *pbs) : NULL;
    Dm__AuditRecord **ptrs = pbs ? calloc(n ? n : 1, sizeof *ptrs) : NULL;
    if (rc != DM_OK) {
        char text[600];
        snprintf(text, sizeof text, "the node could not read its audit: %s",
                 why.len ? why.data : dm_err_str(rc));
        dm_log_err("%s", text);
        dm_rpc_server_send_error(self->rpc, rid, id, rc, text);
    } else if (!ptrs) {
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOMEM, "the node is out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            s_record_pb(&pbs[i], &recs[i]);
            ptrs[i] = &pbs[i];
        }
        Dm__AuditRep rep = DM__AUDIT_REP__INIT;
        rep.n_records = n;
        rep.records = ptrs;
        rep.more = more;
        Dm__Envelope env;
        dm_envelope_init(&env, id, DM__ENVELOPE__BODY_AUDIT_REP, &rep);
        dm_rpc_server_send(self->rpc, rid, &env);
    }
    dm_buf_free(&why);
    free(ptrs);
    free(pbs);
    free(recs);
}
