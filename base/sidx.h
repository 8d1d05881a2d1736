/* sidx.h: a sorted index of strings, for finding duplicates and looking
 * names up in the contract parser and the compiled schema.
 *
 * Built in O(n log n) (qsort) and searched in O(log n) whatever the
 * strings are: unlike a hash table with a fixed hash, no choice of names
 * (they come from untrusted contracts) makes it slow. Entries borrow their
 * strings, which must outlive the index. */
#ifndef DM_SIDX_H
#define DM_SIDX_H

#include <stdbool.h>
#include <stddef.h>

#define DM_SIDX_NONE ((size_t)-1) /* "not found" */

typedef struct {
    const char *s; /* borrowed */
    size_t len;
    size_t pos; /* the caller's index of this string */
} dm_sidx_ent_t;

typedef struct {
    dm_sidx_ent_t *e; /* sorted by (bytes, pos) after dm_sidx_sort */
    size_t n, cap;
} dm_sidx_t;

#define DM_SIDX_INIT {NULL, 0, 0}

/* Adds s (len bytes, borrowed) as position pos. Aborts on out of memory. */
void dm_sidx_add(dm_sidx_t *x, const char *s, size_t len, size_t pos);

/* Sorts the entries by bytes, equal strings by position, so duplicates are
 * neighbours and the first occurrence of each comes first. */
void dm_sidx_sort(dm_sidx_t *x);

/* True if entries i-1 and i of a sorted index hold the same string: entry
 * i then repeats an earlier occurrence, whose position is the run's
 * first entry's (see dm_sidx_find). i > 0. */
bool dm_sidx_dup(const dm_sidx_t *x, size_t i);

/* The smallest position holding s in a sorted index, or DM_SIDX_NONE. */
size_t dm_sidx_find(const dm_sidx_t *x, const char *s, size_t len);

/* Frees the entries (not the strings) and empties the index. NULL-safe. */
void dm_sidx_free(dm_sidx_t *x);

#endif
