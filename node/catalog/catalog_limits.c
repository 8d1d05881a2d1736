/* catalog_limits.c: what one member may make the catalog do per second on
 * the sync path: a token bucket of costly sync messages per member
 * (DM_CATALOG_SYNC_PER_S, docs/catalog.md "Bounds"); and how often the
 * refusal of one entry a peer keeps resending is reported
 * (DM_CATALOG_REFUSAL_QUIET_MS). */
#include "catalog/catalog_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define S_MILLI 1000 /* milli-tokens per token */

/* sender's bucket, a new full one (reusing the longest idle row when the
 * table is full), or NULL without memory. */
static dm_catalog__bucket_t *s_bucket(dm_catalog_t *c, const uint8_t *sender, int64_t now_ms)
{
    if (!c->buckets) {
        c->buckets = calloc(DM_CATALOG_SYNC_SENDERS, sizeof *c->buckets);
        if (!c->buckets)
            return NULL;
    }
    size_t idle = 0;
    for (size_t i = 0; i < c->nbuckets; i++) {
        if (memcmp(c->buckets[i].sender, sender, DM_ID_PUBLIC_BYTES) == 0)
            return &c->buckets[i];
        if (c->buckets[i].last_ms < c->buckets[idle].last_ms)
            idle = i;
    }
    dm_catalog__bucket_t *b = c->nbuckets < DM_CATALOG_SYNC_SENDERS ? &c->buckets[c->nbuckets++]
                                                               : &c->buckets[idle];
    memset(b, 0, sizeof *b);
    memcpy(b->sender, sender, DM_ID_PUBLIC_BYTES);
    b->milli = (int64_t)DM_CATALOG_SYNC_BURST * S_MILLI;
    b->last_ms = now_ms;
    b->logged_ms = now_ms - DM_CATALOG_SYNC_LOG_MS;
    return b;
}

bool dm_catalog_sync_allow(dm_catalog_t *c, const uint8_t sender[DM_ID_PUBLIC_BYTES],
                           int64_t now_ms)
{
    dm_catalog__bucket_t *b = s_bucket(c, sender, now_ms);
    if (!b)
        return false; /* no memory for the table: answer nothing costly */
    const int64_t cap = (int64_t)DM_CATALOG_SYNC_BURST * S_MILLI;
    if (now_ms > b->last_ms) { /* a clock that went back refills nothing */
        int64_t add = (now_ms - b->last_ms) * DM_CATALOG_SYNC_PER_S; /* ms x tokens/s */
        b->milli = add >= cap - b->milli ? cap : b->milli + add;
    }
    b->last_ms = now_ms;
    if (b->milli >= S_MILLI) {
        b->milli -= S_MILLI;
        return true;
    }
    b->dropped++;
    if (now_ms - b->logged_ms >= DM_CATALOG_SYNC_LOG_MS || now_ms < b->logged_ms) {
        dm_log_debug("catalog: dropped %llu sync message%s from member %02x%02x%02x%02x... "
                     "(over %d a second)",
                     (unsigned long long)b->dropped, b->dropped == 1 ? "" : "s", sender[0],
                     sender[1], sender[2], sender[3], DM_CATALOG_SYNC_PER_S);
        b->logged_ms = now_ms;
        b->dropped = 0;
    }
    return false;
}

bool dm_catalog__refusal_quiet(dm_catalog_t *c, const dm_catalog_entry_t *e, int64_t now_ms)
{
    if (!c->refusals) {
        c->refusals = calloc(DM_CATALOG_REFUSALS_TRACKED, sizeof *c->refusals);
        if (!c->refusals)
            return false; /* no table: report every time */
    }
    size_t oldest = 0;
    for (size_t i = 0; i < c->nrefusals; i++) {
        dm_catalog__refusal_t *r = &c->refusals[i];
        if (r->version == e->version && memcmp(r->origin, e->origin, DM_ID_PUBLIC_BYTES) == 0 &&
            strncmp(r->key, e->key, sizeof r->key) == 0) {
            /* a clock that went back reports again */
            if (now_ms >= r->logged_ms && now_ms - r->logged_ms < DM_CATALOG_REFUSAL_QUIET_MS)
                return true;
            r->logged_ms = now_ms;
            return false;
        }
        if (r->logged_ms < c->refusals[oldest].logged_ms)
            oldest = i;
    }
    dm_catalog__refusal_t *r = c->nrefusals < DM_CATALOG_REFUSALS_TRACKED
                                   ? &c->refusals[c->nrefusals++]
                                   : &c->refusals[oldest];
    memcpy(r->origin, e->origin, DM_ID_PUBLIC_BYTES);
    snprintf(r->key, sizeof r->key, "%s", e->key);
    r->version = e->version;
    r->logged_ms = now_ms;
    return false;
}
