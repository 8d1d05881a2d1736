/* array.h: growing a heap array by doubling, written once. Callers keep
 * their array as (T *items, size_t n, size_t cap) and ask for room before
 * they append; what to do when memory runs out (fail the call, or abort
 * where nothing can continue) stays the caller's choice. */
#ifndef DM_ARRAY_H
#define DM_ARRAY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* Makes room for need elements of elem bytes in the array *items_p (a T **
 * passed as void *): if need > *cap, the capacity doubles from first (or
 * from *cap) until it holds need, and *items_p and *cap are updated.
 * Returns false, leaving both untouched, when memory runs out or the size
 * would overflow size_t. */
DM_NODISCARD bool dm_array_reserve(void *items_p, size_t *cap, size_t need, size_t elem,
                                   size_t first);

#endif
