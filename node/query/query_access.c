/* query_access.c: what a caller may see of the products a query names.
 *
 * The access hook (query.h's dm_query_access_t) decides each product
 * before anything is read. A product the caller may read as it is stays
 * the plain virtual table. One with column masks or a row filter becomes a
 * view in its domain's schema, under its own name,
 *   CREATE VIEW d.p AS SELECT c1, dm_mask_hash(c2) AS c2, ... FROM d."p$raw"
 *                      WHERE (row filter)
 * over the raw virtual table "p$raw", which the authorizer lets the SQL
 * reach only through that view (query_sandbox.c). SQLite flattens such a
 * view into the query, so constraints and ORDER BY on unmasked columns
 * still reach the virtual table, while a constraint on a masked column
 * compares the masked value (the expression, not the column, is what the
 * query sees). The view's WHERE comes first in the flattened WHERE, so
 * SQLite tests the row filter before the user's own terms on a row (a
 * test holds it), so an expression that fails or is slow on a hidden row
 * does not run on one; SQLite does not document that order, and has no
 * equivalent of PostgreSQL's security_barrier.
 *
 * The raw table's name is the product's with DM_QUERY_RAW_SUFFIX, outside
 * the name rule so no product can have it. Two guards keep it from the
 * SQL: query.c refuses a statement naming it (any quoting, as an unknown
 * table) and a WITH table or window named after a viewed product (inside
 * it SQLite would report the product's view as the context of a read);
 * the authorizer allows reads of it only with the view as context.
 *
 * Masks are SQL functions on the connection, deterministic and innocuous
 * (usable in a view under SQLITE_DBCONFIG_TRUSTED_SCHEMA off); NULL stays
 * NULL under every mask. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_priv.h"

#define S_HASH_BYTES 16 /* bytes of SHA-256 a hash mask shows (32 hex digits) */
#define S_LAST_CHARS 4  /* characters a last4 mask shows */
#define S_YEAR_CHARS 4  /* characters of a date a year mask keeps */

static const char *const s_mask_fn[DM_POLICY_MASK__COUNT] = {
    NULL, "dm_mask_redact", "dm_mask_hash", "dm_mask_last4", "dm_mask_null", "dm_mask_year",
};

/* Moves an allowed decision's masks (only if one applies) and row filter
 * into t. DM_ERR_INVALID when the masks do not match the fields. */
static dm_err s_take(dm_qtable_t *t, dm_policy_decision_t *d, dm_buf_t *why)
{
    size_t nfields = t->ref->contract->nfields;
    bool any = false;
    for (size_t i = 0; d->masks && i < d->nmasks; i++) {
        if ((unsigned)d->masks[i] >= DM_POLICY_MASK__COUNT) {
            dm_buf_printf(why, "the access decision for %s.%s gives field %zu an unknown mask "
                               "(%d); valid: none, redact, hash, last4, null, year",
                          t->domain, t->name, i, (int)d->masks[i]);
            return DM_ERR_INVALID;
        }
        any |= d->masks[i] != DM_POLICY_MASK_NONE;
    }
    if (d->masks && d->nmasks != nfields) {
        dm_buf_printf(why, "the access decision for %s.%s has %zu masks for its %zu fields; "
                           "it needs one per field",
                      t->domain, t->name, d->nmasks, nfields);
        return DM_ERR_INVALID;
    }
    if (any) {
        t->masks = d->masks;
        t->nmasks = d->nmasks;
        d->masks = NULL;
    }
    if (d->row_filter && d->row_filter[0]) {
        t->row_filter = d->row_filter;
        d->row_filter = NULL;
    }
    return DM_OK;
}

dm_err dm_query__decide(const dm_query_access_t *access, dm_qtable_t *tables, size_t n,
                        dm_buf_t *why)
{
    dm_err rc = DM_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (tables[i].remote)
            continue; /* its owner decides, on the consumer's identity */
        dm_policy_decision_t d;
        memset(&d, 0, sizeof d);
        rc = access->decide(access->ctx, tables[i].domain, tables[i].name, &d, why);
        if (!rc && !d.allow) {
            if (d.reason[0])
                dm_buf_puts(why, d.reason);
            else
                dm_buf_printf(why, "access denied to %s.%s", tables[i].domain, tables[i].name);
            rc = DM_ERR_DENIED;
        } else if (!rc) {
            rc = s_take(&tables[i], &d, why);
        }
        dm_policy_decision_clear(&d);
    }
    return rc;
}

bool dm_query__same_access(const dm_qtable_t *a, const dm_qtable_t *b)
{
    if (!a->masks != !b->masks || !a->row_filter != !b->row_filter)
        return false;
    if (a->masks && (a->nmasks != b->nmasks ||
                     memcmp(a->masks, b->masks, a->nmasks * sizeof *a->masks) != 0))
        return false;
    return !a->row_filter || strcmp(a->row_filter, b->row_filter) == 0;
}

/* ---- mask functions ---- */

/* NULL stays NULL; else the text of argv[0], or NULL after reporting out
 * of memory. */
static const unsigned char *s_text(sqlite3_context *cx, sqlite3_value *v, int *n)
{
    if (sqlite3_value_type(v) == SQLITE_NULL)
        return NULL;
    const unsigned char *s = sqlite3_value_text(v);
    if (!s)
        sqlite3_result_error_nomem(cx);
    *n = sqlite3_value_bytes(v);
    return s;
}

static void s_redact(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_NULL)
        sqlite3_result_text(cx, "***", -1, SQLITE_STATIC);
}

static void s_hash(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int n = 0;
    const unsigned char *s = s_text(cx, argv[0], &n);
    if (!s)
        return;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, s, (unsigned long long)n);
    char hex[2 * S_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, h, S_HASH_BYTES);
    sqlite3_result_text(cx, hex, 2 * S_HASH_BYTES, SQLITE_TRANSIENT);
}

/* '****' then the last S_LAST_CHARS characters (UTF-8); a value of no more
 * characters than that would be shown whole, so it is '****' alone. */
static void s_last4(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int n = 0;
    const unsigned char *s = s_text(cx, argv[0], &n);
    if (!s)
        return;
    int at = n, chars = 0;
    while (at > 0 && chars < S_LAST_CHARS + 1) {
        at--;
        if ((s[at] & 0xc0) != 0x80)
            chars++;
    }
    char out[4 + S_LAST_CHARS * 4 + 1] = "****";
    if (chars > S_LAST_CHARS) { /* s[at] starts the fifth character from the end */
        at++;
        while (at < n && (s[at] & 0xc0) == 0x80)
            at++;
        if (n - at > S_LAST_CHARS * 4) /* not UTF-8: show nothing rather than overflow */
            at = n;
        memcpy(out + 4, s + at, (size_t)(n - at));
        out[4 + n - at] = 0;
    }
    sqlite3_result_text(cx, out, -1, SQLITE_TRANSIENT);
}

static void s_null(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    sqlite3_result_null(cx);
}

/* The first four characters of a date or timestamp's text ("2026"). */
static void s_year(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int n = 0;
    const unsigned char *s = s_text(cx, argv[0], &n);
    if (!s)
        return;
    int at = 0, chars = 0;
    while (at < n && chars < S_YEAR_CHARS) {
        at++;
        while (at < n && (s[at] & 0xc0) == 0x80)
            at++;
        chars++;
    }
    sqlite3_result_text(cx, (const char *)s, at, SQLITE_TRANSIENT);
}

int dm_query__register_masks(sqlite3 *db)
{
    static void (*const fns[DM_POLICY_MASK__COUNT])(sqlite3_context *, int, sqlite3_value **) = {
        NULL, s_redact, s_hash, s_last4, s_null, s_year,
    };
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 1, (int *)NULL);
    for (int m = 1; m < DM_POLICY_MASK__COUNT && rc == SQLITE_OK; m++)
        rc = sqlite3_create_function_v2(db, s_mask_fn[m], 1, flags, NULL, fns[m], NULL, NULL,
                                        NULL);
    return rc;
}

/* ---- views ---- */

/* Runs exactly one statement of sql; SQLite's message in *msg (borrowed
 * until the next call on db) on failure. */
static int s_exec_one(sqlite3 *db, const char *sql, const char **msg)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
    if (rc == SQLITE_OK && (!st || (tail && tail[dm_query__skip_blank(tail, strlen(tail))]))) {
        *msg = "the row filter is not one SQL expression";
        sqlite3_finalize(st);
        return SQLITE_ERROR;
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK)
        *msg = sqlite3_errmsg(db);
    sqlite3_finalize(st);
    return rc;
}

dm_err dm_query__create_view(sqlite3 *db, const dm_qtable_t *t, dm_buf_t *why)
{
    const dm_contract_t *c = t->ref->contract;
    dm_buf_t sql = DM_BUF_INIT, raw = DM_BUF_INIT;
    dm_buf_printf(&raw, "%s" DM_QUERY_RAW_SUFFIX, t->name);
    dm_buf_puts(&sql, "CREATE VIEW ");
    dm_query__quote_ident(&sql, t->domain);
    dm_buf_putc(&sql, '.');
    dm_query__quote_ident(&sql, t->name);
    dm_buf_puts(&sql, " AS SELECT ");
    for (size_t i = 0; i < c->nfields; i++) {
        dm_policy_mask m = t->masks ? t->masks[i] : DM_POLICY_MASK_NONE;
        if (i)
            dm_buf_puts(&sql, ", ");
        if (m != DM_POLICY_MASK_NONE)
            dm_buf_printf(&sql, "%s(", s_mask_fn[m]);
        dm_query__quote_ident(&sql, c->fields[i].name);
        if (m != DM_POLICY_MASK_NONE) {
            dm_buf_puts(&sql, ") AS ");
            dm_query__quote_ident(&sql, c->fields[i].name);
        }
    }
    dm_buf_puts(&sql, " FROM ");
    dm_query__quote_ident(&sql, t->domain);
    dm_buf_putc(&sql, '.');
    dm_query__quote_ident(&sql, raw.data);
    if (t->row_filter) /* the newline ends a -- comment the predicate may close with */
        dm_buf_printf(&sql, " WHERE (%s\n)", t->row_filter);
    const char *msg = NULL;
    int rc = s_exec_one(db, sql.data, &msg);
    if (rc == SQLITE_OK) { /* errors in the view's body show only when it is used */
        dm_buf_reset(&sql);
        dm_buf_puts(&sql, "SELECT * FROM ");
        dm_query__quote_ident(&sql, t->domain);
        dm_buf_putc(&sql, '.');
        dm_query__quote_ident(&sql, t->name);
        dm_buf_puts(&sql, " LIMIT 0");
        rc = s_exec_one(db, sql.data, &msg);
    }
    dm_err e = DM_OK;
    if (rc != SQLITE_OK) {
        if (t->row_filter)
            dm_buf_printf(why, "the row filter policy sets on %s.%s does not prepare: %s "
                               "(predicate: %s); it must be one SQL expression over the "
                               "product's columns",
                          t->domain, t->name, msg ? msg : "?", t->row_filter);
        else
            dm_buf_printf(why, "preparing the masked view of %s.%s failed: %s", t->domain,
                          t->name, msg ? msg : "?");
        e = rc == SQLITE_NOMEM ? DM_ERR_NOMEM : DM_ERR_INVALID;
    }
    dm_buf_free(&sql);
    dm_buf_free(&raw);
    return e;
}
