/* catalog_trust.c: what the node tells its catalog to trust: the mesh's
 * governance key (meshd --governance, the start of the key chain) and the
 * domain certificates of its policy set, which move domain pins
 * (docs/catalog.md, "Governance" and "Certificates"). On top of catalog.c
 * (batches, pins) and catalog_gov.c (the chain in memory). */
#include "catalog/catalog_priv.h"

#include <stdlib.h>

#include "base/hex.h"
#include "base/log.h"
#include "base/text.h"
#include "storage/catalog_db.h"

#define S_VERSION_BYTES 8 /* a 'v' record: u64 BE */

dm_err dm_catalog_set_governance(dm_catalog_t *c, const uint8_t key[DM_ID_PUBLIC_BYTES],
                                 dm_buf_t *why)
{
    char want[DM_ID_HEX_BYTES], cur[DM_ID_HEX_BYTES];
    dm_hex_encode(key, DM_ID_PUBLIC_BYTES, want);
    if (memcmp(key, c->self_id, DM_ID_PUBLIC_BYTES) == 0) {
        dm_buf_why(why,
                   "catalog: governance key %s is this node's own key; the governance key "
                   "publishes nothing but gov/ entries: make one with keygen",
                   want);
        return DM_ERR_INVALID;
    }
    if (dm_catalog__in_chain(c, key))
        return DM_OK; /* the chain may have moved on: keep its current key */
    if (c->nchain) {
        dm_hex_encode(dm_catalog__gov_current(c), DM_ID_PUBLIC_BYTES, cur);
        dm_buf_why(why,
                   "catalog: governance key %s is not in this node's key chain, whose "
                   "current key is %s (root version %llu); a new key comes only by a "
                   "rotation signed by the current one",
                   want, cur, (unsigned long long)c->chain[c->nchain - 1].root_version);
        return DM_ERR_CONFLICT;
    }
    if (!dm_catalog__gov_add(c, key, 1)) {
        dm_catalog__abort(c);
        return DM_ERR_NOMEM;
    }
    dm_err err = dm_catalog__commit(c, why);
    if (!err) {
        c->gov_generation++;
        dm_log_info("catalog: governance key %s (root version 1)", want);
    }
    return err;
}

/* Forgets the versions seen from origin, so peers offer its entries again:
 * they were refused while the pin said otherwise, and counted as seen.
 * This node's own counter is never lowered. */
static bool s_unsee(dm_catalog_t *c, const uint8_t *origin)
{
    dm_catalog__origin_t *o = (dm_catalog__origin_t *)dm_catalog__origin_find(c, origin);
    if (!o || !o->max_version || memcmp(origin, c->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return true;
    o->max_version = 0;
    uint8_t v[S_VERSION_BYTES] = {0};
    return dm_catalog__queue(c, DM_STORE_CATALOG_ORIGIN, origin, DM_ID_PUBLIC_BYTES, NULL, 0, v,
                             sizeof v);
}

/* A sorted copy of the n certificates; DM_ERR_INVALID (a line in why) for
 * a domain that is not a name or is certified twice. */
static dm_err s_certs_copy(const char *const *domains, const uint8_t (*nodes)[DM_ID_PUBLIC_BYTES],
                           size_t n, dm_catalog__cert_t **out, dm_buf_t *why)
{
    *out = NULL;
    if (!n)
        return DM_OK;
    dm_catalog__cert_t *certs = calloc(n, sizeof *certs);
    if (!certs)
        return DM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!dm_text_is_name(domains[i])) {
            dm_buf_why(why, "catalog: certificate %zu names domain '%.80s', which does not match "
                            DM_TEXT_NAME_RULE, i + 1, domains[i]);
            free(certs);
            return DM_ERR_INVALID;
        }
        strcpy(certs[i].domain, domains[i]);
        memcpy(certs[i].node, nodes[i], DM_ID_PUBLIC_BYTES);
    }
    qsort(certs, n, sizeof *certs, dm_catalog__cert_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(certs[i - 1].domain, certs[i].domain) == 0) {
            dm_buf_why(why, "catalog: domain '%s' has two certificates; one per domain",
                       certs[i].domain);
            free(certs);
            return DM_ERR_INVALID;
        }
    *out = certs;
    return DM_OK;
}

dm_err dm_catalog_set_certificates(dm_catalog_t *c, const char *const *domains,
                                   const uint8_t (*nodes)[DM_ID_PUBLIC_BYTES], size_t n,
                                   dm_buf_t *why)
{
    dm_catalog__cert_t *certs = NULL;
    dm_err err = s_certs_copy(domains, nodes, c->nchain ? n : 0, &certs, why);
    if (err)
        return err;
    dm_catalog__cert_t *old = c->certs;
    size_t nold = c->ncerts;
    c->certs = certs;
    c->ncerts = c->nchain ? n : 0;
    for (size_t i = 0; i < c->ncerts && !err; i++) {
        bool moved = false;
        if (!dm_catalog__repin(c, certs[i].domain, certs[i].node, &moved) ||
            (moved && !s_unsee(c, certs[i].node)))
            err = DM_ERR_NOMEM;
    }
    if (err)
        dm_catalog__abort(c);
    else
        err = dm_catalog__commit(c, why);
    if (err) { /* memory was reloaded from the store: the old certificates hold */
        c->certs = old;
        c->ncerts = nold;
        free(certs);
        return err;
    }
    free(old);
    return DM_OK;
}
