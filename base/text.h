/* text.h: the rules for names and for "did you mean", in one place, so that
 * dmctl (contract parser), ingest (registry) and SQL (query sandbox) accept
 * the same names and suggest alike.
 *
 * A suggestion is the candidate closest to the word by edit distance, at
 * most DM_TEXT_SUGGEST_MAX edits away and fewer than half the word's
 * length (so "a" never suggests "b"); the first of equally close candidates
 * wins. Words or candidates longer than DM_TEXT_WORD_MAX bytes suggest
 * nothing. The distance is computed only in the diagonal band that can stay
 * within the limit, so one comparison costs at most dm_text_cost cells. */
#ifndef DM_TEXT_H
#define DM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_TEXT_SUGGEST_MAX 2 /* edits between a word and its suggestion */
#define DM_TEXT_WORD_MAX 128  /* bytes; fits "domain.name" (2 x 63 + 1) */
#define DM_TEXT_BAND (2 * DM_TEXT_SUGGEST_MAX + 1) /* cells per row of the band */

/* The name rule of domains, products and fields, as users read it. */
#define DM_TEXT_NAME_RULE "^[a-z][a-z0-9_-]{0,62}$"
#define DM_TEXT_NAME_MAX 63 /* bytes in a name, NUL excluded */

/* True if s (NUL-terminated) matches DM_TEXT_NAME_RULE. */
bool dm_text_is_name(const char *s);
/* True if the len bytes at s match DM_TEXT_NAME_RULE (s need not end there). */
bool dm_text_is_name_n(const char *s, size_t len);

/* Edit distance (Levenshtein) of a and b if at most DM_TEXT_SUGGEST_MAX,
 * else DM_TEXT_SUGGEST_MAX + 1 (also when either is longer than
 * DM_TEXT_WORD_MAX). */
size_t dm_text_distance(const char *a, const char *b);

/* Edit-distance cells one comparison of word costs at most, for callers
 * that bound the work of many suggestions (the contract parser). */
uint64_t dm_text_cost(const char *word);

/* A "did you mean" search over candidates fed one by one (from a list, a
 * registry under its lock, ...). pick borrows the candidate's text: copy it
 * before the candidate goes away. */
typedef struct {
    const char *word;
    size_t wlen;
    size_t best;      /* distance of pick */
    const char *pick; /* NULL until a candidate is close enough */
} dm_text_suggest_t;

/* Starts a search for word (borrowed for the search's life). */
void dm_text_suggest_init(dm_text_suggest_t *s, const char *word);
/* Considers cand; returns true if it became the pick. */
bool dm_text_suggest_add(dm_text_suggest_t *s, const char *cand);

/* The closest of n candidates to word under the rule above, or NULL. */
const char *dm_text_suggest(const char *word, const char *const *cands, size_t n);

/* Length (1 to 4) of the valid UTF-8 sequence at s, which has n > 0 bytes
 * left; 0 if it is not valid UTF-8 (overlong, surrogate, above U+10FFFF,
 * cut short). */
size_t dm_text_utf8_len(const unsigned char *s, size_t n);

#endif
