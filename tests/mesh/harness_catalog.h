/* harness_catalog.h: catalog pieces the multi-node tests share: signed
 * entries built by the test (honest, forged or a flood), sent to a node in
 * a CatalogSync envelope over the outsider client, and the node's views
 * (the mesh's products, a member's state) read over its client API. */
#ifndef DM_HARNESS_CATALOG_H
#define DM_HARNESS_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "proto/catalog.pb-c.h"
#include "harness.h"

/* An entry of origin signed by signer (a forgery when they differ), and
 * its protobuf view pe (pointing into e and payload). */
typedef struct {
    dm_catalog_entry_t e;
    dm_buf_t payload; /* owned: dm_h_entry_free */
    Dm__CatalogEntry pe;
} dm_h_entry_t;

/* The YAML text of a small valid contract (static buffer). */
const char *dm_h_contract_text(const char *domain, const char *name, const char *version);
/* Appends the canonical contract JSON of domain/name at version; false if
 * it does not parse. */
bool dm_h_contract_payload(dm_buf_t *out, const char *domain, const char *name,
                           const char *version);
/* Sets t's payload to an encoded dm.NodeRecord claiming domain at address. */
void dm_h_entry_node_record(dm_h_entry_t *t, const char *domain, const char *address);
/* Signs t (its payload set beforehand) as key of origin at version; false
 * if signing failed. */
bool dm_h_entry_sign(dm_h_entry_t *t, const dm_identity_t *signer, const uint8_t *origin,
                     const char *key, uint64_t version);
/* Frees t's payload. */
void dm_h_entry_free(dm_h_entry_t *t);

/* Sends one CatalogSync with a delta of the entries, reply_to my_addr, on
 * raw (authenticated with my_addr's key for the sync to pass the address
 * check). */
bool dm_h_catalog_send(dm_h_raw_t *raw, const char *my_addr, dm_h_entry_t *const *entries,
                       size_t count);
/* The same on a fresh connection as me, closed (and delivered) after. */
bool dm_h_catalog_inject(const dm_h_node_t *n, const dm_identity_t *me, const char *my_addr,
                         dm_h_entry_t *const *entries, size_t count);

/* Whether node n lists DOMAIN/NAME (at version, if not NULL) among the
 * mesh's products. */
bool dm_h_lists(const dm_h_node_t *n, const char *domain, const char *name, const char *version);
/* Node n's view of the mesh (MembersReq): how many members it lists (self
 * included, any state) and, for the member serving domain (the last listed
 * if several claim it; domain may be NULL), its state, address and
 * incarnation. answered is false if n did not reply. */
typedef struct {
    bool answered, found;
    size_t count;
    char state[16];
    char address[400];
    unsigned long long incarnation;
} dm_h_member_t;
dm_h_member_t dm_h_member(const dm_h_node_t *n, const char *domain);

#endif
