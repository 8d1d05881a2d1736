/* audit.h: the node's audit log, in the store's "audit" database: every
 * decision the node made about its own data, allowed or denied (who,
 * what, which product, the deciding rule, the policy version, when).
 *
 * Records are keyed by a sequence number that only grows; appending
 * prunes the oldest records past the retention (an age and a count, both
 * bounded), in the same transaction, so the database never grows without
 * bound. Thread-safe as the store is. */
#ifndef DM_AUDIT_H
#define DM_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "storage/store.h"

#define DM_AUDIT_KEY_BYTES 32
#define DM_AUDIT_ACTION_MAX 32     /* bytes incl. NUL */
#define DM_AUDIT_PRODUCT_MAX 132   /* "domain/name" incl. NUL */
#define DM_AUDIT_RULE_MAX 256      /* bytes incl. NUL */
#define DM_AUDIT_DEFAULT_MAX_AGE_MS (30LL * 24 * 3600 * 1000) /* 30 days */
#define DM_AUDIT_DEFAULT_MAX_RECORDS 1000000
#define DM_AUDIT_PAGE_MAX 1000     /* records one dm_audit_list returns at most */

typedef struct {
    uint64_t seq;                         /* set by dm_audit_append */
    int64_t at_ms;                        /* Unix milliseconds */
    uint8_t caller[DM_AUDIT_KEY_BYTES];   /* ed25519 key, or CURVE key when !verified */
    bool verified;
    bool allowed;
    char action[DM_AUDIT_ACTION_MAX];     /* "read", "describe", "ingest", "register", ... */
    char product[DM_AUDIT_PRODUCT_MAX];   /* "domain/name" or "" */
    char rule[DM_AUDIT_RULE_MAX];         /* the deciding rule */
    uint64_t policy_version;
} dm_audit_record_t;

typedef struct {
    int64_t max_age_ms;    /* 0: DM_AUDIT_DEFAULT_MAX_AGE_MS; records older than now - this go */
    uint64_t max_records;  /* 0: DM_AUDIT_DEFAULT_MAX_RECORDS */
} dm_audit_retention_t;

/* Appends n records in one transaction (assigning each its seq), then
 * deletes records older than now_ms - max_age_ms and the oldest past
 * max_records. ret NULL: defaults. A store error (why names it). */
DM_NODISCARD dm_err dm_audit_append(dm_store_t *s, dm_audit_record_t *recs, size_t n,
                                    const dm_audit_retention_t *ret, int64_t now_ms,
                                    dm_buf_t *why);
/* Records with at_ms >= since_ms and seq > after, oldest first, at most
 * limit (capped at DM_AUDIT_PAGE_MAX; 0: the cap): *out malloc'd (free),
 * *n of them, *more when others follow. */
DM_NODISCARD dm_err dm_audit_list(dm_store_t *s, int64_t since_ms, uint64_t after, size_t limit,
                                  dm_audit_record_t **out, size_t *n, bool *more, dm_buf_t *why);
/* Records held now. */
DM_NODISCARD dm_err dm_audit_count(dm_store_t *s, uint64_t *n, dm_buf_t *why);

#endif
