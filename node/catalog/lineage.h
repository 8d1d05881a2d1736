/* lineage.h: the mesh-wide lineage graph, built from the contracts'
 * spec.interoperability.lineage.upstream in the catalog (pure: no sockets;
 * docs/catalog.md "Lineage").
 *
 * Nodes are products named "DOMAIN.NAME"; an edge runs from an upstream to
 * the product whose contract names it. An upstream that no live product of
 * the catalog matches is still a node, marked missing (a dangling edge).
 * The graph is a snapshot: rebuild it when the catalog changes (the node
 * keeps one and rebuilds it on the catalog's version). Bounded by the
 * catalog's own limits; walks are bounded by depth and DM_LINEAGE_WALK_MAX. */
#ifndef DM_LINEAGE_H
#define DM_LINEAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "catalog/catalog.h"

#define DM_LINEAGE_DEPTH_DEFAULT 8
#define DM_LINEAGE_DEPTH_MAX 64
#define DM_LINEAGE_WALK_MAX 10000 /* nodes one walk returns at most */

typedef struct dm_lineage dm_lineage_t;

/* Builds the graph of c's live products. */
DM_NODISCARD dm_err dm_lineage_build(const dm_catalog_t *c, dm_lineage_t **out, dm_buf_t *why);
void dm_lineage_destroy(dm_lineage_t **self_p);

/* How healthy a product is by its own health entry: returns false when
 * unknown. *failing is set when its latest checks fail or err or an SLA
 * is breached (a warn is not failing); cause (reset) gets a short text ("fails unique(sku)"). */
typedef bool (*dm_lineage_health_fn)(void *ctx, const char *domain, const char *name,
                                     bool *failing, dm_buf_t *cause);

enum { DM_LINEAGE_UP = 1, DM_LINEAGE_DOWN = 2 };

typedef struct {
    const char *domain, *name; /* borrowed from the graph */
    bool exists;               /* false: dangling */
    unsigned depth;            /* 0: the start */
} dm_lineage_node_t;

/* Calls node_fn for every product reached from DOMAIN.NAME in directions
 * dirs (DM_LINEAGE_UP|DM_LINEAGE_DOWN) up to depth (0: default, capped at
 * DM_LINEAGE_DEPTH_MAX), each once, breadth first, the start first, and
 * edge_fn for every edge walked (from upstream to downstream).
 * *truncated is set when the depth or DM_LINEAGE_WALK_MAX cut the walk.
 * DM_ERR_NOTFOUND when the start is not a node of the graph. */
typedef int (*dm_lineage_node_fn)(void *ctx, const dm_lineage_node_t *n);
typedef int (*dm_lineage_edge_fn)(void *ctx, const dm_lineage_node_t *from,
                                  const dm_lineage_node_t *to);
DM_NODISCARD dm_err dm_lineage_walk(const dm_lineage_t *g, const char *domain, const char *name,
                                    unsigned dirs, unsigned depth, dm_lineage_node_fn node_fn,
                                    dm_lineage_edge_fn edge_fn, void *ctx, bool *truncated);

/* Whether DOMAIN.NAME is "upstream degraded": some product upstream of it
 * (any depth up to DM_LINEAGE_DEPTH_MAX) is failing by its health entry
 * (a missing upstream is not: lineage names it as dangling). cause (reset) names the nearest such upstream and why:
 * "upstream degraded: logistics.inventory fails unique(sku)". */
bool dm_lineage_degraded(const dm_lineage_t *g, const char *domain, const char *name,
                         dm_lineage_health_fn health, void *ctx, dm_buf_t *cause);

/* "upstream degraded" for every node of g in one pass, O(nodes + edges):
 * health is asked once per existing node, then fn is called, in the
 * graph's order, for each node that is degraded by dm_lineage_degraded's
 * rule, with the same cause text (the nearest failing upstream; among
 * equally near ones, the first in (domain, name) order; in a cycle a node
 * is not its own upstream). fn returning non-zero stops.
 * DM_ERR_NOMEM when the pass cannot be allocated (fn never called). */
typedef int (*dm_lineage_degraded_fn)(void *ctx, const char *domain, const char *name,
                                      const char *cause);
DM_NODISCARD dm_err dm_lineage_degraded_all(const dm_lineage_t *g, dm_lineage_health_fn health,
                                            void *hctx, dm_lineage_degraded_fn fn, void *ctx);

#endif
