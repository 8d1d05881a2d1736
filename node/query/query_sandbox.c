/* query_sandbox.c: what keeps a query to reading data products, and the
 * messages that say why a query was refused or did not prepare (with a
 * "did you mean" for an unknown product, and line, column and a caret for
 * an error with a position).
 *
 * Follows SQLite's "Defense Against The Dark Arts" (sqlite.org/security.html):
 * defensive mode, no extension loading, untrusted schema, no triggers or
 * views, no double-quoted string literals, tight limits, an authorizer that
 * allows only what a SELECT over the product tables needs, and a progress
 * handler that ends a query at its deadline or when another thread cancels
 * it. Limits that the setup itself would hit (SQL length) are applied
 * after the tables are created, just before the user's SQL is prepared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/text.h"
#include "query/query_priv.h"

#define S_CARET_LINE_MAX 160 /* bytes of the SQL line shown under an error */
#define S_NAME_MAX 128       /* names compared for "did you mean" */

dm_err dm_query__harden(sqlite3 *db, dm_buf_t *why)
{
    static const struct { int op, value; } cfg[] = {
        {SQLITE_DBCONFIG_DEFENSIVE, 1},
        {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0},
        {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0},
        {SQLITE_DBCONFIG_ENABLE_TRIGGER, 0},
        {SQLITE_DBCONFIG_ENABLE_VIEW, 0},
        {SQLITE_DBCONFIG_DQS_DML, 0},
        {SQLITE_DBCONFIG_DQS_DDL, 0},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        if (sqlite3_db_config(db, cfg[i].op, cfg[i].value, (int *)NULL) != SQLITE_OK) {
            dm_buf_printf(why, "setting up the SQL sandbox failed: sqlite3_db_config(%d): %s",
                          cfg[i].op, sqlite3_errmsg(db));
            return DM_ERR_INVALID;
        }
    }
    static const struct { int id, value; } lim[] = {
        {SQLITE_LIMIT_LENGTH, DM_QUERY_LIMIT_LENGTH},
        {SQLITE_LIMIT_COLUMN, DM_QUERY_LIMIT_COLUMN},
        {SQLITE_LIMIT_EXPR_DEPTH, DM_QUERY_LIMIT_EXPR_DEPTH},
        {SQLITE_LIMIT_COMPOUND_SELECT, DM_QUERY_LIMIT_COMPOUND_SELECT},
        {SQLITE_LIMIT_VDBE_OP, DM_QUERY_LIMIT_VDBE_OP},
        {SQLITE_LIMIT_FUNCTION_ARG, DM_QUERY_LIMIT_FUNCTION_ARG},
        {SQLITE_LIMIT_ATTACHED, DM_QUERY_MAX_DOMAINS},
        {SQLITE_LIMIT_LIKE_PATTERN_LENGTH, DM_QUERY_LIMIT_LIKE_PATTERN},
        {SQLITE_LIMIT_VARIABLE_NUMBER, DM_QUERY_LIMIT_VARIABLE_NUMBER},
        {SQLITE_LIMIT_TRIGGER_DEPTH, DM_QUERY_LIMIT_TRIGGER_DEPTH},
        {SQLITE_LIMIT_WORKER_THREADS, 0},
    };
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
        sqlite3_limit(db, lim[i].id, lim[i].value);
    return DM_OK;
}

/* Records the first refusal and denies. A weak refusal (a write to
 * SQLite's own tables, which comes before the CREATE or DROP that caused
 * it) gives way to the next one. */
static int s_deny_as(dm_qctx_t *ctx, bool weak, const char *what, const char *why)
{
    if (!ctx->denied[0] || ctx->denied_weak) {
        snprintf(ctx->denied, sizeof ctx->denied, "%s is not allowed: %s", what, why);
        ctx->denied_weak = weak;
    }
    return SQLITE_DENY;
}

static int s_deny(dm_qctx_t *ctx, const char *what, const char *why)
{
    return s_deny_as(ctx, false, what, why);
}

/* Whether a write targets SQLite's own tables (sqlite_schema, ...). */
static bool s_internal(const char *table)
{
    return table && strncasecmp(table, "sqlite_", 7) == 0;
}

/* Whether schema.table is one of the query's product tables. */
static bool s_product_table(const dm_qctx_t *ctx, const char *schema, const char *table)
{
    for (size_t i = 0; schema && table && i < ctx->ntables; i++)
        if (strcasecmp(ctx->tables[i].domain, schema) == 0 &&
            strcasecmp(ctx->tables[i].name, table) == 0)
            return true;
    return false;
}

/* The product whose hidden raw table schema.table is (query_access.c), or
 * NULL. */
static const dm_qtable_t *s_raw_table(const dm_qctx_t *ctx, const char *schema, const char *table)
{
    static const size_t suffix = sizeof DM_QUERY_RAW_SUFFIX - 1;
    size_t len = table ? strlen(table) : 0;
    for (size_t i = 0; schema && table && i < ctx->ntables; i++) {
        const dm_qtable_t *t = &ctx->tables[i];
        if (!dm_query__viewed(t))
            continue;
        size_t n = strlen(t->name);
        if (len == n + suffix && strcasecmp(t->domain, schema) == 0 &&
            strncasecmp(t->name, table, n) == 0 &&
            strcasecmp(table + n, DM_QUERY_RAW_SUFFIX) == 0)
            return t;
    }
    return NULL;
}

/* A read of a product's raw table: allowed only from inside the product's
 * view (view names the innermost view; a WITH table named after the
 * product is refused before, dm_query__names_cte). Otherwise the table
 * does not exist as far as the SQL may know. */
static int s_read_raw(dm_qctx_t *ctx, const dm_qtable_t *t, const char *table, const char *view)
{
    if (view && strcasecmp(view, t->name) == 0)
        return SQLITE_OK;
    if (!ctx->unknown[0])
        snprintf(ctx->unknown, sizeof ctx->unknown, "%s.%s", t->domain, table);
    return SQLITE_DENY;
}

/* The built-in table-valued functions a query may use (read-only, over
 * their arguments); lock_down creates them before the authorizer is on. */
static bool s_table_function(const char *schema, const char *table)
{
    return schema && table && strcmp(schema, "main") == 0 &&
           (strcmp(table, "json_each") == 0 || strcmp(table, "json_tree") == 0);
}

/* Functions SQLite has built in that a query must not reach: extension
 * loading, and FTS3's tokenizer registration (it takes a pointer). */
static bool s_function_denied(const char *name)
{
    static const char *const denied[] = {"load_extension", "fts3_tokenizer"};
    for (size_t i = 0; name && i < sizeof denied / sizeof denied[0]; i++)
        if (strcasecmp(name, denied[i]) == 0)
            return true;
    return !name;
}

/* The authorizer: allows what a SELECT over the product tables needs and
 * denies everything else, recording why for dm_query__prepare_error. */
static int s_authorize(void *arg, int action, const char *a1, const char *a2, const char *db,
                       const char *trigger)
{
    dm_qctx_t *ctx = arg;
    static const char ro[] = "queries are read-only over data products";
    const dm_qtable_t *raw;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE: /* bounded by the time limit */
        return SQLITE_OK;
    case SQLITE_READ:
        if ((raw = s_raw_table(ctx, db, a1)))
            return s_read_raw(ctx, raw, a1, trigger);
        /* No schema: a CTE or subquery, made of tables checked on their own */
        if (!db || s_product_table(ctx, db, a1) || s_table_function(db, a1))
            return SQLITE_OK;
        if (ctx->denied[0] == 0) {
            snprintf(ctx->denied, sizeof ctx->denied,
                     "reading %s.%s is not allowed: queries read data products only",
                     db ? db : "?", a1 ? a1 : "?");
        }
        return SQLITE_DENY;
    case SQLITE_FUNCTION:
        if (!trigger) /* the client's own call, not a mask view's */
            ctx->client_fn = true;
        if (!s_function_denied(a2))
            return SQLITE_OK;
        if (ctx->denied[0] == 0)
            snprintf(ctx->denied, sizeof ctx->denied, "function %s() is not allowed: %s",
                     a2 ? a2 : "?", "queries may call SQLite's built-in SQL functions only");
        return SQLITE_DENY;
    case SQLITE_ATTACH: return s_deny(ctx, "ATTACH", ro);
    case SQLITE_DETACH: return s_deny(ctx, "DETACH", ro);
    case SQLITE_PRAGMA: return s_deny(ctx, "PRAGMA", ro);
    case SQLITE_INSERT: case SQLITE_UPDATE: case SQLITE_DELETE:
        /* SQLite asks this before CREATE or ALTER, and when a table-valued
         * function other than the warmed-up ones is first used */
        if (s_internal(a1))
            return s_deny_as(ctx, true, action == SQLITE_UPDATE
                                            ? "changing the schema or calling a table-valued function "
                                              "other than json_each and json_tree"
                                            : "CREATE, ALTER or DROP", ro);
        return s_deny(ctx, action == SQLITE_INSERT ? "INSERT" : action == SQLITE_UPDATE ? "UPDATE"
                                                                                      : "DELETE", ro);
    case SQLITE_TRANSACTION: return s_deny(ctx, "a transaction (BEGIN, COMMIT, ROLLBACK)", ro);
    case SQLITE_SAVEPOINT: return s_deny(ctx, "SAVEPOINT", ro);
    case SQLITE_ALTER_TABLE: return s_deny(ctx, "ALTER TABLE", ro);
    case SQLITE_ANALYZE: return s_deny(ctx, "ANALYZE", ro);
    case SQLITE_REINDEX: return s_deny(ctx, "REINDEX", ro);
    case SQLITE_CREATE_INDEX: case SQLITE_CREATE_TABLE: case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE: case SQLITE_CREATE_TEMP_TRIGGER: case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER: case SQLITE_CREATE_VIEW: case SQLITE_CREATE_VTABLE:
        return s_deny(ctx, "CREATE", ro);
    case SQLITE_DROP_INDEX: case SQLITE_DROP_TABLE: case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE: case SQLITE_DROP_TEMP_TRIGGER: case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER: case SQLITE_DROP_VIEW: case SQLITE_DROP_VTABLE:
        return s_deny(ctx, "DROP", ro);
    default:
        return s_deny(ctx, "this statement", ro);
    }
}

bool dm_query__stopped(dm_qctx_t *ctx)
{
    if (atomic_load_explicit(&ctx->cancel, memory_order_relaxed))
        return true;
    if (dm_clock_mono_ns() <= ctx->deadline_ns)
        return false;
    ctx->timed_out = true;
    return true;
}

/* Ends the statement at the deadline, on cancel, or when a dry run is to
 * stop (non-zero interrupts). */
static int s_progress(void *arg)
{
    dm_qctx_t *ctx = arg;
    if (dm_query__stopped(ctx))
        return 1;
    if (ctx->learning && ctx->walked > ctx->learn_walk_max)
        ctx->learn_stop = true;
    return ctx->learning && ctx->learn_stop; /* the dry run ends (query_remote_learn.c) */
}

void dm_query__progress_every(sqlite3 *db, dm_qctx_t *ctx, int ops)
{
    sqlite3_progress_handler(db, ops, s_progress, ctx);
}

dm_err dm_query__lock_down(sqlite3 *db, dm_qctx_t *ctx, size_t max_sql, dm_buf_t *why)
{
    char *msg = NULL;
    /* Using json_each and json_tree once creates their eponymous tables,
     * which the authorizer would see as a schema change later. */
    if (sqlite3_exec(db, "SELECT 1 FROM json_each('[]'), json_tree('[]'); "
                         "PRAGMA temp_store=MEMORY; PRAGMA query_only=1;", NULL, NULL, &msg) !=
        SQLITE_OK) {
        dm_buf_printf(why, "setting up the SQL sandbox failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return DM_ERR_INVALID;
    }
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, max_sql > INT32_MAX ? INT32_MAX : (int)max_sql);
    dm_query__progress_every(db, ctx, DM_QUERY_PROGRESS_OPS);
    if (sqlite3_set_authorizer(db, s_authorize, ctx) != SQLITE_OK) {
        dm_buf_printf(why, "setting up the SQL sandbox failed: the authorizer: %s",
                      sqlite3_errmsg(db));
        return DM_ERR_INVALID;
    }
    return DM_OK;
}

void dm_query__caret(const char *sql, size_t len, size_t off, dm_buf_t *err)
{
    if (off > len)
        off = len;
    size_t line = 1, start = 0;
    for (size_t i = 0; i < off; i++)
        if (sql[i] == '\n') {
            line++;
            start = i + 1;
        }
    size_t col = 1;
    for (size_t i = start; i < off; i++)
        col += ((unsigned char)sql[i] & 0xc0) != 0x80;
    size_t end = start;
    while (end < len && sql[end] != '\n' && sql[end] != '\r')
        end++;
    /* Long lines: show S_CARET_LINE_MAX bytes around the position. */
    size_t from = start;
    if (off - start > S_CARET_LINE_MAX / 2)
        from = off - S_CARET_LINE_MAX / 2;
    while (from > start && ((unsigned char)sql[from] & 0xc0) == 0x80)
        from--;
    size_t to = end - from > S_CARET_LINE_MAX ? from + S_CARET_LINE_MAX : end;
    while (to > off && to < end && ((unsigned char)sql[to] & 0xc0) == 0x80)
        to--;
    dm_buf_printf(err, " (line %zu, column %zu)\n  %s", line, col, from > start ? "..." : "");
    dm_buf_append(err, sql + from, to - from);
    dm_buf_printf(err, "%s\n  %s", to < end ? "..." : "", from > start ? "   " : "");
    for (size_t i = from; i < off; i++) {
        unsigned char c = (unsigned char)sql[i];
        if ((c & 0xc0) != 0x80)
            dm_buf_putc(err, c == '\t' ? '\t' : ' ');
    }
    dm_buf_putc(err, '^');
}

/* One "did you mean" search over the registry's products (s_unknown). */
typedef struct {
    const char *domain, *name; /* as in s_unknown */
    bool domain_known;
    dm_text_suggest_t sg;
    char pick[2 * S_NAME_MAX + 2];
    char pick_domain[S_NAME_MAX + 1], pick_name[S_NAME_MAX + 1]; /* the product picked */
} s_unknown_ctx;

static void s_unknown_each(void *arg, const char *domain, const char *name)
{
    s_unknown_ctx *u = arg;
    char q[2 * S_NAME_MAX + 2];
    snprintf(q, sizeof q, "%s.%s", domain, name);
    if (u->domain && strcasecmp(domain, u->domain) == 0)
        u->domain_known = true;
    const char *cand = !u->domain ? name : !u->name ? domain : q;
    if (dm_text_suggest_add(&u->sg, cand)) {
        snprintf(u->pick, sizeof u->pick, "%s", u->name ? q : domain);
        snprintf(u->pick_domain, sizeof u->pick_domain, "%s", domain);
        snprintf(u->pick_name, sizeof u->pick_name, "%s", name);
        u->sg.pick = u->pick; /* cand is gone after this call */
    }
}

/* Writes the message for an unknown product (domain may be NULL: SQLite
 * named a bare table) or, with name NULL, an unknown domain, with the
 * closest registered product or domain (base/text.h's rule). */
static dm_err s_unknown(dm_registry_t *registry, const dm_query_access_t *access,
                        const char *domain, const char *name, dm_buf_t *err)
{
    char what[2 * S_NAME_MAX + 2];
    /* Names longer than S_NAME_MAX are cut: they cannot match a product. */
    if (snprintf(what, sizeof what, "%s%s%s", domain ? domain : "", domain && name ? "." : "",
                 name ? name : "") >= (int)sizeof what)
        what[sizeof what - 1] = 0;
    s_unknown_ctx u = {.domain = domain, .name = name};
    dm_text_suggest_init(&u.sg, what);
    dm_registry_each(registry, s_unknown_each, &u);
    /* Only a product the caller may know of is suggested; asked after the
     * walk, which holds the registry's lock. */
    if (u.sg.pick && name && access && access->describable &&
        !access->describable(access->ctx, u.pick_domain, u.pick_name))
        u.sg.pick = NULL;
    if (!domain)
        dm_buf_printf(err, "no such product '%s': name products as domain.product", what);
    else if (!name)
        dm_buf_printf(err, "unknown domain '%s'", domain);
    else if (u.domain_known)
        dm_buf_printf(err, "no such product '%s': domain '%s' has no product '%s'", what, domain,
                      name);
    else
        dm_buf_printf(err, "no such product '%s': unknown domain '%s'", what, domain);
    if (u.sg.pick)
        dm_buf_printf(err, "; did you mean '%s'?", u.pick);
    return DM_ERR_NOTFOUND;
}

dm_err dm_query__prepare_error(sqlite3 *db, dm_qctx_t *ctx, dm_registry_t *registry,
                               const dm_query_access_t *access,
                               const char *sql, size_t len, dm_buf_t *err)
{
    if (ctx->unknown[0]) { /* a hidden table: said as SQLite says an unknown one */
        char what[sizeof ctx->unknown];
        memcpy(what, ctx->unknown, sizeof what);
        char *dot = strchr(what, '.');
        *dot = 0;
        return s_unknown(registry, access, what, dot + 1, err);
    }
    if (ctx->denied[0]) {
        dm_buf_puts(err, ctx->denied);
        return DM_ERR_DENIED;
    }
    const char *msg = sqlite3_errmsg(db);
    static const char no_table[] = "no such table: ", no_db[] = "unknown database ";
    if (strncmp(msg, no_table, sizeof no_table - 1) == 0) {
        char what[2 * S_NAME_MAX + 2];
        snprintf(what, sizeof what, "%s", msg + sizeof no_table - 1);
        char *dot = strchr(what, '.');
        if (dot)
            *dot = 0;
        return s_unknown(registry, access, dot ? what : NULL, dot ? dot + 1 : what, err);
    }
    if (strncmp(msg, no_db, sizeof no_db - 1) == 0) {
        char what[S_NAME_MAX + 1];
        snprintf(what, sizeof what, "%s", msg + sizeof no_db - 1);
        return s_unknown(registry, access, what, NULL, err);
    }
    static const char ro_tail[] = " may not be modified";
    size_t mlen = strlen(msg);
    if (strncmp(msg, "table ", 6) == 0 && mlen > sizeof ro_tail &&
        strcmp(msg + mlen - (sizeof ro_tail - 1), ro_tail) == 0) { /* a write SQLite refused first */
        dm_buf_printf(err, "INSERT, UPDATE and DELETE are not allowed: queries are read-only over "
                           "data products (%.*s)", (int)(mlen - (sizeof ro_tail - 1)), msg);
        return DM_ERR_DENIED;
    }
    int code = sqlite3_errcode(db);
    if (code == SQLITE_TOOBIG) {
        dm_buf_printf(err, "the query is too large: %s", msg);
        return DM_ERR_INVALID;
    }
    if (code == SQLITE_NOMEM) {
        dm_buf_puts(err, "the query needs more memory than the engine allows");
        return DM_ERR_NOMEM;
    }
    dm_buf_puts(err, msg);
    int off = sqlite3_error_offset(db);
    if (off >= 0)
        dm_query__caret(sql, len, (size_t)off, err);
    return DM_ERR_INVALID;
}
