/* registry.h: the node's in-memory view of its registered products.
 *
 * Each product maps to its parsed contract and compiled record schema.
 * The writer thread replaces an entry when a product is registered or
 * upgraded; readers (the ingest validator, queries, the node loop's read
 * handlers) hold a reference so an upgrade never frees a schema in use.
 * Thread-safe. */
#ifndef DM_REGISTRY_H
#define DM_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "contract/contract.h"
#include "base/err.h"
#include "record/schema.h"

typedef struct dm_registry dm_registry_t;

typedef struct {
    uint32_t pid;
    dm_contract_t *contract;
    dm_schema_t *schema;
} dm_product_ref_t;

DM_NODISCARD dm_err dm_registry_new(dm_registry_t **out);
void dm_registry_destroy(dm_registry_t **self_p);

/* Parses canonical (len bytes), compiles its schema and installs it as
 * domain/name with product id pid, replacing an older entry. Returns
 * DM_ERR_INVALID if the contract does not parse or its schema does not
 * compile, DM_ERR_TOOBIG, DM_ERR_NOMEM; on the first two, one line saying
 * why is appended to why (may be NULL). Logs nothing. */
DM_NODISCARD dm_err dm_registry_install(dm_registry_t *self, uint32_t pid, const char *canonical,
                                        size_t len, dm_buf_t *why);

/* Removes domain/name (a "domain/name" string); readers holding a
 * reference keep it until they release it. DM_ERR_NOTFOUND if absent. */
DM_NODISCARD dm_err dm_registry_remove(dm_registry_t *self, const char *qualified);

/* Looks up domain/name (a "domain/name" string of len bytes). On success
 * *ref is a counted reference to release with dm_registry_release. */
DM_NODISCARD dm_err dm_registry_acquire(dm_registry_t *self, const char *qualified, size_t len,
                                        const dm_product_ref_t **ref);
void dm_registry_release(dm_registry_t *self, const dm_product_ref_t *ref);

#define DM_REGISTRY_UNKNOWN_SHOWN 200 /* bytes of an unknown name a reply repeats */

/* Appends to out the registered name closest to qualified, for "did you
 * mean" (base/text.h's rule); appends nothing if none is close. */
void dm_registry_suggest(dm_registry_t *self, const char *qualified, dm_buf_t *out);

/* Appends to why the one line a client sees when qualified is not
 * registered: "unknown product 'QUALIFIED' on this node", " (domain
 * SERVED)" when served is not NULL, then "; did you mean 'NAME'?" when
 * dm_registry_suggest has a name. QUALIFIED is cut to
 * DM_REGISTRY_UNKNOWN_SHOWN bytes. Ingest, deregister and describe all
 * say it so. */
void dm_registry_unknown(dm_registry_t *self, const char *qualified, const char *served,
                         dm_buf_t *why);

/* Calls fn with the domain and name of every registered product, under the
 * registry's lock: the strings are valid during the call only, and fn must
 * not call into the registry. */
typedef void (*dm_registry_each_fn)(void *arg, const char *domain, const char *name);
void dm_registry_each(dm_registry_t *self, dm_registry_each_fn fn, void *arg);

#endif
