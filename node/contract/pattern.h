/* pattern.h: a static cost check for the POSIX extended regular
 * expressions a contract may carry (field pattern, check rule regex).
 *
 * glibc's regcomp expands a bounded repetition {m,n} into n copies of what
 * it repeats, so nested bounds multiply: ((a{1,100}){1,100}){1,100} asks
 * for a million copies and pins gigabytes. dm_pattern_check reads the
 * pattern with its own ERE parser, without compiling it, and refuses it
 * when its text, its repetition nesting or its expanded size is over the
 * limits below, or when it uses anything the parser does not understand
 * (backreferences, GNU escapes, collating elements, lazy quantifiers...).
 * A pattern it accepts compiles in well under a millisecond and a couple
 * of MB (figures in docs/contract.md).
 *
 * glibc's regexec is not linear in the subject either (it retries an
 * unanchored search at every position and builds DFA states without
 * bound), so values are matched by dm_pattern_match (pattern_match.c), a
 * Thompson-NFA simulation whose cost is at most the program's size per
 * byte of the subject. regcomp still confirms, off the node loop, that
 * glibc reads the pattern the same way (dmctl validate, register). */
#ifndef DM_PATTERN_H
#define DM_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define DM_PATTERN_MAX_LEN 256      /* bytes of pattern text */
#define DM_PATTERN_MAX_BOUND 255    /* largest m or n in {m}, {m,}, {m,n} */
#define DM_PATTERN_MAX_DEPTH 3      /* repetition operators nested in each other */
#define DM_PATTERN_MAX_GROUPS 16    /* parentheses nested in each other */
#define DM_PATTERN_MAX_COST 256     /* atoms after expanding every repetition */
#define DM_PATTERN_MAX_TOTAL 1024   /* atoms of all the patterns of one contract */
#define DM_PATTERN_WHY_MAX 256      /* bytes of a refusal message, NUL included */

typedef struct {
    size_t len;     /* bytes of pattern text */
    unsigned depth; /* deepest nesting of repetition operators */
    uint64_t cost;  /* atoms after expansion ({m,n} counts its operand n times) */
} dm_pattern_info_t;

/* Checks pattern (NUL-terminated) against the limits above without
 * compiling it. Returns DM_OK and fills *info (may be NULL), or
 * DM_ERR_INVALID and appends to why (may be NULL) one line of at most
 * DM_PATTERN_WHY_MAX - 1 bytes, such as "at character 12: ...", that names
 * the limit or the construct and what would be valid. Allocates only to
 * append to why; runs in time linear in the pattern's length. */
DM_NODISCARD dm_err dm_pattern_check(const char *pattern, dm_pattern_info_t *info,
                                     dm_buf_t *why);

/* A compiled pattern for dm_pattern_match: immutable, shareable between
 * threads. */
typedef struct dm_pattern dm_pattern_t;

/* Compiles pattern (which must pass dm_pattern_check: DM_ERR_INVALID
 * otherwise) into *out; free it with dm_pattern_destroy. DM_ERR_NOMEM.
 * Its tables hold at most DM_PATTERN_MAX_COST positions: about 270 KB at
 * that limit, a few KB for an everyday pattern. */
DM_NODISCARD dm_err dm_pattern_compile(const char *pattern, dm_pattern_t **out);

/* Frees a compiled pattern. NULL-safe; sets *self_p to NULL. */
void dm_pattern_destroy(dm_pattern_t **self_p);

/* Whether some substring of t (n bytes, need not be NUL-terminated, may
 * hold NUL) matches, as regexec with REG_EXTENDED | REG_NOSUB in the C
 * locale says. One pass over t, O(positions / 8) table rows per byte, no
 * allocation. Cannot fail. */
bool dm_pattern_match(const dm_pattern_t *p, const char *t, size_t n);

#endif
