/* fuzz_policy.c: governance documents and PolicyTest cases over any bytes,
 * as a node judges a gov/doc entry from the catalog and dmctl reads a cases
 * file. A document that parses must join a set, seal, and give decisions
 * that are consistent (an allowed decision has no reason; a denied one has
 * a rule and a reason; masks cover the product's fields); the same bytes
 * are also run as a cases file against that set. */
#include <string.h>

#include "base/log.h"
#include "fuzz.h"
#include "policy/policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_policy", DM_LOG_ERR);
    return 0;
}

static void s_decide_all(const dm_policy_set_t *s)
{
    static const uint8_t admin[1][DM_POLICY_KEY_BYTES] = {{1}};
    const dm_policy_owner_t owner = {"commerce", admin, 1};
    const char *tags[] = {"sales"}, *fields[] = {"email", "amount"}, *cls[] = {"pii", NULL};
    const char *readers[] = {"group:analysts", "0202020202020202020202020202020202020202020202020202020202020202"};
    dm_policy_product_t p = {"commerce", "orders", tags, 1, DM_ACCESS_RESTRICTED, readers, 2,
                             fields, cls, 2};
    uint8_t key[DM_POLICY_KEY_BYTES];
    for (int k = 0; k < 3; k++) {
        memset(key, k, sizeof key);
        for (int a = 0; a < DM_POLICY__ACTIONS; a++) {
            dm_policy_request_t req = {k == 0 ? NULL : key, (dm_policy_action)a, &p};
            dm_policy_decision_t d;
            if (dm_policy_decide(s, &owner, &req, &d) != DM_OK)
                continue;
            DM_FUZZ_CHECK(d.rule[0]);
            DM_FUZZ_CHECK(d.allow ? !d.reason[0] : d.reason[0] != 0);
            DM_FUZZ_CHECK(!d.masks || d.nmasks == p.nfields);
            DM_FUZZ_CHECK(d.allow || (!d.masks && !d.row_filter));
            dm_policy_decision_clear(&d);
            dm_buf_t out = DM_BUF_INIT;
            dm_policy_explain(s, &owner, &req, &out);
            DM_FUZZ_CHECK(out.len > 0);
            dm_buf_free(&out);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_policy_doc_t *doc = NULL;
    dm_policy_set_t *s = NULL;
    if (dm_policy_set_new(1, &s) != DM_OK)
        return 0;
    if (dm_policy_doc_parse("fuzz", (const char *)data, size, &doc, &diags) == DM_OK) {
        DM_FUZZ_CHECK(diags.count == 0 && doc);
        DM_FUZZ_CHECK(dm_policy_doc_name(doc)[0] && dm_policy_doc_kind(doc)[0]);
        dm_err check = dm_policy_set_check(s, doc, NULL);
        dm_err add = dm_policy_set_add(s, &doc, NULL);
        DM_FUZZ_CHECK(check == add && doc == NULL);
    } else {
        DM_FUZZ_CHECK(diags.count > 0 && doc == NULL);
    }
    dm_diags_clear(&diags);
    if (dm_policy_set_seal(s) == DM_OK) {
        s_decide_all(s);
        dm_buf_t report = DM_BUF_INIT;
        size_t failed = 0;
        DM_FUZZ_IGNORE(dm_policy_run_cases(s, "fuzz", (const char *)data, size, &report, &failed, &diags));
        dm_buf_free(&report);
        dm_diags_clear(&diags);
    }
    dm_policy_set_unref(&s);
    return 0;
}
