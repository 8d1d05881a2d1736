/* catalog_local.c: this node's catalog entries reconciled with its store
 * (see catalog_local.h). */
#include "catalog/catalog_local.h"
#include "base/array.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "DOMAIN/NAME" of this node's live catalog products. */
typedef struct {
    const uint8_t *self_id;
    char **names;
    size_t n, cap;
} s_own_products;

static int s_collect_own(void *ctx, const dm_catalog_product_t *p)
{
    s_own_products *o = ctx;
    if (memcmp(p->origin, o->self_id, DM_ID_PUBLIC_BYTES) != 0 || p->tombstone)
        return 0;
    if (!dm_array_reserve(&o->names, &o->cap, o->n + 1, sizeof *o->names, 8))
        return 1;
    size_t len = strlen(p->domain) + strlen(p->name) + 2;
    char *q = malloc(len);
    if (!q)
        return 1;
    snprintf(q, len, "%s/%s", p->domain, p->name);
    o->names[o->n++] = q;
    return 0;
}

static void s_publish_node(dm_catalog_t *c, const dm_catalog_local_t *what, int64_t now_ms,
                           dm_diags_t *diags)
{
    dm_buf_t why = DM_BUF_INIT;
    if (dm_catalog_publish_node(c, what->domain, what->address, now_ms, &why) != DM_OK)
        dm_diags_add(diags, NULL, 0, 0, "cannot publish this node's record: %s",
                     why.data ? why.data : "");
    dm_buf_free(&why);
}

/* Publishes each stored product whose contract is not the published one.
 * Returns true if any was published. */
static bool s_publish_changed(dm_catalog_t *c, const dm_catalog_local_t *what,
                              const dm_product_t *list, size_t n, int64_t now_ms,
                              dm_buf_t *why, dm_diags_t *diags)
{
    bool published = false;
    for (size_t i = 0; i < n; i++) {
        char key[DM_CATALOG_KEY_MAX];
        snprintf(key, sizeof key, "%s%s/%s", DM_CATALOG_PRODUCT_PREFIX, list[i].domain,
                 list[i].name);
        dm_catalog_entry_t e = {0};
        bool same = dm_catalog_get(c, what->self_id, key, &e) == DM_OK && !e.tombstone &&
                    e.payload_len == list[i].contract_len &&
                    memcmp(e.payload, list[i].contract, e.payload_len) == 0;
        dm_catalog_entry_clear(&e);
        if (same)
            continue;
        dm_buf_reset(why);
        if (dm_catalog_publish(c, key, list[i].contract, list[i].contract_len, false, now_ms,
                               why) != DM_OK)
            dm_diags_add(diags, NULL, 0, 0, "cannot publish %s: %s", key,
                         why->data ? why->data : "");
        else
            published = true;
    }
    return published;
}

static bool s_held(const char *qualified, const dm_product_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char q[DM_CATALOG_KEY_MAX];
        snprintf(q, sizeof q, "%s/%s", list[i].domain, list[i].name);
        if (strcmp(q, qualified) == 0)
            return true;
    }
    return false;
}

/* Tombstones this node's live entry prefix + qualified ("DOMAIN/NAME"),
 * if any: the grants (acl/) and the health (health/) of a deregistered
 * product die with it. */
static void s_tombstone_aux(dm_catalog_t *c, const dm_catalog_local_t *what, const char *prefix,
                            const char *qualified, int64_t now_ms, dm_buf_t *why,
                            dm_diags_t *diags)
{
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "%s%s", prefix, qualified);
    dm_catalog_entry_t e = {0};
    bool live = dm_catalog_get(c, what->self_id, key, &e) == DM_OK && !e.tombstone;
    dm_catalog_entry_clear(&e);
    dm_buf_reset(why);
    if (live && dm_catalog_publish(c, key, NULL, 0, true, now_ms, why) != DM_OK)
        dm_diags_add(diags, NULL, 0, 0, "cannot publish the tombstone of %s: %s", key,
                     why->data ? why->data : "");
}

/* Tombstones each product this node published but no longer holds.
 * Returns true if any was published. */
static bool s_tombstone_gone(dm_catalog_t *c, const dm_catalog_local_t *what,
                             const dm_product_t *list, size_t n, int64_t now_ms,
                             dm_buf_t *why, dm_diags_t *diags)
{
    bool published = false;
    s_own_products own = {what->self_id, NULL, 0, 0};
    if (dm_catalog_products(c, false, s_collect_own, &own) != DM_OK) {
        dm_diags_add(diags, NULL, 0, 0, "cannot list this node's catalog products: out of memory");
        return false;
    }
    for (size_t k = 0; k < own.n; k++) {
        if (s_held(own.names[k], list, n))
            continue;
        char key[DM_CATALOG_KEY_MAX];
        snprintf(key, sizeof key, "%s%s", DM_CATALOG_PRODUCT_PREFIX, own.names[k]);
        dm_buf_reset(why);
        if (dm_catalog_publish(c, key, NULL, 0, true, now_ms, why) != DM_OK) {
            dm_diags_add(diags, NULL, 0, 0, "cannot publish the tombstone of %s: %s", key,
                         why->data ? why->data : "");
            continue;
        }
        published = true;
        s_tombstone_aux(c, what, DM_CATALOG_ACL_PREFIX, own.names[k], now_ms, why, diags);
        s_tombstone_aux(c, what, DM_CATALOG_HEALTH_PREFIX, own.names[k], now_ms, why, diags);
    }
    for (size_t k = 0; k < own.n; k++)
        free(own.names[k]);
    free(own.names);
    return published;
}

bool dm_catalog_local_reconcile(dm_catalog_t *c, dm_store_t *store,
                                const dm_catalog_local_t *what, int64_t now_ms,
                                dm_diags_t *diags)
{
    dm_product_t *list = NULL;
    size_t n = 0;
    bool changed = false;
    if (what->node_record) {
        s_publish_node(c, what, now_ms, diags);
        changed = true;
    }
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_store_product_list(store, &list, &n, &why);
    if (rc != DM_OK) {
        dm_diags_add(diags, NULL, 0, 0, "cannot list this node's products: %s",
                     why.len ? why.data : dm_err_str(rc));
        dm_buf_free(&why);
        return changed;
    }
    bool products = s_publish_changed(c, what, list, n, now_ms, &why, diags);
    products = s_tombstone_gone(c, what, list, n, now_ms, &why, diags) || products;
    if (products) {
        s_publish_node(c, what, now_ms, diags);
        changed = true;
    }
    dm_buf_free(&why);
    for (size_t i = 0; i < n; i++)
        dm_store_product_clear(&list[i]);
    free(list);
    return changed;
}
