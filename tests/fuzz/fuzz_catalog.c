/* fuzz_catalog.c: catalog anti-entropy messages as a node receives them
 * in a CatalogSync: the bytes as a dm.CatalogDelta (applied to an
 * in-memory catalog), as a dm.CatalogDigest (answered with a delta), and as
 * one dm.CatalogEntry. Signatures stop random entries at the door, so the
 * entry is also re-signed by a key of the harness and applied, which
 * reaches the payload checks (node records, contracts, acl records)
 * behind them; gov/ keys are re-signed by the harness's governance key
 * (set on every catalog, with a certificate of domain "fuzz"), which
 * reaches rotations and governance documents.
 * Public catalog.h API only. */
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog/lineage.h"
#include "catalog/search.h"
#include "fuzz.h"
#include "identity/identity.h"
#include "base/log.h"

#define S_NOW_MS 1800000000000LL
#define S_DELTA_BYTES (256 * 1024)

static dm_identity_t *s_self, *s_peer, *s_gov;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_catalog", DM_LOG_ERR);
    DM_FUZZ_CHECK(dm_identity_new_ephemeral(&s_self) == DM_OK);
    DM_FUZZ_CHECK(dm_identity_new_ephemeral(&s_peer) == DM_OK);
    DM_FUZZ_CHECK(dm_identity_new_ephemeral(&s_gov) == DM_OK);
    return 0;
}

/* Signs e as the harness's peer key, or its governance key for gov/ keys. */
static void s_sign(dm_catalog_entry_t *e)
{
    const dm_identity_t *by =
        strncmp(e->key, DM_CATALOG_GOV_PREFIX, strlen(DM_CATALOG_GOV_PREFIX)) ? s_peer : s_gov;
    memcpy(e->origin, dm_identity_public(by), DM_ID_PUBLIC_BYTES);
    dm_buf_t signed_bytes = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(e, &signed_bytes);
    DM_FUZZ_CHECK(dm_identity_sign(by, signed_bytes.data, signed_bytes.len, e->signature, NULL) ==
                  DM_OK);
    dm_buf_free(&signed_bytes);
}

static int s_count_products(void *ctx, const dm_catalog_product_t *p)
{
    (void)p;
    (*(size_t *)ctx)++;
    return 0;
}

static int s_count_nodes(void *ctx, const dm_catalog_node_t *n)
{
    (void)n;
    (*(size_t *)ctx)++;
    return 0;
}

static int s_walk_node(void *ctx, const dm_lineage_node_t *n)
{
    (void)n;
    (*(size_t *)ctx)++;
    return 0;
}

static int s_search_hit(void *ctx, const dm_search_hit_t *h)
{
    (void)h;
    (*(size_t *)ctx)++;
    return 0;
}

/* A product with a health entry counts as failing. */
static bool s_health(void *ctx, const char *domain, const char *name, bool *failing,
                     dm_buf_t *cause)
{
    dm_buf_t payload = DM_BUF_INIT;
    bool known = dm_catalog_health(ctx, domain, name, &payload) == DM_OK;
    dm_buf_free(&payload);
    *failing = known;
    dm_buf_reset(cause);
    dm_buf_puts(cause, "fails");
    return known;
}

/* What the node derives from the catalog (lineage graph, search index)
 * must build and answer over whatever the catalog accepted. */
static void s_derived(const dm_catalog_t *c)
{
    size_t n = 0;
    bool truncated = false;
    dm_lineage_t *g = NULL;
    if (dm_lineage_build(c, &g, NULL) == DM_OK) {
        DM_FUZZ_IGNORE(dm_lineage_walk(g, "fuzz", "p", DM_LINEAGE_UP | DM_LINEAGE_DOWN, 0,
                                       s_walk_node, NULL, &n, &truncated));
        dm_buf_t cause = DM_BUF_INIT;
        (void)dm_lineage_degraded(g, "fuzz", "p", s_health, (void *)c, &cause);
        dm_buf_free(&cause);
        dm_lineage_destroy(&g);
    }
    dm_search_t *sx = NULL;
    if (dm_search_build(c, &sx, NULL) == DM_OK) {
        DM_FUZZ_IGNORE(dm_search_run(sx, "orders fuzz", s_search_hit, &n, NULL));
        dm_search_destroy(&sx);
    }
}

static int s_count_docs(void *ctx, const dm_catalog_entry_t *e)
{
    (void)e;
    (*(size_t *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_self)
        LLVMFuzzerInitialize(NULL, NULL);
    dm_catalog_t *c = NULL;
    DM_FUZZ_CHECK(dm_catalog_open(NULL, s_self, &c, NULL) == DM_OK);
    DM_FUZZ_CHECK(dm_catalog_set_governance(c, dm_identity_public(s_gov), NULL) == DM_OK);
    const char *const cert_domains[] = {"fuzz"};
    const uint8_t(*cert_nodes)[DM_ID_PUBLIC_BYTES] =
        (const uint8_t(*)[DM_ID_PUBLIC_BYTES])dm_identity_public(s_peer);
    DM_FUZZ_CHECK(dm_catalog_set_certificates(c, cert_domains, cert_nodes, 1, NULL) == DM_OK);
    dm_catalog_counts_t counts;
    bool more = false;
    dm_buf_t why = DM_BUF_INIT, out = DM_BUF_INIT;
    DM_FUZZ_IGNORE(dm_catalog_apply_delta(c, data, size, S_NOW_MS, &counts, &more, &why));
    DM_FUZZ_IGNORE(dm_catalog_delta(c, data, size, S_DELTA_BYTES, &out, &more));

    dm_catalog_entry_t e;
    if (dm_catalog_entry_decode(data, size, &e) == DM_OK) {
        dm_catalog_verdict v;
        DM_FUZZ_IGNORE(dm_catalog_apply(c, &e, S_NOW_MS, &v, &why));
        s_sign(&e);
        dm_buf_reset(&why);
        if (dm_catalog_apply(c, &e, S_NOW_MS, &v, &why) == DM_OK && v == DM_CATALOG_ACCEPTED) {
            /* What was accepted must travel on: encode, decode, send as a delta. */
            dm_buf_t enc = DM_BUF_INIT;
            dm_catalog_entry_encode(&e, &enc);
            dm_catalog_entry_t back;
            DM_FUZZ_CHECK(dm_catalog_entry_decode(enc.data, enc.len, &back) == DM_OK);
            dm_catalog_entry_clear(&back);
            dm_buf_free(&enc);
        }
        dm_catalog_entry_clear(&e);
    }
    /* Whatever got in, every listing and a full sync must still work. */
    size_t np = 0, nn = 0;
    if (dm_catalog_products(c, true, s_count_products, &np) != DM_OK)
        np = 0;
    dm_catalog_nodes(c, s_count_nodes, &nn);
    dm_catalog_gov_docs(c, s_count_docs, &nn);
    dm_buf_t acl = DM_BUF_INIT;
    DM_FUZZ_IGNORE(dm_catalog_acl(c, "fuzz", "p", &acl));
    DM_FUZZ_IGNORE(dm_catalog_health(c, "fuzz", "p", &acl));
    dm_buf_free(&acl);
    s_derived(c);
    dm_buf_t digest = DM_BUF_INIT, empty = DM_BUF_INIT;
    dm_catalog_digest(c, &digest);
    dm_catalog_t *fresh = NULL;
    DM_FUZZ_CHECK(dm_catalog_open(NULL, s_peer, &fresh, NULL) == DM_OK);
    dm_catalog_digest(fresh, &empty);
    dm_buf_reset(&out);
    DM_FUZZ_CHECK(dm_catalog_delta(c, empty.data ? empty.data : "", empty.len, S_DELTA_BYTES,
                                   &out, &more) == DM_OK);
    dm_catalog_destroy(&fresh);
    dm_buf_free(&digest);
    dm_buf_free(&empty);
    dm_buf_free(&why);
    dm_buf_free(&out);
    dm_catalog_destroy(&c);
    return 0;
}
