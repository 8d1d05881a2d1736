/* query_priv.h: what the files of the SQL engine share (query.c: engine,
 * connection pool, open, fetch; query_sandbox.c: hardening, authorizer,
 * limits, progress handler, the messages of a failed prepare; query_sql.c:
 * scanning the SQL text for the products it names; query_vtab.c: the
 * virtual table module; query_printf.c: printf() and format() with bounded
 * widths; query_access.c: access decisions, the mask functions and the
 * views that apply masks and row filters; query_remote.c: the virtual table
 * over another node's product; query_remote_sql.c: the SELECT it sends;
 * query_remote_snap.c: its probe index; query_remote_learn.c: the dry run
 * that batches a join's probes).
 * query_sched.c and query_pool*.c (the workers) use only query.h.
 * The helpers here follow base/err.h: a why they take is appended to and
 * must not be NULL. */
#ifndef DM_QUERY_PRIV_H
#define DM_QUERY_PRIV_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>

#include "query/query.h"
#include "storage/reader.h"

#define DM_QUERY_MODULE "dm_product" /* the virtual table module's name */
#define DM_QUERY_REMOTE_MODULE "dm_remote" /* the module of other nodes' products */
#define DM_QUERY_IN_BATCH 1000          /* IN values per SELECT sent to an owner */

#define DM_QUERY_RAW_SUFFIX "$raw" /* hidden raw table of a viewed product: "name$raw" */
#define DM_QUERY_NAME_MAX 128      /* bytes of a domain or product name the engine handles */

/* A product the SQL names: domain.name as written (bytes of the SQL), and
 * the registry entry held for the query's life. With masks or a row filter
 * (from the access decision, owned), the product's table is a view over
 * the raw virtual table "name$raw" (DM_QUERY_RAW_SUFFIX) in the same
 * schema. */
typedef struct dm_qremote dm_qremote_t; /* query_remote.c */

typedef struct {
    char *domain, *name;
    const dm_product_ref_t *ref; /* a remote table's is its own (contract, schema) */
    dm_qremote_t *remote;        /* another node's product (query_remote.c), else NULL */
    dm_policy_mask *masks; /* one per contract field, NULL when none is masked */
    size_t nmasks;
    char *row_filter;      /* NULL when none */
} dm_qtable_t;

/* Whether t is read through a view (masks or a row filter apply). */
static inline bool dm_query__viewed(const dm_qtable_t *t)
{
    return t->masks || t->row_filter;
}

/* What one query connection's callbacks see (the module's pAux, the
 * authorizer's and progress handler's argument). */
typedef struct {
    dm_reader_t *reader;
    dm_qtable_t *tables;
    size_t ntables;
    int64_t deadline_ns;    /* CLOCK_MONOTONIC */
    int64_t timeout_ms;
    atomic_bool cancel;
    const dm_query_remote_t *remote; /* how remote tables reach owners; NULL: none */
    dm_err remote_err;      /* a remote scan's failure, for the step's error */
    bool timed_out;         /* set by the progress handler */
    uint64_t walked;        /* rows (or keys) the virtual tables stepped over */
    /* The dry run (query_remote_learn.c): remote probes record their value
     * and answer from memory or nothing; the progress handler ends the
     * step once learn_stop is set or walked passes learn_walk_max. */
    bool learning, learn_stop;
    size_t learn_keys, learn_max;   /* keys learned in this query; at most */
    uint64_t learn_walk_max;
    bool client_fn;         /* the client's SQL calls a function (mask views' aside) */
    char denied[160];       /* the first refusal of the authorizer, "" if none */
    char unknown[2 * DM_QUERY_NAME_MAX + 2]; /* a hidden table named by the SQL, "" if none */
    bool denied_weak;       /* denied may give way to a more telling refusal */
    sqlite3 *printf_db;     /* query_printf.c's helper connection, opened on first use */
    sqlite3_stmt *printf_stmt[DM_QUERY_LIMIT_FUNCTION_ARG + 1]; /* by argument count */
} dm_qctx_t;

/* ---- query_sql.c ---- */

/* Appends to *tables every distinct `ident . ident` pair of sql that names
 * a product of registry (acquiring it) or, when remote is not NULL, one
 * remote->resolve knows (a remote table, dm_query__remote_resolve),
 * skipping string literals and comments. *ndomains gets the number of
 * distinct domains among them. DM_ERR_NOMEM, or resolve's failure with its
 * line in why (not NULL). */
DM_NODISCARD dm_err dm_query__find_tables(dm_registry_t *registry,
                                          const dm_query_remote_t *remote, const char *sql,
                                          size_t len, dm_qtable_t **tables, size_t *ntables,
                                          size_t *ndomains, dm_buf_t *why);
/* Whether sql uses name (a product read through a view) as the name of a
 * WITH table or a window, a bare identifier followed by AS or '(':
 * SQLite would let such a table stand for the product inside the view. */
bool dm_query__names_cte(const char *sql, size_t len, const char *name);
/* Whether sql has the identifier ident anywhere (quoted or not). */
bool dm_query__names_ident(const char *sql, size_t len, const char *ident);
/* Releases and frees the tables (and what their decisions left). */
void dm_query__tables_free(dm_registry_t *registry, dm_qtable_t *tables, size_t n);

/* Offset of the first byte of tail[0..len) that is not whitespace, a
 * comment or ';', or len if there is none. */
size_t dm_query__skip_blank(const char *tail, size_t len);


/* ---- query_sandbox.c ---- */

/* Applies the connection-level defences that must be in place before
 * anything runs (dbconfig, limits that setup needs). DM_ERR_INVALID, with
 * the failing setting appended to why (not NULL). */
DM_NODISCARD dm_err dm_query__harden(sqlite3 *db, dm_buf_t *why);
/* Switches the sandbox on once the tables exist: query_only, temp_store,
 * the remaining limits (SQL length max_sql), authorizer, progress handler.
 * DM_ERR_INVALID, with the failing step appended to why (not NULL). */
DM_NODISCARD dm_err dm_query__lock_down(sqlite3 *db, dm_qctx_t *ctx, size_t max_sql,
                                        dm_buf_t *why);
/* Whether the query must stop now: cancelled, or past its deadline (then
 * marked timed out). The progress handler asks it, and so do scans that
 * pass rows without running SQLite instructions (query_vtab.c). */
bool dm_query__stopped(dm_qctx_t *ctx);
/* Appends the failure of preparing sql to why (not NULL) and returns its
 * dm_err: the authorizer's refusal, an unknown table with a "did you
 * mean" from the registry's products, or SQLite's message with line:col
 * and a caret (dm_query__caret). */
dm_err dm_query__prepare_error(sqlite3 *db, dm_qctx_t *ctx, dm_registry_t *registry,
                               const dm_query_access_t *access,
                               const char *sql, size_t len, dm_buf_t *why);
/* Appends " (line L, column C)", then the SQL line and a caret under byte
 * offset off of sql, each on a line of its own (the one multi-line error
 * detail: clients print it as it is). */
void dm_query__caret(const char *sql, size_t len, size_t off, dm_buf_t *why);
/* The sandbox's progress handler (deadline, cancel, a dry run's end) every
 * ops VM instructions: DM_QUERY_PROGRESS_OPS, or DM_QUERY_PROGRESS_OPS_LOOP
 * while the node loop steps a query within a budget. */
#define DM_QUERY_PROGRESS_OPS 1000
#define DM_QUERY_PROGRESS_OPS_LOOP 100
void dm_query__progress_every(sqlite3 *db, dm_qctx_t *ctx, int ops);

/* ---- query_access.c ---- */

/* Asks access about every table (query.h's dm_query_access_t): a refusal
 * appends its reason to why and returns DM_ERR_DENIED; an allowed
 * decision's masks and row filter move into the table. DM_ERR_INVALID
 * when a decision's masks do not match the product's fields. why not
 * NULL. */
DM_NODISCARD dm_err dm_query__decide(const dm_query_access_t *access, dm_qtable_t *tables,
                                     size_t n, dm_buf_t *why);
/* Whether a and b read the product the same way (masks and row filter). */
bool dm_query__same_access(const dm_qtable_t *a, const dm_qtable_t *b);
/* Registers the mask functions (dm_mask_redact, ...) on db and lets it use
 * views. SQLITE_OK or SQLite's code. */
DM_NODISCARD int dm_query__register_masks(sqlite3 *db);
/* Creates the view of table t (its raw virtual table exists) and checks
 * that it prepares. DM_ERR_INVALID naming the product and the row filter
 * when it does not. why not NULL. */
DM_NODISCARD dm_err dm_query__create_view(sqlite3 *db, const dm_qtable_t *t, dm_buf_t *why);

/* ---- query_vtab.c ---- */

/* Declared type of a field type in a product table's CREATE TABLE
 * (INTEGER, REAL, BOOLEAN, TIMESTAMP, DATE, UUID, TEXT). */
const char *dm_query__decltype(dm_ftype t);
/* Registers the virtual table module on db with ctx as its context. */
DM_NODISCARD int dm_query__register_module(sqlite3 *db, dm_qctx_t *ctx);

/* Orders two byte strings as SQLite's BINARY collation and the store's
 * keys do: memcmp over the common length, then the shorter first. */
static inline int dm_query__bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* ---- query_group.c ---- */

#define DM_QUERY_GROUP_MAX 16     /* groups (value combinations, NULL included) of a grouped scan */
#define DM_QUERY_GROUP_COLS_MAX 4 /* columns it groups by */

/* A log scan in groups: one pass over the log per group of rows sharing
 * the values of a few enum or boolean columns, the groups in the order of
 * SQLite's ORDER BY (GROUP BY, DISTINCT) terms. Set up by
 * dm_query__group_start; plain data, nothing to free. */
typedef struct {
    size_t ncols, ngroups;
    size_t field[DM_QUERY_GROUP_COLS_MAX];
    size_t card[DM_QUERY_GROUP_COLS_MAX];  /* values of each column, NULL included */
    uint8_t rank[DM_QUERY_GROUP_COLS_MAX][DM_QUERY_GROUP_MAX]; /* by enum index or boolean */
    uint8_t rank_null[DM_QUERY_GROUP_COLS_MAX];
    bool one;     /* DISTINCT: one row per group is enough */
    bool first;   /* the first pass, which learns the groups present */
    bool taken;   /* the pass has yielded a row */
    size_t pass;  /* the group this pass yields */
    uint64_t seen, done; /* groups present; groups yielded */
} dm_qgroup_t;

/* Whether xBestIndex's ORDER BY (SQLite's GROUP BY or DISTINCT columns
 * too, as sqlite3_vtab_distinct's distinct says) is all enum or boolean
 * columns of c with at most DM_QUERY_GROUP_MAX value combinations; if so,
 * appends the plan's description to idxstr, which
 * dm_query__group_start reads back in xFilter. */
bool dm_query__group_plan(const dm_contract_t *c, sqlite3_index_info *info, int distinct,
                          dm_buf_t *idxstr);
/* Reads the plan from idxstr (from dm_query__group_plan) and ranks the
 * values; false if idxstr has none. */
bool dm_query__group_start(dm_qgroup_t *g, const dm_contract_t *c, const char *idxstr);
/* The group of a row, -1 if the row is malformed. */
int dm_query__group_of(const dm_qgroup_t *g, const dm_schema_t *s, const void *row, size_t len);
/* Whether a row of group belongs to this pass (the first pass also
 * notes the group as present). */
bool dm_query__group_take(dm_qgroup_t *g, int group);
/* Whether the rest of this pass can be skipped (DISTINCT, its row given,
 * and the groups present known). */
static inline bool dm_query__group_pass_over(const dm_qgroup_t *g)
{
    return g->one && g->taken && !g->first;
}
/* Moves to the next group present that was not yielded; false when none
 * is left. */
bool dm_query__group_next(dm_qgroup_t *g);

/* ---- query_remote.c ---- */

/* Asks remote about domain.name: DM_OK with *t filled (names, the
 * contract's canonical JSON, the owner's row count; t->ref stays NULL
 * until dm_query__remote_load), DM_ERR_NOTFOUND when the mesh does not
 * know it, else the failure with a line in why. */
DM_NODISCARD dm_err dm_query__remote_resolve(const dm_query_remote_t *remote, const char *domain,
                                             const char *name, dm_qtable_t *t, dm_buf_t *why);
/* Parses t's contract (once) and sets t->ref. DM_ERR_INVALID naming the
 * product when the text is not one contract of that name, DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_query__remote_load(dm_qtable_t *t, dm_buf_t *why);
/* Whether remote tables a and b have the same contract text (a pooled
 * connection built for a serves b). */
bool dm_query__remote_same(const dm_qtable_t *a, const dm_qtable_t *b);
/* Forgets what a query did with t (counters, probe cache); with fresh
 * (the same product, just resolved) takes its row count. */
void dm_query__remote_reset(dm_qtable_t *t, const dm_qtable_t *fresh);
/* Frees what a remote table owns (contract, schema, counters, cache). */
void dm_query__remote_free(dm_qtable_t *t);
/* Registers the remote module (DM_QUERY_REMOTE_MODULE) on db. */
DM_NODISCARD int dm_query__register_remote(sqlite3 *db, dm_qctx_t *ctx);
/* Appends the explain line of remote table t (query.h's dm_query_explain). */
void dm_query__remote_explain(const dm_qtable_t *t, dm_buf_t *out);

/* ---- query_remote_learn.c ---- */

/* Before stmt returns rows: when a remote table of ctx may be probed
 * (a join's key), steps stmt as a dry run that learns the probed values,
 * fetches them from the owners in IN batches (or one key range) and
 * resets stmt, up to DM_QUERY_LEARN_ROUNDS times. Results are unchanged:
 * the run that follows is real and only finds more in memory. DM_OK also
 * when learning stopped early; a failure only on cancel, the deadline or
 * out of memory (then the statement is not to be stepped again), with
 * why. */
DM_NODISCARD dm_err dm_query__remote_learn(dm_qctx_t *ctx, sqlite3_stmt *stmt, dm_buf_t *why);

/* ---- query_remote_sql.c ---- */

/* Appends v as an SQL literal that SQLite reads back as exactly v (type
 * and value): integers, reals (%.17g, -0.0, infinities as 9e999), text in
 * quotes with quotes doubled, blobs as X'..', NULL. False, out unchanged,
 * when it cannot (text with a NUL byte, NaN). */
bool dm_query__sql_literal(sqlite3_value *v, dm_buf_t *out);

/* ---- query_conv.c ---- */

/* Appends `"ident"` with embedded quotes doubled. */
void dm_query__quote_ident(dm_buf_t *out, const char *ident);

/* Writes the fixed-width RFC 3339 text of UTC microseconds us
 * ("YYYY-MM-DDTHH:MM:SS.ffffffZ") into buf (DM_TIMESTAMP_TEXT_MAX bytes);
 * returns its length. */
size_t dm_query__timestamp_text(int64_t us, char *buf);

/* How an SQL value converts to a key value of a column. */
typedef enum {
    DM_QCONV_NEVER, /* an equality no key can meet under any affinity: nothing to walk */
    DM_QCONV_NONE,  /* not usable as a bound: the walk widens, SQLite checks */
    DM_QCONV_LOOSE, /* usable, but SQLite's comparison may differ: not omitted */
    DM_QCONV_EXACT  /* the key bound selects exactly what SQLite would */
} dm_qconv;

/* Converts SQL value sv, compared to field f of contract c by op (an
 * SQLITE_INDEX_CONSTRAINT_*), into *out. *incl is forced true for bounds
 * that only approximate (a date bounding a timestamp). DM_QCONV_NEVER only
 * for op EQ: NULL; for an int key, text that numeric affinity (which an
 * INTEGER column imposes on the other side) leaves text, and blobs; for
 * timestamp, date and uuid keys, whose texts never look like numbers, any
 * number or blob and text that is not one of their values. */
dm_qconv dm_query__convert(const dm_contract_t *c, size_t f, int op, sqlite3_value *sv,
                           dm_value_t *out, bool *incl);

/* ---- query_printf.c ---- */

/* Overrides printf() and format() on db with versions whose widths and
 * precisions are bounded by DM_QUERY_LIMIT_LENGTH. */
DM_NODISCARD int dm_query__register_printf(sqlite3 *db, dm_qctx_t *ctx);
/* Closes the helper connection. Call after db is closed. */
void dm_query__printf_free(dm_qctx_t *ctx);

#endif
