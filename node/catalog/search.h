/* search.h: ranked search over the whole catalog's products
 * (meshq search; docs/catalog.md "Search"). Pure: no sockets.
 *
 * An index is a snapshot of the catalog's live contracts, tokenized per
 * part (name, domain, tags, field names, descriptions, owner); rebuild it
 * when the catalog changes. A query is at most DM_SEARCH_QUERY_MAX bytes
 * and DM_SEARCH_WORDS_MAX words; every product matching a word is ranked
 * by weighted part matches, each word weighted by its rarity (an inverse
 * document frequency as BM25's), times the share of the words it matches. */
#ifndef DM_SEARCH_H
#define DM_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"
#include "catalog/catalog.h"

#define DM_SEARCH_QUERY_MAX 256     /* bytes of a query */
#define DM_SEARCH_WORDS_MAX 16      /* distinct words of a query */
#define DM_SEARCH_WORD_MAX 64       /* bytes of one word or token; longer ones are cut */
#define DM_SEARCH_RESULTS_DEFAULT 20
#define DM_SEARCH_RESULTS_MAX 100
#define DM_SEARCH_DESCRIPTION_MAX 200 /* bytes of a hit's description (cut at a character) */

/* Weights of a word's match per part: an exact token counts in full, a
 * token the word begins (a prefix of two bytes or more) half. */
#define DM_SEARCH_W_NAME 10.0
#define DM_SEARCH_W_DOMAIN 6.0
#define DM_SEARCH_W_TAG 6.0
#define DM_SEARCH_W_FIELD 3.0
#define DM_SEARCH_W_DESCRIPTION 1.0
#define DM_SEARCH_W_OWNER 1.0
#define DM_SEARCH_PREFIX_FACTOR 0.5

typedef struct dm_search dm_search_t;

/* Indexes c's live products. DM_ERR_NOMEM (a line in why). */
DM_NODISCARD dm_err dm_search_build(const dm_catalog_t *c, dm_search_t **out, dm_buf_t *why);
/* Frees the index. NULL-safe; sets *self_p to NULL. */
void dm_search_destroy(dm_search_t **self_p);
/* Products indexed. */
size_t dm_search_count(const dm_search_t *s);

typedef struct {
    const char *domain, *name;
    const char *description; /* "" when none; at most DM_SEARCH_DESCRIPTION_MAX bytes */
    double score;            /* > 0 */
    const char *matched;     /* where the words matched: "name, fields: sku" */
} dm_search_hit_t;
/* Every pointer is borrowed for the call only. Non-zero stops the run. */
typedef int (*dm_search_hit_fn)(void *ctx, const dm_search_hit_t *h);

/* Calls fn for every product matching at least one word of query, best
 * first (ties by domain, then name). Words are split at anything but
 * letters, digits and bytes of UTF-8 sequences, and compared without ASCII
 * case. DM_ERR_INVALID with a line in why for a query over
 * DM_SEARCH_QUERY_MAX bytes, with more than DM_SEARCH_WORDS_MAX distinct
 * words, or with none; DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_search_run(const dm_search_t *s, const char *query, dm_search_hit_fn fn,
                                  void *ctx, dm_buf_t *why);

#endif
