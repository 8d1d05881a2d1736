/* query_priv.h: what the files of the SQL engine share (query.c: engine,
 * connection pool, open, fetch; query_sandbox.c: hardening, authorizer,
 * limits, progress handler, the messages of a failed prepare; query_sql.c:
 * scanning the SQL text for the products it names; query_vtab.c: the
 * virtual table module; query_printf.c: printf() and format() with bounded
 * widths). query_sched.c and query_pool.c (the workers) use only query.h.
 * The helpers here follow base/err.h: a why they take is appended to and
 * must not be NULL. */
#ifndef DM_QUERY_PRIV_H
#define DM_QUERY_PRIV_H

#include <sqlite3.h>
#include <stdatomic.h>

#include "query/query.h"
#include "storage/reader.h"

#define DM_QUERY_MODULE "dm_product" /* the virtual table module's name */

/* A product the SQL names: domain.name as written (bytes of the SQL), and
 * the registry entry held for the query's life. */
typedef struct {
    char *domain, *name;
    const dm_product_ref_t *ref;
} dm_qtable_t;

/* What one query connection's callbacks see (the module's pAux, the
 * authorizer's and progress handler's argument). */
typedef struct {
    dm_reader_t *reader;
    dm_qtable_t *tables;
    size_t ntables;
    int64_t deadline_ns;    /* CLOCK_MONOTONIC */
    int64_t timeout_ms;
    atomic_bool cancel;
    bool timed_out;         /* set by the progress handler */
    char denied[160];       /* the first refusal of the authorizer, "" if none */
    bool denied_weak;       /* denied may give way to a more telling refusal */
    sqlite3 *printf_db;     /* query_printf.c's helper connection, opened on first use */
    sqlite3_stmt *printf_stmt[DM_QUERY_LIMIT_FUNCTION_ARG + 1]; /* by argument count */
} dm_qctx_t;

/* ---- query_sql.c ---- */

/* Appends to *tables every distinct `ident . ident` pair of sql that names
 * a product of registry (acquiring it), skipping string literals and
 * comments. *ndomains gets the number of distinct domains among them.
 * DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_query__find_tables(dm_registry_t *registry, const char *sql, size_t len,
                                          dm_qtable_t **tables, size_t *ntables,
                                          size_t *ndomains);
/* Releases and frees the tables. */
void dm_query__tables_free(dm_registry_t *registry, dm_qtable_t *tables, size_t n);

/* Offset of the first byte of tail[0..len) that is not whitespace, a
 * comment or ';', or len if there is none. */
size_t dm_query__skip_blank(const char *tail, size_t len);

/* Appends `"ident"` with embedded quotes doubled. */
void dm_query__quote_ident(dm_buf_t *out, const char *ident);

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
/* Appends the failure of preparing sql to why (not NULL) and returns its
 * dm_err: the authorizer's refusal, an unknown table with a "did you
 * mean" from the registry's products, or SQLite's message with line:col
 * and a caret (dm_query__caret). */
dm_err dm_query__prepare_error(sqlite3 *db, dm_qctx_t *ctx, dm_registry_t *registry,
                               const char *sql, size_t len, dm_buf_t *why);
/* Appends " (line L, column C)", then the SQL line and a caret under byte
 * offset off of sql, each on a line of its own (the one multi-line error
 * detail: clients print it as it is). */
void dm_query__caret(const char *sql, size_t len, size_t off, dm_buf_t *why);

/* ---- query_vtab.c ---- */

/* Registers the virtual table module on db with ctx as its context. */
DM_NODISCARD int dm_query__register_module(sqlite3 *db, dm_qctx_t *ctx);

/* Writes the fixed-width RFC 3339 text of UTC microseconds us
 * ("YYYY-MM-DDTHH:MM:SS.ffffffZ") into buf (DM_TIMESTAMP_TEXT_MAX bytes);
 * returns its length. */
size_t dm_query__timestamp_text(int64_t us, char *buf);

/* ---- query_printf.c ---- */

/* Overrides printf() and format() on db with versions whose widths and
 * precisions are bounded by DM_QUERY_LIMIT_LENGTH. */
DM_NODISCARD int dm_query__register_printf(sqlite3 *db, dm_qctx_t *ctx);
/* Closes the helper connection. Call after db is closed. */
void dm_query__printf_free(dm_qctx_t *ctx);

#endif
