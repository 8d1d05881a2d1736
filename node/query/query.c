/* query.c: the SQL engine's lifecycle: engine, opening a query (connection,
 * domains, product tables, sandbox, prepare), fetching batches (each row
 * appended with transport/rowbatch.h's inline encoders, the bytes of
 * proto/mesh.proto QueryRep.rows), closing.
 *
 * A query holds everything it uses: an in-memory SQLite connection, the
 * LMDB read transaction, the registry references of the products it
 * names. Building a connection (attach, create the product tables, lock
 * down the sandbox) costs about 50 us, a large part of a point lookup, so
 * a connection whose query ended cleanly goes back to a small pool and
 * serves the next query naming exactly the same products (the same
 * registry entries: an upgraded product gets a new connection). Reuse
 * leaks no state: the sandbox refuses every statement that could leave
 * any (writes, ATTACH, PRAGMA, CREATE, temp objects), the per-query fields
 * of the context are reset, and a connection whose statement failed
 * mid-way is closed, not pooled. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "base/clock.h"
#include "base/log.h"
#include "query/query_priv.h"
#include "transport/rowbatch.h"

#define S_NS_PER_MS INT64_C(1000000)
#define S_KEYWORD_MAX 16 /* bytes of a statement's first word quoted in a refusal */
#define S_POOL_IDLE 8    /* sandboxed connections kept for reuse */
#define S_TRIM_BYTES ((sqlite3_int64)64 << 20) /* SQLite heap freed since its peak that is given back */

/* A connection with its product tables attached, created and locked down:
 * its callbacks point at ctx, so both live together. */
typedef struct s_conn {
    sqlite3 *db;
    dm_qctx_t ctx;
    struct s_conn *next;
} s_conn;

struct dm_query_engine {
    dm_store_t *store;
    dm_registry_t *registry;
    dm_query_limits_t limits;
    pthread_mutex_t pool_lock;
    s_conn *idle; /* reusable connections, most recent first */
    size_t nidle;
};

struct dm_query {
    dm_query_engine_t *e;
    s_conn *conn;
    bool reusable;   /* the connection may serve another query */
    sqlite3 *db;     /* conn->db while the query holds it */
    sqlite3_stmt *stmt;
    dm_qctx_t *ctx;  /* &conn->ctx while the query holds it */
    int ncols;
    char **names, **decltypes;
    bool done;
    bool learned;    /* the dry run of query_remote_learn.c is behind it */
    uint64_t walked; /* ctx->walked, kept when the connection goes back */
    dm_buf_t explain; /* the remote tables' lines, kept when the connection goes */
    pthread_mutex_t hold; /* dm_query_cancel against s_release handing ctx on */
};

dm_err dm_query_engine_new(dm_store_t *store, dm_registry_t *registry,
                           const dm_query_limits_t *limits, dm_query_engine_t **out,
                           dm_buf_t *why)
{
    *out = NULL;
    dm_query_limits_t l = limits ? *limits : (dm_query_limits_t){0};
    if (l.timeout_ms < 0 || l.heap_limit_bytes < 0) {
        if (why)
            dm_buf_printf(why, "query limits: timeout %lld ms and heap limit %lld bytes must "
                               "not be negative (0: the default)",
                          (long long)l.timeout_ms, (long long)l.heap_limit_bytes);
        return DM_ERR_INVALID;
    }
    if (l.timeout_ms == 0)
        l.timeout_ms = DM_QUERY_DEFAULT_TIMEOUT_MS;
    if (l.max_sql_bytes == 0)
        l.max_sql_bytes = DM_QUERY_DEFAULT_MAX_SQL;
    if (l.max_sql_bytes > INT32_MAX) /* SQLite takes the length as an int */
        l.max_sql_bytes = INT32_MAX;
    if (l.heap_limit_bytes == 0)
        l.heap_limit_bytes = DM_QUERY_DEFAULT_HEAP_LIMIT;
    if (!sqlite3_threadsafe()) {
        if (why)
            dm_buf_puts(why, "this SQLite library is built without thread safety "
                             "(SQLITE_THREADSAFE=0); the query engine's workers need it");
        return DM_ERR_INVALID;
    }
    if (sqlite3_initialize() != SQLITE_OK)
        return DM_ERR_NOMEM;
    dm_query_engine_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->store = store;
    self->registry = registry;
    self->limits = l;
    pthread_mutex_init(&self->pool_lock, NULL);
    sqlite3_hard_heap_limit64(l.heap_limit_bytes);
    *out = self;
    return DM_OK;
}

/* Closes a connection and releases its product references. */
static void s_conn_free(dm_query_engine_t *e, s_conn *c)
{
    if (!c)
        return;
    sqlite3_close(c->db); /* disconnects the virtual tables first */
    dm_query__printf_free(&c->ctx);
    dm_reader_close(&c->ctx.reader);
    dm_query__tables_free(e->registry, c->ctx.tables, c->ctx.ntables);
    free(c);
}

void dm_query_engine_destroy(dm_query_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_query_engine_t *self = *self_p;
    while (self->idle) {
        s_conn *c = self->idle;
        self->idle = c->next;
        s_conn_free(self, c);
    }
    pthread_mutex_destroy(&self->pool_lock);
    free(self);
    *self_p = NULL;
}

/* Keeps c for a later query naming the same products; the pool is bounded
 * (the oldest idle connection goes). */
static void s_pool_put(dm_query_engine_t *e, s_conn *c)
{
    s_conn *evict = NULL;
    pthread_mutex_lock(&e->pool_lock);
    c->next = e->idle;
    e->idle = c;
    if (++e->nidle > S_POOL_IDLE) {
        s_conn **pp = &e->idle;
        while ((*pp)->next)
            pp = &(*pp)->next;
        evict = *pp;
        *pp = NULL;
        e->nidle--;
    }
    pthread_mutex_unlock(&e->pool_lock);
    s_conn_free(e, evict);
}

/* Takes an idle connection built for exactly these products (the same
 * names as written and the same registry entries, so an upgraded product
 * never reuses a connection of its old contract, and the same masks and
 * row filters). NULL if none. */
static s_conn *s_pool_take(dm_query_engine_t *e, const dm_qtable_t *tables, size_t n)
{
    pthread_mutex_lock(&e->pool_lock);
    s_conn *found = NULL;
    for (s_conn **pp = &e->idle; *pp; pp = &(*pp)->next) {
        const dm_qctx_t *x = &(*pp)->ctx;
        bool same = x->ntables == n;
        for (size_t i = 0; same && i < n; i++)
            same = (tables[i].remote ? dm_query__remote_same(&x->tables[i], &tables[i])
                                     : x->tables[i].ref == tables[i].ref) &&
                   strcmp(x->tables[i].domain, tables[i].domain) == 0 &&
                   strcmp(x->tables[i].name, tables[i].name) == 0 &&
                   dm_query__same_access(&x->tables[i], &tables[i]);
        if (same) {
            found = *pp;
            *pp = found->next;
            found->next = NULL;
            e->nidle--;
            break;
        }
    }
    pthread_mutex_unlock(&e->pool_lock);
    return found;
}

/* Releases the statement, transaction and connection (back to the pool if
 * the query ended cleanly): everything but the column names. Safe to call
 * twice. */
/* A statement that sorted many rows (SQLite's sorter stays in memory: the
 * sandbox's temp_store is MEMORY) frees them at its end, but glibc keeps
 * the freed chunks of a worker thread's arena: after GROUP BYs over 10M
 * rows meshd's RssAnon stayed at 640 MB-1.3 GB, one sorter's worth per
 * worker that ran one. Once SQLite's heap is S_TRIM_BYTES below its high
 * water, hand the free memory back (malloc_trim walks every arena: a few
 * ms, after big statements only). The high water is process-wide, so
 * concurrent queries at worst trim once more or once less. */
static void s_trim(void)
{
#ifdef __GLIBC__
    if (sqlite3_memory_highwater(0) - sqlite3_memory_used() < S_TRIM_BYTES)
        return;
    sqlite3_memory_highwater(1); /* reset to what is in use now */
    malloc_trim(0);
#endif
}

static void s_release(dm_query_t *q)
{
    sqlite3_finalize(q->stmt);
    q->stmt = NULL;
    s_trim();
    /* Detach first: a cancel from another thread must not reach a
     * connection that already serves someone else's query. */
    pthread_mutex_lock(&q->hold);
    s_conn *conn = q->conn;
    if (q->ctx)
        q->walked = q->ctx->walked;
    bool reusable = q->reusable && conn && !atomic_load(&conn->ctx.cancel);
    for (size_t i = 0; conn && i < conn->ctx.ntables; i++) {
        if (!conn->ctx.tables[i].remote)
            continue;
        dm_query__remote_explain(&conn->ctx.tables[i], &q->explain);
        dm_query__remote_reset(&conn->ctx.tables[i], NULL); /* nothing of it to the next query */
    }
    if (conn)
        conn->ctx.remote = NULL;
    q->conn = NULL;
    q->db = NULL;
    q->ctx = NULL;
    q->done = true;
    pthread_mutex_unlock(&q->hold);
    if (conn) {
        dm_reader_close(&conn->ctx.reader);
        if (reusable)
            s_pool_put(q->e, conn);
        else
            s_conn_free(q->e, conn);
    }
}

void dm_query_close(dm_query_t **q_p)
{
    if (!q_p || !*q_p)
        return;
    dm_query_t *q = *q_p;
    s_release(q);
    for (int i = 0; i < q->ncols; i++) {
        free(q->names ? q->names[i] : NULL);
        free(q->decltypes ? q->decltypes[i] : NULL);
    }
    free(q->names);
    free(q->decltypes);
    dm_buf_free(&q->explain);
    pthread_mutex_destroy(&q->hold);
    free(q);
    *q_p = NULL;
}

/* Runs one setup statement; its failure is ours, not the user's. */
static dm_err s_exec(sqlite3 *db, const char *sql, dm_buf_t *why)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return DM_OK;
    dm_buf_printf(why, "preparing the product tables failed: %s", msg ? msg : "?");
    sqlite3_free(msg);
    return DM_ERR_INVALID;
}

/* Attaches a schema per domain and creates the product tables in them: the
 * virtual table, or for a product with masks or a row filter the hidden
 * raw virtual table and the view over it (query_access.c). */
static dm_err s_create_tables(dm_query_t *q, dm_buf_t *why)
{
    dm_buf_t sql = DM_BUF_INIT, name = DM_BUF_INIT;
    dm_err e = DM_OK;
    bool views = false;
    for (size_t i = 0; i < q->ctx->ntables; i++)
        views |= dm_query__viewed(&q->ctx->tables[i]);
    if (views && dm_query__register_masks(q->db) != SQLITE_OK) {
        dm_buf_printf(why, "registering the mask functions failed: %s", sqlite3_errmsg(q->db));
        return DM_ERR_NOMEM;
    }
    for (size_t i = 0; i < q->ctx->ntables && !e; i++) {
        const dm_qtable_t *t = &q->ctx->tables[i];
        bool attached = false;
        for (size_t j = 0; j < i && !attached; j++)
            attached = strcmp(q->ctx->tables[j].domain, t->domain) == 0;
        dm_buf_reset(&sql);
        if (!attached) {
            dm_buf_puts(&sql, "ATTACH ':memory:' AS ");
            dm_query__quote_ident(&sql, t->domain);
            dm_buf_puts(&sql, "; ");
        }
        if (t->remote && (e = dm_query__remote_load(&q->ctx->tables[i], why)) != DM_OK)
            break;
        dm_buf_puts(&sql, "CREATE VIRTUAL TABLE ");
        dm_query__quote_ident(&sql, t->domain);
        dm_buf_putc(&sql, '.');
        dm_buf_reset(&name);
        dm_buf_printf(&name, "%s%s", t->name, dm_query__viewed(t) ? DM_QUERY_RAW_SUFFIX : "");
        dm_query__quote_ident(&sql, name.data);
        dm_buf_puts(&sql, t->remote ? " USING " DM_QUERY_REMOTE_MODULE : " USING " DM_QUERY_MODULE);
        e = s_exec(q->db, sql.data, why);
        if (!e && dm_query__viewed(t))
            e = dm_query__create_view(q->db, t, why);
    }
    dm_buf_free(&sql);
    dm_buf_free(&name);
    return e;
}

/* Copies the result columns' names and declared types. */
static dm_err s_columns(dm_query_t *q)
{
    q->ncols = sqlite3_column_count(q->stmt);
    q->names = calloc((size_t)q->ncols + 1, sizeof *q->names);
    q->decltypes = calloc((size_t)q->ncols + 1, sizeof *q->decltypes);
    if (!q->names || !q->decltypes)
        return DM_ERR_NOMEM;
    for (int i = 0; i < q->ncols; i++) {
        const char *n = sqlite3_column_name(q->stmt, i), *d = sqlite3_column_decltype(q->stmt, i);
        q->names[i] = strdup(n ? n : "");
        q->decltypes[i] = strdup(d ? d : "");
        if (!q->names[i] || !q->decltypes[i])
            return DM_ERR_NOMEM;
    }
    return DM_OK;
}

/* Whether the statement starts with a keyword of a read-only query. */
static bool s_select_keyword(const char *sql, size_t len)
{
    static const char *const ok[] = {"SELECT", "WITH", "VALUES", "EXPLAIN"};
    size_t at = dm_query__skip_blank(sql, len);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i]);
        if (len - at >= n && strncasecmp(sql + at, ok[i], n) == 0 &&
            (len - at == n || !(isalnum((unsigned char)sql[at + n]) || sql[at + n] == '_')))
            return true;
    }
    return false;
}

/* Builds q's new connection: open, harden, module, product tables, lock
 * down. Only a connection that got through all of it may be pooled. */
static dm_err s_build(dm_query_t *q, dm_buf_t *why)
{
    dm_err rc;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                SQLITE_OPEN_PRIVATECACHE;
    if (sqlite3_open_v2(":memory:", &q->conn->db, flags, NULL) != SQLITE_OK) {
        dm_buf_printf(why, "opening a SQL connection failed: %s",
                      q->conn->db ? sqlite3_errmsg(q->conn->db) : "out of memory");
        return DM_ERR_NOMEM;
    }
    q->db = q->conn->db;
    if ((rc = dm_query__harden(q->db, why)))
        return rc;
    if (dm_query__register_module(q->db, q->ctx) != SQLITE_OK ||
        dm_query__register_remote(q->db, q->ctx) != SQLITE_OK ||
        dm_query__register_printf(q->db, q->ctx) != SQLITE_OK) {
        dm_buf_printf(why, "registering the product tables failed: %s", sqlite3_errmsg(q->db));
        return DM_ERR_NOMEM;
    }
    if ((rc = s_create_tables(q, why)))
        return rc;
    if ((rc = dm_query__lock_down(q->db, q->ctx, q->e->limits.max_sql_bytes, why)))
        return rc;
    q->reusable = true;
    return DM_OK;
}

/* A statement that names a hidden raw table fails as if the table did not
 * exist, before SQLite sees it (an ambiguous column name, say, would tell
 * that the table is there): records it for dm_query__prepare_error. The
 * authorizer guards the table too (query_sandbox.c); this catches the name
 * in any quoting, whether or not the statement would reach it. */
static void s_hidden_named(dm_qctx_t *ctx, const char *sql, size_t len)
{
    char raw[DM_QUERY_NAME_MAX + sizeof DM_QUERY_RAW_SUFFIX];
    for (size_t i = 0; i < ctx->ntables && !ctx->unknown[0]; i++) {
        const dm_qtable_t *t = &ctx->tables[i];
        if (!dm_query__viewed(t))
            continue;
        snprintf(raw, sizeof raw, "%s" DM_QUERY_RAW_SUFFIX, t->name);
        if (dm_query__names_ident(sql, len, raw))
            snprintf(ctx->unknown, sizeof ctx->unknown, "%s.%s", t->domain, raw);
    }
}

/* Prepares the user's statement: exactly one, read-only. */
static dm_err s_prepare(dm_query_t *q, const char *sql, size_t len,
                        const dm_query_access_t *access, dm_buf_t *why)
{
    const char *tail = NULL;
    s_hidden_named(q->ctx, sql, len);
    if (q->ctx->unknown[0])
        return dm_query__prepare_error(q->db, q->ctx, q->e->registry, access, sql, len, why);
    int rc = sqlite3_prepare_v3(q->db, sql, (int)len, 0, &q->stmt, &tail);
    if (rc != SQLITE_OK)
        return dm_query__prepare_error(q->db, q->ctx, q->e->registry, access, sql, len, why);
    if (!q->stmt) {
        dm_buf_puts(why, "the query is empty: write one SELECT statement");
        return DM_ERR_INVALID;
    }
    size_t used = tail ? (size_t)(tail - sql) : len;
    size_t rest = used + dm_query__skip_blank(sql + used, len - used);
    if (rest < len) {
        dm_buf_puts(why, "one statement per query: more SQL follows the first statement");
        dm_query__caret(sql, len, rest, why);
        return DM_ERR_INVALID;
    }
    if (!s_select_keyword(sql, len)) {
        size_t at = dm_query__skip_blank(sql, len), n = 0;
        while (at + n < len && n < S_KEYWORD_MAX && (sql[at + n] & 0x80) == 0 &&
               (isalpha((unsigned char)sql[at + n]) || sql[at + n] == '_'))
            n++;
        dm_buf_printf(why, "%.*s is not allowed: a query is one SELECT (or WITH, VALUES, "
                           "EXPLAIN) over data products", (int)n, sql + at);
        return DM_ERR_DENIED;
    }
    if (!sqlite3_stmt_readonly(q->stmt)) {
        dm_buf_puts(why, "this statement is not allowed: queries are read-only over data products");
        return DM_ERR_DENIED;
    }
    return s_columns(q);
}

/* Decides every table (access may be NULL: all readable as they are) and
 * refuses SQL that would name a WITH table after a viewed product. */
static dm_err s_access(const dm_query_access_t *access, dm_qtable_t *tables, size_t n,
                       const char *sql, size_t len, dm_buf_t *why)
{
    if (!access || !access->decide)
        return DM_OK;
    dm_err rc = dm_query__decide(access, tables, n, why);
    for (size_t i = 0; i < n && !rc; i++) {
        if (dm_query__viewed(&tables[i]) && dm_query__names_cte(sql, len, tables[i].name)) {
            dm_buf_printf(why, "the name %s is taken by product %s.%s: name WITH tables and "
                               "windows otherwise", tables[i].name, tables[i].domain,
                          tables[i].name);
            rc = DM_ERR_DENIED;
        }
    }
    return rc;
}

/* Whether one of the n tables is another node's. */
static bool s_any_remote(const dm_qtable_t *tables, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tables[i].remote)
            return true;
    return false;
}

/* dm_query_open_fed's work (local_only: dm_query_open_local's); why is
 * never NULL here. */
static dm_err s_open(dm_query_engine_t *e, const char *sql, size_t len,
                     const dm_query_access_t *access, const dm_query_remote_t *remote,
                     bool local_only, dm_query_t **out, dm_buf_t *why)
{
    if (len > e->limits.max_sql_bytes) {
        dm_buf_printf(why, "the SQL is %zu bytes; a query may have at most %zu", len,
                      e->limits.max_sql_bytes);
        return DM_ERR_TOOBIG;
    }
    dm_query_t *q = calloc(1, sizeof *q);
    if (!q)
        return DM_ERR_NOMEM;
    pthread_mutex_init(&q->hold, NULL);
    q->e = e;
    dm_qtable_t *tables = NULL;
    size_t ntables = 0, ndomains = 0;
    dm_err rc = dm_query__find_tables(e->registry, remote, sql, len, &tables, &ntables,
                                      &ndomains, why);
    if (!rc && ndomains > DM_QUERY_MAX_DOMAINS) {
        dm_buf_printf(why, "the statement names %zu domains; a query may name at most %d", ndomains,
                      DM_QUERY_MAX_DOMAINS);
        rc = DM_ERR_INVALID;
    }
    if (!rc && local_only && s_any_remote(tables, ntables)) { /* nothing decided yet */
        dm_query__tables_free(e->registry, tables, ntables);
        dm_query_close(&q);
        return DM_OK;
    }
    if (!rc)
        rc = s_access(access, tables, ntables, sql, len, why);
    s_conn *reuse = rc ? NULL : s_pool_take(e, tables, ntables);
    for (size_t i = 0; reuse && i < ntables; i++)
        if (tables[i].remote)
            dm_query__remote_reset(&reuse->ctx.tables[i], &tables[i]);
    if (rc || reuse) {
        dm_query__tables_free(e->registry, tables, ntables); /* a reused one holds its own */
        if (rc)
            goto fail;
        q->conn = reuse;
    } else {
        q->conn = calloc(1, sizeof *q->conn);
        if (!q->conn) {
            dm_query__tables_free(e->registry, tables, ntables);
            rc = DM_ERR_NOMEM;
            goto fail;
        }
        q->conn->ctx.tables = tables;
        q->conn->ctx.ntables = ntables;
    }
    q->ctx = &q->conn->ctx;
    q->ctx->timeout_ms = e->limits.timeout_ms;
    q->ctx->deadline_ns = dm_clock_mono_ns() + e->limits.timeout_ms * S_NS_PER_MS;
    atomic_init(&q->ctx->cancel, false);
    q->ctx->remote = remote;
    q->ctx->remote_err = DM_OK;
    q->ctx->timed_out = false;
    q->ctx->walked = 0;
    q->ctx->denied[0] = 0;
    q->ctx->unknown[0] = 0;
    q->ctx->denied_weak = false;
    dm_buf_t reason = DM_BUF_INIT;
    rc = dm_reader_open(e->store, &q->ctx->reader, &reason);
    if (rc == DM_ERR_BUSY) {
        dm_buf_puts(why, "the node is growing its storage map; retry shortly");
    } else if (rc) { /* the store does not log: the node logs this line, the client gets why */
        const char *cause = reason.len ? reason.data : dm_err_str(rc);
        dm_log_err("query: reading the store failed: %s", cause);
        dm_buf_printf(why, "reading the store failed: %s", cause);
    }
    dm_buf_free(&reason);
    if (rc)
        goto fail;
    if (reuse) {
        q->db = reuse->db;
        q->reusable = true;
    } else if ((rc = s_build(q, why))) {
        goto fail;
    }
    q->ctx->client_fn = false; /* set by the authorizer during the prepare */
    if ((rc = s_prepare(q, sql, len, access, why)))
        goto fail;
    *out = q;
    return DM_OK;
fail:
    dm_query_close(&q);
    return rc;
}

dm_err dm_query_open(dm_query_engine_t *e, const char *sql, size_t len, dm_query_t **out,
                     dm_buf_t *why)
{
    return dm_query_open_as(e, sql, len, NULL, out, why);
}

dm_err dm_query_open_as(dm_query_engine_t *e, const char *sql, size_t len,
                        const dm_query_access_t *access, dm_query_t **out, dm_buf_t *why)
{
    return dm_query_open_fed(e, sql, len, access, NULL, out, why);
}

/* dm_query_open_fed and dm_query_open_local. */
static dm_err s_open_why(dm_query_engine_t *e, const char *sql, size_t len,
                         const dm_query_access_t *access, const dm_query_remote_t *remote,
                         bool local_only, dm_query_t **out, dm_buf_t *why)
{
    *out = NULL;
    dm_buf_t scratch = DM_BUF_INIT; /* why may be NULL: the failure still needs a place */
    if (!why)
        why = &scratch;
    size_t why_at = why->len;
    dm_err rc = s_open(e, sql, len, access, remote, local_only, out, why);
    if (rc == DM_ERR_NOMEM && why->len == why_at)
        dm_buf_puts(why, "out of memory");
    dm_buf_free(&scratch);
    return rc;
}

dm_err dm_query_open_fed(dm_query_engine_t *e, const char *sql, size_t len,
                         const dm_query_access_t *access, const dm_query_remote_t *remote,
                         dm_query_t **out, dm_buf_t *why)
{
    return s_open_why(e, sql, len, access, remote, false, out, why);
}

dm_err dm_query_open_local(dm_query_engine_t *e, const char *sql, size_t len,
                           const dm_query_access_t *access, const dm_query_remote_t *remote,
                           dm_query_t **out, dm_buf_t *why)
{
    return s_open_why(e, sql, len, access, remote, true, out, why);
}

int dm_query_ncolumns(const dm_query_t *q) { return q->ncols; }

const char *dm_query_column_name(const dm_query_t *q, int i)
{
    return i >= 0 && i < q->ncols ? q->names[i] : "";
}

const char *dm_query_column_decltype(const dm_query_t *q, int i)
{
    return i >= 0 && i < q->ncols ? q->decltypes[i] : "";
}

uint64_t dm_query_rows_walked(const dm_query_t *q) { return q->ctx ? q->ctx->walked : q->walked; }

void dm_query_explain(const dm_query_t *q, dm_buf_t *out)
{
    if (!q->ctx) {
        if (q->explain.len)
            dm_buf_append(out, q->explain.data, q->explain.len);
        return;
    }
    for (size_t i = 0; i < q->ctx->ntables; i++)
        if (q->ctx->tables[i].remote)
            dm_query__remote_explain(&q->ctx->tables[i], out);
}

void dm_query_cancel(dm_query_t *q)
{
    pthread_mutex_lock(&q->hold);
    if (q->ctx)
        atomic_store(&q->ctx->cancel, true);
    pthread_mutex_unlock(&q->hold);
}

/* Appends the current row of stmt to out in the row-batch encoding. */
static void s_encode_row(sqlite3_stmt *stmt, int ncols, dm_buf_t *out)
{
    for (int i = 0; i < ncols; i++) {
        switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
            dm_rowbatch_put_int(out, sqlite3_column_int64(stmt, i));
            break;
        case SQLITE_FLOAT:
            dm_rowbatch_put_real(out, sqlite3_column_double(stmt, i));
            break;
        case SQLITE_TEXT: {
            const unsigned char *s = sqlite3_column_text(stmt, i);
            dm_rowbatch_put_bytes(out, DM_ROWBATCH_TEXT, s, (size_t)sqlite3_column_bytes(stmt, i));
            break;
        }
        case SQLITE_BLOB: {
            const void *s = sqlite3_column_blob(stmt, i);
            dm_rowbatch_put_bytes(out, DM_ROWBATCH_BLOB, s, (size_t)sqlite3_column_bytes(stmt, i));
            break;
        }
        default:
            dm_rowbatch_put_null(out);
            break;
        }
    }
}

/* Turns a failed step into why and the dm_err, and ends the query. */
static dm_err s_step_error(dm_query_t *q, int rc, dm_buf_t *why)
{
    dm_buf_t scratch = DM_BUF_INIT; /* why may be NULL */
    if (!why)
        why = &scratch;
    dm_err e = DM_ERR_INVALID;
    q->reusable = false; /* stopped mid-statement: do not hand this connection on */
    if (atomic_load(&q->ctx->cancel)) {
        dm_buf_puts(why, "the query was cancelled");
        e = DM_ERR_TIMEOUT;
    } else if (q->ctx->remote_err) { /* the remote table's line is SQLite's message */
        dm_buf_puts(why, sqlite3_errmsg(q->db));
        e = q->ctx->remote_err;
    } else if (q->ctx->timed_out || rc == SQLITE_INTERRUPT) {
        dm_buf_printf(why, "the query ran into its time limit of %lld ms and was stopped",
                      (long long)q->ctx->timeout_ms);
        e = DM_ERR_TIMEOUT;
    } else if (rc == SQLITE_NOMEM) {
        dm_buf_printf(why, "the query needs more memory than the engine allows (%lld bytes "
                      "for all running queries)", (long long)q->e->limits.heap_limit_bytes);
        e = DM_ERR_NOMEM;
    } else if (rc == SQLITE_TOOBIG) {
        dm_buf_printf(why, "a value is larger than the limit of %d bytes per string or blob",
                      DM_QUERY_LIMIT_LENGTH);
    } else if ((rc & 0xff) == SQLITE_IOERR) {
        dm_buf_printf(why, "reading the records failed: %s", sqlite3_errmsg(q->db));
        e = DM_ERR_STORE;
    } else {
        dm_buf_puts(why, sqlite3_errmsg(q->db));
    }
    s_release(q);
    dm_buf_free(&scratch);
    return e;
}

dm_err dm_query_fetch(dm_query_t *q, size_t max_rows, size_t max_bytes, dm_buf_t *out,
                      uint32_t *nrows, bool *done, dm_buf_t *why)
{
    *nrows = 0;
    *done = q->done;
    if (q->done)
        return DM_OK;
    if (dm_clock_mono_ns() > q->ctx->deadline_ns) {
        q->ctx->timed_out = true;
        *done = true;
        return s_step_error(q, SQLITE_INTERRUPT, why);
    }
    if (!q->learned) { /* a join's remote probes, batched before the first row */
        q->learned = true;
        dm_buf_t scratch = DM_BUF_INIT; /* its only failure is memory, which s_step_error names */
        dm_err e = dm_query__remote_learn(q->ctx, q->stmt, &scratch);
        dm_buf_free(&scratch);
        if (e != DM_OK) {
            *done = true;
            return s_step_error(q, SQLITE_NOMEM, why);
        }
    }
    size_t start = out->len;
    while (*nrows < max_rows && *nrows < UINT32_MAX) {
        int rc = sqlite3_step(q->stmt);
        if (rc == SQLITE_DONE) {
            s_release(q);
            break;
        }
        if (rc != SQLITE_ROW) {
            *done = true;
            return s_step_error(q, rc, why);
        }
        s_encode_row(q->stmt, q->ncols, out);
        (*nrows)++;
        if (max_bytes && out->len - start >= max_bytes)
            break;
    }
    *done = q->done;
    return DM_OK;
}

/* dm_query_fetch_within's give-up: the statement back to its start, as
 * if never stepped (nothing was sent: rerunning it is exact), the rows of
 * this try dropped, the real deadline back. */
static void s_rewind(dm_query_t *q, int64_t deadline_ns, dm_buf_t *out, size_t start)
{
    sqlite3_reset(q->stmt);
    q->ctx->deadline_ns = deadline_ns;
    q->ctx->timed_out = false;
    q->ctx->walked = 0;
    out->len = start;
    if (out->data)
        out->data[start] = 0;
}

/* dm_query_fetch_within's stepping, the query's own deadline in deadline
 * (ctx's is the budget's end, or the deadline if sooner); puts the
 * progress handler back to its usual pace. */
static dm_err s_fetch_within(dm_query_t *q, size_t max_rows, size_t max_bytes, int64_t deadline,
                             dm_buf_t *out, size_t start, uint32_t *nrows, bool *over,
                             dm_buf_t *why)
{
    for (;;) {
        int rc = sqlite3_step(q->stmt);
        if (rc == SQLITE_ROW) {
            s_encode_row(q->stmt, q->ncols, out);
            (*nrows)++;
            if (*nrows < max_rows && (!max_bytes || out->len - start < max_bytes))
                continue;
        }
        /* Before the connection can go back to the pool (s_release). */
        dm_query__progress_every(q->db, q->ctx, DM_QUERY_PROGRESS_OPS);
        if (rc == SQLITE_DONE) {
            s_release(q);
            return DM_OK;
        }
        if (rc != SQLITE_ROW && (!q->ctx->timed_out || atomic_load(&q->ctx->cancel) ||
                                 dm_clock_mono_ns() > deadline)) {
            q->ctx->deadline_ns = deadline;
            return s_step_error(q, rc, why);
        }
        /* More than one batch (a cursor's work), or over the budget. */
        s_rewind(q, deadline, out, start);
        *nrows = 0;
        *over = true;
        return DM_OK;
    }
}

dm_err dm_query_fetch_within(dm_query_t *q, size_t max_rows, size_t max_bytes, int64_t budget_ns,
                             dm_buf_t *out, uint32_t *nrows, bool *over, dm_buf_t *why)
{
    *nrows = 0;
    *over = false;
    /* Remote probes wait on the network; one call of a function (instr,
     * like, replace over long strings) can run for seconds between two
     * checks of the deadline; a statement of no product is nobody's read.
     * None of them is ever taken within a budget. */
    if (q->done || q->learned || q->ctx->client_fn || q->ctx->ntables == 0 ||
        s_any_remote(q->ctx->tables, q->ctx->ntables)) {
        *over = true;
        return DM_OK;
    }
    int64_t deadline = q->ctx->deadline_ns, until = dm_clock_mono_ns() + budget_ns;
    if (until < deadline) /* the progress handler and the tables stop here */
        q->ctx->deadline_ns = until;
    size_t start = out->len;
    dm_query__progress_every(q->db, q->ctx, DM_QUERY_PROGRESS_OPS_LOOP);
    return s_fetch_within(q, max_rows, max_bytes, deadline, out, start, nrows, over, why);
}
