/* array.c: dm_array_reserve (see array.h). */
#include "base/array.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool dm_array_reserve(void *items_p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : (first ? first : 1);
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return false;
        n *= 2;
    }
    if (elem && n > SIZE_MAX / elem)
        return false;
    void *items;
    memcpy(&items, items_p, sizeof items);
    void *grown = realloc(items, n * elem);
    if (!grown)
        return false;
    memcpy(items_p, &grown, sizeof grown);
    *cap = n;
    return true;
}
