/* query_remote.h: what the two files of the remote virtual table share
 * (query_remote.c: the module, scans, probe cache and counters;
 * query_remote_sql.c: the plan xBestIndex hands xFilter and the SELECTs
 * built from it). Private to node/query. */
#ifndef DM_QUERY_REMOTE_H
#define DM_QUERY_REMOTE_H

#include "query/query_priv.h"

#define DM_QUERY_REMOTE_MAX_TERMS 64 /* pushed terms of one plan, LIMIT and OFFSET included */

/* Term operators in a plan (also their letter in idxStr). */
#define DM_QUERY_REMOTE_EQ '='
#define DM_QUERY_REMOTE_LT '<'
#define DM_QUERY_REMOTE_LE '{'
#define DM_QUERY_REMOTE_GT '>'
#define DM_QUERY_REMOTE_GE '}'
#define DM_QUERY_REMOTE_ISNULL 'n'
#define DM_QUERY_REMOTE_NOTNULL 'N'
#define DM_QUERY_REMOTE_LIKE '~'
#define DM_QUERY_REMOTE_IN 'I'
#define DM_QUERY_REMOTE_LIMIT 'L'
#define DM_QUERY_REMOTE_OFFSET 'O'

/* One pushed term: argv[i] of xFilter is the value of terms[i]. */
typedef struct {
    char op;
    int col;
    bool omit; /* SQLite does not check it: it must reach the owner */
} dm_query_remote_term_t;

/* What xBestIndex chose, carried to xFilter as idxStr (dm_query_remote__plan_text). */
typedef struct {
    dm_query_remote_term_t terms[DM_QUERY_REMOTE_MAX_TERMS];
    int nterms;
    uint64_t used;  /* sqlite3_index_info.colUsed */
    int order[DM_QUERY_REMOTE_MAX_TERMS]; /* ORDER BY columns pushed, -1 - col for DESC */
    int norder;
} dm_query_remote_plan_t;

/* Appends plan p as idxStr text; dm_query_remote__plan_parse reads it back. */
void dm_query_remote__plan_text(const dm_query_remote_plan_t *p, dm_buf_t *out);
/* Parses idxStr text into *p; false if it is not ours. */
bool dm_query_remote__plan_parse(const char *text, dm_query_remote_plan_t *p);

/* Whether field f of c is in the SELECT of a plan using columns used:
 * those, and always the primary key, so that a row's rowid (a hash of
 * its values) is the same in every scan that returns it, as SQLite's OR
 * plans need to drop a row two branches both return. */
bool dm_query_remote__uses(const dm_contract_t *c, uint64_t used, size_t f);

/* Builds the SELECTs of plan p over t with xFilter's argv: one, or one per
 * batch of DM_QUERY_IN_BATCH values of a pushed IN list. Terms whose value
 * does not convert the way the owner would compare it are left out (SQLite
 * checks them). *empty when no row can match (an equality no value meets,
 * an empty IN list): then no SELECT. DM_ERR_INVALID with a line in why
 * when a term SQLite will not check cannot be sent. *sqls: malloc'd array
 * of malloc'd strings, freed with dm_query_remote__sqls_free. */
DM_NODISCARD dm_err dm_query_remote__build(const dm_qtable_t *t, const dm_query_remote_plan_t *p, int argc,
                                      sqlite3_value **argv, char ***sqls, size_t *nsql,
                                      bool *empty, dm_buf_t *why);
void dm_query_remote__sqls_free(char **sqls, size_t n);

/* Whether SQL value v (compared to field f by op, an SQLITE_INDEX_CONSTRAINT_*)
 * may be sent to the owner: query_conv.c says it converts exactly, or
 * loosely without widening, and it renders as a literal of at most
 * DM_QUERY_REMOTE_LITERAL_MAX bytes. *exact: the conversion is exact. *never:
 * an equality no row meets. */
#define DM_QUERY_REMOTE_LITERAL_MAX 1024
bool dm_query_remote__pushable(const dm_contract_t *c, size_t f, int op, sqlite3_value *v,
                          bool *exact, bool *never);

/* ---- query_remote_snap.c: an index of a remote table's rows by the column
 * a join probes: read whole once, or filled with the values a dry run
 * learned (query_remote_learn.c), fetched in IN batches or one key range ---- */

#define DM_QUERY_REMOTE_SNAP_AFTER 8         /* probes the owner answered before reading whole */
#define DM_QUERY_REMOTE_SNAP_ROWS 250000     /* owner's row count at most */
#define DM_QUERY_REMOTE_SNAP_BYTES (64 << 20) /* bytes of rows at most, else given up */
/* Learned integer keys of a single-column integer primary key are asked as
 * one "BETWEEN lo AND hi" when there are more than this many and they fill
 * at least DM_QUERY_REMOTE_RANGE_FILL percent of the range (Trino compacts
 * past 256 values): at most 100/FILL times the rows of the keys move. */
#define DM_QUERY_REMOTE_RANGE_AFTER 256
#define DM_QUERY_REMOTE_RANGE_FILL 80

typedef struct dm_query_remote_snap dm_query_remote_snap_t;

/* What a remote read cost: round trips (open and next; the first batch
 * comes with the open's reply, query.h), rows and bytes. */
typedef struct {
    uint64_t trips, rows, bytes;
} dm_query_remote_count_t;

/* One SELECT's SQL, kept with its rows (the probe cache, query_remote.c). */
typedef struct dm_query_remote_centry {
    char *sql;
    dm_buf_t rows;
    struct dm_query_remote_centry *next;
} dm_query_remote_centry_t;

struct dm_qremote {
    char *json;            /* the contract as resolved (canonical JSON) */
    dm_product_ref_t ref;  /* contract and schema, ours, parsed once the table is created */
    uint64_t rows_est;     /* the owner's record count, 0: unknown */
    char *last_sql;
    uint64_t trips, rows, bytes, hits, scans;
    dm_query_remote_centry_t **cache; /* chains, allocated on first use */
    size_t cache_bytes;
    dm_query_remote_snap_t *snap; /* the probe index (query_remote_snap.c) */
    bool snap_failed;      /* reading whole tried and did not fit: not again in this query */
    uint64_t misses, snap_hits; /* probes the owner answered; probes the index did */
    bool probed;           /* a plan probes it with a value known at run time */
    uint64_t learned, batches, ranges; /* the dry run: keys, IN batches, key ranges */
};

/* Reads head (all of t's rows the plan's other terms allow, the columns
 * used) through rm and indexes the rows by field col. DM_OK with *out NULL when it does not fit or a value of col
 * has another type than the column's; a failure of the owner with its
 * line in why. count grows by what moved. */
DM_NODISCARD dm_err dm_query_remote__snap_build(const dm_query_remote_t *rm, const dm_qtable_t *t,
                                                uint64_t used, int col, const char *head, bool where,
                                                int64_t deadline_ns, const atomic_bool *cancel,
                                                dm_query_remote_snap_t **out,
                                                dm_query_remote_count_t *count, dm_buf_t *why);
/* An empty index of t's rows by field col, covering no key yet: the rows
 * of head ("SELECT <used> FROM <product>", with a WHERE of the plan's
 * other terms when where). NULL when col would not be read or out of
 * memory. */
dm_query_remote_snap_t *dm_query_remote__snap_new(const dm_qtable_t *t, uint64_t used, int col,
                                                  const char *head, bool where);
/* Whether s was made with columns used, head and indexed by col. */
bool dm_query_remote__snap_matches(const dm_query_remote_snap_t *s, uint64_t used, int col,
                                   const char *head);
/* Whether s holds the whole table (every key covered). */
bool dm_query_remote__snap_whole(const dm_query_remote_snap_t *s);

/* What dm_query_remote__snap_probe found for a value. */
typedef enum {
    DM_QUERY_REMOTE_SERVED, /* covered: its rows (maybe none) appended */
    DM_QUERY_REMOTE_MISSING, /* exact but not covered: learnable, else the owner's */
    DM_QUERY_REMOTE_ASK,     /* does not convert exactly: only the owner can answer */
} dm_query_remote_found;
/* Appends to out the rows whose col equals v, as SQLite's "col = v" would
 * find them, when s covers v. */
dm_query_remote_found dm_query_remote__snap_probe(const dm_query_remote_snap_t *s,
                                                  const dm_contract_t *c, sqlite3_value *v,
                                                  dm_buf_t *out);
/* Adds v (MISSING for s) to the keys to fetch; false on no memory or once
 * the keys of s hold DM_QUERY_REMOTE_KEY_BYTES (then *full). */
#define DM_QUERY_REMOTE_KEY_BYTES (8 << 20) /* bytes of learned keys and their literals per table */
bool dm_query_remote__snap_learn(dm_query_remote_snap_t *s, const dm_contract_t *c, sqlite3_value *v,
                                 bool *full);
/* Keys learned and not fetched yet. */
size_t dm_query_remote__snap_pending(const dm_query_remote_snap_t *s);
/* Fetches the pending keys from t's owner: one "col BETWEEN lo AND hi"
 * when they are dense (DM_QUERY_REMOTE_RANGE_*), else IN batches of
 * DM_QUERY_IN_BATCH, and covers them. *kept false (the caller frees s)
 * when the rows do not fit or do not index (a masked key column); a
 * failure of the owner with its line in why. count, *batches and *ranges
 * grow by what was done; *last_sql gets the last SELECT (malloc'd). */
DM_NODISCARD dm_err dm_query_remote__snap_fetch(const dm_qctx_t *ctx, const dm_qtable_t *t,
                                                dm_query_remote_snap_t *s,
                                                dm_query_remote_count_t *count, uint64_t *batches,
                                                uint64_t *ranges, char **last_sql, bool *kept,
                                                dm_buf_t *why);
/* Rows held. */
size_t dm_query_remote__snap_rows(const dm_query_remote_snap_t *s);
/* NULL-safe; sets *snap_p NULL. */
void dm_query_remote__snap_free(dm_query_remote_snap_t **snap_p);

/* The probe term of plan: its one equality SQLite checks (a value known
 * at run time), every other term omitted, no ORDER BY; -1 when none. */
int dm_query_remote__probe_term(const dm_query_remote_plan_t *plan);
/* Answers a probe (plan with a probe term, xFilter's argv) from t's index:
 * in a dry run, learning the value when it is not covered (nothing is
 * returned then, nor for a probe the index cannot take); else reading t
 * whole after DM_QUERY_REMOTE_SNAP_AFTER probes the owner answered when it
 * is small. *served false: the owner must be asked. rows gets the rows of
 * a served probe. A failure of the owner with its line in why. */
DM_NODISCARD dm_err dm_query_remote__serve(dm_qctx_t *ctx, dm_qtable_t *t,
                                           const dm_query_remote_plan_t *plan, int argc,
                                           sqlite3_value **argv, dm_buf_t *rows, bool *served,
                                           dm_buf_t *why);

#endif
