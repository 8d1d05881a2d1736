/* query.h: the node's SQL engine: read-only, sandboxed SQLite over the
 * node's data products.
 *
 * Every product is a virtual table named domain.product whose columns and
 * types come from its contract (query_vtab.c). A query gets its own
 * SQLite connection and its own LMDB read transaction, so it sees every
 * batch acknowledged before dm_query_open (read-your-writes) and nothing
 * committed later. The connection attaches an empty in-memory schema per
 * domain the SQL names (found by scanning the text for `domain.product`),
 * creates the virtual tables of the named products in them, and only then
 * switches the sandbox on; SQLite allows at most DM_QUERY_MAX_DOMAINS
 * attached schemas, so that is the number of domains one statement may
 * name, while the mesh may hold any number.
 *
 * The sandbox (sqlite.org/security.html): one SELECT (WITH, VALUES,
 * EXPLAIN) per query; an authorizer that allows only reads of the product
 * tables, built-in functions (not load_extension, fts3_tokenizer), the
 * table-valued json_each and json_tree, and recursive CTEs; query_only;
 * defensive mode; no extension loading, triggers or views (but the
 * engine's own views of masked products, dm_query_open_as); untrusted
 * schema; double-quoted text is an identifier, never a string literal;
 * tight sqlite3_limit values (the DM_QUERY_LIMIT_* constants), with
 * printf()/format() widths bounded by the length limit too (SQLite 3.40
 * would spin for seconds on printf('%.*c', 1e9, 'x')); a time limit per
 * query, counted from dm_query_open across all fetches, enforced by a
 * progress handler that also honours dm_query_cancel; a cap on SQL text.
 * Memory: sqlite3_hard_heap_limit64 bounds all of SQLite's heap in the
 * process (set by dm_query_engine_new, process-wide: the last engine
 * created sets it) and temp_store is memory, so a huge sort fails with an
 * error instead of filling the disk or the machine.
 *
 * Results stream: dm_query_fetch steps the statement for one batch at a
 * time, so a query over millions of rows holds one batch, never the result;
 * a batch is in the row-batch encoding of transport/rowbatch.h, the bytes
 * of a Query reply, which clients decode without SQLite.
 * Column values: int, boolean -> INTEGER; double -> REAL; string, enum,
 * uuid (lowercase), date (YYYY-MM-DD), timestamp (fixed width
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ", so text order is time order) -> TEXT;
 * NULL for nulls.
 *
 * Failures carry their detail in a dm_buf_t *why, the last parameter
 * (base/err.h): appended, never logged here; the query workers send it to
 * the client. */
#ifndef DM_QUERY_H
#define DM_QUERY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "policy/policy.h"
#include "record/registry.h"
#include "storage/store.h"

#define DM_QUERY_DEFAULT_TIMEOUT_MS 30000
#define DM_QUERY_DEFAULT_MAX_SQL 100000                 /* bytes of SQL text */
#define DM_QUERY_DEFAULT_HEAP_LIMIT ((int64_t)1 << 30)   /* bytes, all of SQLite's heap */
#define DM_QUERY_MAX_DOMAINS 10      /* attached schemas per connection (SQLite's default cap) */

/* sqlite3_limit values of every query connection. */
#define DM_QUERY_LIMIT_LENGTH 1000000         /* bytes of one string or blob */
#define DM_QUERY_LIMIT_COLUMN 2000            /* columns of a table or result (SQLite's max) */
#define DM_QUERY_LIMIT_EXPR_DEPTH 100
#define DM_QUERY_LIMIT_COMPOUND_SELECT 50
#define DM_QUERY_LIMIT_VDBE_OP 250000         /* instructions of one prepared statement */
#define DM_QUERY_LIMIT_FUNCTION_ARG 64
#define DM_QUERY_LIMIT_LIKE_PATTERN 1000      /* bytes */
#define DM_QUERY_LIMIT_VARIABLE_NUMBER 32
#define DM_QUERY_LIMIT_TRIGGER_DEPTH 1

typedef struct dm_query_engine dm_query_engine_t;
typedef struct dm_query dm_query_t;

typedef struct {
    int64_t timeout_ms;       /* 0: DM_QUERY_DEFAULT_TIMEOUT_MS */
    size_t max_sql_bytes;     /* 0: DM_QUERY_DEFAULT_MAX_SQL */
    int64_t heap_limit_bytes; /* 0: DM_QUERY_DEFAULT_HEAP_LIMIT */
} dm_query_limits_t;

/* Creates an engine over store and registry, which must outlive it. limits
 * may be NULL (defaults). Sets SQLite's process-wide hard heap limit.
 * DM_ERR_NOMEM, or DM_ERR_INVALID for negative limits or a SQLite built
 * without thread safety (with one line appended to why, base/err.h; NULL
 * allowed). The engine is shared by worker threads and thread-safe. */
DM_NODISCARD dm_err dm_query_engine_new(dm_store_t *store, dm_registry_t *registry,
                                        const dm_query_limits_t *limits,
                                        dm_query_engine_t **out, dm_buf_t *why);
/* NULL-safe; sets *self_p to NULL. Every query must be closed first. */
void dm_query_engine_destroy(dm_query_engine_t **self_p);

/* Opens sql (len bytes, not necessarily NUL-terminated) under the sandbox.
 * On failure *out is NULL, the return is DM_ERR_INVALID (syntax, limits,
 * more than one statement, too many domains), DM_ERR_DENIED (refused by
 * the sandbox), DM_ERR_NOTFOUND (unknown product or domain, with a "did
 * you mean"), DM_ERR_TOOBIG (SQL over the length cap), DM_ERR_NOMEM or
 * DM_ERR_STORE, and why (base/err.h; NULL allowed) gets the message
 * appended: one line, or for errors with a position in the SQL the
 * message, the SQL line and a caret under the position (three lines; the
 * client shows them as they are). Nothing is logged. The engine stays
 * usable after any failure. */
DM_NODISCARD dm_err dm_query_open(dm_query_engine_t *e, const char *sql, size_t len,
                                  dm_query_t **out, dm_buf_t *why);

/* Who may read what, for one query (the node's policy, policy/policy.h).
 * decide is called once per product the SQL names, before anything of it
 * is read, from the thread that opens the query; it fills *out as
 * dm_policy_decide does (the caller clears it) or fails with a line in why.
 * A refusal fails the open with DM_ERR_DENIED and out->reason ("access
 * denied to commerce.orders (restricted): KEY is not a reader"), and
 * nothing of any product is returned. An allowed decision's masks and row
 * filter shape what the SQL sees of the product: the product's table is
 * then a view over the raw virtual table that applies the masks to its
 * columns and the row filter to its rows, and the raw table cannot be
 * named by the SQL (it is reported as an unknown product). A WHERE or
 * ORDER BY on a masked column sees the masked value; keys of unmasked
 * columns still bound the scan. A masked column's declared type is ""
 * (an expression); NULL stays NULL under every mask; last4 shows '****'
 * alone for a value of four characters or fewer. A row filter that does
 * not prepare fails the open with DM_ERR_INVALID naming the predicate. SQL
 * that names a WITH table or a window after a product it reads through a
 * view is refused (DM_ERR_DENIED). A product allowed as it is stays the
 * plain virtual table (no view, no cost). */
typedef struct {
    dm_err (*decide)(void *ctx, const char *domain, const char *product,
                     dm_policy_decision_t *out, dm_buf_t *why);
    void *ctx;
    /* Whether the caller may know of a product (describe): a "did you
     * mean" for an unknown product names only such products. NULL: all. */
    bool (*describable)(void *ctx, const char *domain, const char *product);
} dm_query_access_t;

/* dm_query_open with access decisions; access NULL: every product is
 * readable as it is (tests and benchmarks). */
DM_NODISCARD dm_err dm_query_open_as(dm_query_engine_t *e, const char *sql, size_t len,
                                     const dm_query_access_t *access, dm_query_t **out,
                                     dm_buf_t *why);

/* ---- federated query: products other nodes own (docs/architecture.md) ----
 *
 * A product the SQL names that the registry does not hold but the mesh's
 * catalog does is a remote virtual table (query_remote.c): its columns
 * and types come from the contract the catalog holds, and each scan is one
 * SELECT over that product alone, run on its owner as the query's
 * consumer, its rows streamed back in batches. Pushed to the owner in that
 * SELECT: the columns used; WHERE terms on the table's own columns (=, <,
 * <=, >, >=, IS NULL, LIKE, IN lists) whose value SQLite's comparison on
 * the owner treats as it would here (query_conv.c's rules); LIMIT/OFFSET
 * where SQLite hands them over. SQLite still checks every term it was not
 * told is exact. Results equal those of the same SQL over one database
 * holding all the tables. */

/* One remote scan in progress (the relay's). */
typedef struct dm_query_rscan dm_query_rscan_t;

/* How one query reaches other nodes; all calls on the thread that runs the
 * query; ctx is the relay's, one per query. */
typedef struct {
    /* Whether the mesh knows domain.product as another node's product:
     * DM_OK with *contract_json (malloc'd canonical JSON, the caller's to
     * free) and *rows (the owner's record count as known, 0: unknown), or
     * DM_ERR_NOTFOUND. */
    dm_err (*resolve)(void *ctx, const char *domain, const char *product, char **contract_json,
                      uint64_t *rows, dm_buf_t *why);
    /* Starts sql (one SELECT over domain.product alone, built by the
     * engine) on the product's owner, as the query's consumer; must give
     * up by deadline_ns (CLOCK_MONOTONIC) or once cancel (may be NULL) is
     * set (DM_ERR_TIMEOUT). A failure appends one line
     * naming the product, its owner and what the mesh knows of it
     * ("identity.customers: owner node 3f2a... is dead since 12:01:03").
     * The reply carries the first batch, which the first next hands over:
     * explain counts that next as no round trip. */
    dm_err (*open)(void *ctx, const char *domain, const char *product, const char *sql,
                   int64_t deadline_ns, const atomic_bool *cancel, dm_query_rscan_t **out,
                   dm_buf_t *why);
    /* Appends the next batch (transport/rowbatch.h encoding, the SELECT's
     * columns) to out: *nrows rows, *done once the owner has sent the last
     * one. DM_ERR_TIMEOUT past deadline_ns or once cancel (may be NULL) is
     * set; every failure names the product and its owner in why. */
    dm_err (*next)(dm_query_rscan_t *s, int64_t deadline_ns, const atomic_bool *cancel,
                   dm_buf_t *out, uint32_t *nrows, bool *done, dm_buf_t *why);
    /* Ends the scan (tells the owner when it had not finished). NULL-safe. */
    void (*close)(dm_query_rscan_t *s);
    void *ctx;
} dm_query_remote_t;

/* dm_query_open_as that also reads products other nodes own through
 * remote (NULL: local products only, as dm_query_open_as). */
DM_NODISCARD dm_err dm_query_open_fed(dm_query_engine_t *e, const char *sql, size_t len,
                                      const dm_query_access_t *access,
                                      const dm_query_remote_t *remote, dm_query_t **out,
                                      dm_buf_t *why);

/* dm_query_open_fed for a statement that names only this node's
 * products: one naming another node's is not opened (DM_OK, *out NULL,
 * nothing decided or audited), so the caller can run it where waiting on
 * the network is allowed. Errors as dm_query_open_fed. */
DM_NODISCARD dm_err dm_query_open_local(dm_query_engine_t *e, const char *sql, size_t len,
                                        const dm_query_access_t *access,
                                        const dm_query_remote_t *remote, dm_query_t **out,
                                        dm_buf_t *why);

/* Appends what the query did per remote table, one line each: the table,
 * its owner's SELECT as last sent, round trips, rows and bytes received,
 * e.g. "identity.customers: SELECT \"id\", \"tier\" FROM ... WHERE \"id\"
 * IN (...); 2 round trips, 1000 rows, 38112 bytes". Nothing for a query
 * that read only local products. */
void dm_query_explain(const dm_query_t *q, dm_buf_t *out);

/* Result columns. Names and declared types are borrowed and valid until
 * dm_query_close. The declared type is the contract's (INTEGER, REAL, TEXT,
 * TIMESTAMP, DATE, UUID, BOOLEAN) for a column of a product, "" for an
 * expression. */
int dm_query_ncolumns(const dm_query_t *q);
const char *dm_query_column_name(const dm_query_t *q, int i);
const char *dm_query_column_decltype(const dm_query_t *q, int i);

/* Steps the statement, appending up to max_rows rows to out (not reset)
 * in the row-batch encoding (transport/rowbatch.h) and stopping after the
 * row that brings the bytes appended to max_bytes or more (0: no byte
 * bound). *nrows gets the rows appended, *done is true once the statement
 * has finished (the query then holds no transaction). After done, further
 * calls append nothing. On error, with one line appended to why (NULL
 * allowed), nothing logged: DM_ERR_TIMEOUT when the time limit ran out or
 * the query was cancelled, DM_ERR_INVALID for a runtime error (a value
 * over the size limit, a failing function), DM_ERR_NOMEM over the memory
 * bound, DM_ERR_STORE; the rows appended before the error stay in out and
 * the query is done. */
DM_NODISCARD dm_err dm_query_fetch(dm_query_t *q, size_t max_rows, size_t max_bytes,
                                   dm_buf_t *out, uint32_t *nrows, bool *done, dm_buf_t *why);

/* dm_query_fetch of a whole result, or nothing: on a query not fetched
 * yet, steps the statement to its end within budget_ns (nanoseconds) and
 * max_rows rows / max_bytes bytes; then *over is false, the rows are
 * appended and the query is done. When it would take longer or return
 * more, or reads other nodes' products, *over is true, nothing is
 * appended and the statement is back at its start, so dm_query_fetch (on
 * any thread) runs it as if this call never happened; so too, untried,
 * for a statement that names no product or calls an SQL function (one
 * call can run long between two checks of the deadline). Errors (the query's
 * own time limit, cancel, a runtime error) as dm_query_fetch. For the
 * node loop, which may spend a bounded time on a point lookup. */
DM_NODISCARD dm_err dm_query_fetch_within(dm_query_t *q, size_t max_rows, size_t max_bytes,
                                          int64_t budget_ns, dm_buf_t *out, uint32_t *nrows,
                                          bool *over, dm_buf_t *why);

/* Rows (keys alone for a query that reads no column) the query's virtual
 * tables have stepped over so far: what a plan costs in reads, for tests
 * and plans; a pk lookup steps over one. */
uint64_t dm_query_rows_walked(const dm_query_t *q);

/* Asks the query to stop; its running or next fetch fails with
 * DM_ERR_TIMEOUT. Thread-safe, may race with dm_query_fetch (not with
 * dm_query_close). */
void dm_query_cancel(dm_query_t *q);

/* Closes the query and releases its transaction. NULL-safe; sets *q NULL. */
void dm_query_close(dm_query_t **q);

#endif
