/* test_query_keys.c: key pushdown answers equal native SQLite's for every
 * key type (issue 13, defects 1, 2, 3, 4 and 6): ORDER BY on a key whose
 * encoding orders otherwise (enum), literals too long for a key bound, IN
 * values that do not convert to the key's type, correlated key prefixes
 * that do not convert, and IN lists walked once, not once per value. */
#include "query/query_test.h"

TestSuite(query_keys, .init = s_setup, .fini = s_teardown, .timeout = 60);


/* Runs every query on the engine and on native copies of products[0..np)
 * ("domain.name") and compares the rows (as text; sorted unless the query
 * orders them). */
static void s_compare(const char *const *products, size_t np, const char *const *queries,
                      size_t n)
{
    sqlite3 *nat;
    cr_assert_eq(sqlite3_open(":memory:", &nat), SQLITE_OK);
    for (size_t i = 0; i < np; i++) {
        char domain[64];
        const char *dot = strchr(products[i], '.');
        snprintf(domain, sizeof domain, "%.*s", (int)(dot - products[i]), products[i]);
        s_native_copy(nat, domain, dot + 1);
    }
    s_compare_native(nat, queries, n);
    sqlite3_close(nat);
}

/* ---- fixtures ---- */

/* keys.kinds (enum declared [zeta, alpha, mid], seq), keys.tags (string
 * key: numbers as text, long and unicode tags), keys.pairs (tag, n),
 * keys.nums (int key, negative too, with an int x for IN and joins). */
static void s_keys(void)
{
    enum { N = 300 };
    static char text[N][1400];
    static const char *lines[N];
    static const char *const tags[] = {"1", "01", "1.0", " 1", "a", "b", "Z", "\xc3\xa9t\xc3\xa9",
                                       "-3", "10", "2", ""};
    s_product("keys", "kinds", "1.0.0", "    primaryKey: [kind, seq]\n",
              "      - {name: kind, type: enum, values: [zeta, alpha, mid], required: true}\n"
              "      - {name: seq, type: int, required: true}\n");
    for (int i = 0; i < 30; i++) {
        static const char *const k[] = {"zeta", "alpha", "mid"};
        snprintf(text[i], sizeof text[i], "{\"kind\":\"%s\",\"seq\":%d}", k[i % 3], 15 - i);
        lines[i] = text[i];
    }
    s_ingest("keys/kinds", lines, 30);
    s_product("keys", "tags", "1.0.0", "    primaryKey: tag\n",
              "      - {name: tag, type: string, required: true}\n"
              "      - {name: v, type: int}\n");
    s_product("keys", "pairs", "1.0.0", "    primaryKey: [tag, n]\n",
              "      - {name: tag, type: string, required: true}\n"
              "      - {name: n, type: int, required: true}\n");
    size_t nt = S_NELEM(tags);
    for (size_t i = 0; i < nt; i++) {
        snprintf(text[i], sizeof text[i], "{\"tag\":\"%s\",\"v\":%zu}", tags[i], i);
        lines[i] = text[i];
    }
    /* long tags around the bound's size: 'a' x 300 and x 300 + "b" */
    snprintf(text[nt], sizeof text[nt], "{\"tag\":\"%0300d\",\"v\":-1}", 0);
    snprintf(text[nt + 1], sizeof text[nt + 1], "{\"tag\":\"%0300db\",\"v\":-2}", 0);
    lines[nt] = text[nt];
    lines[nt + 1] = text[nt + 1];
    s_ingest("keys/tags", lines, nt + 2);
    size_t np = 0;
    for (size_t i = 0; i < nt; i++)
        for (int n = 0; n < 8; n++, np++) {
            snprintf(text[np], sizeof text[np], "{\"tag\":\"%s\",\"n\":%d}", tags[i], (int)((n * 5 + i) % 8) - 3);
            lines[np] = text[np];
        }
    s_ingest("keys/pairs", lines, np);
    s_product("keys", "nums", "1.0.0", "    primaryKey: n\n",
              "      - {name: n, type: int, required: true}\n"
              "      - {name: x, type: int}\n"
              "      - {name: s, type: string}\n");
    for (int i = 0; i < 40; i++) {
        snprintf(text[i], sizeof text[i], "{\"n\":%d,\"x\":%d,\"s\":\"%d\"}", (i - 20) * 7, i % 4, i % 3);
        lines[i] = text[i];
    }
    s_ingest("keys/nums", lines, 40);
}

static const char *const S_KEYS[] = {"keys.kinds", "keys.tags", "keys.pairs", "keys.nums",
                                     "logistics.events", "commerce.orders"};

/* sql with %s replaced by a string of n copies of c. */
static char *s_long(const char *sql, size_t n, char c)
{
    char *lit = malloc(n + 1), *out = malloc(strlen(sql) + n + 1);
    memset(lit, c, n);
    lit[n] = 0;
    sprintf(out, sql, lit);
    free(lit);
    return out;
}

static void s_all(void)
{
    s_keys();
    s_events();
    s_orders();
}

/* Defect 1: an enum key orders by declaration; the table must not claim
 * that order, every other key type's order is SQLite's. */
Test(query_keys, order_by_every_key_type_equals_sqlite)
{
    s_all();
    static const char *const q[] = {
        "SELECT kind, seq FROM keys.kinds ORDER BY kind",
        "SELECT kind, seq FROM keys.kinds ORDER BY kind, seq",
        "SELECT kind FROM keys.kinds ORDER BY kind LIMIT 4",
        "SELECT kind, seq FROM keys.kinds ORDER BY kind, seq LIMIT 3 OFFSET 9",
        "SELECT seq FROM keys.kinds WHERE kind = 'alpha' ORDER BY seq",
        "WITH f AS (SELECT kind FROM keys.kinds ORDER BY kind LIMIT 1) SELECT * FROM f",
        "SELECT tag FROM keys.tags ORDER BY tag",
        "SELECT tag, n FROM keys.pairs ORDER BY tag, n LIMIT 20",
        "SELECT n FROM keys.pairs WHERE tag = 'a' ORDER BY n",
        "SELECT n FROM keys.nums ORDER BY n",
        "SELECT day, at FROM logistics.events ORDER BY day, at",
        "SELECT at FROM logistics.events WHERE day = '2026-11-24' ORDER BY at",
        "SELECT orderId FROM commerce.orders ORDER BY orderId",
        "SELECT tag FROM keys.tags ORDER BY tag COLLATE NOCASE",
    };
    s_compare(S_KEYS, S_NELEM(S_KEYS), q, S_NELEM(q));
    /* not the key walk: SQLite sorts, or a grouped scan yields the enum's
     * values in BINARY order (query_group.c) */
    char *plan = s_plan("SELECT kind FROM keys.kinds ORDER BY kind");
    cr_assert(!strstr(plan, "pk eq") && (strstr(plan, "ORDER BY") || strstr(plan, "grouped by")),
              "sorted by SQLite or grouped: %s", plan);
    free(plan);
}

/* Defect 2: a literal whose key bound would pass the reader's bound size
 * is no bound at all, and SQLite checks it. */
Test(query_keys, literals_longer_than_a_key_bound_are_checked_by_sqlite)
{
    s_all();
    static const char *const fmt[] = {
        "SELECT v FROM keys.tags WHERE tag = '%s'",
        "SELECT v FROM keys.tags WHERE tag < '%s'",
        "SELECT v FROM keys.tags WHERE tag <= '%s'",
        "SELECT v FROM keys.tags WHERE tag > '%s'",
        "SELECT v FROM keys.tags WHERE tag >= '%s' AND tag < 'b'",
        "SELECT v FROM keys.tags WHERE tag IN ('%s', 'a', '1')",
        "SELECT tag, n FROM keys.pairs WHERE tag = '%s' AND n = 1",
        "SELECT tag, n FROM keys.pairs WHERE tag = '%s' AND n > 0",
        "SELECT tag, n FROM keys.pairs WHERE tag > '%s' ORDER BY tag, n",
        "SELECT count(*) FROM keys.pairs WHERE tag < '%s'",
    };
    static const size_t lens[] = {1100, 1023, 1022, 1021, 2000, 300};
    static const char chars[] = {'a', '0', '0', '0', '0', '0'};
    for (size_t l = 0; l < S_NELEM(lens); l++) {
        const char *q[S_NELEM(fmt)];
        for (size_t i = 0; i < S_NELEM(fmt); i++)
            q[i] = s_long(fmt[i], lens[l], chars[l]);
        s_compare(S_KEYS, S_NELEM(S_KEYS), q, S_NELEM(q));
        for (size_t i = 0; i < S_NELEM(fmt); i++)
            free((char *)q[i]);
    }
}

/* Defect 3: IN values (and = values) that do not convert to the key's
 * type fall back to SQLite's own comparison, with its affinity. */
Test(query_keys, in_values_that_do_not_convert_are_compared_by_sqlite)
{
    s_all();
    static const char *const q[] = {
        "SELECT tag FROM keys.tags WHERE tag IN (SELECT x FROM keys.nums)",
        "SELECT tag FROM keys.tags WHERE tag IN (SELECT n FROM keys.nums WHERE n < 20)",
        "SELECT tag FROM keys.tags WHERE tag IN (1, 2, 'a')",
        "SELECT tag FROM keys.tags WHERE tag IN (SELECT s FROM keys.nums)",
        "SELECT tag FROM keys.tags WHERE tag IN (SELECT 1.0 UNION SELECT 10)",
        "SELECT tag, n FROM keys.pairs WHERE tag IN (SELECT x FROM keys.nums) AND n = 1",
        "SELECT tag, n FROM keys.pairs WHERE tag IN (SELECT x FROM keys.nums) ORDER BY tag, n",
        "SELECT tag, n FROM keys.pairs WHERE tag = 'a' AND n IN (SELECT s FROM keys.nums)",
        "SELECT tag, n FROM keys.pairs WHERE tag = 'a' AND n IN ('1', 2.0, 2.5, -3)",
        "SELECT n FROM keys.nums WHERE n IN (SELECT tag FROM keys.tags)",
        "SELECT n FROM keys.nums WHERE n IN (SELECT s FROM keys.nums) ORDER BY n",
        "SELECT t.tag FROM keys.nums m JOIN keys.tags t ON t.tag = m.x",
        "SELECT p.tag, p.n FROM keys.nums m JOIN keys.pairs p ON p.tag = m.x AND p.n = m.x",
        "SELECT day, at FROM logistics.events WHERE day IN (SELECT at FROM logistics.events)",
        "SELECT day, at FROM logistics.events WHERE day IN (SELECT day FROM logistics.events)",
        "SELECT day FROM logistics.events WHERE day IN (SELECT substr(at, 1, 10) FROM logistics.events)",
        "SELECT orderId FROM commerce.orders WHERE orderId IN (SELECT upper(orderId) FROM commerce.orders)",
        "SELECT orderId FROM commerce.orders WHERE orderId IN (SELECT orderId FROM commerce.orders) "
        "ORDER BY orderId",
        "SELECT kind, seq FROM keys.kinds WHERE kind IN (SELECT 'alpha' UNION SELECT 'zeta' UNION "
        "SELECT 7) ORDER BY kind, seq",
        "SELECT tag FROM keys.tags WHERE tag IN (SELECT x FROM keys.nums WHERE 0)",
    };
    s_compare(S_KEYS, S_NELEM(S_KEYS), q, S_NELEM(q));
}

/* Defect 4: a key prefix from an outer row that does not convert widens
 * the walk to many prefix values; the ORDER BY after it is then SQLite's. */
Test(query_keys, an_outer_prefix_that_does_not_convert_keeps_the_order)
{
    s_all();
    static const char *const q[] = {
        "SELECT m.n, (SELECT p.n FROM keys.pairs p WHERE p.tag = m.x ORDER BY p.n LIMIT 1) "
        "FROM keys.nums m ORDER BY m.n",
        "SELECT m.n, (SELECT group_concat(n) FROM (SELECT p.n FROM keys.pairs p WHERE p.tag = m.x "
        "ORDER BY p.n)) FROM keys.nums m ORDER BY m.n",
        "SELECT m.n, (SELECT p.n FROM keys.pairs p WHERE p.tag = m.s ORDER BY p.n DESC LIMIT 1) "
        "FROM keys.nums m ORDER BY m.n",
        "SELECT e.at, (SELECT f.at FROM logistics.events f WHERE f.day = e.at ORDER BY f.at LIMIT 1) "
        "FROM logistics.events e ORDER BY e.day, e.at",
    };
    s_compare(S_KEYS, S_NELEM(S_KEYS), q, S_NELEM(q));
}

/* A string key against another row's timestamp or date (numeric
 * affinity): SQLite turns tags like '10' into numbers, below every text,
 * so "tag < value" holds for them wherever they sort as text; the walk
 * must not cut them off with a text bound. */
Test(query_keys, a_string_key_range_from_an_outer_row_is_checked_by_sqlite)
{
    s_all();
    static const char *const q[] = {
        "SELECT e.at, (SELECT t.tag FROM keys.tags t WHERE t.tag < e.at ORDER BY t.tag DESC LIMIT 1) "
        "FROM logistics.events e ORDER BY e.day, e.at",
        "SELECT e.at, (SELECT count(*) FROM keys.tags t WHERE t.tag <= e.day) FROM logistics.events e "
        "ORDER BY e.day, e.at",
        "SELECT e.at, (SELECT count(*) FROM keys.tags t WHERE t.tag > e.at) FROM logistics.events e "
        "ORDER BY e.day, e.at",
        "SELECT e.at, (SELECT max(p.n) FROM keys.pairs p WHERE p.tag = '1' AND p.n < e.at) "
        "FROM logistics.events e ORDER BY e.day, e.at",
        "SELECT e.at, (SELECT group_concat(p.tag) FROM keys.pairs p WHERE p.tag BETWEEN e.day AND e.at) "
        "FROM logistics.events e ORDER BY e.day, e.at",
    };
    s_compare(S_KEYS, S_NELEM(S_KEYS), q, S_NELEM(q));
}

/* Rows the engine's virtual tables step over answering sql. */
static uint64_t s_walked(const char *sql)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    cr_assert_eq(dm_query_open(s_eng, sql, strlen(sql), &q, &err), DM_OK, "%s: %s", sql, err.data);
    free(s_drain(q, sql));
    uint64_t walked = dm_query_rows_walked(q);
    dm_query_close(&q);
    dm_buf_free(&err);
    return walked;
}

/* Defect 6: an IN list of values that do not convert is one walk, not
 * one per value: 2,000 values over 2,000 rows answer at once. */
Test(query_keys, in_lists_that_do_not_convert_walk_once)
{
    s_all();
    enum { N = 2000 };
    static char text[N][64];
    static const char *lines[N];
    s_product("keys", "days", "1.0.0", "    primaryKey: day\n",
              "      - {name: day, type: date, required: true}\n"
              "      - {name: at, type: timestamp}\n");
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "{\"day\":\"%04d-%02d-%02d\",\"at\":\"%04d-%02d-%02dT01:00:00Z\"}",
                 2000 + i / 336, i / 28 % 12 + 1, i % 28 + 1, 2000 + i / 336, i / 28 % 12 + 1, i % 28 + 1);
        lines[i] = text[i];
    }
    s_ingest("keys/days", lines, N);
    static const char *const p[] = {"keys.days"};
    static const char *const q[] = {
        "SELECT count(*) FROM keys.days WHERE day IN (SELECT at FROM keys.days)",
        "SELECT count(*) FROM keys.days WHERE day IN (SELECT substr(at, 1, 10) FROM keys.days)",
        "SELECT day FROM keys.days WHERE day IN (SELECT at FROM keys.days UNION SELECT '2001-01-01') "
        "ORDER BY day",
    };
    s_compare(p, 1, q, S_NELEM(q));
    /* One walk per value would step over 2,000 x 2,000 rows; the outer
     * table is read once to build the list and once for the IN walk. */
    uint64_t walked = s_walked(q[0]);
    cr_assert_leq(walked, 2 * N, "IN walked %llu rows over %d", (unsigned long long)walked, N);
    cr_assert_eq(s_walked("SELECT * FROM keys.days WHERE day = '2001-01-01'"), 1);
}

/* An equality that no key can meet under any affinity (NULL; a number
 * or non-value text against a date, timestamp or uuid key; text that stays
 * text against an int key) walks nothing, so a join on such a column
 * costs one probe per outer row, not a walk of the whole product; text
 * that numeric affinity makes a number meets the int key it equals. */
Test(query_keys, an_equality_no_key_meets_walks_nothing)
{
    s_all();
    static const char *const q[] = {
        "SELECT m.n, e.at FROM keys.nums m JOIN logistics.events e ON e.day = m.n",
        "SELECT m.n, e.at FROM keys.nums m JOIN logistics.events e ON e.day = m.s",
        "SELECT o.orderId FROM keys.nums m JOIN commerce.orders o ON o.orderId = m.x",
        "SELECT n FROM keys.nums WHERE n = '-1.4e2' OR n = ' 7 ' OR n = '7x' OR n = x'07'",
        "SELECT n FROM keys.nums WHERE n IN ('-14', '7.0', 'seven', NULL, 21.5, 28)",
        "SELECT count(*) FROM keys.nums WHERE n = NULL",
        "SELECT m.n FROM keys.nums m WHERE m.n IN (SELECT t.tag FROM keys.tags t)",
        "SELECT e.at FROM logistics.events e WHERE e.day IN (SELECT n FROM keys.nums) OR e.day = 3",
    };
    s_compare(S_KEYS, S_NELEM(S_KEYS), q, S_NELEM(q));
    /* 40 outer rows, each probe empty: the outer walk alone. */
    uint64_t walked = s_walked("SELECT count(*) FROM keys.nums m JOIN logistics.events e ON e.day = m.n");
    cr_assert_leq(walked, 40, "the join walked %llu rows", (unsigned long long)walked);
}

/* ---- random queries against native SQLite ---- */

typedef struct {
    const char *name, *order; /* table, its full key order */
    const char *cols[3];
} s_rtable;

static const s_rtable S_RTABLES[] = {
    {"keys.tags", "tag", {"tag", "v", NULL}},
    {"keys.pairs", "tag, n", {"tag", "n", NULL}},
    {"keys.nums", "n", {"n", "x", "s"}},
    {"keys.kinds", "kind, seq", {"kind", "seq", NULL}},
    {"logistics.events", "day, at", {"day", "at", "what"}},
    {"commerce.orders", "orderId", {"orderId", "qty", "customerId"}},
};

static const char *const S_RLITS[] = {
    "-21", "-3", "0", "1", "2", "7", "10", "140", "1.0", "1.5", "-3.0", "'1'", "'01'", "'1.0'",
    "' 1'", "'-3'", "'a'", "'b'", "'Z'", "''", "'zeta'", "'alpha'", "'mid'", "'2026-11-24'",
    "'2026-11-24T09:00:00Z'", "'2026-11-24T09:00:00.000000Z'", "'1969-12-31'", "NULL", "LONG",
    "'C0FFEE00-1234-4ABC-9DEF-0123456789AB'", "'c0ffee00-1234-4abc-9def-0123456789ab'", "-0.0",
    "1e300", "-7.5e300", "'c1'", "0.75", "'0.75'", "9007199254740993", "true",
};

static const char *const S_ROPS[] = {"=", "<", "<=", ">", ">=", "IN", "INSUB", "=OUTER"};

/* Appends a random literal (LONG: 1,100 or 300 zeros). */
static void s_rlit(dm_buf_t *q, unsigned *seed)
{
    const char *l = S_RLITS[(size_t)rand_r(seed) % S_NELEM(S_RLITS)];
    if (strcmp(l, "LONG") != 0) {
        dm_buf_puts(q, l);
        return;
    }
    dm_buf_putc(q, '\'');
    for (int i = rand_r(seed) % 2 ? 1100 : 300; i > 0; i--)
        dm_buf_putc(q, '0');
    dm_buf_putc(q, '\'');
}

/* Appends one random term on a column of t (alias a). */
static void s_rterm(dm_buf_t *q, const s_rtable *t, unsigned *seed)
{
    size_t nc = t->cols[2] ? 3 : 2;
    const char *col = t->cols[(size_t)rand_r(seed) % nc];
    const char *op = S_ROPS[(size_t)rand_r(seed) % S_NELEM(S_ROPS)];
    const s_rtable *o = &S_RTABLES[(size_t)rand_r(seed) % S_NELEM(S_RTABLES)];
    const char *ocol = o->cols[(size_t)rand_r(seed) % 2];
    if (strcmp(op, "IN") == 0) {
        dm_buf_printf(q, "a.%s IN (", col);
        for (int i = rand_r(seed) % 4; i >= 0; i--) {
            s_rlit(q, seed);
            dm_buf_puts(q, i ? ", " : ")");
        }
    } else if (strcmp(op, "INSUB") == 0) {
        dm_buf_printf(q, "a.%s IN (SELECT %s FROM %s)", col, ocol, o->name);
    } else if (strcmp(op, "=OUTER") == 0) {
        dm_buf_printf(q, "EXISTS (SELECT 1 FROM %s b WHERE b.%s = a.%s)", o->name, ocol, col);
    } else {
        dm_buf_printf(q, "a.%s %s ", col, op);
        s_rlit(q, seed);
    }
}

/* One random query on a table: one or two terms, maybe ordered by the
 * full key with a LIMIT, maybe a correlated subquery ordered by key. */
static char *s_rquery(unsigned *seed)
{
    const s_rtable *t = &S_RTABLES[(size_t)rand_r(seed) % S_NELEM(S_RTABLES)];
    dm_buf_t q = DM_BUF_INIT;
    int shape = rand_r(seed) % 4;
    if (shape == 3) {
        /* The least second column of another table's rows whose first key
         * column equals this row's column. Not ORDER BY the first column:
         * SQLite takes it as constant under the equality, though with
         * affinity several texts ('1', '01') equal one number. */
        const s_rtable *o = &S_RTABLES[(size_t)rand_r(seed) % S_NELEM(S_RTABLES)];
        dm_buf_printf(&q, "SELECT a.*, (SELECT b.%s FROM %s b WHERE b.%s = a.%s ORDER BY b.%s LIMIT 1) "
                      "FROM %s a ORDER BY %s", o->cols[1], o->name, o->cols[0], t->cols[rand_r(seed) % 2],
                      o->cols[1], t->name, t->order);
        return dm_buf_steal(&q);
    }
    dm_buf_printf(&q, "SELECT a.* FROM %s a WHERE ", t->name);
    s_rterm(&q, t, seed);
    if (rand_r(seed) % 2) {
        dm_buf_puts(&q, rand_r(seed) % 3 ? " AND " : " OR ");
        s_rterm(&q, t, seed);
    }
    if (shape >= 1)
        dm_buf_printf(&q, " ORDER BY %s", t->order);
    if (shape == 2)
        dm_buf_printf(&q, " LIMIT %d", rand_r(seed) % 5 + 1);
    return dm_buf_steal(&q);
}

/* Random queries over every key type, seeds 1..20, 100 queries each; a
 * mismatch names the seed and the query. */
Test(query_keys, random_key_queries_equal_sqlite)
{
    s_all();
    enum { SEEDS = 20, QUERIES = 100 };
    for (unsigned s = 1; s <= SEEDS; s++) {
        unsigned seed = s;
        const char *q[QUERIES];
        for (int i = 0; i < QUERIES; i++)
            q[i] = s_rquery(&seed);
        s_compare(S_KEYS, S_NELEM(S_KEYS), q, QUERIES);
        for (int i = 0; i < QUERIES; i++)
            free((char *)q[i]);
    }
}
