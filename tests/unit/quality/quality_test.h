/* quality_test.h: the fixture the quality checks' test files share: a
 * fresh store in a temporary directory per test, and product d.p
 * registered with a contract parsed from YAML (its schema, its checks). */
#ifndef DM_QUALITY_TEST_H
#define DM_QUALITY_TEST_H

#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "quality/quality.h"
#include "quality/quality_priv.h"
#include "record/schema.h"
#include "storage/store.h"

#define T_NOW 1800000000000LL /* a fixed "now" in Unix ms */

static char s_dir[PATH_MAX];
static dm_store_t *s_store;
static dm_contract_t **s_list;
static size_t s_n;
static dm_contract_t *s_c;
static dm_schema_t *s_schema;
static uint32_t s_pid;

/* Opens a fresh store in a temporary directory named after name. */
static inline void q_open(const char *name)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, name));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
}

/* Frees the contract and schema, the store, removes the directory. */
static inline void q_close(void)
{
    dm_schema_destroy(&s_schema);
    dm_contract_list_destroy(&s_list, s_n);
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

/* Parses contract text (YAML) into s_list, s_c and s_schema. */
static inline void q_parse(const char *text)
{
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse("t.yaml", text, strlen(text), NULL, &s_list, &s_n, &diags);
    dm_buf_t msg = DM_BUF_INIT;
    dm_diags_format(&diags, &msg);
    cr_assert_eq(rc, DM_OK, "%s", msg.data ? msg.data : "");
    dm_buf_free(&msg);
    dm_diags_clear(&diags);
    s_c = s_list[0];
    cr_assert_eq(dm_schema_new(s_c, &s_schema, NULL), DM_OK);
}

/* Parses contract text and registers product d.p (s_pid). */
static inline void q_product(const char *text)
{
    q_parse(text);
    dm_product_t in = {0}, out = {0};
    in.domain = "d";
    in.name = "p";
    in.version = "1.0.0";
    in.version_major = 1;
    in.contract = "{}";
    in.contract_len = 2;
    dm_register_outcome o;
    cr_assert_eq(dm_store_product_register(s_store, &in, &o, &out, NULL, NULL), DM_OK);
    s_pid = out.id;
    dm_store_product_clear(&out);
}

#endif
