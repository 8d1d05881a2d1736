/* policy_test.h: helpers of the policy tests (suite "policy"): keys made of
 * one repeated byte, documents and sets from YAML text, products and
 * decisions in one line. */
#ifndef DM_POLICY_TEST_H
#define DM_POLICY_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

/* "KEY_AA" is 64 'a's: the key of 32 bytes 0xaa. */
#define HEX_AA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_BB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_CC "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_DD "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define HEX_EE "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

typedef struct {
    uint8_t b[DM_POLICY_KEY_BYTES];
} key_t_;

static inline key_t_ key_of(uint8_t byte)
{
    key_t_ k;
    memset(k.b, byte, sizeof k.b);
    return k;
}

#define HDR "apiVersion: datamesh.io/v1\n"

/* Parses text as one document; asserts success. */
static inline dm_policy_doc_t *doc_ok(const char *text)
{
    dm_policy_doc_t *d = NULL;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_policy_doc_parse("t.yaml", text, strlen(text), &d, &diags);
    dm_buf_t out = DM_BUF_INIT;
    dm_diags_format(&diags, &out);
    cr_assert_eq(rc, DM_OK, "expected success, got:\n%s", out.data ? out.data : "");
    dm_buf_free(&out);
    dm_diags_clear(&diags);
    return d;
}

/* Parses text; asserts failure with a diagnostic at line:col holding msg. */
static inline void doc_err(const char *text, unsigned line, unsigned col, const char *msg)
{
    dm_policy_doc_t *d = NULL;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_policy_doc_parse("t.yaml", text, strlen(text), &d, &diags);
    dm_buf_t out = DM_BUF_INIT;
    dm_diags_format(&diags, &out);
    cr_assert_neq(rc, DM_OK, "expected failure");
    cr_assert_null(d);
    bool found = false;
    for (size_t i = 0; i < diags.count && !found; i++)
        found = diags.items[i].line == line && diags.items[i].col == col &&
                strstr(diags.items[i].message, msg);
    cr_assert(found, "no diagnostic at %u:%u with '%s' in:\n%s", line, col, msg,
              out.data ? out.data : "");
    dm_buf_free(&out);
    dm_diags_clear(&diags);
}

/* A sealed set of the NULL-terminated documents texts. */
static inline dm_policy_set_t *set_of(uint64_t version, const char *const *texts)
{
    dm_policy_set_t *s = NULL;
    cr_assert_eq(dm_policy_set_new(version, &s), DM_OK);
    for (size_t i = 0; texts[i]; i++) {
        dm_policy_doc_t *d = doc_ok(texts[i]);
        dm_buf_t why = DM_BUF_INIT;
        cr_assert_eq(dm_policy_set_add(s, &d, &why), DM_OK, "%s", why.data);
        dm_buf_free(&why);
    }
    cr_assert_eq(dm_policy_set_seal(s), DM_OK);
    return s;
}

/* commerce/orders, restricted unless told, with an email (pii) and an
 * amount field, tagged sales. */
typedef struct {
    const char *tags[1];
    const char *fields[2];
    const char *cls[2];
    const char *readers[4];
    dm_policy_product_t p;
} product_t_;

static inline void product_init(product_t_ *x, dm_access access)
{
    memset(x, 0, sizeof *x);
    x->tags[0] = "sales";
    x->fields[0] = "email";
    x->fields[1] = "amount";
    x->cls[0] = "pii";
    x->p = (dm_policy_product_t){"commerce", "orders", x->tags, 1, access, x->readers, 0,
                                 x->fields, x->cls, 2};
}

/* The owner: domain commerce, admin key 0xaa. */
static const uint8_t s_admins[1][DM_POLICY_KEY_BYTES] = {{0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
                                                          0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
                                                          0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
                                                          0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa}};
__attribute__((unused)) static const dm_policy_owner_t s_owner = {"commerce", s_admins, 1};

/* Decides for the caller key (NULL: unverified). */
static inline dm_policy_decision_t decide(const dm_policy_set_t *gov, const uint8_t *key,
                                          dm_policy_action a, const dm_policy_product_t *p)
{
    dm_policy_request_t req = {key, a, p};
    dm_policy_decision_t d;
    cr_assert_eq(dm_policy_decide(gov, &s_owner, &req, &d), DM_OK);
    return d;
}

#endif
