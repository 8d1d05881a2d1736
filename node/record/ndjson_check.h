/* ndjson_check.h: `dmctl check` as a library call: validate an NDJSON stream offline.
 *
 * Each non-blank line of the input is one record, validated against a
 * schema; every invalid record gets one diagnostic line
 * "NAME:LINE: error: REASON; REASON..." and the run ends with the summary
 * "N valid, M invalid". Named apart from the contract's quality checks
 * (dm_check_t in contract/contract.h), which the schema applies per record. */
#ifndef DM_NDJSON_CHECK_H
#define DM_NDJSON_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "record/schema.h"

/* Reads fd to EOF, validating each non-blank line (blank: empty or only
 * spaces, tabs, CR, FF, VT); writes one diagnostic line per invalid record
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
