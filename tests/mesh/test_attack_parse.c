/* test_attack_parse.c: a hostile domain admin (the node's own key; an
 * outsider's register is refused before any parsing, which the last test
 * checks) registers the largest contracts the parser has to read (a 90,000-value enum, a 65,536-value enum with a
 * duplicate at its far end, 4,096 misspelt references, 16,000 fields) with
 * raw RegisterReq envelopes; the node refuses each with a diagnostic at
 * its line:col, answers pings within a second while it parses and after,
 * and still registers a contract at the limits. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "contract/contract.h"
#include "harness.h"
#include "transport/rpc.h"

#define T_REPLY_MS 10000 /* generous: the pairwise parser needed 20 s for the first */
#define T_PING_MS 1000   /* status answers within a second */

static dm_h_node_t s_node;

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/attack", tmp);
    cr_assert(dm_h_node_start(&s_node, dir, "attack", NULL), "meshd did not start");
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(attack_parse, .init = s_up, .fini = s_down, .timeout = 180);

/* Lines 1-12 of every contract here; fields from line 13. */
static void s_head(dm_buf_t *b)
{
    dm_buf_puts(b, "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: big\n"
                   "  domain: attack\n  version: 1.0.0\n  owner: {team: x, contact: a@b.example}\n"
                   "spec:\n  schema:\n    primaryKey: id\n    fields:\n"
                   "      - {name: id, type: int}\n");
}

/* Field e: an enum of n values (then v<dup> if dup >= 0) on line 13. */
static void s_enum(dm_buf_t *b, size_t n, long dup)
{
    s_head(b);
    dm_buf_puts(b, "      - {name: e, type: enum, values: [");
    for (size_t i = 0; i < n; i++)
        dm_buf_printf(b, "%sv%zu", i ? "," : "", i);
    if (dup >= 0)
        dm_buf_printf(b, ",v%ld", dup);
    dm_buf_puts(b, "]}\n");
}

/* Sends a RegisterReq with contract, pings while the node works on it and
 * returns the answer (freed by the caller with dm__envelope__free_unpacked). */
static Dm__Envelope *s_register(dm_h_raw_t *raw, uint64_t id, const dm_buf_t *contract)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__RegisterReq body = DM__REGISTER_REQ__INIT;
    body.contract.data = (uint8_t *)contract->data;
    body.contract.len = contract->len;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_REGISTER_REQ;
    env.register_req = &body;
    long long t0 = dm_h_now_ms();
    cr_assert(dm_h_raw_send_env(raw, &env));
    long long ping = dm_h_ping_ms(&s_node, T_PING_MS);
    cr_assert(ping >= 0, "no pong within %d ms while a %zu-byte contract was parsed", T_PING_MS,
              contract->len);
    size_t len = 0;
    void *frame = dm_h_raw_recv(raw, &len, T_REPLY_MS);
    cr_assert_not_null(frame, "no reply to a %zu-byte register within %d ms", contract->len,
                       T_REPLY_MS);
    cr_log_info("%zu-byte contract answered in %lld ms (pong in %lld ms)", contract->len,
                dm_h_now_ms() - t0, ping);
    Dm__Envelope *rep = dm_rpc_unpack(frame, len);
    free(frame);
    cr_assert_not_null(rep);
    cr_assert(dm_h_ping_ms(&s_node, T_PING_MS) >= 0, "no pong within %d ms after", T_PING_MS);
    return rep;
}

static void s_expect_refusal(dm_h_raw_t *raw, uint64_t id, dm_buf_t *contract, const char *want)
{
    Dm__Envelope *rep = s_register(raw, id, contract);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR, "the contract was accepted");
    cr_assert(strstr(rep->error->message, want), "expected \"%s\" in: %.1000s", want,
              rep->error->message);
    dm__envelope__free_unpacked(rep, NULL);
    dm_buf_free(contract);
}

Test(attack_parse, large_contracts_refused_and_node_keeps_serving)
{
    dm_h_raw_t *raw = dm_h_raw_admin(&s_node);
    cr_assert_not_null(raw);

    dm_buf_t b = DM_BUF_INIT;
    s_enum(&b, 90000, -1);
    s_expect_refusal(raw, 1, &b, "register request:13:39: error: field 'e': values lists 90000 "
                                 "values; an enum field has at most 65536");

    s_enum(&b, DM_CONTRACT_MAX_VALUES - 1, 0);
    s_expect_refusal(raw, 2, &b, "duplicate value 'v0'");

    s_head(&b);
    for (size_t i = 0; i < 16000; i++)
        dm_buf_printf(&b, "      - {name: f%zu, type: int}\n", i);
    s_expect_refusal(raw, 3, &b, "register request:12:7: error: spec.schema.fields lists 16001 "
                                 "fields; a contract has at most 4096");

    /* 4,095 fields of 60 characters, 4,096 references one edit away */
    s_head(&b);
    for (size_t i = 0; i < DM_CONTRACT_MAX_FIELDS - 1; i++)
        dm_buf_printf(&b, "      - {name: f%059zu, type: int}\n", i);
    dm_buf_puts(&b, "  quality:\n    checks:\n");
    for (size_t i = 0; i < DM_CONTRACT_MAX_CHECKS; i++)
        dm_buf_printf(&b, "      - {rule: not_null, column: g%059zu}\n", i);
    s_expect_refusal(raw, 4, &b, "is not a field of the schema");

    /* the node still registers a contract at the limit */
    s_enum(&b, DM_CONTRACT_MAX_VALUES, -1);
    Dm__Envelope *rep = s_register(raw, 5, &b);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_REGISTER_REP, "%.500s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);
    dm_buf_free(&b);
    dm_h_raw_destroy(&raw);
}

Test(attack_parse, an_outsiders_large_contract_is_refused_before_parsing)
{
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, NULL);
    cr_assert_not_null(raw);
    dm_buf_t b = DM_BUF_INIT;
    s_enum(&b, 90000, -1);
    s_expect_refusal(raw, 1, &b, "permission denied: register");
    dm_h_raw_destroy(&raw);
}
