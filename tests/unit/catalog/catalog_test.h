/* catalog_test.h: catalog fixtures the catalog unit tests share: wide,
 * valid contracts and a catalog publishing many of them. */
#ifndef DM_TEST_CATALOG_H
#define DM_TEST_CATALOG_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"
#include "catalog/catalog.h"
#include "contract/contract.h"
#include "identity/identity.h"

#define DM_T_CATALOG_NOW 1764000000000LL /* a fixed Unix time in ms; time is an argument */

/* The canonical JSON of a valid contract of domain/name with nfields
 * described fields; with patterns, a pattern on every hundredth of the
 * first 3,000 (a contract holds at most DM_PATTERN_MAX_TOTAL atoms). */
static inline void dm_t_wide_contract(const char *domain, const char *name, unsigned nfields,
                                      bool patterns, dm_buf_t *out)
{
    dm_buf_t yaml = DM_BUF_INIT;
    dm_buf_printf(&yaml,
                  "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
                  "  domain: %s\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@c.com\n"
                  "spec:\n  schema:\n    fields:\n      - {name: id, type: int, required: true}\n",
                  name, domain);
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

#endif
