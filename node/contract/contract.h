/* contract.h: the data-product contract (datamesh.io/v1) as a C model.
 *
 * dm_contract_parse turns YAML text (one or more documents) into contracts and
 * collects every problem as a diagnostic "FILE:LINE:COL: error: MESSAGE".
 * The model is plain data, read by record/ (the schema), ingest, catalog,
 * query and the tools; it is immutable once parsed. A contract's canonical form is deterministic JSON
 * text (sorted keys, avro schemas resolved to inline fields, x- keys kept)
 * that dm_contract_parse accepts back and that hashes identically for
 * identical content: it is what travels on the wire and what is stored. */
#ifndef DM_CONTRACT_H
#define DM_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/diags.h"
#include "base/err.h"

#define DM_CONTRACT_MAX_FILE (1024 * 1024) /* bytes; larger files are refused */
#define DM_CONTRACT_MAX_DEPTH 64           /* YAML nesting levels */
#define DM_CONTRACT_HASH_BYTES 32
/* Shape limits of one contract (docs/contract.md, "Size limits"): what the
 * node can compile into a record schema, with room to spare. */
#define DM_CONTRACT_MAX_FIELDS 4096  /* fields of a schema (= DM_SCHEMA_MAX_FIELDS) */
#define DM_CONTRACT_MAX_VALUES 65536 /* values of one enum field or one in_list check */
#define DM_CONTRACT_MAX_CHECKS 4096  /* spec.quality.checks entries */
#define DM_CONTRACT_MAX_READERS 1000 /* spec.policies.readers entries */
#define DM_CONTRACT_READER_HEX 64     /* hex digits of a reader's ed25519 key */
#define DM_CONTRACT_GROUP_PREFIX "group:" /* a reader that is a governance group */

typedef enum {
    DM_FT_STRING = 0,
    DM_FT_INT,       /* 64-bit signed */
    DM_FT_DOUBLE,    /* finite IEEE double */
    DM_FT_BOOLEAN,
    DM_FT_TIMESTAMP, /* RFC 3339 with offset; stored as UTC microseconds */
    DM_FT_DATE,      /* calendar date; stored as days since 1970-01-01 */
    DM_FT_UUID,      /* 8-4-4-4-12 hex; stored as 16 bytes */
    DM_FT_ENUM,      /* one of values[]; stored as its index */
    DM_FT__COUNT
} dm_ftype;

/* A number from the contract: ints stay exact, everything else is a double. */
typedef struct {
    bool is_int;
    int64_t i;
    double d;
} dm_num_t;

typedef struct {
    char *name;
    dm_ftype type;
    bool required; /* true also for primary-key fields */
    bool primary_key;
    char *description; /* NULL if absent */
    char **values;     /* enum values (DM_FT_ENUM only) */
    size_t nvalues;
    bool has_minimum, has_maximum, has_exclusive_minimum, has_exclusive_maximum;
    dm_num_t minimum, maximum, exclusive_minimum, exclusive_maximum;
    int64_t min_length, max_length; /* in Unicode code points; -1 if unset */
    char *pattern;                  /* POSIX extended regex, unanchored; NULL if unset */
    char *classification;           /* e.g. "pii" (the name rule); NULL if unset */
    unsigned line, col;             /* where the field was declared */
} dm_field_t;

typedef enum { DM_GRAN_HOUR, DM_GRAN_DAY, DM_GRAN_MONTH, DM_GRAN_YEAR } dm_granularity;

typedef struct {
    char *field;
    dm_granularity granularity;
} dm_partition_t;

typedef enum {
    DM_CHECK_NOT_NULL,
    DM_CHECK_IN_LIST,
    DM_CHECK_RANGE,
    DM_CHECK_REGEX,
    DM_CHECK_UNIQUE,
    DM_CHECK_ROW_COUNT_DELTA,
    DM_CHECK_FRESHNESS,
    DM_CHECK__COUNT
} dm_check_rule;

/* row_count_delta's baseline (docs/quality.md). */
typedef enum {
    DM_BASELINE_PREVIOUS = 0, /* the measurement before the latest */
    DM_BASELINE_AVERAGE,      /* the average of the `over` before it */
    DM_BASELINE_SAME_WEEKDAY  /* the one nearest to 7 days before it */
} dm_baseline;

#define DM_CHECK_COLUMNS_MAX 16     /* columns of one unique check */
#define DM_CHECK_OVER_MAX 1000      /* measurements an average baseline may span */
#define DM_CHECK_OVER_DEFAULT 7

typedef struct {
    dm_check_rule rule;
    char *column;      /* NULL for row_count_delta and freshness without column */
    int field_index;   /* index into spec fields, -1 if no column */
    char **values;     /* in_list: texts, each valid for the column's type */
    size_t nvalues;
    bool has_min, has_max; /* range, inclusive */
    dm_num_t min, max;
    char *pattern;     /* regex */
    double threshold;  /* row_count_delta */
    bool threshold_is_percent;
    int64_t max_age_ms; /* freshness: explicit or sla.freshness; -1 if neither */
    unsigned line, col;
    /* unique: the column set (`column` is one entry, `columns` several);
     * NULL/0 for the other rules. */
    char **columns;
    int *column_index; /* index into spec fields of each entry */
    size_t ncolumns;
    /* row_count_delta: what the latest measurement is compared with, and
     * an optional warn threshold (same units as its own flag says) */
    dm_baseline baseline;
    uint32_t over;       /* DM_BASELINE_AVERAGE: measurements averaged */
    bool has_warn;
    double warn;         /* row_count_delta: rows or percent; field checks: failure percent */
    bool warn_is_percent;
    /* field checks (not_null, in_list, range, regex): dataset thresholds.
     * With any of them the rule judges the failure rate over the product
     * and no longer quarantines records (docs/quality.md). */
    bool has_mostly, has_fail;
    double mostly;       /* percent of rows that must pass */
    double fail;         /* failure percent above which the check fails */
    char *name;        /* the check's optional name, NULL if absent */
    char *description; /* NULL if absent */
} dm_check_t;

typedef enum { DM_ACCESS_PUBLIC, DM_ACCESS_RESTRICTED, DM_ACCESS_PRIVATE } dm_access;
typedef enum { DM_ENC_NONE, DM_ENC_AES256 } dm_encryption;

enum { /* bits of dm_contract_t.protocols */
    DM_PROTO_GRAPHQL = 1,
    DM_PROTO_REST = 2,
    DM_PROTO_GRPC = 4,
    DM_PROTO_SQL = 8
};

typedef struct {
    char *product;
    char *domain;
} dm_upstream_t;

typedef struct {
    /* metadata */
    char *name;
    char *domain;
    char *version; /* "MAJOR.MINOR.PATCH" as written */
    uint64_t version_major, version_minor, version_patch;
    char *owner_team;
    char *owner_contact;
    char *description; /* NULL if absent */
    char **tags;
    size_t ntags;

    /* spec.schema */
    bool schema_from_avro; /* resolved from a local .avsc at parse time */
    char *schema_location; /* the .avsc path as written, NULL for inline */
    dm_field_t *fields;
    size_t nfields;
    size_t *pk;            /* indexes into fields, in primaryKey order */
    size_t npk;

    /* spec.storage (informational except partitioning) */
    char *storage_format, *storage_location; /* NULL if absent */
    dm_partition_t *partitions;
    size_t npartitions;

    /* spec.sla; -1 / 0 when absent */
    int64_t freshness_ms;      /* -1 if absent */
    double availability; /* percent, 0 if absent */
    double latency_percentile; /* 99 for p99, 99.9 for p999; 0 if absent */
    int64_t latency_ms;        /* -1 if absent */

    /* spec.quality.checks */
    dm_check_t *checks;
    size_t nchecks;
    int64_t quality_schedule_ms; /* spec.quality.schedule; -1 if absent */

    /* spec.policies */
    dm_access access;        /* default restricted */
    char **readers;          /* policies.readers: 64-hex keys or "group:NAME" */
    size_t nreaders;
    int64_t retention_ms;    /* -1 if absent */
    dm_encryption encryption; /* default none */

    /* spec.interoperability */
    unsigned protocols;      /* DM_PROTO_* bits */
    dm_upstream_t *upstream;
    size_t nupstream;

    /* private: the parsed document, kept for the canonical form (x- keys) */
    void *tree;
} dm_contract_t;

/* Parses every YAML document in buf (len bytes) as a contract. name is the
 * file name used in diagnostics. basedir is the folder that a relative avro
 * schema location is resolved against; NULL forbids avro files (the node
 * only accepts canonical, inline contracts).
 * On success returns DM_OK and *out holds *n contracts (free them with
 * dm_contract_list_destroy); empty documents (a trailing
 * "---") are skipped, and diagnostics are sorted by position. If any document is invalid, returns
 * DM_ERR_INVALID with every problem in diags and *out NULL; DM_ERR_TOOBIG
 * for a buffer over DM_CONTRACT_MAX_FILE. Never reads beyond len; buf need
 * not be NUL-terminated. */
DM_NODISCARD dm_err dm_contract_parse(const char *name, const char *buf, size_t len,
                                      const char *basedir, dm_contract_t ***out, size_t *n,
                                      dm_diags_t *diags);

enum { /* flags of dm_contract_parse_opts */
    /* Check patterns with the static checker only (pattern.h), never with
     * regcomp: for contracts from peers parsed on the node loop. */
    DM_CONTRACT_NO_COMPILE = 1
};

/* dm_contract_parse with flags (DM_CONTRACT_* bits); dm_contract_parse is
 * this with flags 0. Every pattern is checked against pattern.h's limits
 * before anything compiles it, with or without flags. */
DM_NODISCARD dm_err dm_contract_parse_opts(const char *name, const char *buf, size_t len,
                                           const char *basedir, unsigned flags,
                                           dm_contract_t ***out, size_t *n, dm_diags_t *diags);

/* Reads path (at most DM_CONTRACT_MAX_FILE bytes) and parses it like
 * dm_contract_parse with basedir = the file's folder. DM_ERR_IO (with a
 * diagnostic) if the file cannot be read. */
DM_NODISCARD dm_err dm_contract_parse_file(const char *path, dm_contract_t ***out, size_t *n,
                                           dm_diags_t *diags);

/* Frees a contract. NULL-safe; sets *self_p to NULL. */
void dm_contract_destroy(dm_contract_t **self_p);

/* Frees the n contracts of a list from dm_contract_parse (NULL entries
 * are skipped, so a caller keeps one by setting its entry to NULL) and the
 * list itself. NULL-safe; sets *list_p to NULL. */
void dm_contract_list_destroy(dm_contract_t ***list_p, size_t n);

/* Appends the canonical JSON form of c to out. Cannot fail. */
void dm_contract_canonical(const dm_contract_t *c, dm_buf_t *out);

/* SHA-256 of the canonical form. */
void dm_contract_hash(const dm_contract_t *c, uint8_t out[DM_CONTRACT_HASH_BYTES]);

/* True when check k is a field rule (not_null, in_list, range, regex)
 * with dataset thresholds (mostly, warn, fail): it is then judged over the
 * product and does not gate records. */
bool dm_contract_check_has_rate(const dm_check_t *k);

/* Compares versions: <0, 0, >0 like strcmp. */
int dm_contract_version_cmp(const dm_contract_t *a, const dm_contract_t *b);

/* Names for enums, for output and messages. */
const char *dm_contract_ftype_name(dm_ftype t);
const char *dm_contract_rule_name(dm_check_rule r);
const char *dm_contract_access_name(dm_access a);

/* Parses a duration ("250ms", "30s", "5m", "1h", "7d", "2w", "1y", or ISO
 * 8601 "PT5M", "P1Y", "P1DT2H"); a year is 365 days, a month 30 days.
 * Returns false if s is not a duration or overflows. */
bool dm_contract_duration_parse(const char *s, size_t len, int64_t *ms_out);

#endif
