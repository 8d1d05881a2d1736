/* query_sql.c: reading the SQL text before SQLite does, to find the
 * products a statement names.
 *
 * The connection of a query can attach only DM_QUERY_MAX_DOMAINS schemas,
 * so it attaches the domains the statement names rather than all of them.
 * A light tokenizer (SQLite's own rules for comments, string literals and
 * the four identifier quotings) finds every `ident . ident` pair; a pair
 * that is "domain/name" in the registry is a product to expose. Aliases
 * (`o.status`) simply find nothing. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/query_priv.h"

/* One token of interest: an identifier (unquoted) or something else. */
typedef struct {
    bool ident, dot;
    char *text; /* identifier text, unquoted; NULL otherwise */
} s_tok_t;

/* SQLite's identifier characters (any byte >= 0x80 counts as a letter). */
static bool s_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool s_ident_char(unsigned char c)
{
    return s_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

size_t dm_query__skip_blank(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ';') {
            i++;
        } else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
            while (i < len && s[i] != '\n')
                i++;
        } else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < len; j++)
                if (s[j] == '*' && s[j + 1] == '/') {
                    end = s + j + 2;
                    break;
                }
            i = end ? (size_t)(end - s) : len; /* SQLite accepts an unterminated one at the end */
        } else {
            break;
        }
    }
    return i;
}

/* Reads a quoted token starting at s[*i] (the opening quote q, closing
 * quote close); doubled closing quotes stand for one. Returns the unquoted
 * text (malloc'd) or NULL on out of memory; *i moves past the token. */
static char *s_quoted(const char *s, size_t len, size_t *i, char close)
{
    dm_buf_t b = DM_BUF_INIT;
    size_t j = *i + 1;
    while (j < len) {
        if (s[j] == close) {
            if (close != ']' && j + 1 < len && s[j + 1] == close) {
                dm_buf_putc(&b, close);
                j += 2;
                continue;
            }
            j++;
            break;
        }
        dm_buf_putc(&b, s[j++]);
    }
    *i = j;
    if (!b.data)
        dm_buf_reserve(&b, 1);
    return dm_buf_steal(&b);
}

/* Whether tables[0..n) already holds domain.name. */
static bool s_have(const dm_qtable_t *t, size_t n, const char *domain, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].domain, domain) == 0 && strcmp(t[i].name, name) == 0)
            return true;
    return false;
}

/* Adds remote table t (resolved) to the list. */
static dm_err s_add_remote(dm_qtable_t *t, dm_qtable_t **tables, size_t *n)
{
    dm_qtable_t *grown = realloc(*tables, (*n + 1) * sizeof *grown);
    if (!grown) {
        dm_query__remote_free(t);
        free(t->domain);
        free(t->name);
        return DM_ERR_NOMEM;
    }
    *tables = grown;
    grown[(*n)++] = *t;
    return DM_OK;
}

/* Looks domain.name up and adds it to the list when registered, or when
 * remote knows it as another node's product. */
static dm_err s_try_pair(dm_registry_t *reg, const dm_query_remote_t *remote, const char *domain,
                         const char *name, dm_qtable_t **tables, size_t *n, dm_buf_t *why)
{
    if (s_have(*tables, *n, domain, name) || strcasecmp(domain, "main") == 0 ||
        strcasecmp(domain, "temp") == 0)
        return DM_OK; /* SQLite's own schemas are never domains */
    dm_buf_t q = DM_BUF_INIT;
    dm_buf_printf(&q, "%s/%s", domain, name);
    const dm_product_ref_t *ref = NULL;
    dm_err err = dm_registry_acquire(reg, q.data, q.len, &ref);
    dm_buf_free(&q);
    if (err == DM_ERR_NOTFOUND && remote && remote->resolve) {
        /* Most pairs are aliases (o.id): a "not found" says nothing. */
        size_t keep = why ? why->len : 0;
        dm_qtable_t t = {0};
        err = dm_query__remote_resolve(remote, domain, name, &t, why);
        if (err == DM_OK)
            return s_add_remote(&t, tables, n);
        if (err == DM_ERR_NOTFOUND && why && why->data) {
            why->len = keep;
            why->data[keep] = 0;
        }
    }
    if (err == DM_ERR_NOTFOUND)
        return DM_OK;
    if (err)
        return err;
    dm_qtable_t *grown = realloc(*tables, (*n + 1) * sizeof *grown);
    char *d = strdup(domain), *nm = strdup(name);
    if (!grown || !d || !nm) {
        if (grown)
            *tables = grown;
        free(d);
        free(nm);
        dm_registry_release(reg, ref);
        return DM_ERR_NOMEM;
    }
    *tables = grown;
    grown[*n] = (dm_qtable_t){.domain = d, .name = nm, .ref = ref};
    (*n)++;
    return DM_OK;
}

dm_err dm_query__find_tables(dm_registry_t *registry, const dm_query_remote_t *remote,
                             const char *sql, size_t len, dm_qtable_t **tables, size_t *ntables,
                             size_t *ndomains, dm_buf_t *why)
{
    *tables = NULL;
    *ntables = *ndomains = 0;
    s_tok_t prev2 = {0}, prev = {0}, cur = {0};
    dm_err err = DM_OK;
    size_t i = 0;
    while (i < len && !err) {
        i += dm_query__skip_blank(sql + i, len - i);
        if (i >= len)
            break;
        /* a ';' is skipped as blank above: statements run together, fine */
        unsigned char c = (unsigned char)sql[i];
        cur = (s_tok_t){0};
        if (c == '"' || c == '`' || c == '[') {
            cur.ident = true;
            cur.text = s_quoted(sql, len, &i, c == '[' ? ']' : (char)c);
        } else if (c == '\'') {
            free(s_quoted(sql, len, &i, '\''));
        } else if (s_ident_start(c)) {
            size_t j = i;
            while (j < len && s_ident_char((unsigned char)sql[j]))
                j++;
            cur.ident = true;
            cur.text = strndup(sql + i, j - i);
            i = j;
        } else {
            cur.dot = c == '.';
            i++;
        }
        if (cur.ident && !cur.text) {
            err = DM_ERR_NOMEM;
            break;
        }
        if (cur.ident && prev.dot && prev2.ident)
            err = s_try_pair(registry, remote, prev2.text, cur.text, tables, ntables, why);
        free(prev2.text);
        prev2 = prev;
        prev = cur;
        cur = (s_tok_t){0};
    }
    free(prev2.text);
    free(prev.text);
    free(cur.text);
    if (err) {
        dm_query__tables_free(registry, *tables, *ntables);
        *tables = NULL;
        *ntables = 0;
        return err;
    }
    for (size_t k = 0; k < *ntables; k++) {
        size_t j = 0;
        while (j < k && strcmp((*tables)[j].domain, (*tables)[k].domain) != 0)
            j++;
        if (j == k)
            (*ndomains)++;
    }
    return DM_OK;
}

/* Skips blanks, then keyword kw if it is next (moving *i past it). */
static bool s_keyword(const char *sql, size_t len, size_t *i, const char *kw)
{
    size_t at = *i + dm_query__skip_blank(sql + *i, len - *i), n = strlen(kw);
    if (at + n > len || strncasecmp(sql + at, kw, n) != 0 ||
        (at + n < len && s_ident_char((unsigned char)sql[at + n])))
        return false;
    *i = at + n;
    return true;
}

/* Skips blanks and a parenthesised list (quotes inside honoured); false if
 * the next token is not '('. */
static bool s_skip_parens(const char *sql, size_t len, size_t *i)
{
    size_t at = *i + dm_query__skip_blank(sql + *i, len - *i);
    if (at >= len || sql[at] != '(')
        return false;
    int depth = 0;
    while (at < len) {
        char c = sql[at];
        if (c == '\'' || c == '"' || c == '`' || c == '[') {
            free(s_quoted(sql, len, &at, c == '[' ? ']' : c));
            continue;
        }
        at++;
        depth += c == '(' ? 1 : c == ')' ? -1 : 0;
        if (depth == 0)
            break;
    }
    *i = at;
    return true;
}

/* Whether what follows a name at sql[i] makes it a WITH table or a window:
 * an optional column list, AS, an optional [NOT] MATERIALIZED, then '('. */
static bool s_cte_follows(const char *sql, size_t len, size_t i)
{
    s_skip_parens(sql, len, &i);
    if (!s_keyword(sql, len, &i, "AS"))
        return false;
    s_keyword(sql, len, &i, "NOT");
    s_keyword(sql, len, &i, "MATERIALIZED");
    i += dm_query__skip_blank(sql + i, len - i);
    return i < len && sql[i] == '(';
}

/* Whether sql has a name equal to name (ASCII case folded, as SQLite
 * compares names), also in single quotes (SQLite takes a string where a
 * name is expected); if cte_only, unqualified and naming a WITH table or a
 * window (s_cte_follows). */
static bool s_has_ident(const char *sql, size_t len, const char *name, bool cte_only)
{
    bool after_dot = false, hit = false;
    size_t i = 0;
    while (i < len && !hit) {
        i += dm_query__skip_blank(sql + i, len - i);
        if (i >= len)
            break;
        unsigned char c = (unsigned char)sql[i];
        char *ident = NULL;
        bool is_ident = false;
        if (c == '"' || c == '`' || c == '[' || c == '\'') {
            is_ident = true;
            ident = s_quoted(sql, len, &i, c == '[' ? ']' : (char)c);
        } else if (s_ident_start(c)) {
            size_t j = i;
            while (j < len && s_ident_char((unsigned char)sql[j]))
                j++;
            is_ident = true;
            ident = strndup(sql + i, j - i);
            i = j;
        } else {
            i++;
        }
        /* Out of memory while unquoting: assume the worst (the caller refuses). */
        if (is_ident && (!ident || (strcasecmp(ident, name) == 0 &&
                                    (!cte_only || (!after_dot && s_cte_follows(sql, len, i))))))
            hit = true;
        after_dot = !is_ident && c == '.';
        free(ident);
    }
    return hit;
}

bool dm_query__names_cte(const char *sql, size_t len, const char *name)
{
    return s_has_ident(sql, len, name, true);
}

bool dm_query__names_ident(const char *sql, size_t len, const char *ident)
{
    return s_has_ident(sql, len, ident, false);
}

void dm_query__tables_free(dm_registry_t *registry, dm_qtable_t *tables, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (tables[i].remote)
            dm_query__remote_free(&tables[i]);
        else
            dm_registry_release(registry, tables[i].ref);
        free(tables[i].domain);
        free(tables[i].name);
        free(tables[i].masks);
        free(tables[i].row_filter);
    }
    free(tables);
}
