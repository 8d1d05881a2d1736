/* test_contract_quality.c: the dataset-check keys of spec.quality (unique
 * columns, row_count_delta baselines and warn, field-check rates, the
 * schedule): read into the model, and refused with a message that names
 * the key and what is valid. */
#include <criterion/criterion.h>

#include "contract_test.h"

static void s_refused(const char *extra, const char *msg)
{
    result_t r = parse_base(extra);
    cr_assert_neq(r.rc, DM_OK, "accepted: %s", extra);
    cr_assert(strstr(r.text.data, msg), "no '%s' in:\n%s", msg, r.text.data);
    result_free(&r);
}

Test(contract_quality, reads_unique_columns_and_the_schedule)
{
    result_t r = parse_base("  quality:\n    schedule: 1h\n    checks:\n"
                            "      - {rule: unique, columns: [n, s]}\n"
                            "      - {rule: unique, column: x}\n");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_eq(c->quality_schedule_ms, 3600 * 1000);
    cr_assert_eq(c->checks[0].ncolumns, 2);
    cr_assert_str_eq(c->checks[0].columns[1], "s");
    cr_assert_eq(c->checks[0].column_index[1], 3);
    cr_assert_eq(c->checks[1].ncolumns, 1);
    cr_assert_str_eq(c->checks[1].columns[0], "x");
    result_free(&r);
}

Test(contract_quality, reads_baselines_warn_and_rates)
{
    result_t r = parse_base("  quality:\n    checks:\n"
                            "      - {rule: row_count_delta, threshold: 20%, warn: 10%,"
                            " baseline: average, over: 5}\n"
                            "      - {rule: row_count_delta, threshold: 100,"
                            " baseline: same_weekday}\n"
                            "      - {rule: not_null, column: s, mostly: 99%}\n"
                            "      - {rule: range, column: n, min: 0, warn: 1%, fail: 5%}\n");
    expect_ok(&r);
    const dm_check_t *k = r.cs[0]->checks;
    cr_assert_eq(k[0].baseline, DM_BASELINE_AVERAGE);
    cr_assert_eq(k[0].over, 5);
    cr_assert(k[0].has_warn && k[0].warn == 10 && k[0].warn_is_percent);
    cr_assert_eq(k[1].baseline, DM_BASELINE_SAME_WEEKDAY);
    cr_assert_not(k[1].threshold_is_percent);
    cr_assert(k[2].has_mostly && k[2].mostly == 99);
    cr_assert(dm_contract_check_has_rate(&k[2]));
    cr_assert(k[3].has_warn && k[3].has_fail && k[3].fail == 5);
    cr_assert_eq(r.cs[0]->quality_schedule_ms, -1);
    result_free(&r);
}

Test(contract_quality, without_rates_a_field_check_is_a_record_gate)
{
    result_t r = parse_base("  quality:\n    checks:\n      - {rule: not_null, column: s}\n");
    expect_ok(&r);
    cr_assert_not(dm_contract_check_has_rate(&r.cs[0]->checks[0]));
    result_free(&r);
}

Test(contract_quality, refuses_bad_keys_and_values)
{
    s_refused("  quality:\n    checks:\n      - {rule: unique, column: n, mostly: 99%}\n",
              "'mostly' does not apply to rule unique");
    s_refused("  quality:\n    checks:\n      - {rule: unique, column: n, columns: [s]}\n",
              "a unique check takes column or columns, not both");
    s_refused("  quality:\n    checks:\n      - {rule: unique, columns: [n, n]}\n",
              "'n' is listed twice");
    s_refused("  quality:\n    checks:\n      - {rule: unique, columns: []}\n",
              "list between 1 and 16");
    s_refused("  quality:\n    checks:\n      - {rule: row_count_delta, threshold: 20%,"
              " over: 3}\n", "'over' applies only to baseline: average");
    s_refused("  quality:\n    checks:\n      - {rule: row_count_delta, threshold: 20%,"
              " baseline: weekly}\n", "row_count_delta baseline");
    s_refused("  quality:\n    checks:\n      - {rule: row_count_delta, threshold: 20%,"
              " baseline: average, over: 0}\n", "between 1 and 1000");
    s_refused("  quality:\n    checks:\n      - {rule: row_count_delta, threshold: 20%,"
              " warn: 30%}\n", "must be below its threshold");
    s_refused("  quality:\n    checks:\n      - {rule: row_count_delta, threshold: 20%,"
              " warn: 5}\n", "must use the unit of its threshold");
    s_refused("  quality:\n    checks:\n      - {rule: not_null, column: s, mostly: 101%}\n",
              "is not a percentage between 0% and 100%");
    s_refused("  quality:\n    checks:\n      - {rule: not_null, column: s, mostly: 99}\n",
              "mostly '99' is not a percentage");
    s_refused("  quality:\n    checks:\n      - {rule: not_null, column: s, mostly: 99%,"
              " fail: 1%}\n", "not both");
    s_refused("  quality:\n    checks:\n      - {rule: not_null, column: s, warn: 5%,"
              " fail: 1%}\n", "warn must not exceed it");
    s_refused("  quality:\n    schedule: soon\n    checks: []\n", "spec.quality.schedule");
    s_refused("  quality:\n    schedule: 10ms\n    checks: []\n", "too short");
}
