/* test_contract_limits.c: contracts at and over the shape limits (suite
 * "contract_limits"): duplicates are still found at the far end of the
 * largest lists, lookups resolve there, and a list over its limit is
 * refused at its line:col naming the limit. No timing: the parser's cost
 * is bounded by construction (sorted indexes), and the report's figures
 * come from a generator, not from here. A record checked against such a
 * contract: record/test_schema_limits.c. */
#include "contract_test.h"

/* Lines 1-13 of every contract here; fields start on line 14, column 7. */
static const char *const s_head = "apiVersion: datamesh.io/v1\n"
                                  "kind: DataProduct\n"
                                  "metadata:\n"
                                  "  name: big\n"
                                  "  domain: bench\n"
                                  "  version: 1.0.0\n"
                                  "  owner:\n"
                                  "    team: bench\n"
                                  "    contact: data@company.com\n"
                                  "spec:\n"
                                  "  schema:\n"
                                  "    primaryKey: id\n"
                                  "    fields:\n";
#define FIRST_FIELD_LINE 14

/* A contract whose field e is an enum of n values v0..v(n-1) in a flow
 * list opening at 17:17, then "v<dup>" if dup >= 0 (at 17:*dup_col);
 * then tail. */
static result_t parse_enum_at(size_t n, long dup, const char *tail, size_t *dup_col)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, s_head);
    dm_buf_puts(&b, "      - {name: id, type: int}\n"     /* 14 */
                    "      - name: e\n"                   /* 15 */
                    "        type: enum\n");              /* 16 */
    size_t line = b.len;
    dm_buf_puts(&b, "        values: [");                 /* 17 */
    for (size_t i = 0; i < n; i++)
        dm_buf_printf(&b, "%sv%zu", i ? ", " : "", i);
    if (dup >= 0) {
        dm_buf_puts(&b, ", ");
        if (dup_col)
            *dup_col = b.len - line + 1;
        dm_buf_printf(&b, "v%ld", dup);
    }
    dm_buf_puts(&b, "]\n");
    dm_buf_puts(&b, tail);
    result_t r = parse_text(b.data, b.len, NULL);
    dm_buf_free(&b);
    return r;
}

static result_t parse_enum(size_t n, long dup, const char *tail)
{
    return parse_enum_at(n, dup, tail, NULL);
}

/* A contract of n int fields f0..f(n-1) (primary key f0), field i on line
 * 14 + i (its name at column 16), then "{name: f<dup>}" if dup >= 0; then tail. */
static result_t parse_fields(size_t n, long dup, const char *tail)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, s_head);
    for (size_t i = 0; i < n; i++)
        dm_buf_printf(&b, "      - {name: f%zu, type: int}\n", i);
    if (dup >= 0)
        dm_buf_printf(&b, "      - {name: f%ld, type: int}\n", dup);
    dm_buf_puts(&b, tail);
    memcpy(strstr(b.data, "primaryKey: id") + 12, "f0", 2);
    result_t r = parse_text(b.data, b.len, NULL);
    dm_buf_free(&b);
    return r;
}

static void expect_has(const result_t *r, const char *needle)
{
    cr_assert_eq(r->rc, DM_ERR_INVALID, "expected a refusal, got %d:\n%s", r->rc, r->text.data);
    cr_assert(strstr(r->text.data, needle), "expected \"%s\" in:\n%.2000s", needle, r->text.data);
}

Test(contract_limits, finds_a_duplicate_at_the_far_end_of_the_largest_enum)
{
    /* 65,535 distinct values, then v0 again: the last line, not the first pair */
    size_t col = 0;
    result_t r = parse_enum_at(DM_CONTRACT_MAX_VALUES - 1, 0, "", &col);
    char want[128];
    snprintf(want, sizeof want, "t.yaml:17:%zu: error: field 'e': values: duplicate value 'v0'",
             col);
    expect_has(&r, want);
    cr_assert_eq(r.diags.count, 1, "one duplicate, one diagnostic:\n%.2000s", r.text.data);
    result_free(&r);
}

Test(contract_limits, accepts_an_enum_at_the_limit)
{
    result_t r = parse_enum(DM_CONTRACT_MAX_VALUES, -1, "");
    cr_assert_eq(r.rc, DM_OK, "%.2000s", r.text.data);
    cr_assert_eq(r.cs[0]->fields[1].nvalues, DM_CONTRACT_MAX_VALUES);
    result_free(&r);
}

Test(contract_limits, refuses_an_enum_over_the_limit_at_its_values)
{
    result_t r = parse_enum(DM_CONTRACT_MAX_VALUES + 1, -1, "");
    expect_has(&r, "t.yaml:17:17: error: field 'e': values lists 65537 values; an enum field "
                   "has at most 65536 (the limit DM_CONTRACT_MAX_VALUES)");
    result_free(&r);
}

Test(contract_limits, finds_a_duplicate_field_at_the_far_end)
{
    result_t r = parse_fields(DM_CONTRACT_MAX_FIELDS - 1, 0, "");
    char want[128];
    snprintf(want, sizeof want,
             "t.yaml:%d:16: error: duplicate field name 'f0' (first declared at line %d)",
             FIRST_FIELD_LINE + DM_CONTRACT_MAX_FIELDS - 1, FIRST_FIELD_LINE);
    expect_has(&r, want);
    result_free(&r);
}

Test(contract_limits, refuses_too_many_fields_at_the_list)
{
    result_t r = parse_fields(DM_CONTRACT_MAX_FIELDS + 1, -1, "");
    expect_has(&r, "t.yaml:14:7: error: spec.schema.fields lists 4097 fields; a contract has at "
                   "most 4096 (the limit DM_CONTRACT_MAX_FIELDS)");
    result_free(&r);
}

Test(contract_limits, resolves_references_to_the_last_of_many_fields)
{
    /* fields f0..f4095 (no "id": primaryKey names the last field instead) */
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, s_head);
    for (size_t i = 0; i < DM_CONTRACT_MAX_FIELDS; i++)
        dm_buf_printf(&b, "      - {name: f%zu, type: int}\n", i);
    dm_buf_puts(&b, "  quality:\n    checks:\n      - {rule: not_null, column: f4095}\n"
                    "      - {rule: not_null, column: f4096}\n");
    memcpy(strstr(b.data, "primaryKey: id") + 12, "f9", 2);
    result_t r = parse_text(b.data, b.len, NULL);
    dm_buf_free(&b);
    /* f9 and f4095 resolve; f4096 does not and gets no listing of 4,096 names */
    char want[160];
    snprintf(want, sizeof want, "t.yaml:%d:34: error: check column 'f4096' is not a field of the "
             "schema", FIRST_FIELD_LINE + DM_CONTRACT_MAX_FIELDS + 3);
    expect_has(&r, want);
    cr_assert_null(strstr(r.text.data, "(fields:"), "%.2000s", r.text.data);
    cr_assert_eq(r.diags.count, 1, "%.2000s", r.text.data);
    result_free(&r);
}

Test(contract_limits, refuses_too_many_checks)
{
    dm_buf_t tail = DM_BUF_INIT;
    dm_buf_puts(&tail, "  quality:\n    checks:\n");
    for (size_t i = 0; i <= DM_CONTRACT_MAX_CHECKS; i++)
        dm_buf_puts(&tail, "      - {rule: not_null, column: f0}\n");
    result_t r = parse_fields(1, -1, tail.data);
    dm_buf_free(&tail);
    expect_has(&r, "t.yaml:17:7: error: spec.quality.checks lists 4097 checks; a contract has at "
                   "most 4096 (the limit DM_CONTRACT_MAX_CHECKS)");
    result_free(&r);
}

/* An in_list over enum e listing values from..0 downwards, then extra. */
static result_t parse_in_list(size_t nenum, size_t from, const char *extra)
{
    dm_buf_t tail = DM_BUF_INIT;
    dm_buf_puts(&tail, "  quality:\n    checks:\n      - rule: in_list\n        column: e\n"
                       "        values: [");
    for (size_t i = from + 1; i-- > 0;)
        dm_buf_printf(&tail, "v%zu, ", i);
    dm_buf_printf(&tail, "%s]\n", extra);
    result_t r = parse_enum(nenum, -1, tail.data);
    dm_buf_free(&tail);
    return r;
}

Test(contract_limits, checks_a_long_in_list_against_a_large_enum)
{
    /* 40,000 + 40,000 values: both lists within DM_YAML_MAX_NODES */
    result_t r = parse_in_list(40000, 39998, "v39999");
    cr_assert_eq(r.rc, DM_OK, "%.2000s", r.text.data);
    cr_assert_eq(r.cs[0]->checks[0].nvalues, 40000);
    result_free(&r);
}

Test(contract_limits, finds_a_duplicate_and_an_unknown_value_at_the_end_of_an_in_list)
{
    result_t r = parse_in_list(DM_CONTRACT_MAX_VALUES, 1000, "v1000, nope");
    expect_has(&r, "in_list: duplicate value 'v1000'");
    /* the message quotes a few values, not 65,536 */
    expect_has(&r, "in_list value 'nope' is not one of the values of enum field 'e': v0, v1, ");
    expect_has(&r, ", ... (65536 values)");
    cr_assert_lt(r.text.len, 4096, "%.2000s", r.text.data);
    result_free(&r);
}

Test(contract_limits, refuses_an_in_list_over_the_limit)
{
    result_t r = parse_in_list(10, DM_CONTRACT_MAX_VALUES - 1, "v1");
    expect_has(&r, "in_list values lists 65537 values; a check has at most 65536 (the limit "
                   "DM_CONTRACT_MAX_VALUES)");
    result_free(&r);
}

Test(contract_limits, finds_duplicate_tags_upstreams_and_products_at_the_far_end)
{
    enum { N = 15000 }; /* 5 YAML nodes each, within DM_YAML_MAX_NODES */
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, s_head);
    dm_buf_puts(&b, "      - {name: id, type: int}\n  interoperability:\n    lineage:\n"
                    "      upstream:\n");
    for (size_t i = 0; i < N; i++)
        dm_buf_printf(&b, "        - {product: p%zu, domain: d}\n", i);
    dm_buf_puts(&b, "        - {product: p0, domain: d}\n"
                    "---\n");
    dm_buf_puts(&b, s_head); /* the same product again */
    dm_buf_puts(&b, "      - {name: id, type: int}\n");
    result_t r = parse_text(b.data, b.len, NULL);
    dm_buf_free(&b);
    expect_has(&r, "upstream d/p0 is listed twice");
    expect_has(&r, "product bench/big is defined twice in this file (documents 1 and 2)");
    result_free(&r);

    dm_buf_t t = DM_BUF_INIT;
    dm_buf_puts(&t, "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: big\n"
                    "  domain: bench\n  version: 1.0.0\n  owner: {team: b, contact: a@b.co}\n"
                    "  tags: [");
    for (size_t i = 0; i < 5 * N; i += 2)
        dm_buf_printf(&t, "t%zu, ", i);
    dm_buf_puts(&t, "t0]\nspec:\n  schema:\n    fields: [{name: x, type: int}]\n");
    r = parse_text(t.data, t.len, NULL);
    dm_buf_free(&t);
    expect_has(&r, "metadata.tags: duplicate tag 't0'");
    cr_assert_eq(r.diags.count, 1, "%.2000s", r.text.data);
    result_free(&r);
}

Test(contract_limits, many_misspelt_references_are_all_counted)
{
    /* 4,096 fields of 60 characters and 4,096 references one edit away:
     * suggestions stop at their budget, the diagnostics at DM_DIAGS_MAX */
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, s_head);
    for (size_t i = 0; i < DM_CONTRACT_MAX_FIELDS; i++)
        dm_buf_printf(&b, "      - {name: f%059zu, type: int}\n", i);
    dm_buf_puts(&b, "  quality:\n    checks:\n");
    for (size_t i = 0; i < DM_CONTRACT_MAX_CHECKS; i++)
        dm_buf_printf(&b, "      - {rule: not_null, column: g%059zu}\n", i);
    char *pk = strstr(b.data, "primaryKey: id");
    memset(pk, ' ', strlen("primaryKey: id")); /* no primary key */
    result_t r = parse_text(b.data, b.len, NULL);
    dm_buf_free(&b);
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert_eq(r.diags.count, DM_DIAGS_MAX, "%.500s", r.text.data);
    expect_has(&r, "check column 'g00000000000000000000000000000000000000000000000000000000000' "
                   "is not a field of the schema");
    result_free(&r);
}
