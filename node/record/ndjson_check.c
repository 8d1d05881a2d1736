/* ndjson_check.c: offline validation of an NDJSON stream (see ndjson_check.h).
 *
 * One lines reader, one set of reused buffers, one pass: the per-record cost
 * is the schema's validation and nothing else. Diagnostics go through stdio
 * so they are written in large blocks. */
#include "record/ndjson_check.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "base/lines.h"

dm_err dm_ndjson_check_fd(const dm_schema_t *s, const char *name, int fd, size_t record_limit,
                   FILE *out, uint64_t *valid, uint64_t *invalid)
{
    dm_buf_t row = DM_BUF_INIT, key = DM_BUF_INIT, reasons = DM_BUF_INIT;
    dm_lines_t *lines = NULL;
    uint64_t nvalid = 0, ninvalid = 0;
    const char *line;
    size_t len;
    uint64_t lineno = 0, full = 0;
    int rc;
    if (record_limit == 0)
        record_limit = DM_RECORD_LIMIT_DEFAULT;
    dm_err err = dm_lines_new(fd, record_limit, &lines);
    if (err)
        goto out;
    while ((rc = dm_lines_next(lines, &line, &len, &lineno, &full)) == 1) {
        if (full > len) {
            ninvalid++;
            fprintf(out, "%s:%llu: error: record is %llu bytes, over the limit of %zu\n", name,
                    (unsigned long long)lineno, (unsigned long long)full, record_limit);
            continue;
        }
        if (dm_schema_validate(s, line, len, &row, &key, &reasons)) {
            nvalid++;
            continue;
        }
        if (dm_ndjson_check_blank(line, len))
            continue; /* checked only on failure: blank lines are rare */
        ninvalid++;
        fprintf(out, "%s:%llu: error: %s\n", name, (unsigned long long)lineno, reasons.data);
    }
    if (rc < 0) {
        err = DM_ERR_IO;
        fprintf(out, "%s: error: read failed after line %llu: %s\n", name,
                (unsigned long long)lineno, strerror(errno));
    }
    fprintf(out, "%llu valid, %llu invalid\n", (unsigned long long)nvalid,
            (unsigned long long)ninvalid);
out:
    *valid = nvalid;
    *invalid = ninvalid;
    dm_lines_destroy(&lines);
    dm_buf_free(&row);
    dm_buf_free(&key);
    dm_buf_free(&reasons);
    return err;
}
