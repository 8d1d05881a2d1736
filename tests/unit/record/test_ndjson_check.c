/* test_ndjson_check.c: dmctl check as a library call (dm_ndjson_check_fd) over the orders
 * contract, built by hand, and tests/data/records/orders.ndjson. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record/ndjson_check.h"
#include "fixture.h"

static char *ORDER_STATUS[] = {"created", "paid", "shipped", "cancelled"};
static dm_contract_t M;
static dm_field_t F[5];
static size_t PK[1];
static dm_schema_t *S;
static char *out_text;
static size_t out_len;
static FILE *out;
static char dir[64];

static void s_init(void)
{
    const char *names[] = {"orderId", "customerId", "amount", "status", "timestamp"};
    dm_ftype types[] = {DM_FT_UUID, DM_FT_STRING, DM_FT_DOUBLE, DM_FT_ENUM, DM_FT_TIMESTAMP};
    for (int i = 0; i < 5; i++) {
        F[i].name = (char *)names[i];
        F[i].type = types[i];
        F[i].required = true;
        F[i].min_length = F[i].max_length = -1;
    }
    F[0].primary_key = true;
    F[2].has_exclusive_minimum = true;
    F[2].exclusive_minimum = (dm_num_t){.is_int = true, .i = 0};
    F[3].values = ORDER_STATUS;
    F[3].nvalues = 4;
    M.fields = F;
    M.nfields = 5;
    M.pk = PK;
    M.npk = 1;
    cr_assert_eq(dm_schema_new(&M, &S, NULL), DM_OK);
    out = open_memstream(&out_text, &out_len);
    cr_assert_not_null(out);
    cr_assert_not_null(dm_t_tmpdir(dir, sizeof dir, "test_ndjson_check"));
}

static void s_fini(void)
{
    dm_schema_destroy(&S);
    if (out)
        fclose(out);
    free(out_text);
    cr_assert_eq(dm_t_rmdir(dir), 0);
}

TestSuite(ndjson_check, .init = s_init, .fini = s_fini);

/* Runs dm_ndjson_check_fd over a file holding text; returns its result. */
static dm_err s_run(const char *text, size_t limit, uint64_t *valid, uint64_t *invalid)
{
    char path[96];
    snprintf(path, sizeof path, "%s/in.ndjson", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    dm_err err = dm_ndjson_check_fd(S, "in.ndjson", fd, limit, out, valid, invalid);
    close(fd);
    fflush(out);
    return err;
}

#define OK_RECORD "{\"orderId\":\"3f1c0000-aaaa-bbbb-cccc-0123456789ab\",\"customerId\":\"c\"," \
                  "\"amount\":1,\"status\":\"paid\",\"timestamp\":\"2026-03-01T12:34:56Z\"}"

Test(ndjson_check, reports_each_invalid_record_and_summary)
{
    uint64_t valid, invalid;
    int fd = open(DM_SOURCE_DIR "/tests/data/records/orders.ndjson", O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dm_ndjson_check_fd(S, "orders.ndjson", fd, 0, out, &valid, &invalid), DM_OK);
    close(fd);
    fflush(out);
    cr_assert_eq(valid, 4);
    cr_assert_eq(invalid, 6);
    cr_assert_str_eq(out_text,
        "orders.ndjson:5: error: field 'amount': must be > 0, got -3; field 'status': 'lost' is "
        "not one of created, paid, shipped, cancelled\n"
        "orders.ndjson:6: error: field 'timestamp': '2026-02-30T12:34:56Z' is not an RFC 3339 "
        "timestamp with offset (or names an impossible date or time)\n"
        "orders.ndjson:7: error: not a JSON object: trailing characters at column 141\n"
        "orders.ndjson:8: error: field 'orderId': 'not-a-uuid' is not a UUID (8-4-4-4-12 hex "
        "digits); field 'amount': expected a number, got string '12'; field 'timestamp': is "
        "required but missing\n"
        "orders.ndjson:9: error: not a JSON object: expected '{' at column 1\n"
        "orders.ndjson:10: error: field 'amount': expected a finite number, got 1e999; unknown "
        "field 'note'\n"
        "4 valid, 6 invalid\n");
}

Test(ndjson_check, all_valid_input_reports_no_errors)
{
    uint64_t valid, invalid;
    cr_assert_eq(s_run(OK_RECORD "\n" OK_RECORD "\n", 0, &valid, &invalid), DM_OK);
    cr_assert_eq(valid, 2);
    cr_assert_eq(invalid, 0);
    cr_assert_str_eq(out_text, "2 valid, 0 invalid\n");
}

Test(ndjson_check, skips_blank_lines)
{
    uint64_t valid, invalid;
    cr_assert_eq(s_run("\n \t\r\n" OK_RECORD "\n\n", 0, &valid, &invalid), DM_OK);
    cr_assert_eq(valid, 1);
    cr_assert_eq(invalid, 0);
}

Test(ndjson_check, empty_input_has_zero_counts)
{
    uint64_t valid, invalid;
    cr_assert_eq(s_run("", 0, &valid, &invalid), DM_OK);
    cr_assert_str_eq(out_text, "0 valid, 0 invalid\n");
}

Test(ndjson_check, rejects_record_over_limit)
{
    uint64_t valid, invalid;
    cr_assert_eq(s_run(OK_RECORD "\n" OK_RECORD "\r\n", sizeof OK_RECORD - 1, &valid, &invalid), DM_OK);
    cr_assert_eq(s_run(OK_RECORD "\n", sizeof OK_RECORD - 2, &valid, &invalid), DM_OK);
    cr_assert_eq(valid, 0);
    cr_assert_eq(invalid, 1);
    cr_assert_str_eq(out_text, "2 valid, 0 invalid\n"
                               "in.ndjson:1: error: record is 129 bytes, over the limit of 128\n"
                               "0 valid, 1 invalid\n");
}

Test(ndjson_check, default_limit_is_one_mib)
{
    uint64_t valid, invalid;
    size_t n = DM_RECORD_LIMIT_DEFAULT + 1;
    char *big = malloc(n + 2);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\n';
    big[n + 1] = 0;
    cr_assert_eq(s_run(big, 0, &valid, &invalid), DM_OK);
    cr_assert_eq(invalid, 1);
    cr_assert_str_eq(out_text, "in.ndjson:1: error: record is 1048577 bytes, over the limit of "
                               "1048576\n0 valid, 1 invalid\n");
    free(big);
}

Test(ndjson_check, keeps_diagnostics_one_line_per_record)
{
    uint64_t valid, invalid;
    cr_assert_eq(s_run("{\"customerId\":\"a\\nb\",\"bad\\u000a\":1}\n", 0, &valid, &invalid), DM_OK);
    cr_assert_eq(invalid, 1);
    char *nl = strchr(out_text, '\n');
    cr_assert_not_null(nl);
    cr_assert_str_eq(nl + 1, "0 valid, 1 invalid\n");
}

Test(ndjson_check, reports_read_error)
{
    uint64_t valid = 9, invalid = 9;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    cr_assert_eq(dm_ndjson_check_fd(S, "dir", fd, 0, out, &valid, &invalid), DM_ERR_IO);
    close(fd);
    fflush(out);
    cr_assert_eq(valid, 0);
    cr_assert_eq(invalid, 0);
    cr_assert(strstr(out_text, "dir: error: read failed after line 0: "), "%s", out_text);
    cr_assert(strstr(out_text, "\n0 valid, 0 invalid\n"), "%s", out_text);
}
