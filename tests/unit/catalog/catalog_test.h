/* catalog_test.h: catalog fixtures the catalog unit tests share: a node
 * (temp store, ephemeral identity, catalog) that can be closed and
 * reopened from disk, signed entries, Scuttlebutt sync until nothing
 * moves, wide valid contracts and a catalog publishing many of them. */
#ifndef DM_TEST_CATALOG_H
#define DM_TEST_CATALOG_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "catalog/catalog.h"
#include "contract/contract.h"
#include "identity/identity.h"
#include "fixture.h"
#include "proto/catalog.pb-c.h"

#define DM_T_CATALOG_NOW 1764000000000LL /* a fixed Unix time in ms; time is an argument */

/* A node of a catalog test: its own temp store, identity and catalog. */
typedef struct {
    char dir[PATH_MAX];
    dm_store_t *store;
    dm_identity_t *id;
    dm_catalog_t *cat;
} dm_t_cnode_t;

/* Opens n in a fresh temp directory named after test, with an ephemeral
 * identity. */
static inline void dm_t_cnode_open(dm_t_cnode_t *n, const char *test)
{
    cr_assert_not_null(dm_t_tmpdir(n->dir, sizeof n->dir, test));
    cr_assert_eq(dm_store_open(n->dir, NULL, &n->store, NULL), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&n->id), DM_OK);
    cr_assert_eq(dm_catalog_open(n->store, n->id, &n->cat, NULL), DM_OK);
}

/* Closes n's catalog and store and opens both again from disk. */
static inline void dm_t_cnode_reopen(dm_t_cnode_t *n)
{
    dm_catalog_destroy(&n->cat);
    dm_store_destroy(&n->store);
    cr_assert_eq(dm_store_open(n->dir, NULL, &n->store, NULL), DM_OK);
    cr_assert_eq(dm_catalog_open(n->store, n->id, &n->cat, NULL), DM_OK);
}

/* Closes n and removes its directory. */
static inline void dm_t_cnode_close(dm_t_cnode_t *n)
{
    dm_catalog_destroy(&n->cat);
    dm_store_destroy(&n->store);
    dm_identity_destroy(&n->id);
    dm_t_rmdir(n->dir);
}

#define DM_T_CNODES_MAX 4 /* nodes one test opens */
#define DM_T_CKEYS_MAX 4  /* extra identities one test makes (governance keys) */

/* What one catalog test opens, closed together by dm_t_cworld_clear (the
 * suite's .fini). */
typedef struct {
    dm_t_cnode_t nodes[DM_T_CNODES_MAX];
    size_t nnodes;
    dm_identity_t *keys[DM_T_CKEYS_MAX];
    size_t nkeys;
} dm_t_cworld_t;

/* A new node of w (dm_t_cnode_open with test's name). */
static inline dm_t_cnode_t *dm_t_cworld_node(dm_t_cworld_t *w, const char *test)
{
    cr_assert_lt(w->nnodes, DM_T_CNODES_MAX);
    dm_t_cnode_t *n = &w->nodes[w->nnodes++];
    dm_t_cnode_open(n, test);
    return n;
}

/* A new ephemeral identity of w. */
static inline dm_identity_t *dm_t_cworld_key(dm_t_cworld_t *w)
{
    cr_assert_lt(w->nkeys, DM_T_CKEYS_MAX);
    cr_assert_eq(dm_identity_new_ephemeral(&w->keys[w->nkeys]), DM_OK);
    return w->keys[w->nkeys++];
}

/* Closes every node and identity of w. */
static inline void dm_t_cworld_clear(dm_t_cworld_t *w)
{
    for (size_t i = 0; i < w->nnodes; i++)
        dm_t_cnode_close(&w->nodes[i]);
    for (size_t i = 0; i < w->nkeys; i++)
        dm_identity_destroy(&w->keys[i]);
    w->nnodes = w->nkeys = 0;
}

/* Fills e as an entry of origin (key, payload, version, issued at
 * DM_T_CATALOG_NOW) and signs it with signer, which may be another key
 * than origin's (a forgery). e points into key and payload. */
static inline void dm_t_entry_sign(const dm_identity_t *signer, const uint8_t *origin,
                                   const char *key, const void *payload, size_t len,
                                   uint64_t version, bool tombstone, dm_catalog_entry_t *e)
{
    memset(e, 0, sizeof *e);
    memcpy(e->origin, origin, DM_ID_PUBLIC_BYTES);
    e->key = (char *)key;
    e->version = version;
    e->issued_at_ms = DM_T_CATALOG_NOW;
    e->tombstone = tombstone;
    e->payload = (uint8_t *)payload;
    e->payload_len = len;
    dm_buf_t msg = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(e, &msg);
    cr_assert_eq(dm_identity_sign(signer, msg.data, msg.len, e->signature, NULL), DM_OK);
    dm_buf_free(&msg);
}

#define DM_T_GOV_ROOT_BYTES 128 /* room for a packed dm.GovRoot */

/* Packs the gov/root payload that hands governance to next at root
 * version rv into buf; returns its length. */
static inline size_t dm_t_gov_root(const dm_identity_t *next, uint64_t rv,
                                   uint8_t buf[DM_T_GOV_ROOT_BYTES])
{
    Dm__GovRoot r;
    dm__gov_root__init(&r);
    r.root_version = rv;
    r.key.data = (uint8_t *)dm_identity_public(next);
    r.key.len = DM_ID_PUBLIC_BYTES;
    return dm__gov_root__pack(&r, buf);
}

/* Scuttlebutt exchanges from -> to until nothing more is accepted, at
 * most rounds_max; returns the entries accepted. */
static inline size_t dm_t_catalog_sync(dm_catalog_t *from, dm_catalog_t *to, int rounds_max)
{
    size_t accepted = 0;
    for (int round = 0; round < rounds_max; round++) {
        dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
        bool more = false;
        dm_catalog_digest(to, &digest);
        cr_assert_eq(dm_catalog_delta(from, digest.data, digest.len, 1 << 20, &delta, &more),
                     DM_OK);
        dm_catalog_counts_t counts;
        cr_assert_eq(dm_catalog_apply_delta(to, delta.data, delta.len, DM_T_CATALOG_NOW, &counts,
                                            NULL, NULL),
                     DM_OK);
        dm_buf_free(&digest);
        dm_buf_free(&delta);
        accepted += counts.n[DM_CATALOG_ACCEPTED];
        if (!counts.n[DM_CATALOG_ACCEPTED] && !more)
            break;
    }
    return accepted;
}

/* Appends to yaml the smallest valid contract of domain/name: its
 * metadata and one required int field "id"; callers append more fields
 * or an interoperability section after it. */
static inline void dm_t_contract_head(dm_buf_t *yaml, const char *domain, const char *name)
{
    dm_buf_printf(yaml,
                  "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
                  "  domain: %s\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@c.com\n"
                  "spec:\n  schema:\n    fields:\n      - {name: id, type: int, required: true}\n",
                  name, domain);
}

/* The canonical JSON of a valid contract of domain/name with nfields
 * described fields; with patterns, a pattern on every hundredth of the
 * first 3,000 (a contract holds at most DM_PATTERN_MAX_TOTAL atoms). */
static inline void dm_t_wide_contract(const char *domain, const char *name, unsigned nfields,
                                      bool patterns, dm_buf_t *out)
{
    dm_buf_t yaml = DM_BUF_INIT;
    dm_t_contract_head(&yaml, domain, name);
    for (unsigned i = 0; i < nfields; i++)
        dm_buf_printf(&yaml,
                      "      - {name: field_%u, type: string, description: \"field %u of a wide "
                      "product, described at some length so that the contract is large\"%s}\n",
                      i, i,
                      patterns && i % 100 == 0 && i < 3000
                          ? ", pattern: \"^[a-z]{1,8}-[0-9]{1,6}$\""
                          : "");
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse("t", yaml.data, yaml.len, NULL, &cs, &n, &diags);
    cr_assert_eq(rc, DM_OK, "%s", diags.count ? diags.items[0].message : dm_err_str(rc));
    dm_contract_canonical(cs[0], out);
    dm_contract_destroy(&cs[0]);
    free(cs);
    dm_diags_clear(&diags);
    dm_buf_free(&yaml);
}

/* Publishes c's node record for domain and nproducts wide contracts of
 * nfields fields each (dm_t_wide_contract). */
static inline void dm_t_publish_wide(dm_catalog_t *c, const dm_identity_t *self,
                                     const char *domain, unsigned nproducts, unsigned nfields,
                                     bool patterns)
{
    char addr[DM_ADDRESS_MAX], key[DM_CATALOG_KEY_MAX], name[32];
    cr_assert_eq(dm_identity_address_format(dm_identity_public(self), "tcp://127.0.0.1:9", addr,
                                   sizeof addr, NULL),
                 DM_OK);
    cr_assert_eq(dm_catalog_publish_node(c, domain, addr, DM_T_CATALOG_NOW, NULL), DM_OK);
    for (unsigned i = 0; i < nproducts; i++) {
        snprintf(name, sizeof name, "p%u", i);
        snprintf(key, sizeof key, "product/%s/%s", domain, name);
        dm_buf_t json = DM_BUF_INIT;
        dm_t_wide_contract(domain, name, nfields, patterns, &json);
        cr_assert_eq(dm_catalog_publish(c, key, json.data, json.len, false, DM_T_CATALOG_NOW,
                                        NULL),
                     DM_OK);
        dm_buf_free(&json);
    }
}

/* Parses the one contract in yaml (len bytes) and publishes its canonical
 * form in c as product/DOMAIN/NAME. */
static inline void dm_t_publish_yaml(dm_catalog_t *c, const char *domain, const char *name,
                                     const char *yaml, size_t len)
{
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_buf_t json = DM_BUF_INIT;
    dm_err rc = dm_contract_parse("t", yaml, len, NULL, &cs, &n, &diags);
    cr_assert_eq(rc, DM_OK, "%s", diags.count ? diags.items[0].message : dm_err_str(rc));
    dm_contract_canonical(cs[0], &json);
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "product/%s/%s", domain, name);
    cr_assert_eq(dm_catalog_publish(c, key, json.data, json.len, false, DM_T_CATALOG_NOW, NULL),
                 DM_OK);
    dm_contract_destroy(&cs[0]);
    free(cs);
    dm_diags_clear(&diags);
    dm_buf_free(&json);
}

/* A new node of w (for test) that claims domain. */
static inline dm_t_cnode_t *dm_t_domain_node(dm_t_cworld_t *w, const char *test,
                                             const char *domain)
{
    dm_t_cnode_t *n = dm_t_cworld_node(w, test);
    char addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(dm_identity_public(n->id), "tcp://127.0.0.1:9", addr,
                                            sizeof addr, NULL),
                 DM_OK);
    cr_assert_eq(dm_catalog_publish_node(n->cat, domain, addr, DM_T_CATALOG_NOW, NULL), DM_OK);
    return n;
}

#endif
