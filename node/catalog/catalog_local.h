/* catalog_local.h: this node's own catalog entries reconciled with its
 * store: what the store serves is published, what changed is published
 * again, what it no longer holds is tombstoned.
 *
 * Pure logic over a store and a catalog (no sockets, time is an argument):
 * the node loop calls it at start-up, when the write pipeline says a
 * product changed, and once a minute (a publication that failed is retried
 * there). Idempotent, and cheap when nothing changed. */
#ifndef DM_CATALOG_LOCAL_H
#define DM_CATALOG_LOCAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/diags.h"
#include "catalog/catalog.h"
#include "storage/store.h"

typedef struct {
    const uint8_t *self_id; /* the node's id (DM_ID_PUBLIC_BYTES), the catalog's own origin */
    const char *domain;     /* the node record's domain claim */
    const char *address;    /* the node record's address */
    bool node_record;       /* publish the node record even if no product changed */
} dm_catalog_local_t;

/* Publishes (in c) each product of store whose canonical contract differs
 * from this node's published entry, a tombstone for each product this node
 * published that store no longer holds, and then the node record if any
 * of these was published or what->node_record asks for it. Every failure
 * adds one diagnostic to diags (no position) and the rest goes on; the
 * caller logs them. Returns true if anything was published. */
bool dm_catalog_local_reconcile(dm_catalog_t *c, dm_store_t *store,
                                const dm_catalog_local_t *what, int64_t now_ms,
                                dm_diags_t *diags);

#endif
