/* catalog_publish.c: the catalog's public verbs on top of catalog.c: local
 * publication (sign with the next version), single remote entries
 * (dm_catalog_apply), lookups (get, owner, count, local version, an
 * owner's acl and health entries) and the listings (products, nodes,
 * conflicts). */
#include "catalog/catalog_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define S_PRODUCT_REF_MAX (2 * DM_CATALOG_NAME_MAX + 2) /* "DOMAIN/NAME" + NUL */

uint64_t dm_catalog_local_version(const dm_catalog_t *c)
{
    const dm_catalog__origin_t *o = dm_catalog__origin_find(c, c->self_id);
    return o ? o->max_version : 0;
}

size_t dm_catalog_count(const dm_catalog_t *c) { return c->nitems; }

bool dm_catalog_owner(const dm_catalog_t *c, const char *domain,
                      uint8_t owner[DM_ID_PUBLIC_BYTES])
{
    const dm_catalog__pin_t *p = dm_catalog__pin_find(c, domain);
    if (p && owner)
        memcpy(owner, p->owner, DM_ID_PUBLIC_BYTES);
    return p != NULL;
}

/* The stored item (origin, key), or NULL. */
static const dm_catalog__item_t *s_find(const dm_catalog_t *c, const uint8_t *origin, const char *key)
{
    size_t lo = 0, hi = c->nitems;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const dm_catalog__item_t *it = c->items[mid];
        int r = memcmp(origin, it->e.origin, DM_ID_PUBLIC_BYTES);
        if (!r)
            r = strcmp(key, it->e.key);
        if (!r)
            return it;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Whether a product or node record is listed: its domain is pinned to its
 * origin. */
static bool s_visible(const dm_catalog_t *c, const dm_catalog__item_t *it)
{
    const dm_catalog__pin_t *p = dm_catalog__pin_find(c, it->domain);
    return p && memcmp(p->owner, it->e.origin, DM_ID_PUBLIC_BYTES) == 0;
}

dm_err dm_catalog_get(const dm_catalog_t *c, const uint8_t origin[DM_ID_PUBLIC_BYTES],
                      const char *key, dm_catalog_entry_t *out)
{
    memset(out, 0, sizeof *out);
    const dm_catalog__item_t *it = s_find(c, origin, key);
    if (!it)
        return DM_ERR_NOTFOUND;
    *out = it->e;
    out->key = strdup(it->e.key);
    out->payload = it->e.payload_len ? malloc(it->e.payload_len) : NULL;
    if (!out->key || (it->e.payload_len && !out->payload)) {
        dm_catalog_entry_clear(out);
        return DM_ERR_NOMEM;
    }
    if (it->e.payload_len)
        memcpy(out->payload, it->e.payload, it->e.payload_len);
    return DM_OK;
}

static bool s_is_acl(const char *key)
{
    return strncmp(key, DM_CATALOG_ACL_PREFIX, strlen(DM_CATALOG_ACL_PREFIX)) == 0;
}

static bool s_is_health(const char *key)
{
    return strncmp(key, DM_CATALOG_HEALTH_PREFIX, strlen(DM_CATALOG_HEALTH_PREFIX)) == 0;
}

/* Domain and name of a product, acl or health key, or false. */
static bool s_product_key(const char *key, char *domain, char *name)
{
    size_t plen = strlen(DM_CATALOG_PRODUCT_PREFIX);
    if (s_is_acl(key))
        plen = strlen(DM_CATALOG_ACL_PREFIX);
    else if (s_is_health(key))
        plen = strlen(DM_CATALOG_HEALTH_PREFIX);
    else if (strncmp(key, DM_CATALOG_PRODUCT_PREFIX, plen) != 0)
        return false;
    const char *d = key + plen, *slash = strchr(d, '/');
    if (!slash || (size_t)(slash - d) > DM_CATALOG_NAME_MAX ||
        strlen(slash + 1) > DM_CATALOG_NAME_MAX)
        return false;
    memcpy(domain, d, (size_t)(slash - d));
    domain[slash - d] = 0;
    strcpy(name, slash + 1);
    return true;
}

dm_err dm_catalog_publish(dm_catalog_t *c, const char *key, const void *payload, size_t len,
                          bool tombstone, int64_t now_ms, dm_buf_t *why)
{
    char domain[DM_CATALOG_NAME_MAX + 1], name[DM_CATALOG_NAME_MAX + 1];
    dm_err err = DM_OK;
    dm_catalog_entry_t e;
    memset(&e, 0, sizeof e);
    memcpy(e.origin, c->self_id, DM_ID_PUBLIC_BYTES);
    e.key = (char *)key;
    e.version = dm_catalog_local_version(c) + 1;
    e.issued_at_ms = now_ms;
    e.tombstone = tombstone;
    e.payload = (uint8_t *)payload;
    e.payload_len = len;
    if (!key || !*key)
        return DM_ERR_INVALID;
    if (strncmp(key, DM_CATALOG_GOV_PREFIX, strlen(DM_CATALOG_GOV_PREFIX)) == 0) {
        if (why)
            dm_buf_printf(why, "'%.64s' is a governance entry: only the governance key signs "
                               "those (dmctl policy publish), never a node",
                          key);
        return DM_ERR_INVALID;
    }
    /* Ownership first, so that publishing never lists this node as a
     * refused claimant in its own catalog. */
    if (strcmp(key, DM_CATALOG_NODE_KEY) == 0) {
        Dm__NodeRecord *r = dm__node_record__unpack(NULL, len, payload);
        const dm_catalog__pin_t *p = r ? dm_catalog__pin_find(c, r->domain) : NULL;
        const uint8_t *cert = r ? dm_catalog__cert_find(c, r->domain) : NULL;
        if (cert && memcmp(cert, c->self_id, DM_ID_PUBLIC_BYTES) != 0) {
            if (why)
                dm_buf_printf(why, "domain '%s' is certified to another node by the mesh's "
                                   "governance",
                              r->domain);
            err = DM_ERR_CONFLICT;
        } else if (!cert && p && memcmp(p->owner, c->self_id, DM_ID_PUBLIC_BYTES) != 0) {
            if (why)
                dm_buf_printf(why, "domain '%s' is already pinned to another node", r->domain);
            err = DM_ERR_CONFLICT;
        }
        if (r)
            dm__node_record__free_unpacked(r, NULL);
        if (err)
            return err;
    } else if (s_product_key(key, domain, name)) {
        const dm_catalog__pin_t *p = dm_catalog__pin_find(c, domain);
        if (!p || memcmp(p->owner, c->self_id, DM_ID_PUBLIC_BYTES) != 0) {
            if (why)
                dm_buf_printf(why, "domain '%s' is not pinned to this node%s", domain,
                              p ? "" : ": publish the node record claiming it first");
            return DM_ERR_DENIED;
        }
        const dm_catalog__item_t *old = s_find(c, c->self_id, key);
        if (tombstone && (!old || old->e.tombstone)) {
            if (why)
                dm_buf_printf(why, "%s %s/%s is not published",
                              s_is_acl(key)      ? "the acl entry of"
                              : s_is_health(key) ? "the health entry of"
                                                 : "product",
                              domain, name);
            return DM_ERR_NOTFOUND;
        }
    }
    dm_buf_t msg = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(&e, &msg);
    err = dm_identity_sign(c->self, msg.data, msg.len, e.signature, why);
    dm_buf_free(&msg);
    if (err)
        return err;
    dm_catalog_verdict v = dm_catalog__admit(c, &e, DM_CATALOG__LOCAL, now_ms, NULL, why, &err);
    if (!err && v != DM_CATALOG_ACCEPTED)
        err = DM_ERR_INVALID;
    if (err) {
        if (c->nops)
            dm_catalog__abort(c);
        return err;
    }
    return dm_catalog__commit(c, why);
}

static int s_ref_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

dm_err dm_catalog_publish_node(dm_catalog_t *c, const char *domain, const char *address,
                               int64_t now_ms, dm_buf_t *why)
{
    dm_err err = DM_ERR_NOMEM;
    char **refs = calloc(c->nitems ? c->nitems : 1, sizeof *refs);
    size_t nrefs = 0;
    dm_buf_t payload = DM_BUF_INIT;
    if (!refs)
        goto out;
    for (size_t i = 0; i < c->nitems; i++) {
        const dm_catalog__item_t *it = c->items[i];
        if (it->kind != DM_CATALOG__PRODUCT || it->e.tombstone || !s_visible(c, it) ||
            memcmp(it->e.origin, c->self_id, DM_ID_PUBLIC_BYTES) != 0)
            continue;
        refs[nrefs] = malloc(S_PRODUCT_REF_MAX);
        if (!refs[nrefs])
            goto out;
        snprintf(refs[nrefs++], S_PRODUCT_REF_MAX, "%s/%s", it->domain, it->name);
    }
    qsort(refs, nrefs, sizeof *refs, s_ref_cmp);
    Dm__NodeRecord r;
    dm__node_record__init(&r);
    r.domain = (char *)domain;
    r.address = (char *)address;
    r.products = refs;
    r.n_products = nrefs;
    size_t n = dm__node_record__get_packed_size(&r);
    dm_buf_reserve(&payload, n);
    payload.len = dm__node_record__pack(&r, (uint8_t *)payload.data);
    err = dm_catalog_publish(c, DM_CATALOG_NODE_KEY, payload.data, payload.len, false, now_ms,
                             why);
out:
    for (size_t i = 0; i < nrefs; i++)
        free(refs[i]);
    free(refs);
    dm_buf_free(&payload);
    return err;
}

dm_err dm_catalog_apply(dm_catalog_t *c, const dm_catalog_entry_t *e, int64_t now_ms,
                        dm_catalog_verdict *verdict, dm_buf_t *why)
{
    dm_err err = DM_OK;
    /* Governance entries reach any node, handed over by dmctl: out of order */
    bool pushed = e->key && strncmp(e->key, DM_CATALOG_GOV_PREFIX,
                                    strlen(DM_CATALOG_GOV_PREFIX)) == 0;
    *verdict = dm_catalog__admit(c, e, pushed ? DM_CATALOG__PUSH : DM_CATALOG__DELTA, now_ms, NULL,
                                 why, &err);
    if (err) {
        dm_catalog__abort(c);
        return err;
    }
    return dm_catalog__commit(c, why);
}

/* ---- listings ---- */

static int s_key_cmp(const void *a, const void *b)
{
    return strcmp((*(dm_catalog__item_t *const *)a)->e.key, (*(dm_catalog__item_t *const *)b)->e.key);
}

dm_err dm_catalog_products(const dm_catalog_t *c, bool with_tombstones, dm_catalog_product_fn fn,
                           void *ctx)
{
    const dm_catalog__item_t **list = calloc(c->nitems ? c->nitems : 1, sizeof *list);
    if (!list)
        return DM_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < c->nitems; i++) {
        const dm_catalog__item_t *it = c->items[i];
        if (it->kind == DM_CATALOG__PRODUCT && (with_tombstones || !it->e.tombstone) &&
            s_visible(c, it))
            list[n++] = it;
    }
    qsort(list, n, sizeof *list, s_key_cmp);
    for (size_t i = 0; i < n; i++) {
        const dm_catalog__item_t *it = list[i];
        dm_catalog_product_t p = {it->e.origin, it->domain, it->name,
                                  it->e.version, it->e.issued_at_ms, it->e.tombstone,
                                  it->e.tombstone ? NULL : (const char *)it->e.payload,
                                  it->e.tombstone ? 0 : it->e.payload_len};
        if (fn(ctx, &p))
            break;
    }
    free(list);
    return DM_OK;
}

void dm_catalog_nodes(const dm_catalog_t *c, dm_catalog_node_fn fn, void *ctx)
{
    for (size_t i = 0; i < c->nitems; i++) {
        const dm_catalog__item_t *it = c->items[i];
        if (!it->node || !s_visible(c, it)) /* a claim the pin moved away from */
            continue;
        dm_catalog_node_t n = {it->e.origin,
                               it->node->domain,
                               it->node->address,
                               (const char *const *)it->node->products,
                               it->node->n_products,
                               it->e.version,
                               it->e.issued_at_ms};
        if (fn(ctx, &n))
            break;
    }
}

void dm_catalog_conflicts(const dm_catalog_t *c, dm_catalog_conflict_fn fn, void *ctx)
{
    for (size_t i = 0; i < c->nconflicts; i++) {
        const dm_catalog__conflict_t *k = &c->conflicts[i];
        dm_catalog_conflict_t out = {k->domain, k->owner, k->claimant, k->first_seen_ms,
                                     k->last_seen_ms, k->refusals};
        if (fn(ctx, &out))
            break;
    }
}

dm_err dm_catalog_acl(const dm_catalog_t *c, const char *domain, const char *name,
                      dm_buf_t *payload)
{
    const dm_catalog__pin_t *pin = dm_catalog__pin_find(c, domain);
    char key[DM_CATALOG_KEY_MAX];
    if (!pin ||
        snprintf(key, sizeof key, DM_CATALOG_ACL_PREFIX "%s/%s", domain, name) >= (int)sizeof key)
        return DM_ERR_NOTFOUND;
    const dm_catalog__item_t *it = s_find(c, pin->owner, key);
    if (!it || it->e.tombstone)
        return DM_ERR_NOTFOUND;
    if (it->e.payload_len)
        dm_buf_append(payload, it->e.payload, it->e.payload_len);
    return DM_OK;
}

dm_err dm_catalog_health(const dm_catalog_t *c, const char *domain, const char *name,
                         dm_buf_t *payload)
{
    dm_buf_reset(payload);
    const uint8_t *owner = dm_catalog__cert_find(c, domain);
    const dm_catalog__pin_t *pin = owner ? NULL : dm_catalog__pin_find(c, domain);
    if (pin)
        owner = pin->owner;
    char key[DM_CATALOG_KEY_MAX];
    if (!owner || snprintf(key, sizeof key, DM_CATALOG_HEALTH_PREFIX "%s/%s", domain, name) >=
                      (int)sizeof key)
        return DM_ERR_NOTFOUND;
    const dm_catalog__item_t *it = s_find(c, owner, key);
    if (!it || it->e.tombstone)
        return DM_ERR_NOTFOUND;
    if (it->e.payload_len)
        dm_buf_append(payload, it->e.payload, it->e.payload_len);
    return DM_OK;
}
