/* node_access.c: who may do what on this node: the domain's admins (the
 * node key plus storage/acl_db's, kept in memory), the owner's grants of
 * its products (their "acl/DOMAIN/NAME" catalog entries, kept in memory),
 * the decision of policy/policy.h for one caller and product, and the gate
 * that refuses a write in the loop before it reaches the write pipeline.
 *
 * The loop writes these tables; query workers read them when they decide
 * (dm_query_pool_set_access), so every read and write is under acc_lock
 * and a decision never touches LMDB or the catalog. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/varint.h"
#include "proto/catalog.pb-c.h"
#include "server/node_priv.h"
#include "storage/acl_db.h"

#define DM_NODE_NAME_BUF (DM_CATALOG_NAME_MAX + 1)
/* A contract a non-admin sends is read for its name only up to this size:
 * naming the refused product must not cost the loop a large parse. */
#define DM_NODE_REFUSAL_PARSE_MAX (64 << 10)

/* ---- admins ---- */

/* Reads the stored admins and puts the node key first; swaps them in. */
static dm_err s_admins_load(dm_node_t *self, dm_buf_t *why)
{
    uint8_t (*stored)[DM_ACL_DB_KEY_BYTES] = NULL;
    size_t n = 0;
    dm_err rc = dm_acl_db_admins(self->store, &stored, &n, why);
    if (rc != DM_OK)
        return rc;
    uint8_t (*all)[DM_ID_PUBLIC_BYTES] = malloc((n + 1) * sizeof *all);
    if (!all) {
        free(stored);
        dm_buf_why(why, "cannot load the admins: out of memory");
        return DM_ERR_NOMEM;
    }
    memcpy(all[0], dm_identity_public(self->id), DM_ID_PUBLIC_BYTES);
    size_t k = 1;
    for (size_t i = 0; i < n; i++)
        if (memcmp(stored[i], all[0], DM_ID_PUBLIC_BYTES) != 0)
            memcpy(all[k++], stored[i], DM_ID_PUBLIC_BYTES);
    free(stored);
    pthread_rwlock_wrlock(&self->acc_lock);
    free(self->admins);
    self->admins = all;
    self->nadmins = k;
    pthread_rwlock_unlock(&self->acc_lock);
    return DM_OK;
}

/* Whether key is in the admins; acc_lock held. The stored ones are
 * ascending after the node key. */
static bool s_admin_locked(const dm_node_t *self, const uint8_t *key)
{
    if (self->nadmins == 0)
        return false;
    if (memcmp(self->admins[0], key, DM_ID_PUBLIC_BYTES) == 0)
        return true;
    size_t lo = 1, hi = self->nadmins;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(self->admins[mid], key, DM_ID_PUBLIC_BYTES);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool dm_node__is_admin(dm_node_t *self, const dm_rpc_caller_t *caller)
{
    if (!caller->verified)
        return false;
    pthread_rwlock_rdlock(&self->acc_lock);
    bool yes = s_admin_locked(self, caller->key);
    pthread_rwlock_unlock(&self->acc_lock);
    return yes;
}

/* For node_grant.c: reloads after a change through acl_db. */
dm_err dm_node__admins_reload(dm_node_t *self, dm_buf_t *why) { return s_admins_load(self, why); }

/* ---- the owner's grants ---- */

static void s_acl_clear(dm_node__acl_t *a)
{
    for (size_t i = 0; i < a->ngranted; i++)
        free(a->granted[i]);
    for (size_t i = 0; i < a->nrevoked; i++)
        free(a->revoked[i]);
    free(a->granted);
    free(a->revoked);
    memset(a, 0, sizeof *a);
}

/* Copies n strings of src into *dst (NULL when n is 0). */
static bool s_strv_copy(char ***dst, char *const *src, size_t n)
{
    *dst = NULL;
    if (n == 0)
        return true;
    if (!(*dst = calloc(n, sizeof **dst)))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((*dst)[i] = strdup(src[i])))
            return false;
    return true;
}

/* Decodes the acl entry of product into *a; false if it is absent, a
 * tombstone or does not decode (logged: it is the node's own entry). */
static bool s_acl_read(dm_node_t *self, const char *product, dm_node__acl_t *a)
{
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "%s%s", DM_CATALOG_ACL_PREFIX, product);
    dm_catalog_entry_t e;
    memset(&e, 0, sizeof e);
    if (dm_catalog_get(self->catalog, dm_identity_public(self->id), key, &e) != DM_OK)
        return false;
    bool ok = false;
    Dm__AclRecord *r = e.tombstone ? NULL : dm__acl_record__unpack(NULL, e.payload_len, e.payload);
    if (r && r->n_granted + r->n_revoked <= DM_NODE_ACL_MAX_READERS) {
        snprintf(a->product, sizeof a->product, "%s", product);
        a->version = e.version;
        a->ngranted = r->n_granted;
        a->nrevoked = r->n_revoked;
        ok = s_strv_copy(&a->granted, r->granted, r->n_granted) &&
             s_strv_copy(&a->revoked, r->revoked, r->n_revoked);
        if (!ok)
            s_acl_clear(a);
    } else if (!e.tombstone) {
        dm_log_err("access: the catalog entry %s does not decode as an acl record; its grants "
                   "are ignored until dmctl grant publishes it again",
                   key);
    }
    if (r)
        dm__acl_record__free_unpacked(r, NULL);
    dm_catalog_entry_clear(&e);
    return ok;
}

static int s_acl_cmp(const void *a, const void *b)
{
    return strcmp(((const dm_node__acl_t *)a)->product, ((const dm_node__acl_t *)b)->product);
}

void dm_node__acl_reload(dm_node_t *self)
{
    dm_product_t *list = NULL;
    size_t n = 0;
    dm_buf_t why = DM_BUF_INIT;
    if (dm_store_product_list(self->store, &list, &n, &why) != DM_OK) {
        dm_log_err("access: grants not reloaded: %s", why.len ? why.data : "store error");
        dm_buf_free(&why);
        return;
    }
    dm_buf_free(&why);
    dm_node__acl_t *acls = calloc(n ? n : 1, sizeof *acls);
    size_t k = 0;
    for (size_t i = 0; acls && i < n; i++) {
        char product[DM_AUDIT_PRODUCT_MAX];
        snprintf(product, sizeof product, "%.63s/%.63s", list[i].domain, list[i].name);
        if (s_acl_read(self, product, &acls[k]))
            k++;
    }
    for (size_t i = 0; i < n; i++)
        dm_store_product_clear(&list[i]);
    free(list);
    if (!acls) {
        dm_log_err("access: grants not reloaded: out of memory");
        return;
    }
    qsort(acls, k, sizeof *acls, s_acl_cmp);
    pthread_rwlock_wrlock(&self->acc_lock);
    dm_node__acl_t *old = self->acls;
    size_t nold = self->nacls;
    self->acls = acls;
    self->nacls = k;
    pthread_rwlock_unlock(&self->acc_lock);
    for (size_t i = 0; i < nold; i++)
        s_acl_clear(&old[i]);
    free(old);
}

/* The acl of product ("domain/name"), or NULL; acc_lock held. */
const dm_node__acl_t *dm_node__acl_find(const dm_node_t *self, const char *product)
{
    dm_node__acl_t key;
    snprintf(key.product, sizeof key.product, "%s", product);
    return bsearch(&key, self->acls, self->nacls, sizeof key, s_acl_cmp);
}

static bool s_in(const char *s, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, v[i]) == 0)
            return true;
    return false;
}

static int s_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The effective readers of c with acl (may be NULL): (contract readers +
 * granted) - revoked, ascending and unique, as pointers into c and acl
 * (*out malloc'd). acc_lock held while they are used. */
size_t dm_node__readers_of(const dm_contract_t *c, const dm_node__acl_t *acl, const char ***out)
{
    size_t cap = c->nreaders + (acl ? acl->ngranted : 0);
    const char **v = malloc((cap ? cap : 1) * sizeof *v);
    size_t n = 0;
    *out = v;
    if (!v)
        return 0;
    for (size_t i = 0; i < cap; i++) {
        const char *r = i < c->nreaders ? c->readers[i] : acl->granted[i - c->nreaders];
        if (!acl || !s_in(r, acl->revoked, acl->nrevoked))
            v[n++] = r;
    }
    qsort(v, n, sizeof *v, s_str_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0)
            v[u++] = v[i];
    return u;
}

void dm_node__readers(dm_node_t *self, const dm_contract_t *c, dm_buf_t *out)
{
    char product[DM_AUDIT_PRODUCT_MAX];
    snprintf(product, sizeof product, "%.63s/%.63s", c->domain, c->name);
    pthread_rwlock_rdlock(&self->acc_lock);
    const char **v = NULL;
    size_t n = dm_node__readers_of(c, dm_node__acl_find(self, product), &v);
    for (size_t i = 0; i < n; i++)
        dm_buf_printf(out, "%s%s", i ? "," : "", v[i]);
    pthread_rwlock_unlock(&self->acc_lock);
    free(v);
}

/* ---- decisions ---- */

/* Decides req with the product's contract c (NULL: no product, or one
 * not registered yet); acc_lock held. */
static dm_err s_decide_locked(dm_node_t *self, const dm_rpc_caller_t *caller,
                              dm_policy_action action, const char *domain, const char *name,
                              const dm_contract_t *c, dm_policy_decision_t *out)
{
    dm_policy_owner_t owner = {self->domain, (const uint8_t(*)[DM_POLICY_KEY_BYTES])self->admins,
                               self->nadmins};
    dm_policy_product_t p;
    memset(&p, 0, sizeof p);
    const char **readers = NULL, **fields = NULL, **classes = NULL;
    dm_err rc = DM_ERR_NOMEM;
    if (c) {
        char product[DM_AUDIT_PRODUCT_MAX];
        snprintf(product, sizeof product, "%.63s/%.63s", c->domain, c->name);
        p.nreaders = dm_node__readers_of(c, dm_node__acl_find(self, product), &readers);
        fields = malloc((c->nfields ? c->nfields : 1) * sizeof *fields);
        classes = malloc((c->nfields ? c->nfields : 1) * sizeof *classes);
        if (!readers || !fields || !classes)
            goto out;
        for (size_t i = 0; i < c->nfields; i++) {
            fields[i] = c->fields[i].name;
            classes[i] = c->fields[i].classification;
        }
        p = (dm_policy_product_t){c->domain, c->name, (const char *const *)c->tags, c->ntags,
                                  c->access, readers, p.nreaders, fields, classes, c->nfields};
    } else if (name) {
        p.domain = domain;
        p.name = name;
        p.access = DM_ACCESS_RESTRICTED;
    }
    dm_policy_request_t req = {caller->verified ? caller->key : NULL, action,
                               c || name ? &p : NULL};
    rc = dm_policy_decide(self->gov, &owner, &req, out);
    /* An uncertified domain's records and metadata are not served to
     * others (docs/security.md): its claim may be an impostor's. */
    if (rc == DM_OK && out->allow && action != DM_POLICY_WRITE && !self->self_certified &&
        !(caller->verified && s_admin_locked(self, caller->key))) {
        out->allow = false;
        snprintf(out->rule, sizeof out->rule, "%s", DM_NODE_RULE_UNCERTIFIED);
        snprintf(out->reason, sizeof out->reason,
                 "not served: %s is not certified by the mesh's governance", self->domain);
    }
out:
    free(readers);
    free(fields);
    free(classes);
    return rc;
}

dm_err dm_node__catalog_contract(dm_node_t *self, const char *domain, const char *name,
                                 dm_contract_t ***list, uint8_t owner[DM_ID_PUBLIC_BYTES])
{
    *list = NULL;
    char key[DM_CATALOG_KEY_MAX];
    dm_catalog_entry_t e = {0};
    int kn = snprintf(key, sizeof key, "product/%s/%s", domain, name);
    if (kn < 0 || (size_t)kn >= sizeof key || !dm_catalog_owner(self->catalog, domain, owner))
        return DM_ERR_NOTFOUND;
    dm_err rc = dm_catalog_get(self->catalog, owner, key, &e);
    if (rc == DM_OK && e.tombstone)
        rc = DM_ERR_NOTFOUND;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    if (rc == DM_OK) {
        rc = dm_contract_parse_opts("catalog", (const char *)e.payload, e.payload_len, NULL,
                                    DM_CONTRACT_NO_COMPILE, list, &n, &diags);
        if (rc != DM_ERR_NOMEM && (rc != DM_OK || n != 1))
            rc = DM_ERR_INVALID;
        if (rc != DM_OK)
            dm_contract_list_destroy(list, n);
    }
    dm_diags_clear(&diags);
    dm_catalog_entry_clear(&e);
    return rc;
}

dm_err dm_node__decide_remote(dm_node_t *self, const dm_rpc_caller_t *caller,
                              dm_policy_action action, const dm_contract_t *c,
                              const uint8_t origin[DM_ID_PUBLIC_BYTES],
                              dm_policy_decision_t *out)
{
    memset(out, 0, sizeof *out);
    const char **fields = malloc((c->nfields ? c->nfields : 1) * sizeof *fields);
    const char **classes = malloc((c->nfields ? c->nfields : 1) * sizeof *classes);
    dm_err rc = DM_ERR_NOMEM;
    if (!fields || !classes)
        goto out;
    for (size_t i = 0; i < c->nfields; i++) {
        fields[i] = c->fields[i].name;
        classes[i] = c->fields[i].classification;
    }
    /* Its admins and grants are its node's: not known here, so none. */
    dm_policy_owner_t owner = {c->domain, NULL, 0};
    dm_policy_product_t p = {c->domain, c->name, (const char *const *)c->tags, c->ntags,
                             c->access, (const char *const *)c->readers, c->nreaders,
                             fields, classes, c->nfields};
    dm_policy_request_t req = {caller->verified ? caller->key : NULL, action, &p};
    pthread_rwlock_rdlock(&self->acc_lock);
    rc = dm_policy_decide(self->gov, &owner, &req, out);
    pthread_rwlock_unlock(&self->acc_lock);
    if (rc == DM_OK && out->allow && action != DM_POLICY_WRITE &&
        !dm_catalog_certified(self->catalog, c->domain, origin)) {
        out->allow = false;
        snprintf(out->rule, sizeof out->rule, "%s", DM_NODE_RULE_UNCERTIFIED);
        snprintf(out->reason, sizeof out->reason,
                 "not served: domain %.100s is not certified to its publisher by the mesh's "
                 "governance (meshq products marks it UNCERTIFIED)", c->domain);
    }
out:
    free(fields);
    free(classes);
    return rc;
}

/* Appends to d's rule what an allowed read applies: "; masks email=hash,
 * phone=last4; row filter PREDICATE" (cut at the rule's size). */
static void s_rule_masks(dm_policy_decision_t *d, const dm_contract_t *c)
{
    size_t len = strlen(d->rule), cap = sizeof d->rule;
    bool first = true;
    for (size_t i = 0; d->masks && i < d->nmasks && i < c->nfields && len < cap; i++) {
        if (d->masks[i] == DM_POLICY_MASK_NONE)
            continue;
        int k = snprintf(d->rule + len, cap - len, "%s%s=%s", first ? "; masks " : ",",
                         c->fields[i].name, dm_policy_mask_name(d->masks[i]));
        len = k < 0 || (size_t)k >= cap - len ? cap : len + (size_t)k;
        first = false;
    }
    if (d->row_filter && len < cap)
        snprintf(d->rule + len, cap - len, "; row filter %s", d->row_filter);
}

/* Whether caller may describe the node's registered product qualified
 * ("domain/name"), or could but for an uncertified domain (the listing
 * shows those, marked): not audited, it only decides whether a "did you
 * mean" may name it. */
static bool s_describable(dm_node_t *self, const dm_rpc_caller_t *caller, const char *qualified)
{
    const dm_product_ref_t *ref = NULL;
    if (dm_registry_acquire(self->registry, qualified, strlen(qualified), &ref) != DM_OK)
        return false;
    dm_policy_decision_t d;
    memset(&d, 0, sizeof d);
    pthread_rwlock_rdlock(&self->acc_lock);
    bool yes = s_decide_locked(self, caller, DM_POLICY_DESCRIBE, ref->contract->domain,
                               ref->contract->name, ref->contract, &d) == DM_OK &&
               (d.allow || strcmp(d.rule, DM_NODE_RULE_UNCERTIFIED) == 0);
    pthread_rwlock_unlock(&self->acc_lock);
    dm_policy_decision_clear(&d);
    dm_registry_release(self->registry, ref);
    return yes;
}

/* The query workers' "may a did you mean name it" (query_pool.h). */
static bool s_query_describable(void *ctx, const dm_rpc_caller_t *caller, const char *domain,
                                const char *product)
{
    char q[DM_AUDIT_PRODUCT_MAX];
    int n = snprintf(q, sizeof q, "%s/%s", domain, product);
    return n > 0 && (size_t)n < sizeof q && s_describable(ctx, caller, q);
}

void dm_node__unknown(dm_node_t *self, const dm_rpc_caller_t *caller, const char *qualified,
                      dm_buf_t *out)
{
    dm_buf_t hint = DM_BUF_INIT;
    dm_registry_suggest(self->registry, qualified, &hint);
    dm_buf_printf(out, "unknown product '%.*s' on this node (domain %s)",
                  DM_REGISTRY_UNKNOWN_SHOWN, qualified, self->domain);
    if (hint.len && s_describable(self, caller, hint.data))
        dm_buf_printf(out, "; did you mean '%s'?", hint.data);
    dm_buf_free(&hint);
}

dm_err dm_node__decide(dm_node_t *self, const dm_rpc_caller_t *caller, dm_policy_action action,
                       const char *domain, const char *name, dm_policy_decision_t *out,
                       dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    const dm_product_ref_t *ref = NULL;
    if (name) {
        char q[DM_AUDIT_PRODUCT_MAX];
        int qn = snprintf(q, sizeof q, "%s/%s", domain, name);
        bool known = qn > 0 && (size_t)qn < sizeof q && strcmp(domain, self->domain) == 0 &&
                     dm_registry_acquire(self->registry, q, (size_t)qn, &ref) == DM_OK;
        if (!known && action != DM_POLICY_WRITE) {
            dm_buf_t text = DM_BUF_INIT;
            dm_node__unknown(self, caller, q, &text);
            dm_buf_why(why, "%s", text.data ? text.data : "unknown product");
            dm_buf_free(&text);
            return DM_ERR_NOTFOUND;
        }
    }
    pthread_rwlock_rdlock(&self->acc_lock);
    dm_err rc = s_decide_locked(self, caller, action, domain, name, ref ? ref->contract : NULL,
                                out);
    pthread_rwlock_unlock(&self->acc_lock);
    if (rc == DM_OK && out->allow && action == DM_POLICY_READ && ref)
        s_rule_masks(out, ref->contract);
    if (ref)
        dm_registry_release(self->registry, ref);
    if (rc != DM_OK)
        dm_buf_why(why, "the access decision failed: out of memory");
    return rc;
}

/* The query workers' decision: one per product the SQL names, audited. A
 * relayed scan reads only what its session's grant names, and then as
 * its consumer would directly: a relay never reads more. */
static dm_err s_query_decide(void *ctx, const dm_rpc_caller_t *caller, const char *domain,
                             const char *product, dm_policy_decision_t *out, dm_buf_t *why)
{
    dm_node_t *self = ctx;
    if (caller->relayed && !dm_node__fed_allows(self, caller, domain, product)) {
        memset(out, 0, sizeof *out);
        snprintf(out->rule, sizeof out->rule, "%s", DM_NODE_RULE_FED_GRANT);
        snprintf(out->reason, sizeof out->reason,
                 "access denied to %.63s.%.63s: the consumer's grant does not name it (or its "
                 "session is closed)", domain, product ? product : "");
        dm_node__audit(self, caller, false, "read", domain, product, out->rule, 0);
        return DM_OK;
    }
    dm_err rc = dm_node__decide(self, caller, DM_POLICY_READ, domain, product, out, why);
    if (rc == DM_OK)
        dm_node__audit(self, caller, out->allow, "read", domain, product, out->rule,
                       out->policy_version);
    return rc;
}

/* ---- the write gate ---- */

/* The last length-delimited field number want of the protobuf message at
 * p (len bytes): true with *out, *out_len; false when absent or when the
 * bytes do not parse. Never reads past len. */
static bool s_pb_bytes(const uint8_t *p, size_t len, uint64_t want, const uint8_t **out,
                       size_t *out_len, uint64_t *id)
{
    bool found = false;
    size_t i = 0;
    while (i < len) {
        uint64_t key, v;
        size_t n = dm_varint_decode(p + i, len - i, &key);
        if (n == 0)
            return false;
        i += n;
        switch (key & 7) {
        case 0:
            if ((n = dm_varint_decode(p + i, len - i, &v)) == 0)
                return false;
            if (id && key >> 3 == 1)
                *id = v;
            i += n;
            break;
        case 1: i += 8; break;
        case 5: i += 4; break;
        case 2:
            if ((n = dm_varint_decode(p + i, len - i, &v)) == 0 || v > len - i - n)
                return false;
            i += n;
            if (key >> 3 == want) {
                *out = p + i;
                *out_len = (size_t)v;
                found = true;
            }
            i += (size_t)v;
            break;
        default: return false;
        }
    }
    return found && i == len;
}

/* Copies a name of len bytes to dst if it is one (base/text.h's rule). */
static void s_name_copy(char dst[DM_NODE_NAME_BUF], const void *src, size_t len)
{
    dst[0] = 0;
    if (len < DM_NODE_NAME_BUF && dm_text_is_name_n(src, len)) {
        memcpy(dst, src, len);
        dst[len] = 0;
    }
}

/* metadata.domain and .name of a contract in canonical JSON (unnamed when
 * it is not JSON or is over max bytes). */
static void s_contract_names(const uint8_t *p, size_t len, size_t max, char *domain, char *name)
{
    if (len == 0 || len > max)
        return;
    cJSON *root = cJSON_ParseWithLength((const char *)p, len);
    cJSON *meta = root ? cJSON_GetObjectItemCaseSensitive(root, "metadata") : NULL;
    const cJSON *d = meta ? cJSON_GetObjectItemCaseSensitive(meta, "domain") : NULL;
    const cJSON *n = meta ? cJSON_GetObjectItemCaseSensitive(meta, "name") : NULL;
    if (cJSON_IsString(d) && cJSON_IsString(n)) {
        s_name_copy(domain, d->valuestring, strlen(d->valuestring));
        s_name_copy(name, n->valuestring, strlen(n->valuestring));
    }
    cJSON_Delete(root);
}

/* The request id and the product a write request names, read from the
 * wire without unpacking its data. */
static void s_write_target(zmq_msg_t *payload, unsigned field, bool admin, uint64_t *id,
                           char domain[DM_NODE_NAME_BUF], char name[DM_NODE_NAME_BUF])
{
    const uint8_t *env = zmq_msg_data(payload), *body = NULL, *f = NULL;
    size_t len = zmq_msg_size(payload), blen = 0, flen = 0;
    domain[0] = name[0] = 0;
    *id = 0;
    if (!s_pb_bytes(env, len, field, &body, &blen, id))
        return;
    if (field == DM__ENVELOPE__BODY_REGISTER_REQ) {
        /* Only a refusal names it here: an admin's register is judged on
         * its parsed contract in the validator. */
        if (!admin && s_pb_bytes(body, blen, 1, &f, &flen, NULL))
            s_contract_names(f, flen, DM_NODE_REFUSAL_PARSE_MAX, domain, name);
        return;
    }
    if (s_pb_bytes(body, blen, 1, &f, &flen, NULL))
        s_name_copy(domain, f, flen);
    if (s_pb_bytes(body, blen, 2, &f, &flen, NULL))
        s_name_copy(name, f, flen);
}

/* The part of a decision's reason after "access denied to D.N: ", which
 * the refusal of a write already names as what was asked. */
static const char *s_reason_tail(const dm_policy_decision_t *d)
{
    const char *r = d->reason[0] ? d->reason : d->rule;
    const char *colon = strncmp(r, "access denied to ", 17) == 0 ? strstr(r, ": ") : NULL;
    return colon ? colon + 2 : r;
}

/* The admin check, then (when governance) the write decision on
 * domain/name; false with the refusal in text, audited. An allowed one is
 * audited now when v is NULL, else left to the caller with v's rule. */
static bool s_gate(dm_node_t *self, const dm_rpc_caller_t *caller, const char *action,
                   const char *what, const char *domain, const char *name, bool governance,
                   dm_node__verdict_t *v, dm_buf_t *text)
{
    bool admin = dm_node__is_admin(self, caller);
    dm_policy_decision_t d;
    memset(&d, 0, sizeof d);
    const char *rule = "owner: not an admin";
    bool allow = false;
    char hex[DM_RPC_CALLER_HEX_BYTES];
    dm_rpc_caller_hex(caller, hex);
    bool named = name && *name;
    if (!admin) {
        dm_buf_printf(text, "permission denied: %s needs a %s admin; you are %s%s", what,
                      self->domain, hex,
                      caller->verified ? "" : " (an unverified transport key: run the tool "
                                              "with an identity)");
    } else if (!governance) {
        allow = true;
        rule = "owner: admin";
    } else if (dm_node__decide(self, caller, DM_POLICY_WRITE, domain, named ? name : NULL, &d,
                               NULL) != DM_OK) {
        rule = "error: out of memory";
        dm_buf_printf(text, "the node could not decide on %s: out of memory", what);
    } else {
        allow = d.allow;
        rule = d.rule;
        if (!allow)
            dm_buf_printf(text, "permission denied: %s: %s", what, s_reason_tail(&d));
    }
    if (allow && v) {
        snprintf(v->rule, sizeof v->rule, "%s", rule);
        v->version = d.policy_version;
    } else if (!allow || governance) {
        dm_node__audit(self, caller, allow, action, named ? domain : NULL, named ? name : NULL,
                       rule, d.policy_version);
    }
    dm_policy_decision_clear(&d);
    return allow;
}

bool dm_node__gate(dm_node_t *self, const dm_rpc_caller_t *caller, const char *action,
                   const char *what, const char *domain, const char *name, dm_node__verdict_t *v,
                   dm_buf_t *text)
{
    return s_gate(self, caller, action, what, domain, name, true, v, text);
}

void dm_node__audit_outcome(dm_node_t *self, const dm_rpc_caller_t *caller, const char *action,
                            const char *domain, const char *name, const dm_node__verdict_t *v,
                            bool allowed, const char *fmt, ...)
{
    char detail[DM_AUDIT_RULE_MAX], rule[DM_AUDIT_RULE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(rule, sizeof rule, "%.110s; %s%.120s", v->rule, allowed ? "" : "refused: ", detail);
    bool named = name && *name;
    dm_node__audit(self, caller, allowed, action, named ? domain : NULL, named ? name : NULL, rule,
                   v->version);
}

/* Audits an ingest or deregister its gate let through with v: refused
 * when it names a product of another domain or one the node does not
 * serve (the write pipeline then answers the client as it always has),
 * allowed otherwise. A registry lookup: cheap, and safe on the loop. */
static void s_write_target_audit(dm_node_t *self, const dm_rpc_caller_t *caller,
                                 const char *action, const char *domain, const char *name,
                                 const dm_node__verdict_t *v)
{
    char q[DM_AUDIT_PRODUCT_MAX];
    int qn = snprintf(q, sizeof q, "%s/%s", domain, name);
    const dm_product_ref_t *ref = NULL;
    if (!name[0])
        dm_node__audit_outcome(self, caller, action, domain, name, v, false, "no product named");
    else if (strcmp(domain, self->domain) != 0)
        dm_node__audit_outcome(self, caller, action, domain, name, v, false,
                               "%.63s/%.63s is not a %.63s product", domain, name, self->domain);
    else if (qn <= 0 || (size_t)qn >= sizeof q ||
             dm_registry_acquire(self->registry, q, (size_t)qn, &ref) != DM_OK)
        dm_node__audit_outcome(self, caller, action, domain, name, v, false,
                               "no product %.63s/%.63s", domain, name);
    else
        dm_node__audit(self, caller, true, action, domain, name, v->rule, v->version);
    if (ref)
        dm_registry_release(self->registry, ref);
}

bool dm_node__write_allowed(dm_node_t *self, zmq_msg_t *rid, zmq_msg_t *payload, unsigned field,
                            const dm_rpc_caller_t *caller)
{
    const char *action = field == DM__ENVELOPE__BODY_INGEST_REQ     ? "ingest"
                         : field == DM__ENVELOPE__BODY_REGISTER_REQ ? "register"
                                                                    : "deregister";
    char domain[DM_NODE_NAME_BUF], name[DM_NODE_NAME_BUF], what[200];
    uint64_t id;
    s_write_target(payload, field, dm_node__is_admin(self, caller), &id, domain, name);
    if (!name[0])
        snprintf(what, sizeof what, "%s", action);
    else
        snprintf(what, sizeof what, "%s%s %s/%s", action,
                 field == DM__ENVELOPE__BODY_INGEST_REQ ? " into" : "", domain, name);
    dm_buf_t text = DM_BUF_INIT;
    /* A register's governance decision needs its parsed contract (JSON or
     * YAML): the validator makes it (dm_node__register_gate); here only
     * the cheap admin check, whose allowance the validator audits. */
    bool governance = field != DM__ENVELOPE__BODY_REGISTER_REQ;
    dm_node__verdict_t v;
    bool allow = s_gate(self, caller, action, what, domain, name, governance,
                        governance ? &v : NULL, &text);
    if (!allow)
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_DENIED, text.data);
    else if (governance)
        s_write_target_audit(self, caller, action, domain, name, &v);
    dm_buf_free(&text);
    return allow;
}

bool dm_node__register_gate(void *ctx, const dm_rpc_caller_t *caller, const dm_contract_t *c,
                            const char *refused, dm_buf_t *text)
{
    dm_node_t *self = ctx;
    dm_policy_decision_t d;
    memset(&d, 0, sizeof d);
    char rule[DM_AUDIT_RULE_MAX];
    bool allow = false;
    dm_err rc = DM_OK;
    bool decide = c && strcmp(c->domain, self->domain) == 0;
    if (decide) {
        pthread_rwlock_rdlock(&self->acc_lock);
        rc = s_decide_locked(self, caller, DM_POLICY_WRITE, c->domain, c->name, c, &d);
        pthread_rwlock_unlock(&self->acc_lock);
    }
    if (rc != DM_OK) {
        snprintf(rule, sizeof rule, "error: out of memory");
        dm_buf_printf(text, "the node could not decide on register %s/%s: out of memory",
                      c->domain, c->name);
    } else if (decide && !d.allow) {
        snprintf(rule, sizeof rule, "%s", d.rule);
        dm_buf_printf(text, "permission denied: register %s/%s: %s", c->domain, c->name,
                      s_reason_tail(&d));
    } else if (refused) {
        snprintf(rule, sizeof rule, "%.80s; refused: %.160s", decide ? d.rule : "owner: admin",
                 refused);
    } else {
        allow = true;
        snprintf(rule, sizeof rule, "%s", d.rule);
    }
    dm_node__audit(self, caller, allow, "register", c ? c->domain : NULL, c ? c->name : NULL, rule,
                   d.policy_version);
    dm_policy_decision_clear(&d);
    return allow;
}

/* ---- lifecycle ---- */

dm_err dm_node__access_open(dm_node_t *self, dm_buf_t *why)
{
    if (pthread_rwlock_init(&self->acc_lock, NULL) != 0) {
        dm_buf_why(why, "cannot set up access control: out of memory");
        return DM_ERR_NOMEM;
    }
    self->acc_ready = true;
    self->self_certified = true;
    dm_buf_t reason = DM_BUF_INIT;
    dm_err rc = s_admins_load(self, &reason);
    if (rc != DM_OK) {
        dm_buf_why(why, "cannot load the domain's admins: %s",
                   reason.len ? reason.data : dm_err_str(rc));
        dm_buf_free(&reason);
        return rc;
    }
    dm_buf_free(&reason);
    dm_node__acl_reload(self);
    dm_query_pool_set_access(self->queries, s_query_decide, s_query_describable, self);
    dm_log_info("access: %zu admin(s) of %s besides the node key", self->nadmins - 1,
                self->domain);
    return DM_OK;
}

void dm_node__access_close(dm_node_t *self)
{
    if (!self->acc_ready)
        return;
    for (size_t i = 0; i < self->nacls; i++)
        s_acl_clear(&self->acls[i]);
    free(self->acls);
    free(self->admins);
    dm_policy_set_unref(&self->gov);
    pthread_rwlock_destroy(&self->acc_lock);
    self->acc_ready = false;
}
