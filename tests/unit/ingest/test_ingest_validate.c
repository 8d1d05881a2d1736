/* test_ingest_validate.c: the validator of the write pipeline without its
 * threads (suite "ingest_validate"), through dm_ingest_check: what a write
 * request becomes before the writer sees it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "storage/store.h"
#include "record/ndjson_check.h"
#include "record/registry.h"
#include "transport/rpc.h"

#define S_DOMAIN "commerce"
#define S_LIMIT 256 /* record_limit of these tests, bytes */

static const char s_orders[] =
    "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":\"DataProduct\",\"metadata\":{\"domain\":"
    "\"commerce\",\"name\":\"orders\",\"owner\":{\"contact\":\"a@b.co\",\"team\":\"t\"},"
    "\"version\":\"1.0.0\"},\"spec\":{\"schema\":{\"fields\":[{\"name\":\"id\",\"type\":"
    "\"int\"},{\"name\":\"amount\",\"type\":\"double\",\"required\":true}],"
    "\"primaryKey\":\"id\",\"type\":\"inline\"}}}";

static const char s_tags[] =
    "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":\"DataProduct\",\"metadata\":{\"domain\":"
    "\"commerce\",\"name\":\"tags\",\"owner\":{\"contact\":\"a@b.co\",\"team\":\"t\"},"
    "\"version\":\"1.0.0\"},\"spec\":{\"schema\":{\"fields\":[{\"name\":\"tag\",\"type\":"
    "\"string\"}],\"primaryKey\":\"tag\",\"type\":\"inline\"}}}";

static dm_registry_t *s_reg;
static uint8_t *s_env;
static size_t s_env_len;

static void s_init(void)
{
    cr_assert_eq(dm_registry_new(&s_reg), DM_OK);
    cr_assert_eq(dm_registry_install(s_reg, 1, s_orders, strlen(s_orders), NULL), DM_OK);
    cr_assert_eq(dm_registry_install(s_reg, 2, s_tags, strlen(s_tags), NULL), DM_OK);
}

static void s_fini(void)
{
    dm_registry_destroy(&s_reg);
    free(s_env);
}

TestSuite(ingest_validate, .init = s_init, .fini = s_fini);

static void s_pack(const Dm__Envelope *env)
{
    free(s_env);
    s_env_len = dm__envelope__get_packed_size(env);
    s_env = malloc(s_env_len ? s_env_len : 1);
    cr_assert_not_null(s_env);
    dm__envelope__pack(env, s_env);
}

/* Validates an IngestReq for domain/product carrying text under record
 * limit limit. */
static dm_err s_ingest_limit(const char *domain, const char *product, const char *text,
                             size_t limit, size_t *rows, size_t *quarantined)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__IngestReq req = DM__INGEST_REQ__INIT;
    req.domain = (char *)domain;
    req.product = (char *)product;
    req.data.data = (uint8_t *)text;
    req.data.len = strlen(text);
    env.id = 7;
    env.body_case = DM__ENVELOPE__BODY_INGEST_REQ;
    env.ingest_req = &req;
    s_pack(&env);
    return dm_ingest_check(s_reg, S_DOMAIN, limit, s_env, s_env_len, rows, quarantined);
}

static dm_err s_ingest(const char *domain, const char *product, const char *text, size_t *rows,
                       size_t *quarantined)
{
    return s_ingest_limit(domain, product, text, S_LIMIT, rows, quarantined);
}

/* A key the store cannot hold (LMDB's key size) is quarantined with its
 * record, not left to fail the whole batch at commit. */
Test(ingest_validate, quarantines_a_key_longer_than_the_store_holds)
{
    size_t max = dm_store_max_key_bytes();
    cr_assert_gt(max, 100);
    dm_buf_t text = DM_BUF_INIT;
    for (size_t len = max - 4; len <= max + 4; len++) {
        dm_buf_puts(&text, "{\"tag\":\"");
        for (size_t i = 0; i < len; i++)
            dm_buf_putc(&text, 'k');
        dm_buf_puts(&text, "\"}\n");
    }
    size_t rows = 0, q = 0;
    cr_assert_eq(s_ingest_limit(S_DOMAIN, "tags", text.data, 0, &rows, &q), DM_OK);
    cr_assert_eq(rows + q, 9);
    cr_assert(rows >= 1 && q >= 1, "rows %zu, quarantined %zu", rows, q);
    dm_buf_free(&text);
}

Test(ingest_validate, splits_valid_rows_from_quarantined_lines)
{
    size_t rows = 0, q = 0;
    cr_assert_eq(s_ingest(S_DOMAIN, "orders",
                          "{\"id\":1,\"amount\":2.5}\n{\"id\":2}\n{\"id\":3,\"amount\":1}\n",
                          &rows, &q),
                 DM_OK);
    cr_assert_eq(rows, 2);
    cr_assert_eq(q, 1);
}

Test(ingest_validate, skips_blank_lines_and_crlf)
{
    size_t rows = 0, q = 0;
    cr_assert_eq(s_ingest(S_DOMAIN, "orders", "\r\n  \t\n{\"id\":1,\"amount\":2}\r\n", &rows, &q),
                 DM_OK);
    cr_assert_eq(rows, 1);
    cr_assert_eq(q, 0);
}

Test(ingest_validate, quarantines_a_record_over_the_limit)
{
    char text[S_LIMIT + 64];
    int n = snprintf(text, sizeof text, "{\"id\":1,\"amount\":1,\"pad\":\"");
    memset(text + n, 'x', S_LIMIT);
    strcpy(text + n + S_LIMIT, "\"}\n");
    size_t rows = 9, q = 0;
    cr_assert_eq(s_ingest(S_DOMAIN, "orders", text, &rows, &q), DM_OK);
    cr_assert_eq(rows, 0);
    cr_assert_eq(q, 1);
}

Test(ingest_validate, refuses_another_domain)
{
    cr_assert_eq(s_ingest("billing", "orders", "{\"id\":1,\"amount\":1}\n", NULL, NULL),
                 DM_ERR_DENIED);
}

Test(ingest_validate, refuses_an_unknown_product)
{
    cr_assert_eq(s_ingest(S_DOMAIN, "order", "{\"id\":1,\"amount\":1}\n", NULL, NULL),
                 DM_ERR_NOTFOUND);
}

Test(ingest_validate, refuses_a_malformed_envelope)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(dm_ingest_check(s_reg, S_DOMAIN, S_LIMIT, junk, sizeof junk, NULL, NULL),
                 DM_ERR_PROTO);
}

Test(ingest_validate, refuses_an_empty_register_request)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__RegisterReq req = DM__REGISTER_REQ__INIT;
    env.body_case = DM__ENVELOPE__BODY_REGISTER_REQ;
    env.register_req = &req;
    s_pack(&env);
    cr_assert_eq(dm_ingest_check(s_reg, S_DOMAIN, S_LIMIT, s_env, s_env_len, NULL, NULL),
                 DM_ERR_INVALID);
}

Test(ingest_validate, accepts_a_register_request_for_this_domain)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__RegisterReq req = DM__REGISTER_REQ__INIT;
    req.contract.data = (uint8_t *)s_orders;
    req.contract.len = strlen(s_orders);
    env.body_case = DM__ENVELOPE__BODY_REGISTER_REQ;
    env.register_req = &req;
    s_pack(&env);
    cr_assert_eq(dm_ingest_check(s_reg, S_DOMAIN, S_LIMIT, s_env, s_env_len, NULL, NULL), DM_OK);
    cr_assert_eq(dm_ingest_check(s_reg, "billing", S_LIMIT, s_env, s_env_len, NULL, NULL),
                 DM_ERR_DENIED);
}

/* What dmctl check makes of text (one line) against the orders schema:
 * true if it counts the line invalid. */
static bool s_check_calls_invalid(const char *text)
{
    const dm_product_ref_t *ref = NULL;
    cr_assert_eq(dm_registry_acquire(s_reg, "commerce/orders", strlen("commerce/orders"), &ref),
                 DM_OK);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], text, strlen(text)), (ssize_t)strlen(text));
    close(p[1]);
    FILE *out = fopen("/dev/null", "w");
    cr_assert_not_null(out);
    uint64_t valid = 0, invalid = 0;
    cr_assert_eq(dm_ndjson_check_fd(ref->schema, "t", p[0], S_LIMIT, out, &valid, &invalid),
                 DM_OK);
    fclose(out);
    close(p[0]);
    dm_registry_release(s_reg, ref);
    return invalid == 1;
}

Test(ingest_validate, dmctl_check_predicts_which_lines_ingest_quarantines)
{
    const char *lines[] = {"\n", " \t\r\n", "\f\n", "\v\n", " \f \n", "{\"id\":1}\n"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        size_t rows = 9, q = 9;
        cr_assert_eq(s_ingest(S_DOMAIN, "orders", lines[i], &rows, &q), DM_OK);
        cr_assert_eq(rows, 0);
        cr_assert_eq(q == 1, s_check_calls_invalid(lines[i]), "line %zu: ingest quarantines %zu",
                     i, q);
    }
}

Test(ingest_validate, a_form_feed_line_is_not_blank)
{
    cr_assert(dm_ndjson_check_blank(" \t\r", 3));
    cr_assert_not(dm_ndjson_check_blank("\f", 1));
    cr_assert_not(dm_ndjson_check_blank("\v", 1));
}

Test(ingest_validate, unknown_product_text_suggests_a_close_name)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_registry_unknown(s_reg, "commerce/ordrs", NULL, &why);
    cr_assert_str_eq(why.data,
                     "unknown product 'commerce/ordrs' on this node; did you mean "
                     "'commerce/orders'?");
    dm_buf_free(&why);
}

Test(ingest_validate, unknown_product_text_names_the_domain_served)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_registry_unknown(s_reg, "billing/zzzzzzzz", "commerce", &why);
    cr_assert_str_eq(why.data, "unknown product 'billing/zzzzzzzz' on this node (domain commerce)");
    dm_buf_free(&why);
}
