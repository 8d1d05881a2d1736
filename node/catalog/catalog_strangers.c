/* catalog_strangers.c: what origins that membership does not know (strangers)
 * can make the catalog store: at most DM_CATALOG_STRANGERS_MAX of them at
 * once, DM_CATALOG_STRANGER_ENTRIES entries each (docs/catalog.md,
 * "Strangers"). Membership stays outside the catalog: the caller passes a
 * predicate (dm_catalog_set_known). */
#include "catalog/catalog_priv.h"

#include <string.h>

void dm_catalog_set_known(dm_catalog_t *c, dm_catalog_known_fn known, void *ctx)
{
    c->known = known;
    c->known_ctx = ctx;
}

/* Index of origin among the strangers, or -1. */
static int s_stranger_find(const dm_catalog_t *c, const uint8_t *origin)
{
    for (size_t i = 0; i < c->nstrangers; i++)
        if (memcmp(c->strangers[i], origin, DM_ID_PUBLIC_BYTES) == 0)
            return (int)i;
    return -1;
}

static void s_stranger_drop(dm_catalog_t *c, size_t i)
{
    memmove(c->strangers[i], c->strangers[--c->nstrangers], DM_ID_PUBLIC_BYTES);
}

/* Whether the stranger of e may store it: it replaces a stored key, or the
 * origin holds fewer than DM_CATALOG_STRANGER_ENTRIES entries. */
static bool s_within_quota(const dm_catalog_t *c, const dm_catalog_entry_t *e)
{
    size_t n = 0;
    for (size_t i = dm_catalog__first_item(c, e->origin);
         i < c->nitems && memcmp(c->items[i]->e.origin, e->origin, DM_ID_PUBLIC_BYTES) == 0;
         i++, n++)
        if (strcmp(c->items[i]->e.key, e->key) == 0)
            return true;
    return n < DM_CATALOG_STRANGER_ENTRIES;
}

bool dm_catalog__origin_admit(dm_catalog_t *c, const dm_catalog_entry_t *e)
{
    if (!c->known || memcmp(e->origin, c->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return true;
    int s = s_stranger_find(c, e->origin);
    if (s < 0 && dm_catalog__origin_find(c, e->origin))
        return true; /* stored before (or while membership knew it) */
    if (c->known(c->known_ctx, e->origin)) {
        if (s >= 0)
            s_stranger_drop(c, (size_t)s);
        return true;
    }
    if (s >= 0)
        return s_within_quota(c, e);
    if (c->nstrangers == DM_CATALOG_STRANGERS_MAX) /* some may have joined since */
        for (size_t i = c->nstrangers; i-- > 0;)
            if (c->known(c->known_ctx, c->strangers[i]))
                s_stranger_drop(c, i);
    if (c->nstrangers == DM_CATALOG_STRANGERS_MAX)
        return false;
    memcpy(c->strangers[c->nstrangers++], e->origin, DM_ID_PUBLIC_BYTES);
    return true;
}
