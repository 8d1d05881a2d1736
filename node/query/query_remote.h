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

/* ---- query_remote_snap.c: a table read whole once for a join's probes ---- */

#define DM_QUERY_REMOTE_SNAP_AFTER 8         /* probes the owner answered before reading whole */
#define DM_QUERY_REMOTE_SNAP_ROWS 250000     /* owner's row count at most */
#define DM_QUERY_REMOTE_SNAP_BYTES (64 << 20) /* bytes of rows at most, else given up */

typedef struct dm_query_remote_snap dm_query_remote_snap_t;

/* What a remote read cost: round trips (open and next), rows and bytes. */
typedef struct {
    uint64_t trips, rows, bytes;
} dm_query_remote_count_t;

/* Reads t whole (the columns of plan) through rm and indexes the rows by
 * field col. DM_OK with *out NULL when it does not fit or a value of col
 * has another type than the column's; a failure of the owner with its
 * line in why. count grows by what moved. */
DM_NODISCARD dm_err dm_query_remote__snap_build(const dm_query_remote_t *rm, const dm_qtable_t *t,
                                                const dm_query_remote_plan_t *plan, int col,
                                                int64_t deadline_ns, const atomic_bool *cancel,
                                                dm_query_remote_snap_t **out,
                                                dm_query_remote_count_t *count, dm_buf_t *why);
/* Whether s was read with columns used and indexed by col. */
bool dm_query_remote__snap_matches(const dm_query_remote_snap_t *s, uint64_t used, int col);
/* Appends to out the rows whose col equals v, as SQLite's "col = v" would
 * find them; false (nothing appended) when v does not convert exactly and
 * the owner must be asked. */
bool dm_query_remote__snap_probe(const dm_query_remote_snap_t *s, const dm_contract_t *c,
                                 sqlite3_value *v, dm_buf_t *out);
/* Rows held. */
size_t dm_query_remote__snap_rows(const dm_query_remote_snap_t *s);
/* NULL-safe; sets *snap_p NULL. */
void dm_query_remote__snap_free(dm_query_remote_snap_t **snap_p);

#endif
