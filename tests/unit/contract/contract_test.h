/* contract_test.h: helpers shared by the contract parser's tests (suite
 * "contract"): parse text or files, patch a line of a valid base contract,
 * and assert a diagnostic at line:col or a canonical round trip. */
#ifndef DM_CONTRACT_TEST_H
#define DM_CONTRACT_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "contract/contract.h"

#define EX DM_SOURCE_DIR "/docs/examples/"
#define DATA DM_SOURCE_DIR "/tests/data/contracts/"

/* A minimal valid contract; %s is replaced by extra spec text. */
__attribute__((unused)) static const char *const s_base = "apiVersion: datamesh.io/v1\n"       /* 1 */
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

static inline void result_free(result_t *r)
{
    dm_contract_list_destroy(&r->cs, r->n);
    dm_diags_clear(&r->diags);
    dm_buf_free(&r->text);
}

static inline result_t parse_text(const char *text, size_t len, const char *basedir)
{
    result_t r = {NULL, 0, DM_DIAGS_INIT, DM_BUF_INIT, DM_OK};
    r.rc = dm_contract_parse("t.yaml", text, len, basedir, &r.cs, &r.n, &r.diags);
    dm_diags_format(&r.diags, &r.text);
    if (!r.text.data)
        dm_buf_puts(&r.text, "");
    return r;
}

static inline result_t parse(const char *text) { return parse_text(text, strlen(text), NULL); }

/* Parses the base contract with extra spec text appended. */
static inline result_t parse_base(const char *extra)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, s_base, extra);
    result_t r = parse(b.data);
    dm_buf_free(&b);
    return r;
}

/* Parses the base contract with the line starting with `from` replaced. */
static inline result_t parse_patch(const char *from, const char *to)
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

static inline void expect_ok(const result_t *r)
{
    cr_assert_eq(r->rc, DM_OK, "expected success, got:\n%s", r->text.data);
    cr_assert_eq(r->diags.count, 0);
}

/* Asserts failure with a diagnostic containing `line:col: error:` and msg. */
static inline void expect_err(const result_t *r, unsigned line, unsigned col, const char *msg)
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

static inline char *read_all(const char *path, size_t *len)
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

static inline result_t parse_file(const char *path)
{
    result_t r = {NULL, 0, DM_DIAGS_INIT, DM_BUF_INIT, DM_OK};
    r.rc = dm_contract_parse_file(path, &r.cs, &r.n, &r.diags);
    dm_diags_format(&r.diags, &r.text);
    if (!r.text.data)
        dm_buf_puts(&r.text, "");
    return r;
}

static inline char *canonical(const dm_contract_t *c)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_contract_canonical(c, &b);
    return dm_buf_steal(&b);
}

/* Canonical text parses back (basedir NULL) to the same canonical text. */
static inline void assert_round_trip(const dm_contract_t *c)
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

#endif
