/* query_remote_sql.c: the SELECT a remote table sends its product's owner.
 *
 * One SELECT over the product alone: the columns SQLite uses, the WHERE
 * terms xBestIndex chose (query_remote.c) with xFilter's values as SQL
 * literals, ORDER BY and LIMIT/OFFSET when pushed. The owner runs it with
 * the same engine and the same column types, so a term whose literal
 * SQLite reads back as exactly the value here compares there as it does
 * here; a value that does not convert to the column's type (query_conv.c)
 * or does not render exactly is left out, and SQLite checks that term on
 * the rows that come back. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_remote.h"

#define S_WHERE_BUDGET 32768 /* bytes of WHERE terms SQLite also checks (omitted ones always go) */
#define S_IN_BYTES 65536     /* bytes of IN values per SELECT, besides DM_QUERY_IN_BATCH */

bool dm_query__sql_literal(sqlite3_value *v, dm_buf_t *out)
{
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER: {
        int64_t i = sqlite3_value_int64(v);
        if (i == INT64_MIN) /* its digits alone would not fit: SQLite reads them as a real */
            dm_buf_puts(out, "(-9223372036854775807-1)");
        else
            dm_buf_printf(out, "%" PRId64, i);
        return true;
    }
    case SQLITE_FLOAT: {
        double d = sqlite3_value_double(v);
        char text[40];
        if (isnan(d))
            return false;
        if (isinf(d)) { /* SQLite reads an overflowing literal as infinity */
            dm_buf_puts(out, d > 0 ? "9e999" : "(-9e999)");
            return true;
        }
        snprintf(text, sizeof text, "%.17g", d);
        if (strtod(text, NULL) != d || (d == 0 && signbit(d) != signbit(strtod(text, NULL))))
            return false;
        bool real = strpbrk(text, ".e") != NULL;
        dm_buf_printf(out, d < 0 || signbit(d) ? "(%s%s)" : "%s%s", text, real ? "" : ".0");
        return true;
    }
    case SQLITE_TEXT: {
        const char *s = (const char *)sqlite3_value_text(v);
        size_t n = (size_t)sqlite3_value_bytes(v);
        if (!s || memchr(s, 0, n))
            return false;
        dm_buf_putc(out, '\'');
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '\'')
                dm_buf_putc(out, '\'');
            dm_buf_putc(out, s[i]);
        }
        dm_buf_putc(out, '\'');
        return true;
    }
    case SQLITE_BLOB: {
        const unsigned char *b = sqlite3_value_blob(v);
        size_t n = (size_t)sqlite3_value_bytes(v);
        dm_buf_puts(out, "X'");
        for (size_t i = 0; i < n; i++)
            dm_buf_printf(out, "%02x", b[i]);
        dm_buf_putc(out, '\'');
        return true;
    }
    default:
        dm_buf_puts(out, "NULL");
        return true;
    }
}

void dm_query_remote__plan_text(const dm_query_remote_plan_t *p, dm_buf_t *out)
{
    dm_buf_printf(out, "remote u%" PRIx64, p->used);
    for (int i = 0; i < p->nterms; i++)
        dm_buf_printf(out, " %c%d%s", p->terms[i].op, p->terms[i].col, p->terms[i].omit ? "o" : "");
    for (int i = 0; i < p->norder; i++)
        dm_buf_printf(out, " s%d", p->order[i]);
}

bool dm_query_remote__plan_parse(const char *text, dm_query_remote_plan_t *p)
{
    memset(p, 0, sizeof *p);
    int n = 0;
    if (!text || sscanf(text, "remote u%" SCNx64 "%n", &p->used, &n) != 1)
        return false;
    const char *s = text + n;
    while (*s == ' ') {
        char op = s[1];
        int col = 0, k = 0;
        if (sscanf(s + 2, "%d%n", &col, &k) != 1)
            return false;
        s += 2 + k;
        if (op == 's') {
            if (p->norder == DM_QUERY_REMOTE_MAX_TERMS)
                return false;
            p->order[p->norder++] = col;
            continue;
        }
        if (p->nterms == DM_QUERY_REMOTE_MAX_TERMS)
            return false;
        bool omit = *s == 'o';
        s += omit;
        p->terms[p->nterms++] = (dm_query_remote_term_t){op, col, omit};
    }
    return *s == 0;
}

bool dm_query_remote__uses(const dm_contract_t *c, uint64_t used, size_t f)
{
    for (size_t k = 0; k < c->npk; k++)
        if (c->pk[k] == f)
            return true; /* the rowid is a hash of the row, key included */
    return f < 63 ? (used >> f) & 1 : (used >> 63) & 1;
}

bool dm_query_remote__pushable(const dm_contract_t *c, size_t f, int op, sqlite3_value *v,
                          bool *exact, bool *never)
{
    dm_value_t kv;
    bool incl = false;
    *exact = *never = false;
    dm_qconv conv = dm_query__convert(c, f, op, v, &kv, &incl);
    if (conv == DM_QCONV_NEVER) {
        *never = op == SQLITE_INDEX_CONSTRAINT_EQ;
        return false;
    }
    if (conv != DM_QCONV_EXACT && (conv != DM_QCONV_LOOSE || incl))
        return false;
    dm_buf_t lit = DM_BUF_INIT;
    bool ok = dm_query__sql_literal(v, &lit) && lit.len <= DM_QUERY_REMOTE_LITERAL_MAX;
    dm_buf_free(&lit);
    *exact = ok && conv == DM_QCONV_EXACT;
    return ok;
}

/* The SQL operator of a plan term. */
static const char *s_op_sql(char op)
{
    switch (op) {
    case DM_QUERY_REMOTE_EQ: return " = ";
    case DM_QUERY_REMOTE_LT: return " < ";
    case DM_QUERY_REMOTE_LE: return " <= ";
    case DM_QUERY_REMOTE_GT: return " > ";
    case DM_QUERY_REMOTE_GE: return " >= ";
    case DM_QUERY_REMOTE_LIKE: return " LIKE ";
    default: return NULL;
    }
}

/* SQLite's constraint code of a comparison term. */
static int s_op_code(char op)
{
    switch (op) {
    case DM_QUERY_REMOTE_LT: return SQLITE_INDEX_CONSTRAINT_LT;
    case DM_QUERY_REMOTE_LE: return SQLITE_INDEX_CONSTRAINT_LE;
    case DM_QUERY_REMOTE_GT: return SQLITE_INDEX_CONSTRAINT_GT;
    case DM_QUERY_REMOTE_GE: return SQLITE_INDEX_CONSTRAINT_GE;
    default: return SQLITE_INDEX_CONSTRAINT_EQ;
    }
}

/* The literals of a pushed IN list, comma-separated with a NUL after each
 * in *vals (*nvals of them): false when a value cannot be sent (the IN is
 * then left to SQLite). Values no row equals are skipped. */
static bool s_in_values(const dm_contract_t *c, size_t f, sqlite3_value *list, dm_buf_t *vals,
                        size_t *nvals)
{
    sqlite3_value *v;
    *nvals = 0;
    for (int rc = sqlite3_vtab_in_first(list, &v); rc == SQLITE_OK;
         rc = sqlite3_vtab_in_next(list, &v)) {
        bool exact, never;
        if (!dm_query_remote__pushable(c, f, SQLITE_INDEX_CONSTRAINT_EQ, v, &exact, &never)) {
            if (never)
                continue;
            return false;
        }
        if (!dm_query__sql_literal(v, vals))
            return false;
        dm_buf_putc(vals, 0); /* the separator */
        (*nvals)++;
    }
    return true;
}

/* Appends one term (not IN) to where; false when it cannot go. */
static bool s_term(const dm_contract_t *c, const dm_query_remote_term_t *t, sqlite3_value *v, dm_buf_t *where,
                   bool *empty)
{
    const char *name = c->fields[t->col].name;
    size_t at = where->len;
    dm_buf_puts(where, where->len ? " AND " : " WHERE ");
    dm_query__quote_ident(where, name);
    if (t->op == DM_QUERY_REMOTE_ISNULL || t->op == DM_QUERY_REMOTE_NOTNULL) {
        dm_buf_puts(where, t->op == DM_QUERY_REMOTE_ISNULL ? " IS NULL" : " IS NOT NULL");
        return true;
    }
    bool exact = false, never = false, ok;
    if (t->op == DM_QUERY_REMOTE_LIKE)
        ok = sqlite3_value_type(v) == SQLITE_TEXT;
    else
        ok = dm_query_remote__pushable(c, (size_t)t->col, s_op_code(t->op), v, &exact, &never);
    dm_buf_puts(where, s_op_sql(t->op));
    if (ok)
        ok = dm_query__sql_literal(v, where);
    if (!ok && t->op == DM_QUERY_REMOTE_EQ && never)
        *empty = true;
    if (!ok || (!t->omit && where->len > S_WHERE_BUDGET)) {
        where->len = at;
        where->data[at] = 0;
        return t->omit ? false : true;
    }
    return true;
}

/* Appends ORDER BY and LIMIT/OFFSET (argv values at lim, off; -1 none). */
static void s_tail(const dm_qtable_t *t, const dm_query_remote_plan_t *p, sqlite3_value *lim,
                   sqlite3_value *off, dm_buf_t *tail)
{
    for (int i = 0; i < p->norder; i++) {
        int col = p->order[i] < 0 ? -1 - p->order[i] : p->order[i];
        dm_buf_puts(tail, i ? ", " : " ORDER BY ");
        dm_query__quote_ident(tail, t->ref->contract->fields[col].name);
        if (p->order[i] < 0)
            dm_buf_puts(tail, " DESC");
    }
    /* SQLite still applies LIMIT and OFFSET to what comes back: the owner
     * sends the first limit + offset rows. */
    int64_t l = lim ? sqlite3_value_int64(lim) : -1, o = off ? sqlite3_value_int64(off) : 0;
    if (lim && l >= 0 && (o <= 0 || o < INT64_MAX - l))
        dm_buf_printf(tail, " LIMIT %" PRId64, o > 0 ? l + o : l);
}

/* Adds one SELECT: head, where, an IN part (may be empty), tail. */
static bool s_push(char ***sqls, size_t *n, const dm_buf_t *head, const dm_buf_t *where,
                   const char *in, size_t inlen, const dm_buf_t *tail)
{
    char **grown = realloc(*sqls, (*n + 1) * sizeof *grown);
    if (!grown)
        return false;
    *sqls = grown;
    dm_buf_t s = DM_BUF_INIT;
    dm_buf_append(&s, head->data, head->len);
    dm_buf_append(&s, where->data, where->len);
    dm_buf_append(&s, in, inlen);
    dm_buf_append(&s, tail->data, tail->len);
    grown[(*n)++] = dm_buf_steal(&s);
    return true;
}

/* The SELECT list and FROM clause. */
static void s_head(const dm_qtable_t *t, const dm_query_remote_plan_t *p, dm_buf_t *head)
{
    const dm_contract_t *c = t->ref->contract;
    size_t nsel = 0;
    dm_buf_puts(head, "SELECT ");
    for (size_t f = 0; f < c->nfields; f++) {
        if (!dm_query_remote__uses(c, p->used, f))
            continue;
        if (nsel++)
            dm_buf_puts(head, ", ");
        dm_query__quote_ident(head, c->fields[f].name);
    }
    if (!nsel)
        dm_buf_putc(head, '1');
    dm_buf_puts(head, " FROM ");
    dm_query__quote_ident(head, t->domain);
    dm_buf_putc(head, '.');
    dm_query__quote_ident(head, t->name);
}

/* Splits the IN values into SELECTs of at most DM_QUERY_IN_BATCH values
 * and S_IN_BYTES bytes each. */
static bool s_in_batches(const dm_qtable_t *t, int col, const dm_buf_t *vals, size_t nvals,
                         const dm_buf_t *head, const dm_buf_t *where, const dm_buf_t *tail,
                         char ***sqls, size_t *nsql)
{
    dm_buf_t in = DM_BUF_INIT;
    size_t at = 0, k = 0;
    bool ok = true;
    while (ok && k < nvals) {
        dm_buf_reset(&in);
        dm_buf_puts(&in, where->len ? " AND " : " WHERE ");
        dm_query__quote_ident(&in, t->ref->contract->fields[col].name);
        dm_buf_puts(&in, " IN (");
        for (size_t m = 0; k < nvals && m < DM_QUERY_IN_BATCH; m++, k++) {
            const char *v = vals->data + at;
            size_t vl = strlen(v);
            if (m && in.len + vl > S_IN_BYTES)
                break;
            if (m)
                dm_buf_puts(&in, ", ");
            dm_buf_append(&in, v, vl);
            at += vl + 1;
        }
        dm_buf_putc(&in, ')');
        ok = s_push(sqls, nsql, head, where, in.data, in.len, tail);
    }
    dm_buf_free(&in);
    return ok;
}

dm_err dm_query_remote__build(const dm_qtable_t *t, const dm_query_remote_plan_t *p, int argc,
                         sqlite3_value **argv, char ***sqls, size_t *nsql, bool *empty,
                         dm_buf_t *why)
{
    const dm_contract_t *c = t->ref->contract;
    dm_buf_t head = DM_BUF_INIT, where = DM_BUF_INIT, tail = DM_BUF_INIT, vals = DM_BUF_INIT;
    sqlite3_value *lim = NULL, *off = NULL;
    int in_col = -1;
    size_t nvals = 0;
    dm_err rc = DM_OK;
    *sqls = NULL;
    *nsql = 0;
    *empty = false;
    for (int i = 0; i < p->nterms && i < argc && !rc && !*empty; i++) {
        const dm_query_remote_term_t *term = &p->terms[i];
        if (term->col < 0 || (size_t)term->col >= c->nfields) {
            if (term->op == DM_QUERY_REMOTE_LIMIT)
                lim = argv[i];
            else if (term->op == DM_QUERY_REMOTE_OFFSET)
                off = argv[i];
            continue;
        }
        if (term->op == DM_QUERY_REMOTE_IN) {
            if (in_col < 0 && s_in_values(c, (size_t)term->col, argv[i], &vals, &nvals))
                in_col = term->col;
            else
                dm_buf_reset(&vals);
            *empty = in_col >= 0 && nvals == 0;
        } else if (!s_term(c, term, argv[i], &where, empty) && !*empty) {
            dm_buf_printf(why, "%s.%s: the condition on %s cannot be sent to the owner", t->domain,
                          t->name, c->fields[term->col].name);
            rc = DM_ERR_INVALID;
        }
    }
    if (!rc && !*empty) {
        s_head(t, p, &head);
        s_tail(t, p, lim, off, &tail);
        bool ok = in_col >= 0 ? s_in_batches(t, in_col, &vals, nvals, &head, &where, &tail, sqls, nsql)
                              : s_push(sqls, nsql, &head, &where, "", 0, &tail);
        rc = ok ? DM_OK : DM_ERR_NOMEM;
    }
    if (rc || *empty) {
        dm_query_remote__sqls_free(*sqls, *nsql);
        *sqls = NULL;
        *nsql = 0;
    }
    dm_buf_free(&head);
    dm_buf_free(&where);
    dm_buf_free(&tail);
    dm_buf_free(&vals);
    return rc;
}

void dm_query_remote__sqls_free(char **sqls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(sqls[i]);
    free(sqls);
}
