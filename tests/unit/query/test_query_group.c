/* test_query_group.c: the grouped log scan (query_group.c): GROUP BY,
 * DISTINCT and ORDER BY on enum and boolean columns need no sort; results
 * equal a native table (NULLs, BINARY order of enum values, DESC, two
 * columns, LIMIT, filters), SQLite's heap stays flat, and a plan that
 * cannot group still sorts. */
#include "query_test.h"

TestSuite(query_group, .init = s_setup, .fini = s_teardown);

/* Enum values whose BINARY order ("B" < "a" < "ab" < "b") is not their
 * declaration order. */
#define S_SALES_FIELDS                                                  \
    "      - {name: id, type: int, required: true}\n"                   \
    "      - {name: status, type: enum, values: [b, a, ab, B]}\n"       \
    "      - {name: flag, type: boolean}\n"                             \
    "      - {name: amount, type: double}\n"

/* n sales: every 7th without status, every 5th without flag. */
static void s_sales(int n)
{
    static const char *const status[] = {"b", "a", "ab", "B"};
    s_product("shop", "sales", "1.0.0", "    primaryKey: id\n", S_SALES_FIELDS);
    enum { BATCH = 1000 };
    static char text[BATCH][128];
    static const char *lines[BATCH];
    for (int at = 0; at < n; at += BATCH) {
        int k = 0;
        for (; k < BATCH && at + k < n; k++) {
            int i = at + k;
            char st[16] = "", fl[16] = "";
            if (i % 7)
                snprintf(st, sizeof st, ",\"status\":\"%s\"", status[(i * 3 + i / 11) % 4]);
            if (i % 5)
                snprintf(fl, sizeof fl, ",\"flag\":%s", i % 3 ? "true" : "false");
            snprintf(text[k], sizeof text[k], "{\"id\":%d%s%s,\"amount\":%d.25}", i, st, fl,
                     i % 97);
            lines[k] = text[k];
        }
        s_ingest("shop/sales", lines, (size_t)k);
    }
}

/* Runs every query on the engine and on a native copy; compares the rows
 * (sorted unless the query orders them). */
static void s_compare_sales(const char *const *queries, size_t n)
{
    sqlite3 *nat;
    cr_assert_eq(sqlite3_open(":memory:", &nat), SQLITE_OK);
    s_native_copy(nat, "shop", "sales");
    s_compare_native(nat, queries, n);
    sqlite3_close(nat);
}

Test(query_group, group_by_enum_or_boolean_needs_no_sort)
{
    s_sales(100);
    static const char *const grouped[] = {
        "SELECT status, count(*) FROM shop.sales GROUP BY status",
        "SELECT status, count(*) FROM shop.sales GROUP BY status ORDER BY status",
        "SELECT status, flag, count(*) FROM shop.sales GROUP BY status, flag",
        "SELECT status FROM shop.sales ORDER BY status DESC LIMIT 3",
    };
    for (size_t i = 0; i < S_NELEM(grouped); i++) {
        char *plan = s_plan(grouped[i]);
        cr_assert(strstr(plan, "log scan grouped") && !strstr(plan, "TEMP B-TREE"), "%s: %s",
                  grouped[i], plan);
        free(plan);
    }
    char *plan = s_plan("SELECT status, count(*) FROM shop.sales GROUP BY status ORDER BY status");
    cr_assert(strstr(plan, "grouped by 1+"), "%s", plan);
    free(plan);
    /* DISTINCT still dedups in a b-tree, but gets one row per group */
    plan = s_plan("SELECT DISTINCT status, flag FROM shop.sales");
    cr_assert(strstr(plan, "grouped distinct by 1+ 2+"), "%s", plan);
    free(plan);
    /* an int column takes too many values; a key range walks the index */
    plan = s_plan("SELECT status, id FROM shop.sales GROUP BY status, id");
    cr_assert(!strstr(plan, "grouped") && strstr(plan, "TEMP B-TREE"), "%s", plan);
    free(plan);
    plan = s_plan("SELECT status, count(*) FROM shop.sales WHERE id > 50 GROUP BY status");
    cr_assert(strstr(plan, "pk eq=0 lo") && !strstr(plan, "grouped"), "%s", plan);
    free(plan);
}

Test(query_group, grouped_results_equal_a_native_table)
{
    s_sales(1000);
    static const char *const q[] = {
        "SELECT status, count(*), sum(amount) FROM shop.sales GROUP BY status",
        "SELECT status, count(*), sum(amount) FROM shop.sales GROUP BY status ORDER BY status",
        "SELECT status, count(*) FROM shop.sales GROUP BY status ORDER BY status DESC",
        "SELECT flag, count(*), min(id), max(id) FROM shop.sales GROUP BY flag ORDER BY flag",
        "SELECT status, flag, count(*) FROM shop.sales GROUP BY status, flag ORDER BY 1, 2",
        "SELECT status, flag, count(*) FROM shop.sales GROUP BY 1, 2 ORDER BY 1 DESC, 2",
        "SELECT flag, status, sum(amount) FROM shop.sales GROUP BY flag, status",
        "SELECT flag, status, count(*) FROM shop.sales GROUP BY flag, status ORDER BY status, flag",
        "SELECT status, count(*) FROM shop.sales GROUP BY status ORDER BY count(*) DESC, 1",
        "SELECT flag, max(status) FROM shop.sales GROUP BY flag ORDER BY flag DESC",
        "SELECT DISTINCT status FROM shop.sales",
        "SELECT DISTINCT status FROM shop.sales ORDER BY 1 DESC",
        "SELECT DISTINCT status, flag FROM shop.sales ORDER BY 1, 2 DESC",
        "SELECT status FROM shop.sales ORDER BY status LIMIT 200",
        "SELECT status, flag FROM shop.sales ORDER BY status DESC, flag LIMIT 5 OFFSET 140",
        "SELECT status, count(*) FROM shop.sales WHERE amount > 50 GROUP BY status",
        "SELECT flag, count(*) FROM shop.sales WHERE status = 'ab' GROUP BY flag",
        "SELECT status, count(*) FROM shop.sales WHERE id >= 500 GROUP BY status ORDER BY 1",
        "SELECT status, count(*) FROM shop.sales GROUP BY status HAVING count(*) > 150",
        "SELECT s.status, count(*) FROM shop.sales s JOIN shop.sales t ON t.id = s.id + 1 "
        "GROUP BY s.status ORDER BY 1",
    };
    s_compare_sales(q, S_NELEM(q));
}

Test(query_group, group_by_keeps_sqlite_heap_flat)
{
    enum { N = 40000 };
    s_sales(N);
    /* warm: the connection and its statement caches */
    free(s_run("SELECT count(*) FROM shop.sales"));
    sqlite3_int64 base = sqlite3_memory_used();
    sqlite3_memory_highwater(1);
    char *got = s_run("SELECT status, count(*) FROM shop.sales GROUP BY status ORDER BY status");
    sqlite3_int64 grew = sqlite3_memory_highwater(0) - base;
    cr_assert_str_eq(got, "NULL|5715\n'B'|7793\n'a'|7792\n'ab'|9350\n'b'|9350\n");
    free(got);
    /* the sorter would hold every row: ~40 bytes each, 1.6 MB here */
    cr_assert_lt(grew, 256 * 1024, "SQLite's heap grew %lld bytes", (long long)grew);
    got = s_run("SELECT status, id, count(*) FROM shop.sales GROUP BY status, id LIMIT 1");
    free(got);
    cr_assert_gt(sqlite3_memory_highwater(0) - base, N * 16, "a sort must show in the high water");
}
