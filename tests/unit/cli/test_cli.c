/* test_cli.c: the client tools' shared argument helpers (suite "cli"). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <string.h>

#include "cli/cli.h"

static dm_cli_args_t s_args = {.program = "t"};

Test(cli, qualified_splits_domain_and_product)
{
    dm_cli_qualified_t q;
    cr_assert_eq(dm_cli_qualified(&s_args, "commerce/orders", &q), 0);
    cr_assert_str_eq(q.domain, "commerce");
    cr_assert_str_eq(q.product, "orders");
}

Test(cli, qualified_refuses_a_missing_part, .init = cr_redirect_stderr)
{
    dm_cli_qualified_t q;
    cr_assert_eq(dm_cli_qualified(&s_args, "commerce/", &q), -1);
    cr_assert_eq(dm_cli_qualified(&s_args, "/orders", &q), -1);
    cr_assert_eq(dm_cli_qualified(&s_args, "orders", &q), -1);
    cr_assert_eq(dm_cli_qualified(&s_args, "a/b/c", &q), -1);
    fflush(stderr);
    cr_assert_stderr_eq_str("t: 'commerce/' is not DOMAIN/PRODUCT (e.g. commerce/orders)\n"
                            "t: '/orders' is not DOMAIN/PRODUCT (e.g. commerce/orders)\n"
                            "t: 'orders' is not DOMAIN/PRODUCT (e.g. commerce/orders)\n"
                            "t: 'a/b/c' is not DOMAIN/PRODUCT (e.g. commerce/orders)\n");
}

Test(cli, qualified_refuses_an_argument_too_long, .init = cr_redirect_stderr)
{
    char arg[DM_CLI_QUALIFIED_MAX + 8];
    memset(arg, 'a', sizeof arg - 1);
    arg[sizeof arg - 1] = 0;
    arg[3] = '/';
    dm_cli_qualified_t q;
    cr_assert_eq(dm_cli_qualified(&s_args, arg, &q), -1);
    fflush(stderr);
    cr_assert_stderr_eq_str("t: 'aaa/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is longer than a "
                            "DOMAIN/PRODUCT name can be\n");
}

Test(cli, product_arg_takes_exactly_one_domain_product, .init = cr_redirect_stderr)
{
    dm_cli_args_t ok = {.program = "t", .pos = {"deregister", "commerce/orders"}, .npos = 2};
    dm_cli_args_t missing = {.program = "t", .pos = {"deregister"}, .npos = 1};
    dm_cli_qualified_t q;
    cr_assert_eq(dm_cli_product_arg(&ok, "t deregister DOMAIN/PRODUCT", &q), DM_EXIT_OK);
    cr_assert_str_eq(q.product, "orders");
    cr_assert_eq(dm_cli_product_arg(&missing, "t deregister DOMAIN/PRODUCT", &q), DM_EXIT_USAGE);
    fflush(stderr);
    cr_assert_stderr_eq_str("t: usage: t deregister DOMAIN/PRODUCT\n");
}

/* dm_cli_uint_opt over the options of argv (one spec: --n VALUE). */
static int s_uint(const char *value, uint64_t lo, uint64_t hi, uint64_t *out)
{
    static const dm_cli_optspec_t spec[] = {{"n", true}};
    char *argv[] = {"t", "--n", (char *)value, NULL};
    dm_cli_args_t a;
    cr_assert_eq(dm_cli_parse("t", value ? 3 : 1, argv, spec, 1, &a), 0);
    return dm_cli_uint_opt(&a, "n", "a count", lo, hi, 7, out);
}

Test(cli, uint_opt_takes_whole_numbers_in_range_and_names_the_bad_ones, .init = cr_redirect_stderr)
{
    uint64_t v = 0;
    cr_assert_eq(s_uint(NULL, 1, 10, &v), 0);
    cr_assert_eq(v, 7, "absent: the default");
    cr_assert_eq(s_uint("10", 1, 10, &v), 0);
    cr_assert_eq(v, 10);
    cr_assert_eq(s_uint("0", 1, 10, &v), -1);
    cr_assert_eq(s_uint("11", 1, 10, &v), -1);
    cr_assert_eq(s_uint("-1", 0, UINT64_MAX, &v), -1);
    cr_assert_eq(s_uint("+1", 0, 10, &v), -1);
    cr_assert_eq(s_uint("3x", 0, 10, &v), -1);
    cr_assert_eq(s_uint("", 0, 10, &v), -1);
    cr_assert_eq(s_uint(" -1", 0, UINT64_MAX, &v), -1);
    cr_assert_eq(s_uint("99999999999999999999999", 0, UINT64_MAX, &v), -1);
    fflush(stderr);
    cr_assert_stderr_eq_str("t: invalid --n '0': expected a count from 1 to 10\n"
                            "t: invalid --n '11': expected a count from 1 to 10\n"
                            "t: invalid --n '-1': expected a count, 0 or more\n"
                            "t: invalid --n '+1': expected a count from 0 to 10\n"
                            "t: invalid --n '3x': expected a count from 0 to 10\n"
                            "t: invalid --n '': expected a count from 0 to 10\n"
                            "t: invalid --n ' -1': expected a count, 0 or more\n"
                            "t: invalid --n '99999999999999999999999': expected a count, 0 or more\n");
}

/* Text for a terminal: controls (newlines too) and C1 controls escaped,
 * other UTF-8 kept, invalid bytes replaced: one value stays one line. */
Test(cli, text_escapes_c0_and_c1_controls_and_keeps_utf8)
{
    dm_buf_t o = DM_BUF_INIT;
    const char in[] = "a\nb\x1b[31m \xc2\x9b" "2J \xc3\xa9 \xff";
    dm_cli_text(&o, in, sizeof in - 1);
    cr_assert_str_eq(o.data, "a\\x0ab\\x1b[31m \\u009b2J \xc3\xa9 \xef\xbf\xbd");
    dm_buf_free(&o);
}

Test(cli, json_number_is_null_when_not_finite)
{
    dm_buf_t o = DM_BUF_INIT;
    dm_cli_json_number(&o, 1.5);
    dm_buf_putc(&o, ',');
    dm_cli_json_number(&o, INFINITY);
    dm_buf_putc(&o, ',');
    dm_cli_json_number(&o, NAN);
    cr_assert_str_eq(o.data, "1.5,null,null");
    dm_buf_free(&o);
}
