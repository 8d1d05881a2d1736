/* test_attack_regex.c: a hostile domain admin (the node's own key: an
 * outsider's register is refused before any parsing) registers contracts
 * whose patterns would make glibc's regcomp pin gigabytes (nested bounded
 * repetitions, huge bounds, backreferences) with raw RegisterReq
 * envelopes; the node
 * refuses each with a diagnostic naming the limit and answers pings within
 * a second throughout. dmctl validate refuses the same file at once. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "server/node.h"
#include "transport/rpc.h"
#include "storage/store.h"

#define T_REPLY_MS 5000 /* the refusal must come well within this */
#define T_PING_MS 1000  /* status answers within a second */
#define T_CMD_MS 10000  /* dmctl validate must not get near this */

static const char *const s_hostile[] = {
    "((a{1,100}){1,100}){1,100}", "(((a{1,10}){1,10}){1,10}){1,10}", "a{1,30000}",
    "(x{1,255}){1,255}", "(a)\\\\1\\\\1", "([[:alpha:]]{1,90}){1,90}"};

/* A canonical-JSON contract (JSON is YAML too) with pattern on field s;
 * pattern is already escaped for JSON. */
static char *s_contract(const char *pattern)
{
    char *t = malloc(2048);
    cr_assert_not_null(t);
    snprintf(t, 2048,
             "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":\"DataProduct\",\"metadata\":"
             "{\"domain\":\"attack\",\"name\":\"regex\",\"owner\":{\"contact\":\"a@b.example\","
             "\"team\":\"x\"},\"version\":\"1.0.0\"},\"spec\":{\"schema\":{\"fields\":["
             "{\"name\":\"id\",\"required\":true,\"type\":\"int\"},"
             "{\"name\":\"s\",\"pattern\":\"%s\",\"type\":\"string\"}],\"primaryKey\":[\"id\"],"
             "\"type\":\"inline\"}}}",
             pattern);
    return t;
}

static dm_h_node_t s_node;
static char s_dir[600];

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    char *dir = s_dir;
    snprintf(s_dir, sizeof s_dir, "%s/attack", tmp);
    cr_assert(dm_h_node_start(&s_node, dir, "attack", NULL), "meshd did not start");
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(attack_regex, .init = s_up, .fini = s_down, .timeout = 120);

/* Sends a RegisterReq with contract text and returns the answer (the
 * caller frees it with dm__envelope__free_unpacked). */
static Dm__Envelope *s_call_register(dm_h_raw_t *raw, uint64_t id, const char *contract)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__RegisterReq body = DM__REGISTER_REQ__INIT;
    body.contract.data = (uint8_t *)contract;
    body.contract.len = strlen(contract);
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_REGISTER_REQ;
    env.register_req = &body;
    cr_assert(dm_h_raw_send_env(raw, &env));
    size_t len = 0;
    void *frame = dm_h_raw_recv(raw, &len, T_REPLY_MS);
    cr_assert_not_null(frame, "no reply to a hostile register within %d ms", T_REPLY_MS);
    Dm__Envelope *rep = dm_rpc_unpack(frame, len);
    free(frame);
    cr_assert_not_null(rep);
    return rep;
}

/* The Error message the node answers a register with (malloc'd), failing
 * the test on any other answer. */
static char *s_register(dm_h_raw_t *raw, uint64_t id, const char *contract)
{
    Dm__Envelope *rep = s_call_register(raw, id, contract);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR, "the hostile contract was accepted");
    char *msg = strdup(rep->error->message);
    dm__envelope__free_unpacked(rep, NULL);
    return msg;
}

Test(attack_regex, hostile_patterns_refused_and_node_keeps_serving)
{
    dm_h_raw_t *raw = dm_h_raw_admin(&s_node);
    cr_assert_not_null(raw);
    for (size_t i = 0; i < sizeof s_hostile / sizeof s_hostile[0]; i++) {
        char *c = s_contract(s_hostile[i]);
        long long t0 = dm_h_now_ms();
        char *msg = s_register(raw, 100 + i, c);
        cr_log_info("%s refused in %lld ms", s_hostile[i], dm_h_now_ms() - t0);
        cr_assert(strstr(msg, "within the limits of a contract"), "%s", msg);
        cr_assert(strstr(msg, "register request:1:"), "no line:col in: %s", msg);
        free(msg);
        free(c);
        long long ping = dm_h_ping_ms(&s_node, T_PING_MS);
        cr_assert(ping >= 0, "no pong within %d ms after pattern %zu", T_PING_MS, i);
    }
    /* the same node still registers a contract within the limits */
    char *good = s_contract("^[a-z]{1,16}(-[0-9]{1,6})?$");
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__RegisterReq body = DM__REGISTER_REQ__INIT;
    body.contract.data = (uint8_t *)good;
    body.contract.len = strlen(good);
    env.id = 999;
    env.body_case = DM__ENVELOPE__BODY_REGISTER_REQ;
    env.register_req = &body;
    cr_assert(dm_h_raw_send_env(raw, &env));
    size_t len = 0;
    void *frame = dm_h_raw_recv(raw, &len, T_REPLY_MS);
    cr_assert_not_null(frame);
    Dm__Envelope *rep = dm_rpc_unpack(frame, len);
    free(frame);
    cr_assert_not_null(rep);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_REGISTER_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);
    free(good);
    dm_h_raw_destroy(&raw);
    cr_assert(dm_h_ping_ms(&s_node, T_PING_MS) >= 0);
}

Test(attack_regex, dmctl_validate_refuses_hostile_file_quickly)
{
    char path[700];
    snprintf(path, sizeof path, "%s/hostile.yaml", dm_h_tmpdir());
    char *c = s_contract("((a{1,100}){1,100}){1,100}");
    dm_h_write(path, c);
    free(c);
    const char *args[] = {"validate", path, NULL};
    long long t0 = dm_h_now_ms();
    dm_h_result_t r = dm_h_run("dmctl", args, NULL, T_CMD_MS);
    cr_log_info("dmctl validate refused in %lld ms", dm_h_now_ms() - t0);
    cr_assert_neq(r.status, 0, "validate accepted a hostile pattern");
    cr_assert_neq(r.status, 124, "validate did not finish within %d ms", T_CMD_MS);
    const char *said = r.out && strstr(r.out, "error:") ? r.out : r.err; /* diagnostics: stdout */
    cr_assert(said && strstr(said, "hostile.yaml:1:"), "no file:line in: %s", said);
    cr_assert(strstr(said, "expands to more than 256 atoms"), "%s", said);
    dm_h_result_free(&r);
}

static bool s_log_has(const char *needle)
{
    FILE *f = fopen(s_node.log, "r");
    if (!f)
        return false;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* A contract stored before the limits (written into the store directly,
 * as an old node would have): the node restarts without compiling it,
 * says why, keeps serving, and a corrected higher version serves it. */
Test(attack_regex, stored_hostile_contract_at_restart)
{
    dm_h_node_signal(&s_node, SIGTERM);
    char path[700];
    snprintf(path, sizeof path, "%s/%s", s_dir, DM_NODE_STORE_DIR);
    dm_store_t *st = NULL;
    cr_assert_eq(dm_store_open(path, NULL, &st, NULL), DM_OK);
    char *c = s_contract("((a{1,100}){1,100}){1,100}");
    dm_product_t in = {0};
    in.domain = "attack";
    in.name = "regex";
    in.version = "1.0.0";
    in.version_major = 1;
    in.contract = c;
    in.contract_len = strlen(c);
    dm_register_outcome outcome;
    cr_assert_eq(dm_store_product_register(st, &in, &outcome, NULL, NULL, NULL), DM_OK);
    dm_store_destroy(&st);
    free(c);

    long long t0 = dm_h_now_ms();
    cr_assert(dm_h_node_start(&s_node, s_dir, "attack", NULL), "meshd did not restart");
    cr_log_info("restart with a stored hostile contract took %lld ms", dm_h_now_ms() - t0);
    cr_assert(dm_h_ping_ms(&s_node, T_PING_MS) >= 0);
    cr_assert(s_log_has("product attack/regex is not served"), "no log line in %s", s_node.log);

    dm_h_raw_t *raw = dm_h_raw_admin(&s_node);
    cr_assert_not_null(raw);
    char *v2 = s_contract("^a{1,100}$");
    char *ver = strstr(v2, "1.0.0");
    memcpy(ver, "1.0.1", 5);
    Dm__Envelope *rep = s_call_register(raw, 7, v2);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_REGISTER_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);
    free(v2);
    dm_h_raw_destroy(&raw);
}

#define T_VALUE_BYTES (600 * 1024) /* a string value near the 1 MiB record limit */
#define T_INGEST_MS 20000          /* generous: glibc's regexec needed hours for this */

/* Appends a record {"id":id,"s":"<T_VALUE_BYTES of random a/b>"} and a
 * newline; with_match ends the value in a..(100 bytes)..c. */
static void s_big_record(dm_buf_t *out, int id, bool with_match, uint64_t *seed)
{
    dm_buf_printf(out, "{\"id\":%d,\"s\":\"", id);
    size_t at = out->len;
    for (size_t i = 0; i < T_VALUE_BYTES; i++) {
        *seed = *seed * 6364136223846793005u + 1442695040888963407u;
        dm_buf_putc(out, "ab"[*seed >> 63]);
    }
    if (with_match) {
        out->data[at + T_VALUE_BYTES - 102] = 'a';
        out->data[at + T_VALUE_BYTES - 1] = 'c';
    }
    dm_buf_puts(out, "\"}\n");
}

/* A pattern that is cheap to compile but makes glibc's regexec quadratic
 * and build DFA states without bound; values of 600 KB are matched in one
 * pass and the node answers pings meanwhile. */
Test(attack_regex, ingest_of_long_values_against_a_costly_pattern)
{
    dm_h_raw_t *raw = dm_h_raw_admin(&s_node);
    cr_assert_not_null(raw);
    char *c = s_contract("(a|b)*a.{100}c");
    Dm__Envelope *rep = s_call_register(raw, 1, c);
    free(c);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_REGISTER_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);

    dm_buf_t data = DM_BUF_INIT;
    uint64_t seed = 7;
    s_big_record(&data, 1, false, &seed);
    s_big_record(&data, 2, true, &seed);
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__IngestReq body = DM__INGEST_REQ__INIT;
    body.domain = "attack";
    body.product = "regex";
    body.first_line = 1;
    body.data.data = (uint8_t *)data.data;
    body.data.len = data.len;
    env.id = 2;
    env.body_case = DM__ENVELOPE__BODY_INGEST_REQ;
    env.ingest_req = &body;
    long long t0 = dm_h_now_ms();
    cr_assert(dm_h_raw_send_env(raw, &env));
    cr_assert(dm_h_ping_ms(&s_node, T_PING_MS) >= 0, "no pong within %d ms during the ingest",
              T_PING_MS);
    size_t len = 0;
    void *frame = dm_h_raw_recv(raw, &len, T_INGEST_MS);
    cr_assert_not_null(frame, "no ingest reply within %d ms", T_INGEST_MS);
    cr_log_info("2 x %d KB values matched in %lld ms", T_VALUE_BYTES / 1024,
                dm_h_now_ms() - t0);
    rep = dm_rpc_unpack(frame, len);
    free(frame);
    cr_assert_not_null(rep);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_INGEST_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    cr_assert_eq(rep->ingest_rep->accepted, 1);
    cr_assert_eq(rep->ingest_rep->quarantined, 1);
    dm__envelope__free_unpacked(rep, NULL);
    dm_buf_free(&data);
    dm_h_raw_destroy(&raw);
    cr_assert(dm_h_ping_ms(&s_node, T_PING_MS) >= 0);
}
