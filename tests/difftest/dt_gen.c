/* dt_gen.c: the products' rows (JSON for the validator) and the random
 * queries of the differential tester, built from parts (dt.h). */
#include "dt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dt_prod_t dt_prods[] = {
    {"ints", "    primaryKey: id\n", 1, 7,
     {{"id", 'I'}, {"n", 'I'}, {"x", 'R'}, {"s", 'T'}, {"e", 'E'}, {"ts", 'S'}, {"d", 'D'}}, 0},
    {"uuids", "    primaryKey: u\n", 1, 4, {{"u", 'U'}, {"ref", 'I'}, {"s", 'T'}, {"x", 'R'}}, 0},
    {"strs", "    primaryKey: tag\n", 1, 4, {{"tag", 'T'}, {"n", 'I'}, {"s", 'T'}, {"d", 'D'}}, 0},
    {"times", "    primaryKey: at\n", 1, 4, {{"at", 'S'}, {"n", 'I'}, {"d", 'D'}, {"s", 'T'}}, 0},
    {"days", "    primaryKey: day\n", 1, 4, {{"day", 'D'}, {"n", 'I'}, {"at", 'S'}, {"s", 'T'}}, 0},
    {"kinds", "    primaryKey: kind\n", 1, 3, {{"kind", 'E'}, {"n", 'I'}, {"s", 'T'}}, 0},
    {"comp", "    primaryKey: [a, b]\n", 2, 5,
     {{"a", 'I'}, {"b", 'T'}, {"n", 'I'}, {"at", 'S'}, {"x", 'R'}}, 0},
};
const int dt_nprods = (int)(sizeof dt_prods / sizeof dt_prods[0]);

const char *const dt_class_names[DT_NCLASS] = {"filter", "order", "group", "in",  "join",
                                               "corr",   "cte",   "long",  "agg", "range"};
bool dt_out_of_range;

uint64_t dt_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static int s_pick(uint64_t *r, int n) { return (int)(dt_rand(r) % (uint64_t)n); }

static const char *const s_words[] = {
    "alpha", "beta", "Gamma", "delta", "h\xc3\xa9llo", "\xe6\x97\xa5\xe6\x9c\xac",
    "\xf0\x9f\x98\x80", "\xce\xa9mega", "1", "01", "1.0", "7", "", "a%b_c", "it's", "zeta",
    "Zeta", "mid", "-5", "1e3", "2026-03-01", " lead"};
static const char *const s_enum[] = {"zeta", "alpha", "mid", "beta"};

static void s_long(uint64_t *r, dm_buf_t *out, bool json)
{
    int n = 1030 + s_pick(r, 600);
    char c = (char)('a' + s_pick(r, 3));
    for (int i = 0; i < n; i++)
        dm_buf_putc(out, i == n - 1 && json ? c : (i % 97 == 96 ? 'b' : c));
    (void)json;
}

static void s_text(uint64_t *r, dm_buf_t *out, bool sql, bool key)
{
    const char *q = sql ? "'" : "\"";
    dm_buf_puts(out, q);
    int k = s_pick(r, 20);
    if (k == 0 && !key) /* a stored key holds at most 507 bytes */
        s_long(r, out, !sql);
    else if (k < 8)
        dm_buf_printf(out, "w%03d", s_pick(r, 400));
    else {
        const char *w = s_words[s_pick(r, (int)(sizeof s_words / sizeof *s_words))];
        for (const char *p = w; *p; p++) {
            if (*p == '\'' && sql)
                dm_buf_putc(out, '\'');
            dm_buf_putc(out, *p);
        }
    }
    dm_buf_puts(out, q);
}

static void s_date(uint64_t *r, dm_buf_t *out, const char *q)
{
    int k = s_pick(r, 40);
    if (k == 0)
        dm_buf_printf(out, "%s0001-01-01%s", q, q);
    else if (k == 1)
        dm_buf_printf(out, "%s9999-12-31%s", q, q);
    else
        dm_buf_printf(out, "%s%04d-%02d-%02d%s", q, 2020 + s_pick(r, 8), 1 + s_pick(r, 12),
                      1 + s_pick(r, 28), q);
}

static void s_ts(uint64_t *r, dm_buf_t *out, bool sql)
{
    static const char *const offs[] = {"Z", "Z", "+05:30", "-08:00", "+14:00", "-00:30"};
    int k = s_pick(r, 60);
    const char *q = sql ? "'" : "\"";
    if (k == 0) {
        dm_buf_printf(out, "%s0001-01-01T00:00:00%s%s", q, sql ? ".000000Z" : "Z", q);
        return;
    }
    if (k == 1) {
        dm_buf_printf(out, "%s9999-12-31T23:59:59%s%s", q, sql ? ".000000Z" : "Z", q);
        return;
    }
    if (k == 2 && !sql && dt_out_of_range) { /* an offset pushes these past the range (defect 5) */
        dm_buf_printf(out, "%s%s%s", q, s_pick(r, 2) ? "9999-12-31T23:30:00-01:00"
                                                       : "0001-01-01T00:10:00+01:00", q);
        return;
    }
    dm_buf_printf(out, "%s%04d-%02d-%02dT%02d:%02d:%02d", q, 2020 + s_pick(r, 8),
                  1 + s_pick(r, 12), 1 + s_pick(r, 28), s_pick(r, 24), s_pick(r, 60),
                  s_pick(r, 60));
    if (sql)
        dm_buf_printf(out, ".%06dZ%s", s_pick(r, 3) ? 0 : s_pick(r, 1000000), q);
    else
        dm_buf_printf(out, "%s%s%s", s_pick(r, 3) ? "" : ".123456", offs[s_pick(r, 6)], q);
}

static void s_real(uint64_t *r, dm_buf_t *out)
{
    static const char *const ext[] = {"-0.0", "0.0", "1e308", "-1e308", "5e-324",
                                      "2.2250738585072014e-308", "9.2233720368547758e18",
                                      "-9.2233720368547758e18", "0.1", "1.5"};
    if (s_pick(r, 5) == 0)
        dm_buf_puts(out, ext[s_pick(r, 10)]);
    else
        dm_buf_printf(out, "%d.%02d", s_pick(r, 2000) - 1000, s_pick(r, 100));
}

static void s_int(uint64_t *r, dm_buf_t *out)
{
    int k = s_pick(r, 30);
    if (k == 0)
        dm_buf_puts(out, "9223372036854775807");
    else if (k == 1)
        dm_buf_puts(out, "-9223372036854775808");
    else
        dm_buf_printf(out, "%d", s_pick(r, 3000) - 1000);
}

static void s_uuid(uint64_t *r, dm_buf_t *out, const char *q)
{
    uint64_t a = dt_rand(r), b = dt_rand(r);
    if (s_pick(r, 4) == 0)
        a &= 0xff0000000000000fu; /* clustered prefixes */
    dm_buf_printf(out, "%s%08x-%04x-4%03x-8%03x-%012llx%s", q, (unsigned)(a >> 32),
                  (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 52),
                  (unsigned long long)(b & 0xffffffffffffu), q);
}

void dt_json_value(char k, bool key, uint64_t *r, dm_buf_t *out)
{
    if (!key && s_pick(r, 8) == 0) {
        dm_buf_puts(out, "null");
        return;
    }
    switch (k) {
    case 'I': s_int(r, out); break;
    case 'R': s_real(r, out); break;
    case 'T': s_text(r, out, false, key); break;
    case 'S': s_ts(r, out, false); break;
    case 'D': s_date(r, out, "\""); break;
    case 'U': s_uuid(r, out, "\""); break;
    default: dm_buf_printf(out, "\"%s\"", s_enum[s_pick(r, 4)]); break;
    }
}

/* A SQL literal for a column of kind k: an existing value, a fresh one of
 * the type, or one of another type (which may not convert). */
static void s_lit(char k, const char *col, const dt_prod_t *p, uint64_t *r, sqlite3 *db,
                  dm_buf_t *out)
{
    static const char *const odd[] = {"1", "0", "-1", "1.5", "'1'", "'01'", "'zz'", "''",
                                      "9223372036854775807", "-9223372036854775808", "1e308",
                                      "-0.0", "'2026-03-01'", "'2026-03-01T12:00:00.000000Z'",
                                      "x'00'", "'alpha'", "'ZETA'", "'9999-12-31'"};
    int m = s_pick(r, 10);
    if (m < 5 && p->rows > 0) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT quote(%s) FROM dt.%s LIMIT 1 OFFSET %d", col, p->name,
                 s_pick(r, (int)p->rows));
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            dm_buf_puts(out, (const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
            return;
        }
        sqlite3_finalize(st);
    }
    if (m == 9) {
        dm_buf_puts(out, odd[s_pick(r, (int)(sizeof odd / sizeof *odd))]);
        return;
    }
    switch (k) {
    case 'I': s_int(r, out); break;
    case 'R': s_real(r, out); break;
    case 'T': s_text(r, out, true, false); break;
    case 'S': s_ts(r, out, true); break;
    case 'D': s_date(r, out, "'"); break;
    case 'U': s_uuid(r, out, "'"); break;
    default: dm_buf_printf(out, "'%s'", s_enum[s_pick(r, 4)]); break;
    }
}

/* One WHERE term on a column of p (qualified by alias when not NULL). */
static void s_term(const dt_prod_t *p, const char *alias, bool keyish, uint64_t *r, sqlite3 *db,
                   dm_buf_t *out)
{
    static const char *const ops[] = {"=", "<", "<=", ">", ">=", "<>"};
    int c = keyish && s_pick(r, 3) ? s_pick(r, p->nkey) : s_pick(r, p->ncols);
    const dt_col_t *col = &p->cols[c];
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", alias ? alias : "", alias ? "." : "", col->name);
    int k = s_pick(r, 12);
    if (k < 5) {
        dm_buf_printf(out, "%s %s ", name, ops[s_pick(r, 6)]);
        s_lit(col->kind, col->name, p, r, db, out);
    } else if (k < 7) {
        dm_buf_printf(out, "%s BETWEEN ", name);
        s_lit(col->kind, col->name, p, r, db, out);
        dm_buf_puts(out, " AND ");
        s_lit(col->kind, col->name, p, r, db, out);
    } else if (k < 9) {
        dm_buf_printf(out, "%s %sIN (", name, s_pick(r, 5) ? "" : "NOT ");
        for (int i = 0, n = 1 + s_pick(r, 4); i < n; i++) {
            dm_buf_puts(out, i ? ", " : "");
            s_lit(col->kind, col->name, p, r, db, out);
        }
        dm_buf_puts(out, ")");
    } else if (k == 9) {
        dm_buf_printf(out, "%s IS %sNULL", name, s_pick(r, 2) ? "" : "NOT ");
    } else if (k == 10) {
        static const char *const pats[] = {"'w0%'", "'%a%'", "'2026-0%'", "'_'", "'%'", "'1%'"};
        dm_buf_printf(out, "%s LIKE %s", name, pats[s_pick(r, 6)]);
    } else {
        dm_buf_puts(out, "(");
        s_term(p, alias, keyish, r, db, out);
        dm_buf_puts(out, " OR ");
        s_term(p, alias, keyish, r, db, out);
        dm_buf_puts(out, ")");
    }
}

static void s_keys(const dt_prod_t *p, const char *alias, dm_buf_t *out)
{
    for (int i = 0; i < p->nkey; i++)
        dm_buf_printf(out, "%s%s%s%s", i ? ", " : "", alias ? alias : "", alias ? "." : "",
                      p->cols[i].name);
}

/* ORDER BY a random column (maybe DESC), then the key: a total order. */
static void s_order(dt_query_t *q, const dt_prod_t *p, const char *alias, uint64_t *r)
{
    int c = s_pick(r, p->ncols);
    dm_buf_printf(&q->part[P_ORDER], "%s%s%s%s, ", alias ? alias : "", alias ? "." : "",
                  p->cols[c].name, s_pick(r, 2) ? " DESC" : "");
    s_keys(p, alias, &q->part[P_ORDER]);
    if (s_pick(r, 2))
        dm_buf_puts(&q->part[P_ORDER], " DESC");
    dm_buf_printf(&q->part[P_LIMIT], "%d", 1 + s_pick(r, 50));
    if (s_pick(r, 2))
        dm_buf_printf(&q->part[P_LIMIT], " OFFSET %d", s_pick(r, 40));
    q->ordered = true;
}

static void s_where(dt_query_t *q, const dt_prod_t *p, const char *alias, int max, uint64_t *r,
                    sqlite3 *db)
{
    int at = 0;
    while (at < DT_NWHERE && q->part[P_W0 + at].len)
        at++;
    for (int i = 0, n = s_pick(r, max + 1); i < n && at + i < DT_NWHERE; i++)
        s_term(p, alias, true, r, db, &q->part[P_W0 + at + i]);
}

/* A column of q whose kind a key of p can be compared with, or any. */
static int s_col_like(const dt_prod_t *q, char kind, uint64_t *r)
{
    for (int t = 0; t < 8; t++) {
        int c = s_pick(r, q->ncols);
        if (q->cols[c].kind == kind)
            return c;
    }
    return s_pick(r, q->ncols);
}

static void s_gen_rel(dt_query_t *q, int cls, const dt_prod_t *p, const dt_prod_t *o,
                      uint64_t *r, sqlite3 *db)
{
    dm_buf_t *sel = &q->part[P_SEL], *from = &q->part[P_FROM];
    const dt_col_t *k0 = &p->cols[0];
    /* half the time a column of any type: values that do not convert (defects 3, 6) */
    const dt_col_t *oc = &o->cols[s_pick(r, 2) ? s_col_like(o, k0->kind, r) : s_pick(r, o->ncols)];
    if (cls == DT_IN) {
        dm_buf_printf(sel, "*");
        dm_buf_printf(from, "dt.%s", p->name);
        dm_buf_printf(&q->part[P_W0], "%s IN (SELECT %s FROM dt.%s", k0->name, oc->name, o->name);
        if (s_pick(r, 2)) {
            dm_buf_puts(&q->part[P_W0], " WHERE ");
            s_term(o, NULL, false, r, db, &q->part[P_W0]);
        }
        dm_buf_puts(&q->part[P_W0], ")");
        for (int i = 1, n = s_pick(r, 2); i <= n; i++)
            s_term(p, NULL, true, r, db, &q->part[P_W0 + i]);
    } else if (cls == DT_JOIN) {
        dm_buf_printf(sel, "a.%s, b.%s, a.%s", k0->name, o->cols[0].name,
                      p->cols[s_pick(r, p->ncols)].name);
        oc = &p->cols[s_col_like(p, o->cols[0].kind, r)];
        dm_buf_printf(from, "dt.%s a JOIN dt.%s b ON a.%s = b.%s", p->name, o->name, oc->name,
                      o->cols[0].name);
        s_where(q, p, "a", 2, r, db);
    } else {
        dm_buf_printf(sel, "a.%s, (SELECT b.%s FROM dt.%s b WHERE b.%s %s a.%s ORDER BY b.%s%s "
                      "LIMIT 1)", k0->name, o->cols[0].name, o->name, o->cols[0].name,
                      s_pick(r, 2) ? ">=" : "<",
                      p->cols[s_col_like(p, o->cols[0].kind, r)].name, o->cols[0].name,
                      s_pick(r, 2) ? " DESC" : "");
        if (o->nkey > 1)
            dm_buf_printf(sel, ", (SELECT count(*) FROM dt.%s b WHERE b.%s = a.%s)", o->name,
                          o->cols[0].name, k0->name);
        dm_buf_printf(from, "dt.%s a", p->name);
        s_where(q, p, "a", 2, r, db);
        s_keys(p, "a", &q->part[P_ORDER]);
        dm_buf_printf(&q->part[P_LIMIT], "%d", 1 + s_pick(r, 40));
        q->ordered = true;
    }
}

void dt_gen(dt_query_t *q, int cls, uint64_t *r, sqlite3 *db)
{
    memset(q, 0, sizeof *q);
    q->cls = cls;
    const dt_prod_t *p = &dt_prods[s_pick(r, dt_nprods)];
    const dt_prod_t *o = &dt_prods[s_pick(r, dt_nprods)];
    dm_buf_t *sel = &q->part[P_SEL], *from = &q->part[P_FROM];
    if (cls == DT_IN || cls == DT_JOIN || cls == DT_CORR) {
        s_gen_rel(q, cls, p, o, r, db);
        return;
    }
    int c = s_pick(r, p->ncols), x = s_pick(r, p->ncols);
    if (cls == DT_CTE) {
        dm_buf_printf(&q->part[P_WITH], "WITH c AS (SELECT * FROM dt.%s ORDER BY %s%s, ", p->name,
                      p->cols[c].name, s_pick(r, 2) ? " DESC" : "");
        s_keys(p, NULL, &q->part[P_WITH]);
        dm_buf_printf(&q->part[P_WITH], " LIMIT %d) ", 1 + s_pick(r, 60));
        dm_buf_printf(sel, "*");
        dm_buf_printf(from, "c");
        s_where(q, p, NULL, 1, r, db);
        return;
    }
    dm_buf_printf(from, "dt.%s", p->name);
    if (cls == DT_GROUP || cls == DT_AGG) {
        if (cls == DT_GROUP) {
            dm_buf_printf(sel, "%s, ", p->cols[c].name);
            dm_buf_printf(&q->part[P_GROUP], "%s", p->cols[c].name);
        }
        dm_buf_printf(sel, "count(*), count(%s), min(%s), max(%s), count(DISTINCT %s)",
                      p->cols[x].name, p->cols[x].name, p->cols[x].name, p->cols[c].name);
        s_where(q, p, NULL, 2, r, db);
        return;
    }
    dm_buf_printf(sel, s_pick(r, 2) ? "*" : "%s, %s", p->cols[0].name, p->cols[c].name);
    if (cls == DT_LONG) {
        const dt_col_t *t = &p->cols[s_col_like(p, 'T', r)];
        dm_buf_printf(&q->part[P_W0], "%s %s '", t->name, s_pick(r, 2) ? "=" : "<");
        s_long(r, &q->part[P_W0], false);
        dm_buf_puts(&q->part[P_W0], "'");
        s_where(q, p, NULL, 1, r, db);
    } else {
        s_where(q, p, NULL, cls == DT_ORDER ? 2 : 3, r, db);
    }
    if (cls == DT_ORDER || s_pick(r, 3) == 0)
        s_order(q, p, NULL, r);
}

void dt_sql(const dt_query_t *q, uint32_t mask, dm_buf_t *out)
{
    dm_buf_reset(out);
    dm_buf_printf(out, "%sSELECT %s FROM %s", q->part[P_WITH].data ? q->part[P_WITH].data : "",
                  q->part[P_SEL].data, q->part[P_FROM].data);
    bool first = true;
    for (int i = P_W0; i < P_W0 + DT_NWHERE; i++) {
        if (!q->part[i].len || !(mask & (1u << i)))
            continue;
        dm_buf_printf(out, " %s %s", first ? "WHERE" : "AND", q->part[i].data);
        first = false;
    }
    if (q->part[P_GROUP].len && (mask & (1u << P_GROUP)))
        dm_buf_printf(out, " GROUP BY %s", q->part[P_GROUP].data);
    if (q->part[P_ORDER].len && (mask & (1u << P_ORDER))) {
        dm_buf_printf(out, " ORDER BY %s", q->part[P_ORDER].data);
        if (q->part[P_LIMIT].len && (mask & (1u << P_LIMIT)))
            dm_buf_printf(out, " LIMIT %s", q->part[P_LIMIT].data);
    }
}

void dt_query_free(dt_query_t *q)
{
    for (int i = 0; i < P_N; i++)
        dm_buf_free(&q->part[i]);
}
