/* meshq_health.h: how meshq describe shows a product's health: the owner's
 * latest checks and SLA terms against their measured values, and an
 * upstream that degrades it (docs/sla.md). */
#ifndef DM_MESHQ_HEALTH_H
#define DM_MESHQ_HEALTH_H

#include "base/buf.h"
#include "proto/mesh.pb-c.h"

/* Prints d's health section to stdout ("health: unknown" when the owner
 * has published none). */
void dm_meshq_health_text(const Dm__DescribeRep *d);
/* Appends ,"health":{...} (null when none) and ,"degraded":"..." to o. */
void dm_meshq_health_json(const Dm__DescribeRep *d, dm_buf_t *o);

#endif
