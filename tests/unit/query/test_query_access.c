/* test_query_access.c: dm_query_open_as: refusals with the decision's
 * reason and nothing returned, each mask, row filters, a WHERE on a masked
 * column, the hidden raw table out of the SQL's reach in every spelling,
 * key pushdown through the view, an allowed product unchanged, and pooled
 * connections that never carry one caller's view to another. */
#include "query_test.h"

#include <sodium.h>

TestSuite(query_access, .init = s_setup, .fini = s_teardown);

/* What the test's decide answers for one product (others: allowed as is). */
typedef struct {
    const char *domain, *name;
    bool deny;
    const char *reason;
    dm_policy_mask masks[16];
    size_t nmasks; /* 0: no masks */
    const char *filter;
    dm_err fail; /* decide itself fails with this */
} s_rule_t;

#define S_RULES_MAX 4
static s_rule_t s_rules[S_RULES_MAX];
static size_t s_nrules;
static int s_decides;

static dm_err s_decide(void *ctx, const char *domain, const char *product,
                       dm_policy_decision_t *out, dm_buf_t *why)
{
    (void)ctx;
    s_decides++;
    out->allow = true;
    for (size_t i = 0; i < s_nrules; i++) {
        const s_rule_t *r = &s_rules[i];
        if (strcmp(r->domain, domain) != 0 || strcmp(r->name, product) != 0)
            continue;
        if (r->fail) {
            dm_buf_puts(why, "the policy could not be read");
            return r->fail;
        }
        out->allow = !r->deny;
        snprintf(out->reason, sizeof out->reason, "%s", r->reason ? r->reason : "");
        if (r->nmasks) {
            out->masks = malloc(r->nmasks * sizeof *out->masks);
            memcpy(out->masks, r->masks, r->nmasks * sizeof *out->masks);
            out->nmasks = r->nmasks;
        }
        out->row_filter = r->filter ? strdup(r->filter) : NULL;
    }
    return DM_OK;
}

static const dm_query_access_t s_access = {s_decide, NULL, NULL};

static s_rule_t *s_rule(const char *domain, const char *name)
{
    cr_assert_lt(s_nrules, S_RULES_MAX);
    s_rule_t *r = &s_rules[s_nrules++];
    memset(r, 0, sizeof *r);
    r->domain = domain;
    r->name = name;
    return r;
}

/* commerce.orders' fields, in contract order (query_test.h). */
enum { F_ORDER_ID, F_CUSTOMER, F_AMOUNT, F_STATUS, F_TS, F_QTY, F_DAY, F_GIFT, F_NOTE, F_N };

static s_rule_t *s_mask_orders(void)
{
    s_rule_t *r = s_rule("commerce", "orders");
    r->nmasks = F_N;
    return r;
}

/* Runs sql under access (NULL: none) to text rows, as query_test.h's s_run. */
static char *s_run_as(const dm_query_access_t *access, const char *sql)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT, text = DM_BUF_INIT;
    dm_err rc = dm_query_open_as(s_eng, sql, strlen(sql), access, &q, &err);
    cr_assert_eq(rc, DM_OK, "%s: %s (%s)", sql, err.data, dm_err_str(rc));
    bool done = false;
    while (!done) {
        uint32_t n;
        dm_buf_reset(&batch);
        cr_assert_eq(dm_query_fetch(q, 100, 0, &batch, &n, &done, &err), DM_OK, "%s: %s", sql,
                     err.data);
        const uint8_t *p = (const uint8_t *)batch.data, *end = p + batch.len;
        for (uint32_t r = 0; r < n; r++) {
            for (int c = 0; c < dm_query_ncolumns(q); c++) {
                dm_rowbatch_value_t v;
                cr_assert(dm_rowbatch_read(&p, end, &v));
                if (c)
                    dm_buf_putc(&text, '|');
                s_value_text(&v, &text);
            }
            dm_buf_putc(&text, '\n');
        }
    }
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
    return text.data ? dm_buf_steal(&text) : strdup("");
}

static char *s_got(const char *sql) { return s_run_as(&s_access, sql); }

/* Opens sql under s_access expecting want; returns the message. */
static char *s_fail_as(const char *sql, dm_err want)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    dm_err rc = dm_query_open_as(s_eng, sql, strlen(sql), &s_access, &q, &err);
    cr_assert_eq(rc, want, "%s: got %s (%s), want %s", sql, dm_err_str(rc),
                 err.data ? err.data : "", dm_err_str(want));
    cr_assert_null(q);
    cr_assert(err.len > 0, "%s: no message", sql);
    return dm_buf_steal(&err);
}

/* The plan details of sql under s_access, joined by "; ". */
static char *s_plan_as(const char *sql)
{
    char eqp[1024];
    snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
    char *rows = s_got(eqp); /* id|parent|notused|'detail' per line */
    dm_buf_t text = DM_BUF_INIT;
    for (char *line = strtok(rows, "\n"); line; line = strtok(NULL, "\n")) {
        char *q = strchr(line, '\'');
        dm_buf_puts(&text, q ? q : line);
        dm_buf_puts(&text, "; ");
    }
    free(rows);
    return dm_buf_steal(&text);
}

static void s_expect(const char *sql, const char *want)
{
    char *got = s_got(sql);
    cr_assert_str_eq(got, want, "%s", sql);
    free(got);
}

/* ---- refusals ---- */

Test(query_access, a_refused_product_fails_with_the_reason)
{
    s_orders();
    s_rule_t *r = s_rule("commerce", "orders");
    r->deny = true;
    r->reason = "access denied to commerce.orders (restricted): abcd is not a reader";
    char *msg = s_fail_as("SELECT * FROM commerce.orders", DM_ERR_DENIED);
    cr_assert_str_eq(msg, r->reason);
    free(msg);
}

Test(query_access, a_refused_product_joined_with_an_allowed_one_returns_nothing)
{
    s_orders();
    s_customers();
    s_rule_t *r = s_rule("identity", "customers");
    r->deny = true;
    r->reason = "access denied to identity.customers (private): abcd is not an admin";
    s_decides = 0;
    char *msg = s_fail_as("SELECT o.orderId, c.name FROM commerce.orders o "
                          "JOIN identity.customers c USING (customerId)", DM_ERR_DENIED);
    cr_assert_str_eq(msg, r->reason);
    cr_assert_eq(s_decides, 2, "each product decided once, got %d", s_decides);
    free(msg);
    msg = s_fail_as("SELECT count(*) FROM commerce.orders WHERE customerId IN "
                    "(SELECT customerId FROM identity.customers)", DM_ERR_DENIED);
    free(msg);
    s_expect("SELECT count(*) FROM commerce.orders", "6\n"); /* the allowed one alone */
}

Test(query_access, a_failing_decision_fails_the_open)
{
    s_orders();
    s_rule("commerce", "orders")->fail = DM_ERR_NOMEM;
    char *msg = s_fail_as("SELECT * FROM commerce.orders", DM_ERR_NOMEM);
    cr_assert(strstr(msg, "the policy could not be read"), "%s", msg);
    free(msg);
}

Test(query_access, masks_that_do_not_match_the_fields_are_refused)
{
    s_orders();
    s_rule_t *r = s_rule("commerce", "orders");
    r->nmasks = 3;
    r->masks[1] = DM_POLICY_MASK_REDACT;
    char *msg = s_fail_as("SELECT * FROM commerce.orders", DM_ERR_INVALID);
    cr_assert(strstr(msg, "3 masks for its 9 fields"), "%s", msg);
    free(msg);
}

/* ---- masks ---- */

Test(query_access, each_mask_shapes_its_column)
{
    s_orders();
    s_rule_t *r = s_mask_orders();
    r->masks[F_ORDER_ID] = DM_POLICY_MASK_HASH;
    r->masks[F_CUSTOMER] = DM_POLICY_MASK_REDACT;
    r->masks[F_AMOUNT] = DM_POLICY_MASK_NULL;
    r->masks[F_TS] = DM_POLICY_MASK_YEAR;
    r->masks[F_DAY] = DM_POLICY_MASK_YEAR;
    r->masks[F_NOTE] = DM_POLICY_MASK_LAST4;
    static const char id[] = "3f1c2a9e-8b7d-4c6e-9f01-23456789abcd";
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)id, strlen(id));
    char hex[33], want[256];
    sodium_bin2hex(hex, sizeof hex, h, 16);
    snprintf(want, sizeof want, "'%s'|'***'|NULL|'2026'|'2026'|'****irst'|3\n", hex);
    s_expect("SELECT orderId, customerId, amount, ts, day, note, qty FROM commerce.orders "
             "WHERE qty = 3", want);
    /* NULL stays NULL; last4 counts characters, not bytes */
    s_expect("SELECT customerId, ts, day, note FROM commerce.orders WHERE qty = 0",
             "'***'|NULL|NULL|'****d\" \xc3\xa9'\n");
}

Test(query_access, last4_hides_a_value_of_four_characters_or_fewer)
{
    s_orders();
    s_mask_orders()->masks[F_CUSTOMER] = DM_POLICY_MASK_LAST4;
    s_expect("SELECT customerId FROM commerce.orders WHERE qty = 3", "'****'\n");
}

Test(query_access, masked_columns_lose_their_declared_type_others_keep_it)
{
    s_orders();
    s_mask_orders()->masks[F_CUSTOMER] = DM_POLICY_MASK_REDACT;
    dm_query_t *q = NULL;
    const char *sql = "SELECT orderId, customerId, amount FROM commerce.orders";
    cr_assert_eq(dm_query_open_as(s_eng, sql, strlen(sql), &s_access, &q, NULL), DM_OK);
    cr_assert_str_eq(dm_query_column_decltype(q, 0), "UUID");
    cr_assert_str_eq(dm_query_column_decltype(q, 1), "");
    cr_assert_str_eq(dm_query_column_decltype(q, 2), "REAL");
    cr_assert_str_eq(dm_query_column_name(q, 1), "customerId");
    dm_query_close(&q);
}

Test(query_access, a_where_on_a_masked_column_compares_the_masked_value)
{
    s_orders();
    s_rule_t *r = s_mask_orders();
    r->masks[F_CUSTOMER] = DM_POLICY_MASK_REDACT;
    r->masks[F_ORDER_ID] = DM_POLICY_MASK_HASH;
    s_expect("SELECT count(*) FROM commerce.orders WHERE customerId = 'c1'", "0\n");
    s_expect("SELECT count(*) FROM commerce.orders WHERE customerId = '***'", "6\n");
    s_expect("SELECT count(*) FROM commerce.orders WHERE customerId LIKE 'c%'", "0\n");
    const char *by_key = "SELECT count(*) FROM commerce.orders "
                         "WHERE orderId = '3f1c2a9e-8b7d-4c6e-9f01-23456789abcd'";
    s_expect(by_key, "0\n");
    char *plan = s_plan_as(by_key); /* the raw key is not pushed down */
    cr_assert(!strstr(plan, "pk eq"), "%s", plan);
    free(plan);
    s_expect("SELECT count(DISTINCT customerId), min(customerId) FROM commerce.orders",
             "1|'***'\n");
}

/* ---- row filters ---- */

Test(query_access, a_row_filter_keeps_only_its_rows)
{
    s_orders();
    s_rule("commerce", "orders")->filter = "status = 'paid' OR customerId = 'c3' -- or c3";
    s_expect("SELECT customerId FROM commerce.orders ORDER BY customerId",
             "'c1'\n'c2'\n'c2'\n'c3'\n");
    s_expect("SELECT count(*) FROM commerce.orders WHERE qty = 1", "2\n");
    s_expect("SELECT count(*) FROM commerce.orders "
             "WHERE orderId = 'ffffffff-ffff-4fff-bfff-ffffffffffff'", "0\n");
}

Test(query_access, a_row_filter_may_test_a_masked_column_raw)
{
    s_orders();
    s_rule_t *r = s_mask_orders();
    r->masks[F_CUSTOMER] = DM_POLICY_MASK_REDACT;
    r->filter = "customerId = 'c1'";
    s_expect("SELECT customerId, qty FROM commerce.orders ORDER BY qty", "'***'|-7\n'***'|3\n");
}

Test(query_access, the_row_filter_is_tested_before_the_querys_own_terms)
{
    s_orders();
    s_rule("commerce", "orders")->filter = "status = 'paid'";
    /* abs() of the smallest integer fails: it must never see a hidden row */
    char *msg = NULL;
    cr_assert_eq(s_fetch_fail("SELECT count(*) FROM commerce.orders WHERE CASE WHEN status <> "
                              "'paid' THEN abs(-9223372036854775807 - 1) ELSE 1 END", &msg),
                 DM_ERR_INVALID, "without the filter it fails: %s", msg);
    free(msg);
    s_expect("SELECT count(*) FROM commerce.orders WHERE "
             "CASE WHEN status <> 'paid' THEN abs(-9223372036854775807 - 1) ELSE 1 END",
             "3\n");
}

Test(query_access, a_row_filter_that_does_not_prepare_is_invalid_and_named)
{
    s_orders();
    s_rule("commerce", "orders")->filter = "nosuch = 1";
    char *msg = s_fail_as("SELECT * FROM commerce.orders", DM_ERR_INVALID);
    cr_assert(strstr(msg, "commerce.orders") && strstr(msg, "nosuch = 1") &&
                  strstr(msg, "no such column"), "%s", msg);
    free(msg);
    s_rules[0].filter = "1; DROP TABLE x";
    msg = s_fail_as("SELECT * FROM commerce.orders", DM_ERR_INVALID);
    cr_assert(strstr(msg, "1; DROP TABLE x"), "%s", msg);
    free(msg);
    s_rules[0].filter = "load_extension('x') IS NULL"; /* unsafe inside a view */
    msg = s_fail_as("SELECT * FROM commerce.orders", DM_ERR_INVALID);
    cr_assert(strstr(msg, "load_extension('x') IS NULL"), "%s", msg);
    free(msg);
}

/* ---- the hidden raw table ---- */

Test(query_access, the_raw_table_cannot_be_named)
{
    s_orders();
    s_rule_t *r = s_mask_orders();
    r->masks[F_CUSTOMER] = DM_POLICY_MASK_REDACT;
    r->filter = "status = 'paid'";
    static const char *const sqls[] = {
        "SELECT * FROM commerce.\"orders$raw\", commerce.orders",
        "SELECT customerId FROM commerce.[orders$raw] WHERE 0 < (SELECT 1 FROM commerce.orders)",
        "SELECT customerId FROM commerce.`orders$raw` JOIN commerce.orders USING (orderId)",
        "SELECT customerId FROM \"commerce\".\"orders$raw\" UNION SELECT 1 FROM commerce.orders",
        "SELECT customerId FROM COMMERCE.\"ORDERS$RAW\" UNION SELECT 1 FROM commerce.orders",
        "SELECT customerId FROM \"orders$raw\" UNION SELECT 1 FROM commerce.orders",
        "SELECT (SELECT count(*) FROM commerce.\"orders$raw\"), * FROM commerce.orders",
        "WITH x AS (SELECT * FROM commerce.\"orders$raw\") SELECT * FROM x, commerce.orders",
        "SELECT * FROM commerce.orders o WHERE EXISTS "
        "(SELECT 1 FROM commerce.\"orders$raw\" r WHERE r.customerId = 'c1')",
        "SELECT * FROM commerce.'orders$raw', commerce.orders", /* a string as a name */
        "SELECT * FROM commerce.orders$raw, commerce.orders",
    };
    for (size_t i = 0; i < S_NELEM(sqls); i++) {
        char *msg = s_fail_as(sqls[i], DM_ERR_NOTFOUND);
        cr_assert(strstr(msg, "no such product"), "%s: %s", sqls[i], msg);
        cr_assert(!strstr(msg, "c1") && !strstr(msg, "c4"), "%s: %s", sqls[i], msg);
        free(msg);
    }
    static const char *const elsewhere[] = {
        "SELECT * FROM main.\"orders$raw\", commerce.orders",
        "SELECT * FROM temp.\"orders$raw\", commerce.orders",
        "SELECT * FROM sqlite_temp_master, commerce.orders",
    };
    for (size_t i = 0; i < S_NELEM(elsewhere); i++) {
        dm_query_t *q = NULL;
        dm_err rc = dm_query_open_as(s_eng, elsewhere[i], strlen(elsewhere[i]), &s_access, &q,
                                     NULL);
        cr_assert(rc == DM_ERR_NOTFOUND || rc == DM_ERR_DENIED, "%s: %s", elsewhere[i],
                  dm_err_str(rc));
        cr_assert_null(q);
    }
    s_expect("SELECT count(*) FROM commerce.orders", "3\n"); /* the view still works */
}

Test(query_access, a_with_table_named_after_a_viewed_product_is_refused)
{
    s_orders();
    s_rule("commerce", "orders")->filter = "status <> 'cancelled'";
    static const char *const sqls[] = {
        "WITH orders AS (SELECT * FROM commerce.\"orders$raw\") "
        "SELECT * FROM orders, commerce.orders",
        "WITH \"Orders\"(a) AS (SELECT customerId FROM commerce.\"orders$raw\") "
        "SELECT * FROM \"Orders\", commerce.orders",
        "WITH x AS (SELECT 1), [orders] /* c */ AS MATERIALIZED "
        "(SELECT * FROM commerce.\"orders$raw\") SELECT * FROM orders JOIN commerce.orders",
        "WITH 'orders' (a, \"b)\") AS NOT MATERIALIZED (SELECT 1, 2) "
        "SELECT * FROM orders, commerce.orders",
    };
    for (size_t i = 0; i < S_NELEM(sqls); i++) {
        char *msg = s_fail_as(sqls[i], DM_ERR_DENIED);
        cr_assert(strstr(msg, "taken by product commerce.orders"), "%s: %s", sqls[i], msg);
        free(msg);
    }
    /* the name still serves as a qualifier, an alias and a string */
    s_expect("SELECT orders.qty FROM commerce.orders WHERE orders.qty = 3", "3\n");
    s_expect("SELECT 'orders' AS t, count(*) FROM commerce.orders", "'orders'|5\n");
    s_expect("SELECT o.qty FROM commerce.orders AS o WHERE o.qty = 1 ORDER BY 1", "1\n1\n");
}

Test(query_access, the_sandbox_still_refuses_views_of_the_sql)
{
    s_orders();
    s_rule("commerce", "orders")->filter = "status = 'paid'";
    char *msg = s_fail_as("CREATE TEMP VIEW v AS SELECT * FROM commerce.orders", DM_ERR_DENIED);
    free(msg);
    msg = s_fail_as("DROP VIEW commerce.orders", DM_ERR_DENIED);
    free(msg);
    s_expect("SELECT count(*) FROM commerce.orders", "3\n");
}

/* ---- pushdown and the unmasked path ---- */

Test(query_access, keys_push_down_through_the_view)
{
    s_orders();
    s_lines();
    s_rule_t *r = s_rule("commerce", "lines");
    r->nmasks = 4;
    r->masks[2] = DM_POLICY_MASK_HASH; /* sku */
    r->filter = "price > 2";
    char *plan = s_plan_as("SELECT * FROM commerce.lines WHERE orderNo = 10 AND lineNo > 5");
    cr_assert(strstr(plan, "pk eq=1 lo"), "%s", plan);
    free(plan);
    plan = s_plan_as("SELECT orderNo, lineNo FROM commerce.lines ORDER BY orderNo, lineNo");
    cr_assert(strstr(plan, "pk eq=0") && !strstr(plan, "TEMP B-TREE"), "%s", plan);
    free(plan);
    char *want = s_run("SELECT orderNo, lineNo, price FROM commerce.lines "
                       "WHERE orderNo = 10 AND lineNo > 5 AND price > 2 ORDER BY lineNo");
    char *got = s_got("SELECT orderNo, lineNo, price FROM commerce.lines "
                      "WHERE orderNo = 10 AND lineNo > 5 ORDER BY lineNo");
    cr_assert_str_eq(got, want);
    cr_assert_gt(strlen(got), 0);
    free(got);
    free(want);
}

Test(query_access, an_allowed_product_without_masks_is_unchanged)
{
    s_orders();
    s_customers();
    static const char *const sqls[] = {
        "SELECT * FROM commerce.orders ORDER BY orderId",
        "SELECT o.orderId, c.name FROM commerce.orders o JOIN identity.customers c "
        "USING (customerId) ORDER BY 1",
        "SELECT status, count(*), sum(amount) FROM commerce.orders GROUP BY status ORDER BY 1",
    };
    for (size_t i = 0; i < S_NELEM(sqls); i++) {
        char *want = s_run(sqls[i]), *got = s_got(sqls[i]);
        cr_assert_str_eq(got, want, "%s", sqls[i]);
        free(want);
        free(got);
    }
    char *plan = s_plan_as("SELECT * FROM commerce.orders WHERE orderId = "
                           "'c0ffee00-1234-4abc-9def-0123456789ab'");
    cr_assert(strstr(plan, "pk eq=1"), "%s", plan);
    free(plan);
    /* no view, no raw table: the product's table is the virtual table */
    char *msg = s_fail_as("SELECT * FROM commerce.\"orders$raw\", commerce.orders",
                          DM_ERR_NOTFOUND);
    free(msg);
}

/* ---- pooled connections ---- */

Test(query_access, a_pooled_connection_keeps_to_its_callers_view)
{
    s_orders();
    const char *sql = "SELECT customerId FROM commerce.orders WHERE qty = 3";
    s_rule_t *r = s_mask_orders();
    r->masks[F_CUSTOMER] = DM_POLICY_MASK_REDACT;
    s_expect(sql, "'***'\n");
    s_expect(sql, "'***'\n"); /* the pooled one */
    char *got = s_run(sql);    /* no access: the raw rows, not the pooled view */
    cr_assert_str_eq(got, "'c1'\n");
    free(got);
    r->masks[F_CUSTOMER] = DM_POLICY_MASK_LAST4;
    s_expect(sql, "'****'\n");
    r->masks[F_CUSTOMER] = DM_POLICY_MASK_NONE;
    r->filter = "qty <> 3";
    s_expect(sql, "");
    r->filter = NULL;
    s_expect(sql, "'c1'\n");
}

/* A "did you mean" names only products the caller may describe. */
static bool s_hide_orders(void *ctx, const char *domain, const char *product)
{
    (void)ctx;
    return !(strcmp(domain, "commerce") == 0 && strcmp(product, "orders") == 0);
}

Test(query_access, did_you_mean_names_only_describable_products)
{
    s_orders();
    const char *sql = "SELECT * FROM commerce.ordrs";
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT;
    cr_assert_eq(dm_query_open_as(s_eng, sql, strlen(sql), &s_access, &q, &err), DM_ERR_NOTFOUND);
    cr_assert(strstr(err.data, "did you mean 'commerce.orders'"), "%s", err.data);
    dm_buf_reset(&err);
    const dm_query_access_t hiding = {s_decide, NULL, s_hide_orders};
    cr_assert_eq(dm_query_open_as(s_eng, sql, strlen(sql), &hiding, &q, &err), DM_ERR_NOTFOUND);
    cr_assert_null(strstr(err.data, "commerce.orders"), "%s", err.data);
    cr_assert(strstr(err.data, "no such product 'commerce.ordrs'"), "%s", err.data);
    dm_buf_free(&err);
}
