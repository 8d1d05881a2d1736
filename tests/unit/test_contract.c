/* test_contract.c: the contract parser (suite "contract").
 *
 * Most tests patch one line of a valid base contract and check that the
 * parse fails with a diagnostic at the right place naming the problem, or
 * that the model holds the right value. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contract.h"

#define EX DM_SOURCE_DIR "/docs/examples/"
#define DATA DM_SOURCE_DIR "/tests/data/contracts/"

/* A minimal valid contract; %s is replaced by extra spec text. */
static const char *const s_base = "apiVersion: datamesh.io/v1\n"       /* 1 */
                                  "kind: DataProduct\n"                /* 2 */
                                  "metadata:\n"                        /* 3 */
                                  "  name: orders\n"                   /* 4 */
                                  "  domain: commerce\n"               /* 5 */
                                  "  version: 1.0.0\n"                 /* 6 */
                                  "  owner:\n"                         /* 7 */
                                  "    team: commerce\n"               /* 8 */
                                  "    contact: data@company.com\n"    /* 9 */
                                  "spec:\n"                            /* 10 */
                                  "  schema:\n"                        /* 11 */
                                  "    primaryKey: id\n"               /* 12 */
                                  "    fields:\n"                      /* 13 */
                                  "      - {name: id, type: uuid}\n"   /* 14 */
                                  "      - {name: n, type: int}\n"     /* 15 */
                                  "      - {name: x, type: double}\n"  /* 16 */
                                  "      - {name: s, type: string}\n"  /* 17 */
                                  "      - {name: ts, type: timestamp}\n" /* 18 */
                                  "      - {name: d, type: date}\n"    /* 19 */
                                  "      - {name: st, type: enum, values: [a, b]}\n" /* 20 */
                                  "%s";

typedef struct {
    dm_contract_t **cs;
    size_t n;
    dm_diags_t diags;
    dm_buf_t text; /* formatted diagnostics */
    dm_err rc;
} result_t;

static void result_free(result_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        dm_contract_destroy(&r->cs[i]);
    free(r->cs);
    dm_diags_clear(&r->diags);
    dm_buf_free(&r->text);
}

static result_t parse_text(const char *text, size_t len, const char *basedir)
{
    result_t r = {NULL, 0, DM_DIAGS_INIT, DM_BUF_INIT, DM_OK};
    r.rc = dm_contract_parse("t.yaml", text, len, basedir, &r.cs, &r.n, &r.diags);
    dm_diags_format(&r.diags, &r.text);
    if (!r.text.data)
        dm_buf_puts(&r.text, "");
    return r;
}

static result_t parse(const char *text) { return parse_text(text, strlen(text), NULL); }

/* Parses the base contract with extra spec text appended. */
static result_t parse_base(const char *extra)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, extra);
    result_t r = parse(b.data);
    dm_buf_free(&b);
    return r;
}

/* Parses the base contract with the line starting with `from` replaced. */
static result_t parse_patch(const char *from, const char *to)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "");
    char *p = strstr(b.data, from);
    cr_assert(p, "base has no '%s'", from);
    char *eol = strchr(p, '\n');
    dm_buf_t o = DM_BUF_INIT;
    dm_buf_append(&o, b.data, (size_t)(p - b.data));
    dm_buf_puts(&o, to);
    dm_buf_puts(&o, eol);
    result_t r = parse(o.data);
    dm_buf_free(&b);
    dm_buf_free(&o);
    return r;
}

static void expect_ok(const result_t *r)
{
    cr_assert_eq(r->rc, DM_OK, "expected success, got:\n%s", r->text.data);
    cr_assert_eq(r->diags.count, 0);
}

/* Asserts failure with a diagnostic containing `line:col: error:` and msg. */
static void expect_err(const result_t *r, unsigned line, unsigned col, const char *msg)
{
    cr_assert_neq(r->rc, DM_OK, "expected failure");
    cr_assert_null(r->cs);
    char pos[64];
    snprintf(pos, sizeof pos, "t.yaml:%u:%u: error: ", line, col);
    for (size_t i = 0; i < r->diags.count; i++) {
        const dm_diag_t *d = &r->diags.items[i];
        if (d->line == line && d->col == col && strstr(d->message, msg))
            return;
    }
    cr_assert_fail("no diagnostic %s...%s in:\n%s", pos, msg, r->text.data);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    dm_buf_t b = DM_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        dm_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return dm_buf_steal(&b);
}

static result_t parse_file(const char *path)
{
    result_t r = {NULL, 0, DM_DIAGS_INIT, DM_BUF_INIT, DM_OK};
    r.rc = dm_contract_parse_file(path, &r.cs, &r.n, &r.diags);
    dm_diags_format(&r.diags, &r.text);
    if (!r.text.data)
        dm_buf_puts(&r.text, "");
    return r;
}

static char *canonical(const dm_contract_t *c)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_contract_canonical(c, &b);
    return dm_buf_steal(&b);
}

/* ---- the examples ---- */

Test(contract, parses_orders_example)
{
    result_t r = parse_file(EX "orders.yaml");
    expect_ok(&r);
    cr_assert_eq(r.n, 1);
    const dm_contract_t *c = r.cs[0];
    cr_assert_str_eq(c->name, "orders");
    cr_assert_str_eq(c->domain, "commerce");
    cr_assert_eq(c->version_major, 1);
    cr_assert_eq(c->nfields, 5);
    cr_assert_eq(c->npk, 1);
    cr_assert_str_eq(c->fields[c->pk[0]].name, "orderId");
    cr_assert_eq(c->fields[2].type, DM_FT_DOUBLE);
    cr_assert(c->fields[2].has_exclusive_minimum);
    cr_assert_eq(c->fields[3].nvalues, 4);
    cr_assert_eq(c->freshness_ms, 5 * 60 * 1000);
    cr_assert_float_eq(c->availability, 99.9, 1e-9);
    cr_assert_float_eq(c->latency_percentile, 99, 1e-9);
    cr_assert_eq(c->latency_ms, 1000);
    cr_assert_eq(c->nchecks, 3);
    cr_assert_eq(c->checks[2].rule, DM_CHECK_ROW_COUNT_DELTA);
    cr_assert(c->checks[2].threshold_is_percent);
    cr_assert_float_eq(c->checks[2].threshold, 20, 1e-9);
    cr_assert_eq(c->access, DM_ACCESS_RESTRICTED);
    cr_assert_eq(c->retention_ms, 365LL * 24 * 3600 * 1000);
    cr_assert_eq(c->encryption, DM_ENC_AES256);
    cr_assert_eq(c->protocols, DM_PROTO_GRAPHQL | DM_PROTO_REST);
    cr_assert_eq(c->nupstream, 2);
    cr_assert_str_eq(c->upstream[1].domain, "identity");
    cr_assert_eq(c->npartitions, 1);
    cr_assert_eq(c->partitions[0].granularity, DM_GRAN_DAY);
    result_free(&r);
}

Test(contract, parses_minimal_base)
{
    result_t r = parse_base("");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_eq(c->nfields, 7);
    cr_assert(c->fields[0].primary_key);
    cr_assert(c->fields[0].required, "a primary key field becomes required");
    cr_assert_not(c->fields[1].required, "required defaults to false");
    cr_assert_eq(c->access, DM_ACCESS_RESTRICTED, "access defaults to restricted");
    cr_assert_eq(c->encryption, DM_ENC_NONE);
    cr_assert_eq(c->freshness_ms, -1);
    cr_assert_eq(c->retention_ms, -1);
    cr_assert_eq(c->fields[1].min_length, -1);
    result_free(&r);
}

/* Canonical text parses back (basedir NULL) to the same canonical text. */
static void assert_round_trip(const dm_contract_t *c)
{
    char *t1 = canonical(c);
    result_t r = parse_text(t1, strlen(t1), NULL);
    expect_ok(&r);
    cr_assert_eq(r.n, 1);
    char *t2 = canonical(r.cs[0]);
    cr_assert_str_eq(t1, t2);
    const dm_contract_t *d = r.cs[0];
    cr_assert_str_eq(c->name, d->name);
    cr_assert_eq(c->nfields, d->nfields);
    for (size_t i = 0; i < c->nfields; i++) {
        cr_assert_str_eq(c->fields[i].name, d->fields[i].name);
        cr_assert_eq(c->fields[i].type, d->fields[i].type);
        cr_assert_eq(c->fields[i].required, d->fields[i].required);
        cr_assert_eq(c->fields[i].nvalues, d->fields[i].nvalues);
        cr_assert_eq(c->fields[i].has_exclusive_minimum, d->fields[i].has_exclusive_minimum);
    }
    cr_assert_eq(c->npk, d->npk);
    cr_assert_eq(c->nchecks, d->nchecks);
    cr_assert_eq(c->freshness_ms, d->freshness_ms);
    cr_assert_eq(c->protocols, d->protocols);
    cr_assert_eq(c->nupstream, d->nupstream);
    uint8_t h1[DM_CONTRACT_HASH_BYTES], h2[DM_CONTRACT_HASH_BYTES];
    dm_contract_hash(c, h1);
    dm_contract_hash(d, h2);
    cr_assert_arr_eq(h1, h2, sizeof h1);
    free(t1);
    free(t2);
    result_free(&r);
}

Test(contract, canonical_round_trips_orders)
{
    result_t r = parse_file(EX "orders.yaml");
    expect_ok(&r);
    assert_round_trip(r.cs[0]);
    result_free(&r);
}

Test(contract, canonical_round_trips_avro_as_inline)
{
    result_t r = parse_file(EX "orders-avro.yaml");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert(c->schema_from_avro);
    cr_assert_str_eq(c->schema_location, "orders.avsc");
    char *t = canonical(c);
    cr_assert(strstr(t, "\"type\":\"inline\""), "%s", t);
    cr_assert_null(strstr(t, "orders.avsc"), "%s", t);
    free(t);
    assert_round_trip(c);
    result_free(&r);
}

Test(contract, canonical_sorts_keys_and_types_scalars)
{
    result_t r = parse_base("  x-b: {z: 1, a: \"2\", m: [true, null, 1.5e3, 'no']}\n");
    expect_ok(&r);
    char *t = canonical(r.cs[0]);
    cr_assert(strstr(t, "\"x-b\":{\"a\":\"2\",\"m\":[true,null,1.5e3,\"no\"],\"z\":1}"), "%s", t);
    cr_assert_eq(strncmp(t, "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":", 37), 0, "%s", t);
    free(t);
    assert_round_trip(r.cs[0]);
    result_free(&r);
}

Test(contract, canonical_escapes_strings_yaml_reads_back)
{
    result_t r = parse_base("  x-s: \"tab\\there \\\"q\\\" back\\\\ nel\\N ls\\L del\\x7f c1\\x80 bom\\uFEFF\"\n");
    expect_ok(&r);
    assert_round_trip(r.cs[0]);
    result_free(&r);
}

Test(contract, hash_differs_when_content_differs)
{
    result_t a = parse_base(""), b = parse_patch("  version:", "  version: 1.0.1");
    expect_ok(&a);
    expect_ok(&b);
    uint8_t ha[DM_CONTRACT_HASH_BYTES], hb[DM_CONTRACT_HASH_BYTES];
    dm_contract_hash(a.cs[0], ha);
    dm_contract_hash(b.cs[0], hb);
    cr_assert(memcmp(ha, hb, sizeof ha) != 0);
    cr_assert_lt(dm_contract_version_cmp(a.cs[0], b.cs[0]), 0);
    result_free(&a);
    result_free(&b);
}

Test(contract, hash_ignores_key_order_and_comments)
{
    result_t a = parse_base("");
    result_t b = parse("# a comment\nkind: DataProduct\napiVersion: datamesh.io/v1\n"
                       "spec:\n  schema:\n    fields:\n      - {type: uuid, name: id}\n"
                       "      - {name: n, type: int}\n      - {name: x, type: double}\n"
                       "      - {name: s, type: string}\n      - {name: ts, type: timestamp}\n"
                       "      - {name: d, type: date}\n      - {name: st, type: enum, values: [a, b]}\n"
                       "    primaryKey: id\n"
                       "metadata: {version: 1.0.0, domain: commerce, name: orders,\n"
                       "  owner: {contact: data@company.com, team: commerce}}\n");
    expect_ok(&a);
    expect_ok(&b);
    uint8_t ha[DM_CONTRACT_HASH_BYTES], hb[DM_CONTRACT_HASH_BYTES];
    dm_contract_hash(a.cs[0], ha);
    dm_contract_hash(b.cs[0], hb);
    cr_assert_arr_eq(ha, hb, sizeof ha);
    result_free(&a);
    result_free(&b);
}

/* ---- the top level and metadata ---- */

Test(contract, rejects_missing_api_version)
{
    result_t r = parse_patch("apiVersion:", "");
    expect_err(&r, 2, 1, "the contract is missing the required key 'apiVersion'");
    result_free(&r);
}

Test(contract, rejects_wrong_api_version)
{
    result_t r = parse_patch("apiVersion:", "apiVersion: datamesh.io/v2");
    expect_err(&r, 1, 13, "apiVersion 'datamesh.io/v2' is not supported; expected datamesh.io/v1");
    result_free(&r);
}

Test(contract, rejects_wrong_kind_with_suggestion)
{
    result_t r = parse_patch("kind:", "kind: Dataproduct");
    expect_err(&r, 2, 7, "kind 'Dataproduct' is not one of DataProduct (did you mean 'DataProduct'?)");
    result_free(&r);
}

Test(contract, rejects_unknown_key_with_suggestion)
{
    result_t r = parse_patch("  version:", "  versoin: 1.0.0");
    expect_err(&r, 6, 3, "unknown key 'versoin' in metadata (valid: name, domain, version, owner, "
                         "description, tags; or an x- extension key) (did you mean 'version'?)");
    expect_err(&r, 4, 3, "metadata is missing the required key 'version'");
    result_free(&r);
}

Test(contract, keeps_x_keys_anywhere)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  x-owner-slack: '#commerce'");
    expect_ok(&r);
    char *t = canonical(r.cs[0]);
    cr_assert(strstr(t, "\"x-owner-slack\":\"#commerce\""), "%s", t);
    free(t);
    result_free(&r);
}

Test(contract, rejects_duplicate_key)
{
    result_t r = parse_patch("  domain:", "  domain: commerce\n  domain: sales");
    expect_err(&r, 6, 3, "duplicate key 'domain' (first defined at line 5)");
    result_free(&r);
}

Test(contract, rejects_bad_name)
{
    result_t r = parse_patch("  name:", "  name: Orders");
    expect_err(&r, 4, 9, "metadata.name 'Orders' is not a valid name: it must match ^[a-z][a-z0-9_-]{0,62}$");
    result_free(&r);
}

Test(contract, rejects_too_long_domain)
{
    result_t r = parse_patch("  domain:", "  domain: a234567890123456789012345678901234567890123456789012345678901234");
    expect_err(&r, 5, 11, "metadata.domain 'a2345678901234567890");
    result_free(&r);
}

Test(contract, rejects_two_part_version)
{
    result_t r = parse_patch("  version:", "  version: 1.0");
    expect_err(&r, 6, 12, "metadata.version '1.0' is not a semantic version MAJOR.MINOR.PATCH");
    result_free(&r);
}

Test(contract, rejects_version_with_leading_zero)
{
    result_t r = parse_patch("  version:", "  version: 1.02.0");
    expect_err(&r, 6, 12, "is not a semantic version");
    result_free(&r);
}

Test(contract, rejects_version_overflowing_uint64)
{
    result_t r = parse_patch("  version:", "  version: 1.0.18446744073709551616");
    expect_err(&r, 6, 12, "is not a semantic version");
    result_free(&r);
}

Test(contract, accepts_max_uint64_version_parts)
{
    result_t r = parse_patch("  version:", "  version: 18446744073709551615.0.2");
    expect_ok(&r);
    cr_assert_eq(r.cs[0]->version_major, UINT64_MAX);
    cr_assert_eq(r.cs[0]->version_patch, 2);
    result_free(&r);
}

Test(contract, rejects_bad_email)
{
    const char *bad[] = {"data", "@company.com", "a@b@c.com", "data@company", "da ta@company.com",
                         "data@.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "    contact: '%s'", bad[i]);
        result_t r = parse_patch("    contact:", line);
        expect_err(&r, 9, 14, "is not an e-mail address");
        result_free(&r);
    }
}

Test(contract, rejects_missing_owner_team)
{
    result_t r = parse_patch("    team:", "");
    expect_err(&r, 9, 5, "metadata.owner is missing the required key 'team'");
    result_free(&r);
}

Test(contract, reads_description_and_tags)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  description: Orders\n  tags: [a, b]");
    expect_ok(&r);
    cr_assert_str_eq(r.cs[0]->description, "Orders");
    cr_assert_eq(r.cs[0]->ntags, 2);
    cr_assert_str_eq(r.cs[0]->tags[1], "b");
    result_free(&r);
}

Test(contract, rejects_duplicate_tag)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  tags: [a, a]");
    expect_err(&r, 7, 13, "duplicate tag 'a'");
    result_free(&r);
}

Test(contract, rejects_missing_schema)
{
    result_t r = parse("apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: o\n"
                       "  domain: c\n  version: 1.0.0\n  owner: {team: t, contact: a@b.co}\n"
                       "spec:\n  sla: {freshness: 5m}\n");
    expect_err(&r, 9, 3, "spec is missing the required key 'schema'");
    result_free(&r);
}

Test(contract, reports_all_problems_sorted)
{
    result_t r = parse_base("  policies: {access: secret}\n  sla: {availability: 0}\n");
    cr_assert_eq(r.diags.count, 2, "%s", r.text.data);
    for (size_t i = 1; i < r.diags.count; i++)
        cr_assert_leq(r.diags.items[i - 1].line, r.diags.items[i].line);
    result_free(&r);
}

Test(contract, diagnostics_format_is_file_line_col)
{
    result_t r = parse_patch("kind:", "kind: Product");
    cr_assert_eq(r.diags.count, 1);
    cr_assert_eq(strncmp(r.text.data, "t.yaml:2:7: error: kind 'Product' is not one of DataProduct", 58), 0,
                 "%s", r.text.data);
    cr_assert_eq(r.text.data[r.text.len - 1], '\n');
    result_free(&r);
}

/* ---- hostile and malformed YAML ---- */

Test(contract, rejects_empty_file)
{
    result_t r = parse_text("", 0, NULL);
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "t.yaml:1:1: error: no contract: the file is empty"), "%s",
              r.text.data);
    result_free(&r);
}

Test(contract, rejects_comment_only_file)
{
    result_t r = parse("# nothing here\n\n   # still nothing\n");
    expect_err(&r, 1, 1, "no contract: the file is empty or holds only comments");
    result_free(&r);
}

Test(contract, rejects_tab_in_indentation)
{
    result_t r = parse_patch("  domain:", "\tdomain: commerce");
    expect_err(&r, 5, 1, "TAB character in indentation");
    result_free(&r);
}

Test(contract, accepts_tab_inside_quoted_scalar)
{
    result_t r = parse_patch("  version:", "  version: 1.0.0\n  description: \"a\n\tb\"");
    expect_ok(&r);
    cr_assert_str_eq(r.cs[0]->description, "a b");
    result_free(&r);
}

Test(contract, rejects_invalid_utf8_with_position)
{
    result_t r = parse_patch("    team:", "    team: caf\xc3\x28");
    expect_err(&r, 8, 14, "invalid UTF-8 (byte 0xc3)");
    result_free(&r);
}

Test(contract, rejects_nul_byte)
{
    const char text[] = "apiVersion: datamesh.io/v1\nkind: Data\0Product\n";
    result_t r = parse_text(text, sizeof text - 1, NULL);
    expect_err(&r, 2, 11, "NUL byte");
    result_free(&r);
}

Test(contract, rejects_file_over_limit)
{
    size_t len = DM_CONTRACT_MAX_FILE + 1;
    char *big = malloc(len);
    memset(big, '#', len);
    result_t r = parse_text(big, len, NULL);
    cr_assert_eq(r.rc, DM_ERR_TOOBIG);
    cr_assert(strstr(r.text.data, "1048577 bytes; at most 1048576"), "%s", r.text.data);
    free(big);
    result_free(&r);
}

Test(contract, rejects_billion_laughs_fast)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 10; i++) {
        dm_buf_printf(&b, "a%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++)
            dm_buf_printf(&b, "%s*a%d", j ? ", " : "", i - 1);
        dm_buf_puts(&b, "]\n");
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    result_t r = parse(b.data);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "alias expansion exceeds the limit"), "%s", r.text.data);
    cr_assert_lt(ms, 200.0, "took %.1f ms", ms);
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, accepts_small_aliases)
{
    result_t r = parse_base("  x-common: &c {a: 1}\n  x-use: *c\n");
    expect_ok(&r);
    char *t = canonical(r.cs[0]);
    cr_assert(strstr(t, "\"x-use\":{\"a\":1}"), "%s", t);
    free(t);
    result_free(&r);
}

Test(contract, rejects_undefined_alias)
{
    result_t r = parse_base("  x-use: *nothing\n");
    expect_err(&r, 21, 10, "alias '*nothing' refers to no anchor");
    result_free(&r);
}

Test(contract, rejects_nesting_deeper_than_limit)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, "x-deep: ");
    for (int i = 0; i < 100; i++)
        dm_buf_putc(&b, '[');
    for (int i = 0; i < 100; i++)
        dm_buf_putc(&b, ']');
    dm_buf_putc(&b, '\n');
    result_t r = parse(b.data);
    expect_err(&r, 1, 9 + DM_CONTRACT_MAX_DEPTH - 1, "nesting deeper than 64 levels");
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, accepts_nesting_at_limit)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "  x-deep: ");
    for (int i = 0; i < DM_CONTRACT_MAX_DEPTH - 2; i++)
        dm_buf_putc(&b, '[');
    for (int i = 0; i < DM_CONTRACT_MAX_DEPTH - 2; i++)
        dm_buf_putc(&b, ']');
    dm_buf_putc(&b, '\n');
    result_t r = parse(b.data);
    expect_ok(&r);
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, reports_yaml_syntax_error_position)
{
    result_t r = parse("apiVersion: datamesh.io/v1\nkind: [DataProduct\n");
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "t.yaml:3:1: error: YAML syntax error:"), "%s", r.text.data);
    result_free(&r);
}

Test(contract, rejects_yaml_tags)
{
    result_t r = parse_patch("  version:", "  version: !!str 1.0.0");
    expect_err(&r, 6, 12, "YAML tag 'tag:yaml.org,2002:str' is not supported");
    result_free(&r);
}

Test(contract, rejects_non_mapping_document)
{
    result_t r = parse("- a\n- b\n");
    expect_err(&r, 1, 1, "the contract must be a mapping, got a sequence");
    result_free(&r);
}

Test(contract, parses_several_documents)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "");
    dm_buf_puts(&b, "---\n");
    dm_buf_printf(&b, s_base, "");
    char *p = strstr(strstr(b.data, "---"), "name: orders");
    memcpy(p, "name: order2", 12);
    result_t r = parse(b.data);
    expect_ok(&r);
    cr_assert_eq(r.n, 2);
    cr_assert_str_eq(r.cs[1]->name, "order2");
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, reports_problems_of_every_document)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, "  sla: {availability: 0}\n");
    dm_buf_puts(&b, "---\n");
    dm_buf_printf(&b, s_base, "  sla: {availability: 101}\n");
    result_t r = parse(b.data);
    expect_err(&r, 21, 23, "availability is a percentage");
    expect_err(&r, 43, 23, "availability is a percentage");
    expect_err(&r, 23, 1, "product commerce/orders is defined twice in this file");
    dm_buf_free(&b);
    result_free(&r);
}

Test(contract, refuses_remote_avro_location_of_seed)
{
    result_t r = parse_file(DATA "seed.yaml");
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "seed.yaml:15:15: error: spec.schema.location "
                                  "'s3://schemas/commerce/orders/v1.avsc' is remote"),
              "%s", r.text.data);
    cr_assert_eq(r.diags.count, 1, "%s", r.text.data);
    result_free(&r);
}

Test(contract, parse_file_reports_missing_file)
{
    result_t r = parse_file(DATA "does-not-exist.yaml");
    cr_assert_eq(r.rc, DM_ERR_IO);
    cr_assert(strstr(r.text.data, "does-not-exist.yaml: error: cannot read the file"), "%s",
              r.text.data);
    result_free(&r);
}

Test(contract, parse_file_matches_parse_of_its_text)
{
    size_t len;
    char *text = read_all(EX "orders.yaml", &len);
    result_t a = parse_text(text, len, NULL), b = parse_file(EX "orders.yaml");
    expect_ok(&a);
    expect_ok(&b);
    char *ta = canonical(a.cs[0]), *tb = canonical(b.cs[0]);
    cr_assert_str_eq(ta, tb);
    free(ta);
    free(tb);
    free(text);
    result_free(&a);
    result_free(&b);
}
