/* test_attack_rpc.c: an outsider (a throwaway CURVE key, not a member)
 * and a hostile domain admin (the node's own key, whose requests pass the
 * access check and reach every parser) send a real meshd every request
 * type of proto/mesh.proto's Envelope with its body empty, its fields
 * absent, maximal or of the wrong wire type, garbage and truncated
 * envelopes. After every batch the node still answers a ping within a
 * second, its process is alive, and the product and records registered
 * before the attack are still there. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/varint.h"
#include "harness.h"
#include "identity/identity.h"
#include "proto/mesh.pb-c.h"

#define T_CMD_MS 30000
#define T_PING_MS 1000         /* "status answers within a second" */
#define T_REPLY_MS 5000        /* a refusal the test waits for */
#define T_QUIET_MS 300         /* no reply for this long: the batch is drained */
#define T_DRAIN_MAX_MS 20000   /* a batch is drained within this at most */
#define T_RECORDS 3
#define T_BODY_FIRST 2         /* Envelope body field numbers: 2..37 */
#define T_BODY_LAST 37
#define T_BIG_BYTES (15 << 20) /* under the 16 MiB message bound */
#define T_GARBAGE_FRAMES 300
#define T_GARBAGE_MAX 4096

static dm_h_node_t s_node;
static char s_dir[600];

static const char s_contract[] =
    "apiVersion: datamesh.io/v1\n"
    "kind: DataProduct\n"
    "metadata: {name: orders, domain: commerce, version: 1.0.0,\n"
    "           owner: {team: commerce, contact: data@company.com}}\n"
    "spec:\n"
    "  schema:\n"
    "    primaryKey: orderId\n"
    "    fields:\n"
    "      - {name: orderId, type: uuid, required: true}\n"
    "      - {name: amount, type: double, required: true, exclusiveMinimum: 0}\n";

static dm_h_result_t s_dmctl(const char *const *args, const char *in)
{
    return dm_h_run("dmctl", args, in, T_CMD_MS);
}

/* Records of commerce/orders as dmctl products reports them; -1 if the
 * listing fails or lacks the product. */
static long long s_records(void)
{
    const char *args[] = {"--data", s_dir, "products", "--json", NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    long long v = -1;
    const char *p = r.out ? strstr(r.out, "\"records\":") : NULL;
    if (r.status == 0 && p && strstr(r.out, "\"orders\""))
        v = atoll(p + strlen("\"records\":"));
    dm_h_result_free(&r);
    return v;
}

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    snprintf(s_dir, sizeof s_dir, "%s/commerce", tmp);
    char yaml[700];
    snprintf(yaml, sizeof yaml, "%s/orders.yaml", tmp);
    dm_h_write(yaml, s_contract);
    cr_assert(dm_h_node_start(&s_node, s_dir, "commerce", NULL), "meshd did not start");
    const char *reg[] = {"--data", s_dir, "register", yaml, NULL};
    dm_h_result_t r = s_dmctl(reg, NULL);
    cr_assert_eq(r.status, 0, "register: %s", r.err);
    dm_h_result_free(&r);
    char lines[1024] = "";
    for (int i = 0; i < T_RECORDS; i++) {
        char line[160];
        snprintf(line, sizeof line,
                 "{\"orderId\":\"00000000-0000-4000-8000-%012d\",\"amount\":%d.5}\n", i, i + 1);
        strcat(lines, line);
    }
    const char *ing[] = {"--data", s_dir, "ingest", "commerce/orders", "-", NULL};
    r = s_dmctl(ing, lines);
    cr_assert_eq(r.status, 0, "ingest: %s", r.err);
    dm_h_result_free(&r);
    cr_assert_eq(s_records(), T_RECORDS);
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(attack_rpc, .init = s_up, .fini = s_down, .timeout = 240);

/* ---- raw protobuf ---- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} s_wire;

static void s_bytes(s_wire *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = (w->len + n) * 2 + 64;
        w->data = realloc(w->data, cap);
        cr_assert_not_null(w->data);
        w->cap = cap;
    }
    if (n)
        memcpy(w->data + w->len, p, n);
    w->len += n;
}

static void s_varint(s_wire *w, uint64_t v)
{
    uint8_t b[DM_VARINT_MAX_BYTES];
    s_bytes(w, b, dm_varint_encode(v, b));
}

static void s_key(s_wire *w, unsigned field, unsigned wire_type)
{
    s_varint(w, (uint64_t)field << 3 | wire_type);
}

/* A length-delimited field. */
static void s_ld(s_wire *w, unsigned field, const void *p, size_t n)
{
    s_key(w, field, 2);
    s_varint(w, n);
    s_bytes(w, p, n);
}

static void s_free(s_wire *w)
{
    free(w->data);
    *w = (s_wire){0};
}

/* ---- the attackers ---- */

/* A throwaway key (admin false: every write is refused before it is
 * parsed) or the node's own key (admin true: requests reach the parsers). */
static dm_h_raw_t *s_attacker(bool admin)
{
    dm_h_raw_t *raw = admin ? dm_h_raw_admin(&s_node) : dm_h_raw_new(s_node.addr, NULL);
    cr_assert_not_null(raw);
    return raw;
}

/* Reads replies until none came for T_QUIET_MS (bounded): the node has
 * handled what was sent. Returns how many came. */
static int s_drain(dm_h_raw_t *raw)
{
    int n = 0;
    long long deadline = dm_h_now_ms() + T_DRAIN_MAX_MS;
    size_t len;
    void *rep;
    while (dm_h_now_ms() < deadline && (rep = dm_h_raw_recv(raw, &len, T_QUIET_MS))) {
        free(rep);
        n++;
    }
    return n;
}

/* The node is alive, answers a ping within a second, and still holds the
 * product and records registered before the attack. */
static void s_still_serving(const char *after)
{
    cr_assert_eq(kill(s_node.pid, 0), 0, "meshd died after %s", after);
    long long ms = dm_h_ping_ms(&s_node, T_PING_MS);
    cr_assert(ms >= 0 && ms <= T_PING_MS, "no pong within %d ms after %s (got %lld)", T_PING_MS,
              after, ms);
    cr_assert_eq(s_records(), T_RECORDS, "records lost after %s", after);
}

/* Sends an envelope {id, field: body (len bytes)}. */
static void s_send_body(dm_h_raw_t *raw, uint64_t id, unsigned field, const void *body,
                        size_t len)
{
    s_wire w = {0};
    s_key(&w, 1, 0);
    s_varint(&w, id);
    s_ld(&w, field, body, len);
    cr_assert(dm_h_raw_send(raw, w.data, w.len));
    s_free(&w);
}

/* Waits for the reply to id; returns it unpacked (caller frees) or NULL. */
static Dm__Envelope *s_reply(dm_h_raw_t *raw, uint64_t id)
{
    long long deadline = dm_h_now_ms() + T_REPLY_MS;
    while (dm_h_now_ms() < deadline) {
        size_t len;
        void *rep = dm_h_raw_recv(raw, &len, T_REPLY_MS);
        if (!rep)
            return NULL;
        Dm__Envelope *env = dm__envelope__unpack(NULL, len, rep);
        free(rep);
        if (env && env->id == id)
            return env;
        if (env)
            dm__envelope__free_unpacked(env, NULL);
    }
    return NULL;
}

/* ---- the confirmed case ---- */

Test(attack_rpc, register_with_empty_contract_is_refused_and_the_node_lives)
{
    dm_h_raw_t *raw = s_attacker(false);
    s_send_body(raw, 6, DM__ENVELOPE__BODY_REGISTER_REQ, NULL, 0);
    Dm__Envelope *denied = s_reply(raw, 6);
    cr_assert_not_null(denied, "no answer to an outsider's empty RegisterReq");
    cr_assert_eq(denied->body_case, DM__ENVELOPE__BODY_ERROR);
    cr_assert_eq(denied->error->code, DM_ERR_DENIED, "%s", denied->error->message);
    dm__envelope__free_unpacked(denied, NULL);
    dm_h_raw_destroy(&raw);
    raw = s_attacker(true);
    s_send_body(raw, 7, DM__ENVELOPE__BODY_REGISTER_REQ, NULL, 0);
    Dm__Envelope *rep = s_reply(raw, 7);
    cr_assert_not_null(rep, "no answer to an empty RegisterReq");
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR);
    cr_assert_eq(rep->error->code, DM_ERR_INVALID);
    cr_assert(strstr(rep->error->message, "no contract"), "%s", rep->error->message);
    dm__envelope__free_unpacked(rep, NULL);
    /* The same with the field present but empty. */
    s_wire body = {0};
    s_ld(&body, 1, "", 0);
    s_send_body(raw, 8, DM__ENVELOPE__BODY_REGISTER_REQ, body.data, body.len);
    s_free(&body);
    rep = s_reply(raw, 8);
    cr_assert_not_null(rep, "no answer to a RegisterReq with an empty contract");
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR);
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&raw);
    s_still_serving("an empty RegisterReq");
}

/* ---- every body empty, every field absent ---- */

static void s_empty_bodies(bool admin)
{
    dm_h_raw_t *raw = s_attacker(admin);
    for (unsigned f = T_BODY_FIRST; f <= T_BODY_LAST; f++)
        s_send_body(raw, f, f, NULL, 0);
    /* An envelope of only an id, one of nothing, one of only a body key. */
    s_wire w = {0};
    s_key(&w, 1, 0);
    s_varint(&w, 99);
    cr_assert(dm_h_raw_send(raw, w.data, w.len));
    cr_assert(dm_h_raw_send(raw, NULL, 0));
    s_free(&w);
    for (unsigned f = T_BODY_FIRST; f <= T_BODY_LAST; f++) {
        s_key(&w, f, 2);
        cr_assert(dm_h_raw_send(raw, w.data, w.len)); /* key without its length */
        w.len = 0;
    }
    s_free(&w);
    cr_assert_gt(s_drain(raw), 0, "the node answered none of the empty requests");
    dm_h_raw_destroy(&raw);
    s_still_serving(admin ? "empty bodies from an admin" : "empty bodies from an outsider");
}

Test(attack_rpc, every_request_type_with_an_empty_body_or_none)
{
    s_empty_bodies(false);
    s_empty_bodies(true);
}

/* Each string field of a request body: absent, empty, one byte, NUL inside,
 * invalid UTF-8, and 1 MiB; each number 0 and 2^64-1. */
static void s_odd_fields(bool admin)
{
    static const struct {
        unsigned body;
        unsigned nfields; /* fields 1..nfields */
    } reqs[] = {
        {DM__ENVELOPE__BODY_REGISTER_REQ, 1},   {DM__ENVELOPE__BODY_INGEST_REQ, 6},
        {DM__ENVELOPE__BODY_DEREGISTER_REQ, 2}, {DM__ENVELOPE__BODY_PRODUCTS_REQ, 1},
        {DM__ENVELOPE__BODY_QUARANTINE_REQ, 4}, {DM__ENVELOPE__BODY_QUERY_REQ, 2},
        {DM__ENVELOPE__BODY_QUERY_NEXT, 1},     {DM__ENVELOPE__BODY_QUERY_CLOSE, 1},
        {DM__ENVELOPE__BODY_DESCRIBE_REQ, 2},   {DM__ENVELOPE__BODY_MEMBERS_REQ, 1},
        {DM__ENVELOPE__BODY_CATALOG_SYNC, 4},   {DM__ENVELOPE__BODY_PING, 1},
        {DM__ENVELOPE__BODY_ADMINS_REQ, 2},     {DM__ENVELOPE__BODY_GRANT_REQ, 4},
        {DM__ENVELOPE__BODY_POLICY_PUBLISH_REQ, 1}, {DM__ENVELOPE__BODY_POLICY_GET_REQ, 1},
        {DM__ENVELOPE__BODY_AUDIT_REQ, 3},      {DM__ENVELOPE__BODY_WHOAMI_REQ, 1},
    };
    size_t big_len = 1 << 20;
    char *big = malloc(big_len);
    cr_assert_not_null(big);
    memset(big, 'a', big_len);
    const struct {
        const char *v;
        size_t len;
    } texts[] = {{"", 0}, {"c", 1}, {"commerce\0orders", 15}, {"\xff\xfe\xc0\x80", 4},
                 {big, big_len}};
    const uint64_t nums[] = {0, 1, UINT64_MAX, (uint64_t)INT64_MAX + 1};
    dm_h_raw_t *raw = s_attacker(admin);
    uint64_t id = 1000;
    for (size_t r = 0; r < sizeof reqs / sizeof reqs[0]; r++) {
        for (unsigned f = 1; f <= reqs[r].nfields; f++) {
            /* The field alone, as every wire type a field can carry. */
            for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
                s_wire body = {0};
                s_ld(&body, f, texts[t].v, texts[t].len);
                s_send_body(raw, id++, reqs[r].body, body.data, body.len);
                s_free(&body);
            }
            for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
                s_wire body = {0};
                s_key(&body, f, 0);
                s_varint(&body, nums[k]);
                s_send_body(raw, id++, reqs[r].body, body.data, body.len);
                body.len = 0;
                s_key(&body, f, 1); /* fixed64 where a varint or string belongs */
                s_bytes(&body, &nums[k], 8);
                s_send_body(raw, id++, reqs[r].body, body.data, body.len);
                body.len = 0;
                s_key(&body, f, 5); /* fixed32 */
                s_bytes(&body, &nums[k], 4);
                s_send_body(raw, id++, reqs[r].body, body.data, body.len);
                s_free(&body);
            }
        }
        /* Every field at once with maximal strings and numbers, our own
         * domain and product where a name belongs (never deleting it: the
         * deregister names a product that is not there). */
        s_wire body = {0};
        for (unsigned f = 1; f <= reqs[r].nfields; f++) {
            if (reqs[r].body == DM__ENVELOPE__BODY_DEREGISTER_REQ && f == 2)
                s_ld(&body, f, big, 200);
            else if (f == 1 && reqs[r].body != DM__ENVELOPE__BODY_REGISTER_REQ)
                s_ld(&body, f, "commerce", 8);
            else if (f == 2 && reqs[r].body == DM__ENVELOPE__BODY_INGEST_REQ)
                s_ld(&body, f, "orders", 6);
            else
                s_ld(&body, f, big, big_len);
        }
        s_send_body(raw, id++, reqs[r].body, body.data, body.len);
        s_free(&body);
    }
    free(big);
    cr_assert_gt(s_drain(raw), 0);
    dm_h_raw_destroy(&raw);
    s_still_serving(admin ? "odd fields from an admin" : "odd fields from an outsider");
}

Test(attack_rpc, every_field_absent_empty_odd_and_maximal)
{
    s_odd_fields(false);
    s_odd_fields(true);
}

/* Messages as large as the transport lets through: a 15 MiB contract, a
 * 15 MiB ingest batch of one line and one of empty lines, a 15 MiB SQL
 * text and swim payload, and one over the bound. */
static void s_maximal(bool admin)
{
    char *big = malloc(T_BIG_BYTES);
    cr_assert_not_null(big);
    dm_h_raw_t *raw = s_attacker(admin);
    memset(big, 'x', T_BIG_BYTES);
    s_wire body = {0};
    s_ld(&body, 1, big, T_BIG_BYTES);
    s_send_body(raw, 1, DM__ENVELOPE__BODY_REGISTER_REQ, body.data, body.len);
    s_send_body(raw, 2, DM__ENVELOPE__BODY_QUERY_REQ, body.data, body.len);
    s_free(&body);
    s_send_body(raw, 3, DM__ENVELOPE__BODY_SWIM, big, T_BIG_BYTES);
    s_ld(&body, 1, "commerce", 8);
    s_ld(&body, 2, "orders", 6);
    s_ld(&body, 4, big, T_BIG_BYTES);
    s_send_body(raw, 4, DM__ENVELOPE__BODY_INGEST_REQ, body.data, body.len);
    s_free(&body);
    memset(big, '\n', T_BIG_BYTES);
    s_ld(&body, 1, "commerce", 8);
    s_ld(&body, 2, "orders", 6);
    s_ld(&body, 4, big, T_BIG_BYTES);
    s_send_body(raw, 5, DM__ENVELOPE__BODY_INGEST_REQ, body.data, body.len);
    s_free(&body);
    char *over = malloc((17 << 20));
    cr_assert_not_null(over);
    memset(over, 0, 17 << 20);
    cr_assert(dm_h_raw_send(raw, over, 17 << 20)); /* dropped by ZMQ_MAXMSGSIZE */
    free(over);
    free(big);
    s_drain(raw);
    dm_h_raw_destroy(&raw);
    s_still_serving(admin ? "maximal messages from an admin" : "maximal messages from an outsider");
}

Test(attack_rpc, maximal_messages)
{
    s_maximal(false);
    s_maximal(true);
}

/* ---- garbage, truncation, wrong wire types ---- */

static uint64_t s_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void s_garbage(bool admin)
{
    dm_h_raw_t *raw = s_attacker(admin);
    /* Random frames from a fixed seed, some starting like an envelope. */
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    uint8_t buf[T_GARBAGE_MAX];
    for (int i = 0; i < T_GARBAGE_FRAMES; i++) {
        size_t len = (size_t)(s_rand(&seed) % T_GARBAGE_MAX);
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)s_rand(&seed);
        if (len > 2 && i % 2) {
            buf[0] = 0x08; /* id */
            buf[1] = 0x01;
            buf[2] = (uint8_t)((T_BODY_FIRST + s_rand(&seed) % (T_BODY_LAST - 1)) << 3 | 2);
        }
        cr_assert(dm_h_raw_send(raw, buf, len));
    }
    /* Every prefix of valid requests of each kind. */
    s_wire full[4] = {{0}};
    s_wire body = {0};
    s_ld(&body, 1, s_contract, strlen(s_contract));
    s_key(&full[0], 1, 0);
    s_varint(&full[0], 5);
    s_ld(&full[0], DM__ENVELOPE__BODY_REGISTER_REQ, body.data, body.len);
    s_free(&body);
    s_ld(&body, 1, "commerce", 8);
    s_ld(&body, 2, "orders", 6);
    s_key(&body, 3, 0);
    s_varint(&body, 1);
    s_ld(&body, 4, "{\"orderId\":\"x\"}\n", 16);
    s_key(&full[1], 1, 0);
    s_varint(&full[1], 6);
    s_ld(&full[1], DM__ENVELOPE__BODY_INGEST_REQ, body.data, body.len);
    s_free(&body);
    s_ld(&body, 1, "commerce", 8);
    s_ld(&body, 2, "orders", 6);
    s_key(&body, 4, 0);
    s_varint(&body, 10);
    s_key(&full[2], 1, 0);
    s_varint(&full[2], 7);
    s_ld(&full[2], DM__ENVELOPE__BODY_QUARANTINE_REQ, body.data, body.len);
    s_free(&body);
    s_ld(&body, 1, "SELECT count(*) FROM commerce.orders", 36);
    s_key(&full[3], 1, 0);
    s_varint(&full[3], 8);
    s_ld(&full[3], DM__ENVELOPE__BODY_QUERY_REQ, body.data, body.len);
    s_free(&body);
    for (size_t m = 0; m < 4; m++) {
        for (size_t len = 0; len < full[m].len; len++)
            cr_assert(dm_h_raw_send(raw, full[m].data, len));
        s_free(&full[m]);
    }
    /* Every envelope field number with every wire type (the invalid 3, 4,
     * 6, 7 included), and lengths that run past the frame. */
    for (unsigned f = 1; f <= T_BODY_LAST + 2; f++) {
        for (unsigned wt = 0; wt < 8; wt++) {
            s_wire w = {0};
            s_key(&w, 1, 0);
            s_varint(&w, f);
            s_key(&w, f, wt);
            static const uint8_t tail[8] = {0x7f, 1, 2, 3, 4, 5, 6, 7};
            s_bytes(&w, tail, sizeof tail);
            cr_assert(dm_h_raw_send(raw, w.data, w.len));
            w.len = 0;
            s_key(&w, f, 2);
            s_varint(&w, UINT64_MAX); /* a length of 2^64-1 */
            s_bytes(&w, tail, sizeof tail);
            cr_assert(dm_h_raw_send(raw, w.data, w.len));
            s_free(&w);
        }
    }
    /* A body's fields with the wrong wire types inside a valid envelope. */
    for (unsigned b = T_BODY_FIRST; b <= T_BODY_LAST; b++) {
        for (unsigned f = 1; f <= 7; f++) {
            s_wire in = {0};
            s_key(&in, f, f % 2 ? 0 : 5);
            s_varint(&in, 0x7fffffff);
            s_send_body(raw, 100 + b, b, in.data, in.len);
            s_free(&in);
        }
    }
    cr_assert_gt(s_drain(raw), 0);
    dm_h_raw_destroy(&raw);
    s_still_serving(admin ? "garbage from an admin" : "garbage from an outsider");
}

Test(attack_rpc, garbage_truncated_envelopes_and_wrong_wire_types)
{
    s_garbage(false);
    s_garbage(true);
}

/* Membership and catalog bodies from a key that passes the transport check
 * (the outsider's own): every nested message empty, garbage or maximal. */
Test(attack_rpc, swim_and_catalog_bodies_from_an_outsider_with_a_matching_key)
{
    dm_identity_t *id = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&id), DM_OK);
    char addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(dm_identity_public(id), "tcp://127.0.0.1:9", addr, sizeof addr, NULL),
                 DM_OK);
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, id);
    cr_assert_not_null(raw);
    uint64_t seed = 42;
    uint8_t junk[512];
    for (size_t k = 0; k < sizeof junk; k++)
        junk[k] = (uint8_t)s_rand(&seed);
    /* SWIM: a sender update with our id and address, then odd fields. */
    for (unsigned kind = 0; kind <= 9; kind++) {
        s_wire up = {0}, msg = {0};
        s_ld(&up, 1, dm_identity_public(id), DM_ID_PUBLIC_BYTES);
        s_ld(&up, 2, addr, strlen(addr));
        s_ld(&up, 3, "outsider", 8);
        s_key(&msg, 1, 0);
        s_varint(&msg, kind);
        s_ld(&msg, 3, up.data, up.len);
        s_ld(&msg, 4, junk, kind); /* target id of every wrong length */
        s_ld(&msg, 5, junk, kind * 40);
        for (unsigned u = 0; u < kind * 8; u++)
            s_ld(&msg, 6, u % 2 ? up.data : junk, u % 2 ? up.len : u);
        s_send_body(raw, 1, DM__ENVELOPE__BODY_SWIM, msg.data, msg.len);
        s_free(&up);
        s_free(&msg);
    }
    /* CatalogSync: our reply address with garbage, truncated and empty
     * digests and deltas, and a digest naming far too many origins. */
    for (size_t n = 0; n < sizeof junk; n += 37) {
        s_wire sync = {0};
        s_ld(&sync, 1, addr, strlen(addr));
        s_ld(&sync, 2, junk, n % 33);
        s_ld(&sync, 3, junk, n);
        s_ld(&sync, 4, junk, sizeof junk - n);
        s_send_body(raw, 2, DM__ENVELOPE__BODY_CATALOG_SYNC, sync.data, sync.len);
        s_free(&sync);
    }
    s_wire digest = {0};
    for (unsigned o = 0; o < 10000; o++) {
        s_wire ov = {0};
        uint8_t origin[DM_ID_PUBLIC_BYTES] = {0};
        memcpy(origin, &o, sizeof o);
        s_ld(&ov, 1, origin, sizeof origin);
        s_key(&ov, 2, 0);
        s_varint(&ov, UINT64_MAX);
        s_ld(&digest, 1, ov.data, ov.len);
        s_free(&ov);
    }
    s_wire sync = {0};
    s_ld(&sync, 1, addr, strlen(addr));
    s_ld(&sync, 3, digest.data, digest.len);
    s_ld(&sync, 4, digest.data, digest.len); /* a digest where a delta belongs */
    s_send_body(raw, 3, DM__ENVELOPE__BODY_CATALOG_SYNC, sync.data, sync.len);
    s_free(&sync);
    s_free(&digest);
    s_drain(raw);
    dm_h_raw_destroy(&raw);
    dm_identity_destroy(&id);
    s_still_serving("swim and catalog bodies");
}

/* ---- item 9: a FIFO where a file belongs ---- */

#define T_FIFO_CMD_MS 10000 /* status 124 = the tool hung */

Test(attack_rpc, tools_refuse_a_fifo_contract_or_node_addr_at_once)
{
    char fifo[700], data[700], addr[760];
    snprintf(fifo, sizeof fifo, "%s/c.yaml", dm_h_tmpdir());
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    const char *validate[] = {"validate", fifo, NULL};
    const char *reg[] = {"--data", s_dir, "register", fifo, NULL};
    const char *check[] = {"check", "--config", fifo, "-", NULL};
    const char *const *cmds[] = {validate, reg, check};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        dm_h_result_t r = dm_h_run("dmctl", cmds[i], "", T_FIFO_CMD_MS);
        cr_assert_neq(r.status, 124, "dmctl %s hung on a FIFO", cmds[i][0]);
        cr_assert_neq(r.status, 0);
        cr_assert(strstr(r.err, "not a regular file"), "%s", r.err);
        dm_h_result_free(&r);
    }
    /* A data directory whose node.addr is a FIFO. */
    snprintf(data, sizeof data, "%s/fake", dm_h_tmpdir());
    cr_assert_eq(mkdir(data, 0700), 0);
    snprintf(addr, sizeof addr, "%s/node.addr", data);
    cr_assert_eq(mkfifo(addr, 0600), 0);
    const char *st[] = {"--data", data, "products", NULL};
    dm_h_result_t r = dm_h_run("dmctl", st, "", T_FIFO_CMD_MS);
    cr_assert_neq(r.status, 124, "dmctl hung on a FIFO node.addr");
    cr_assert_neq(r.status, 0);
    dm_h_result_free(&r);
    s_still_serving("tools meeting FIFOs");
}
