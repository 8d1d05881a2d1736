/* ndjson_check.h: `dmctl check` as a library call: validate an NDJSON stream offline.
 *
 * Each non-blank line of the input is one record, validated against a
 * schema; every invalid record gets one diagnostic line
 * "NAME:LINE: error: REASON; REASON..." and the run ends with the summary
 * "N valid, M invalid". Named apart from the contract's quality checks
 * (dm_check_t in contract/contract.h), which the schema applies per record. */
#ifndef DM_NDJSON_CHECK_H
#define DM_NDJSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "record/schema.h"

/* True if the len bytes at p are a blank line: empty or only spaces, tabs
 * and CR. The one rule for ingest (which skips blank lines and quarantines
 * every other line that is not a valid record) and dmctl check, so that a
 * check predicts what ingest will do; a form feed or vertical tab is not
 * blank, and not JSON either. Inline: ingest asks it of every line. */
static inline bool dm_ndjson_check_blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

/* Reads fd to EOF, validating each non-blank line (dm_ndjson_check_blank);
 * writes one diagnostic line per invalid record
 * to out ("NAME:LINE: error: ...") and the summary "N valid, M invalid\n".
 * A line longer than record_limit bytes (0 means DM_RECORD_LIMIT_DEFAULT) is
 * invalid without being parsed. *valid and *invalid get the counts, also
 * when reading fails. Returns DM_OK; DM_ERR_IO on a read error, after
 * writing "NAME: error: read failed after line N: STRERROR" and the summary
 * of what was read; DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_ndjson_check_fd(const dm_schema_t *s, const char *name, int fd,
                                size_t record_limit, FILE *out, uint64_t *valid,
                                uint64_t *invalid);

#endif
