/* test_ingest_policy.c: the register hook of the write pipeline (suite
 * "ingest_policy"): a register is checked against the contract rules of
 * the mesh's governance set, and a refusal names every broken rule and the
 * set's version; without a set nothing changes. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "policy/policy.h"
#include "record/registry.h"
#include "transport/rpc.h"

#define S_DOMAIN "commerce"
#define S_POLICY_VERSION 7

/* A valid contract without sla.freshness, and the same with it. */
#define S_CONTRACT(SPEC_EXTRA)                                                                    \
    "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":\"DataProduct\",\"metadata\":{\"domain\":"      \
    "\"commerce\",\"name\":\"orders\",\"owner\":{\"contact\":\"a@b.co\",\"team\":\"t\"},"         \
    "\"version\":\"1.0.0\"},\"spec\":{" SPEC_EXTRA "\"schema\":{\"fields\":[{\"name\":\"id\","   \
    "\"type\":\"int\"}],\"primaryKey\":\"id\",\"type\":\"inline\"}}}"
static const char s_no_freshness[] = S_CONTRACT("");
static const char s_freshness[] = S_CONTRACT("\"sla\":{\"freshness\":\"5m\"},");

static const char s_baseline[] = "apiVersion: datamesh.io/v1\n"
                                 "kind: Policy\n"
                                 "metadata: {name: baseline}\n"
                                 "spec:\n"
                                 "  contractRules:\n"
                                 "    - {name: require-freshness, require: sla.freshness}\n";

static dm_registry_t *s_reg;
static dm_policy_set_t *s_gov;
static uint8_t *s_env;
static size_t s_env_len;

static void s_init(void)
{
    cr_assert_eq(dm_registry_new(&s_reg), DM_OK);
    dm_policy_doc_t *doc = NULL;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_policy_doc_parse("baseline", s_baseline, strlen(s_baseline), &doc, &diags),
                 DM_OK);
    dm_diags_clear(&diags);
    cr_assert_eq(dm_policy_set_new(S_POLICY_VERSION, &s_gov), DM_OK);
    cr_assert_eq(dm_policy_set_add(s_gov, &doc, NULL), DM_OK);
    cr_assert_eq(dm_policy_set_seal(s_gov), DM_OK);
}

static void s_fini(void)
{
    dm_policy_set_unref(&s_gov);
    dm_registry_destroy(&s_reg);
    free(s_env);
}

TestSuite(ingest_policy, .init = s_init, .fini = s_fini);

/* Packs a RegisterReq carrying contract into s_env. */
static void s_register(const char *contract)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__RegisterReq req = DM__REGISTER_REQ__INIT;
    req.contract.data = (uint8_t *)contract;
    req.contract.len = strlen(contract);
    env.body_case = DM__ENVELOPE__BODY_REGISTER_REQ;
    env.register_req = &req;
    free(s_env);
    s_env_len = dm__envelope__get_packed_size(&env);
    s_env = malloc(s_env_len);
    cr_assert_not_null(s_env);
    dm__envelope__pack(&env, s_env);
}

Test(ingest_policy, refuses_a_contract_that_breaks_a_rule_naming_rule_and_version)
{
    s_register(s_no_freshness);
    dm_buf_t text = DM_BUF_INIT;
    cr_assert_eq(dm_ingest_check_policy(s_reg, S_DOMAIN, s_gov, s_env, s_env_len, &text),
                 DM_ERR_DENIED);
    cr_assert_not_null(text.data);
    cr_expect_not_null(strstr(text.data, "commerce/orders"), "%s", text.data);
    cr_expect_not_null(strstr(text.data, "require-freshness"), "%s", text.data);
    cr_expect_not_null(strstr(text.data, "version 7"), "%s", text.data);
    dm_buf_free(&text);
}

Test(ingest_policy, takes_a_contract_that_keeps_the_rules)
{
    s_register(s_freshness);
    cr_assert_eq(dm_ingest_check_policy(s_reg, S_DOMAIN, s_gov, s_env, s_env_len, NULL), DM_OK);
}

Test(ingest_policy, without_a_governance_set_only_the_contract_counts)
{
    s_register(s_no_freshness);
    cr_assert_eq(dm_ingest_check_policy(s_reg, S_DOMAIN, NULL, s_env, s_env_len, NULL), DM_OK);
}

Test(ingest_policy, another_domain_is_refused_before_the_rules)
{
    static const char other[] =
        "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":\"DataProduct\",\"metadata\":{\"domain\":"
        "\"billing\",\"name\":\"orders\",\"owner\":{\"contact\":\"a@b.co\",\"team\":\"t\"},"
        "\"version\":\"1.0.0\"},\"spec\":{\"schema\":{\"fields\":[{\"name\":\"id\",\"type\":"
        "\"int\"}],\"primaryKey\":\"id\",\"type\":\"inline\"}}}";
    s_register(other);
    dm_buf_t text = DM_BUF_INIT;
    cr_assert_eq(dm_ingest_check_policy(s_reg, S_DOMAIN, s_gov, s_env, s_env_len, &text),
                 DM_ERR_DENIED);
    cr_expect_not_null(strstr(text.data, "serves domain 'commerce'"), "%s", text.data);
    cr_expect_null(strstr(text.data, "require-freshness"), "%s", text.data);
    dm_buf_free(&text);
}
