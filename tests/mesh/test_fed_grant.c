/* test_fed_grant.c: the owner's side of a federated query on a real
 * meshd (issue 10). The test acts as a relaying node: it makes an
 * identity file, starts a meshd on it joined to the owner (so the relay is
 * a mesh member the owner sees alive, of a certified domain), and claims
 * that identity in the CURVE handshake as a node does. Only such a member
 * may open sessions: a stranger, a member of an uncertified domain and a
 * session naming none of the owner's products are refused. It sends the
 * owner FedOpen with grants it signs as a consumer: forged, altered,
 * expired, replayed, for another relay, over other SQL, and from an
 * unverified client, all refused with their cause named; a good one opens
 * a session whose QueryReqs read as the consumer: masks apply on the
 * consumer's identity, a product the consumer may not read is refused
 * although the relay may read it, a product the grant's SQL does not name
 * is refused, and after FedClose the session is gone. The owner audits
 * the FedOpen and the relayed reads with the relay named. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "harness.h"
#include "harness_access.h"
#include "transport/envelope.h"
#include "transport/grant.h"
#include "transport/rowbatch.h"
#include "transport/rpc.h"

#define T_REPLY_MS 10000
#define T_AUDIT_MS 5000
#define T_SQL "SELECT o.orderId, o.email FROM commerce.orders o JOIN commerce.secret s " \
              "ON o.orderId = s.orderId"

static const char *s_tmp;
static dm_h_node_t s_node, s_relay_node, s_other_node;
static dm_h_person_t s_gov, s_consumer, s_relay, s_other;
static dm_identity_t *s_consumer_id, *s_relay_id, *s_other_id;

static void s_publish(const char *name, const char *yaml)
{
    const char *args[] = {"policy", "publish", dm_h_file(s_tmp, name, yaml), NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", s_gov.file, &s_node, args, NULL);
    cr_assert_eq(r.status, 0, "policy publish %s: %s%s", name, r.out, r.err);
    dm_h_result_free(&r);
}

typedef struct {
    const dm_h_node_t *owner, *member;
} s_seen_t;

/* Whether the owner sees the member alive and lists its product "stuff"
 * (so its node record, which names its domain, has arrived). */
static bool s_seen(void *ctx)
{
    const s_seen_t *w = ctx;
    dm_h_member_t m = dm_h_member(w->owner, w->member->domain);
    return m.found && strcmp(m.state, "alive") == 0 &&
           dm_h_lists(w->owner, w->member->domain, "stuff", NULL);
}

/* Starts a meshd for domain on identity p (made as its DIR/identity.key),
 * joined to the owner, serving a public "stuff"; its domain certified to
 * it when certify; waits until the owner sees it alive and lists it. */
static void s_member(dm_h_node_t *n, dm_h_person_t *p, const char *domain, bool certify)
{
    char dir[600], doc[512];
    snprintf(dir, sizeof dir, "%s/%s", s_tmp, domain);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    cr_assert(dm_h_person(p, dir, "identity"));
    const char *join[] = {"--join", s_node.addr, NULL};
    cr_assert(dm_h_node_start(n, dir, domain, join), "meshd %s did not start", domain);
    if (certify) {
        snprintf(doc, sizeof doc,
                 "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: %s}\n"
                 "spec: {domain: %s, node: \"%s\"}\n",
                 domain, domain, p->hex);
        snprintf(dir, sizeof dir, "cert-%s.yaml", domain);
        s_publish(dir, doc);
    }
    cr_assert(dm_h_orders_product(n, s_tmp, "stuff", "public", ""));
    s_seen_t w = {&s_node, n};
    cr_assert(dm_h_wait_until(s_seen, &w, DM_H_WAIT_MS), "the owner does not see %s alive",
              domain);
}

/* The owner's per-relay share of its grant replay table: small, so the
 * test of the cap opens that many grants in well under a second. */
#define T_RELAY_NONCES "300"

/* One commerce node under governance: certified; orders restricted to the
 * consumer and the relay, its pii masked for all but group pii-readers
 * (the relay); secret restricted to the relay; open public to anyone. */
static void s_up(void)
{
    s_tmp = dm_h_tmpdir();
    cr_assert_not_null(s_tmp);
    cr_assert(dm_h_person(&s_gov, s_tmp, "governance"));
    cr_assert(dm_h_person(&s_consumer, s_tmp, "consumer"));
    char dir[600], doc[1024], both[300], relay_only[100];
    snprintf(dir, sizeof dir, "%s/commerce", s_tmp);
    const char *extra[] = {"--governance", s_gov.hex, "--fed-relay-nonces", T_RELAY_NONCES, NULL};
    cr_assert(dm_h_node_start(&s_node, dir, "commerce", extra), "meshd did not start");
    char key[DM_ID_HEX_BYTES];
    dm_h_node_key(&s_node, key);
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: commerce}\n"
             "spec: {domain: commerce, node: \"%s\"}\n",
             key);
    s_publish("cert.yaml", doc);
    /* The relays are mesh members of certified domains. */
    s_member(&s_relay_node, &s_relay, "relay", true);
    s_member(&s_other_node, &s_other, "other", true);
    s_consumer_id = dm_h_person_identity(&s_consumer);
    s_relay_id = dm_h_person_identity(&s_relay);
    s_other_id = dm_h_person_identity(&s_other);
    cr_assert(s_consumer_id && s_relay_id && s_other_id);
    snprintf(both, sizeof both, "\"%s\", \"%s\"", s_consumer.hex, s_relay.hex);
    snprintf(relay_only, sizeof relay_only, "\"%s\"", s_relay.hex);
    cr_assert(dm_h_orders_product(&s_node, s_tmp, "orders", "restricted", both));
    cr_assert(dm_h_orders_product(&s_node, s_tmp, "secret", "restricted", relay_only));
    cr_assert(dm_h_orders_product(&s_node, s_tmp, "open", "public", ""));
    s_publish("privacy.yaml", dm_h_pii_policy(s_relay.hex));
}

static void s_down(void)
{
    dm_identity_destroy(&s_consumer_id);
    dm_identity_destroy(&s_relay_id);
    dm_identity_destroy(&s_other_id);
    dm_h_cleanup();
}

TestSuite(fed_grant, .init = s_up, .fini = s_down, .timeout = 180);

/* A grant signed by signer for relay over sql, expiring at expires. */
static void s_grant(dm_buf_t *out, const dm_identity_t *signer, const dm_identity_t *relay,
                    const char *sql, int64_t expires)
{
    cr_assert_eq(dm_grant_sign(signer, dm_identity_public(relay), sql, strlen(sql), expires, out,
                               NULL),
                 DM_OK);
}

/* Sends env on raw and returns the reply (never NULL: asserts). */
static Dm__Envelope *s_call(dm_h_raw_t *raw, Dm__Envelope *env)
{
    Dm__Envelope *rep = dm_h_raw_call(raw, env, T_REPLY_MS);
    cr_assert_not_null(rep, "no reply within %d ms", T_REPLY_MS);
    return rep;
}

/* FedOpen{grant, sql} on raw; the reply. */
static Dm__Envelope *s_open(dm_h_raw_t *raw, const dm_buf_t *grant, const char *sql)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__FedOpen fo = DM__FED_OPEN__INIT;
    fo.grant.data = (uint8_t *)grant->data;
    fo.grant.len = grant->len;
    fo.sql = (char *)sql;
    dm_envelope_init(&env, 7, DM__ENVELOPE__BODY_FED_OPEN, &fo);
    return s_call(raw, &env);
}

/* rep must be an Error with code whose message holds want; frees rep. */
static void s_refused(Dm__Envelope *rep, dm_err code, const char *want)
{
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR, "not refused (body %d)",
                 rep->body_case);
    cr_assert_eq(rep->error->code, (uint32_t)code, "code %u: %s", rep->error->code,
                 rep->error->message);
    cr_assert(strstr(rep->error->message, want), "expected '%s' in: %s", want,
              rep->error->message);
    dm__envelope__free_unpacked(rep, NULL);
}

/* FedOpen of grant over sql as the relay must be refused with want. */
static void s_open_refused(const dm_identity_t *as, const dm_buf_t *grant, const char *sql,
                           const char *want)
{
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, as);
    cr_assert_not_null(raw);
    s_refused(s_open(raw, grant, sql), DM_ERR_DENIED, want);
    dm_h_raw_destroy(&raw);
}

/* The QueryReq of sql in session nonce on raw; its reply. */
static Dm__Envelope *s_query(dm_h_raw_t *raw, const uint8_t *nonce, const char *sql)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__QueryReq q = DM__QUERY_REQ__INIT;
    q.sql = (char *)sql;
    q.session.data = (uint8_t *)nonce;
    q.session.len = DM_GRANT_NONCE_BYTES;
    dm_envelope_init(&env, 8, DM__ENVELOPE__BODY_QUERY_REQ, &q);
    return s_call(raw, &env);
}

/* The rows of a one-batch QueryRep as "a,b\n" lines (caller frees); frees
 * rep. */
static char *s_rows(Dm__Envelope *rep)
{
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP, "refused: %s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    cr_assert(rep->query_rep->done, "more than one batch");
    dm_buf_t out = DM_BUF_INIT;
    dm_buf_puts(&out, "");
    const uint8_t *p = rep->query_rep->rows.data, *end = p + rep->query_rep->rows.len;
    size_t ncols = rep->query_rep->n_columns, col = 0;
    dm_rowbatch_value_t v;
    while (p < end) {
        cr_assert(dm_rowbatch_read(&p, end, &v), "malformed row batch");
        dm_rowbatch_text(&v, &out);
        col = (col + 1) % ncols;
        dm_buf_putc(&out, col ? ',' : '\n');
    }
    dm__envelope__free_unpacked(rep, NULL);
    return dm_buf_steal(&out);
}

Test(fed_grant, bad_grants_are_refused_with_their_cause)
{
    int64_t now = dm_clock_wall_ms();
    dm_buf_t g = DM_BUF_INIT, other = DM_BUF_INIT;

    /* Unverified: a throwaway transport key proves no node identity. */
    s_grant(&g, s_consumer_id, s_relay_id, T_SQL, now + 60000);
    dm_h_raw_t *anon = dm_h_raw_new(s_node.addr, NULL);
    s_refused(s_open(anon, &g, T_SQL), DM_ERR_DENIED, "proved no node identity");
    dm_h_raw_destroy(&anon);

    /* Another relay than the grant names. */
    s_open_refused(s_other_id, &g, T_SQL, "grant is for relay");
    /* Other SQL than the grant signs. */
    s_open_refused(s_relay_id, &g, "SELECT * FROM commerce.secret", "does not sign this SQL");
    /* One altered byte (in the expiry's neighbourhood: the Grant's end). */
    dm_buf_reset(&other);
    dm_buf_append(&other, g.data, g.len);
    other.data[other.len - DM_ID_SIGNATURE_BYTES - 4] ^= 0x01;
    s_open_refused(s_relay_id, &other, T_SQL, "grant");
    /* Forged: the consumer's Grant with another key's signature. */
    dm_buf_t forged = DM_BUF_INIT;
    s_grant(&forged, s_other_id, s_relay_id, T_SQL, now + 60000);
    Dm__SignedGrant *mine = dm__signed_grant__unpack(NULL, g.len, (uint8_t *)g.data);
    Dm__SignedGrant *theirs = dm__signed_grant__unpack(NULL, forged.len, (uint8_t *)forged.data);
    Dm__SignedGrant mix = DM__SIGNED_GRANT__INIT;
    mix.grant = mine->grant;
    mix.sig = theirs->sig;
    dm_buf_reset(&other);
    dm_buf_reserve(&other, dm__signed_grant__get_packed_size(&mix));
    other.len = dm__signed_grant__pack(&mix, (uint8_t *)other.data);
    s_open_refused(s_relay_id, &other, T_SQL, "grant signature does not verify");
    dm__signed_grant__free_unpacked(mine, NULL);
    dm__signed_grant__free_unpacked(theirs, NULL);
    dm_buf_free(&forged);
    /* Expired, and too far ahead. */
    s_grant(&other, s_consumer_id, s_relay_id, T_SQL, now - 5 * 60000);
    s_open_refused(s_relay_id, &other, T_SQL, "grant expired");
    s_grant(&other, s_consumer_id, s_relay_id, T_SQL, now + 60 * 60000);
    s_open_refused(s_relay_id, &other, T_SQL, "at most");
    /* Garbage. */
    dm_buf_reset(&other);
    dm_buf_puts(&other, "not a grant at all");
    s_open_refused(s_relay_id, &other, T_SQL, "grant");

    /* None of them opened a session: the good grant still opens once. */
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_relay_id);
    Dm__Envelope *rep = s_open(raw, &g, T_SQL);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);
    /* Replayed: the same grant again, on this connection or another. */
    s_refused(s_open(raw, &g, T_SQL), DM_ERR_DENIED, "grant replayed: nonce ");
    dm_h_raw_destroy(&raw);
    s_open_refused(s_relay_id, &g, T_SQL, "grant replayed");

    /* The owner audited the refusals and the opening. */
    dm_h_audit_want_t w = {s_relay.hex, "fed_open", "", "grant is for relay", false, -1};
    w.caller = s_other.hex;
    char *json = dm_h_audit_wait(&s_node, &w, T_AUDIT_MS);
    cr_assert(dm_h_audit_has(json, &w), "no refusal of the wrong relay in: %s", json);
    free(json);
    dm_h_audit_want_t ok = {s_consumer.hex, "fed_open", "", "via relay", true, -1};
    json = dm_h_audit_wait(&s_node, &ok, T_AUDIT_MS);
    cr_assert(dm_h_audit_has(json, &ok), "no accepted FedOpen of the consumer in: %s", json);
    cr_assert(strstr(json, s_relay.hex), "the audit does not name the relay: %s", json);
    free(json);
    dm_buf_free(&g);
    dm_buf_free(&other);
}

Test(fed_grant, a_session_reads_as_the_consumer_and_no_more)
{
    dm_buf_t g = DM_BUF_INIT;
    s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() + 60000);
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_relay_id);
    Dm__Envelope *rep = s_open(raw, &g, T_SQL);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    const Dm__FedOpenRep *fo = rep->fed_open_rep;
    cr_assert_eq(fo->session.len, DM_GRANT_NONCE_BYTES);
    cr_assert_eq(fo->n_products, 2, "products: %zu", fo->n_products);
    cr_assert_str_eq(fo->products[0], "commerce.orders");
    cr_assert_str_eq(fo->products[1], "commerce.secret");
    uint8_t nonce[DM_GRANT_NONCE_BYTES];
    memcpy(nonce, fo->session.data, sizeof nonce);
    dm__envelope__free_unpacked(rep, NULL);

    /* orders: the consumer is a reader, and its pii is masked for the
     * consumer though not for the relay. */
    char *rows = s_rows(s_query(raw, nonce, "SELECT orderId, email FROM commerce.orders "
                                            "ORDER BY orderId"));
    cr_assert_str_eq(rows, "o1,***\no2,***\no3,***\no4,***\n", "not the consumer's view");
    free(rows);
    /* secret: the relay may read it, the consumer may not. */
    s_refused(s_query(raw, nonce, "SELECT orderId FROM commerce.secret"), DM_ERR_DENIED,
              s_consumer.hex);
    /* open: public, but the grant's SQL does not name it. */
    s_refused(s_query(raw, nonce, "SELECT orderId FROM commerce.open"), DM_ERR_DENIED,
              "the consumer's grant does not name it");
    /* The session is the relay's: another identity cannot use its nonce. */
    dm_h_raw_t *thief = dm_h_raw_new(s_node.addr, s_other_id);
    s_refused(s_query(thief, nonce, "SELECT orderId FROM commerce.orders"), DM_ERR_DENIED,
              "no open federated session");
    dm_h_raw_destroy(&thief);

    /* FedClose ends it. */
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__FedClose fc = DM__FED_CLOSE__INIT;
    fc.session.data = nonce;
    fc.session.len = sizeof nonce;
    dm_envelope_init(&env, 9, DM__ENVELOPE__BODY_FED_CLOSE, &fc);
    rep = s_call(raw, &env);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP);
    dm__envelope__free_unpacked(rep, NULL);
    s_refused(s_query(raw, nonce, "SELECT orderId FROM commerce.orders"), DM_ERR_DENIED,
              "no open federated session");
    /* and its grant cannot open it again. */
    s_refused(s_open(raw, &g, T_SQL), DM_ERR_DENIED, "grant replayed");
    dm_h_raw_destroy(&raw);

    /* The owner audited the reads as the consumer, via the relay. */
    dm_h_audit_want_t w = {s_consumer.hex, "read", "commerce/orders", "via relay", true, -1};
    char *json = dm_h_audit_wait(&s_node, &w, T_AUDIT_MS);
    cr_assert(dm_h_audit_has(json, &w), "no relayed read of orders in: %s", json);
    dm_h_audit_want_t d = {s_consumer.hex, "read", "commerce/open", "via relay", false, -1};
    cr_assert(dm_h_audit_has(json, &d), "no refused relayed read of open in: %s", json);
    free(json);
    dm_buf_free(&g);
}

Test(fed_grant, meshq_signs_a_grant_and_a_local_query_still_works)
{
    /* meshq now sends a grant with every query; a node reading its own
     * products is unaffected, and the consumer's own reads mask alike. */
    const char *q[] = {"query", "SELECT orderId, email FROM commerce.orders ORDER BY orderId",
                       "--format", "csv", "--explain", NULL};
    dm_h_result_t r = dm_h_run_as("meshq", s_consumer.file, &s_node, q, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_str_eq(r.out, "orderId,email\no1,***\no2,***\no3,***\no4,***\n");
    dm_h_result_free(&r);
    /* The node says its query time limit (meshq signs grants that
     * outlive it): the default 30 s here. */
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_consumer_id);
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__WhoamiReq wr = DM__WHOAMI_REQ__INIT;
    dm_envelope_init(&env, 3, DM__ENVELOPE__BODY_WHOAMI_REQ, &wr);
    Dm__Envelope *rep = s_call(raw, &env);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_WHOAMI_REP);
    cr_assert_eq(rep->whoami_rep->query_timeout_ms, 30000);
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&raw);
    /* --grant-life: a grant for a node whose query time limit is long. */
    const char *life[] = {"query", "SELECT count(*) FROM commerce.orders", "--format", "csv",
                          "--grant-life", "600", NULL};
    r = dm_h_run_as("meshq", s_consumer.file, &s_node, life, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    dm_h_result_free(&r);
    life[5] = "601";
    r = dm_h_run_as("meshq", s_consumer.file, &s_node, life, NULL);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "invalid --grant-life '601'") && strstr(r.err, "from 1 to 600"),
              "%s", r.err);
    dm_h_result_free(&r);
    const char *h[] = {"--help", NULL};
    r = dm_h_run("meshq", h, NULL, 10000);
    cr_assert(strstr(r.out, "--explain") && strstr(r.out, "grant") &&
                  strstr(r.out, "--grant-life"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(fed_grant, a_session_names_only_the_products_the_sql_reads)
{
    /* commerce.open only inside a string and comments; secret quoted. */
    const char *sql = "SELECT o.orderId, 'commerce.open' AS s FROM commerce . orders o "
                      "-- commerce.open\n"
                      "JOIN \"commerce\".\"secret\" x ON x.orderId = o.orderId /* commerce.open */ "
                      "JOIN identity.customers c ON c.id = o.orderId";
    dm_buf_t g = DM_BUF_INIT;
    s_grant(&g, s_consumer_id, s_relay_id, sql, dm_clock_wall_ms() + 60000);
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_relay_id);
    Dm__Envelope *rep = s_open(raw, &g, sql);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    const Dm__FedOpenRep *fo = rep->fed_open_rep;
    cr_assert_eq(fo->n_products, 2, "products: %zu", fo->n_products);
    cr_assert_str_eq(fo->products[0], "commerce.orders");
    cr_assert_str_eq(fo->products[1], "commerce.secret");
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&raw);
    dm_buf_free(&g);
}

Test(fed_grant, open_sessions_are_bounded_per_relay)
{
    /* DM_NODE_FED_SESSIONS_PER_RELAY (256) sessions open; the next is
     * refused BUSY naming the cap, while another relay still opens one;
     * closing one makes room. */
    const int cap = 256;
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_relay_id);
    dm_buf_t g = DM_BUF_INIT;
    uint8_t first[DM_GRANT_NONCE_BYTES];
    for (int i = 0; i < cap; i++) {
        s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() + 60000);
        Dm__Envelope *rep = s_open(raw, &g, T_SQL);
        cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "open %d: %s", i,
                     rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
        if (i == 0)
            memcpy(first, rep->fed_open_rep->session.data, sizeof first);
        dm__envelope__free_unpacked(rep, NULL);
    }
    s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() + 60000);
    s_refused(s_open(raw, &g, T_SQL), DM_ERR_BUSY, "256 per relay");

    dm_buf_t g2 = DM_BUF_INIT;
    s_grant(&g2, s_consumer_id, s_other_id, T_SQL, dm_clock_wall_ms() + 60000);
    dm_h_raw_t *other = dm_h_raw_new(s_node.addr, s_other_id);
    Dm__Envelope *rep = s_open(other, &g2, T_SQL);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "another relay is refused");
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&other);

    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__FedClose fc = DM__FED_CLOSE__INIT;
    fc.session.data = first;
    fc.session.len = sizeof first;
    dm_envelope_init(&env, 9, DM__ENVELOPE__BODY_FED_CLOSE, &fc);
    rep = s_call(raw, &env);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP);
    dm__envelope__free_unpacked(rep, NULL);
    /* The refused grant was not recorded: it opens now. */
    rep = s_open(raw, &g, T_SQL);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&raw);
    dm_buf_free(&g);
    dm_buf_free(&g2);
}

Test(fed_grant, the_replay_table_is_bounded_per_relay)
{
    /* --fed-relay-nonces (T_RELAY_NONCES here; 65536 by default) grants
     * opened and closed: their nonces stay until their expiry, so the next
     * is refused BUSY naming the table, never by forgetting a nonce early;
     * another relay is unaffected. */
    const int cap = atoi(T_RELAY_NONCES);
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_relay_id);
    dm_buf_t g = DM_BUF_INIT;
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__FedClose fc = DM__FED_CLOSE__INIT;
    uint8_t nonce[DM_GRANT_NONCE_BYTES];
    for (int i = 0; i < cap; i++) {
        s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() + 60000);
        Dm__Envelope *rep = s_open(raw, &g, T_SQL);
        cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "open %d: %s", i,
                     rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
        memcpy(nonce, rep->fed_open_rep->session.data, sizeof nonce);
        dm__envelope__free_unpacked(rep, NULL);
        fc.session.data = nonce;
        fc.session.len = sizeof nonce;
        dm_envelope_init(&env, 9, DM__ENVELOPE__BODY_FED_CLOSE, &fc);
        rep = s_call(raw, &env);
        cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "close %d", i);
        dm__envelope__free_unpacked(rep, NULL);
    }
    s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() + 60000);
    s_refused(s_open(raw, &g, T_SQL), DM_ERR_BUSY, "table of recent grants is full");
    dm_h_raw_destroy(&raw);

    s_grant(&g, s_consumer_id, s_other_id, T_SQL, dm_clock_wall_ms() + 60000);
    dm_h_raw_t *other = dm_h_raw_new(s_node.addr, s_other_id);
    Dm__Envelope *rep = s_open(other, &g, T_SQL);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "another relay is refused: %s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&other);
    dm_buf_free(&g);
}

typedef struct {
    dm_h_raw_t *raw;
    const uint8_t *nonce;
} s_probe_t;

/* Whether a relayed query in the probe's session is refused as closed. */
static bool s_session_gone(void *ctx)
{
    s_probe_t *p = ctx;
    Dm__Envelope *rep = s_query(p->raw, p->nonce, "SELECT orderId FROM commerce.orders");
    bool gone = rep->body_case == DM__ENVELOPE__BODY_ERROR &&
                strstr(rep->error->message, "no open federated session") != NULL;
    dm__envelope__free_unpacked(rep, NULL);
    return gone;
}

Test(fed_grant, a_session_ends_when_its_grant_expires)
{
    /* A grant that expired 25 s ago is still within the 30 s skew: it
     * opens, and its session serves until the skew runs out. */
    const int64_t ago = DM_GRANT_SKEW_MS - 5000;
    dm_buf_t g = DM_BUF_INIT;
    s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() - ago);
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_relay_id);
    Dm__Envelope *rep = s_open(raw, &g, T_SQL);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    uint8_t nonce[DM_GRANT_NONCE_BYTES];
    memcpy(nonce, rep->fed_open_rep->session.data, sizeof nonce);
    dm__envelope__free_unpacked(rep, NULL);
    long long opened = dm_h_now_ms();
    rep = s_query(raw, nonce, "SELECT orderId FROM commerce.orders");
    bool served = rep->body_case == DM__ENVELOPE__BODY_QUERY_REP;
    dm__envelope__free_unpacked(rep, NULL);
    cr_assert(served || dm_h_now_ms() - opened > 4000, "a live session was refused");

    s_probe_t p = {raw, nonce};
    cr_assert(dm_h_wait_until(s_session_gone, &p, 15000), "the session outlived its grant");
    s_refused(s_open(raw, &g, T_SQL), DM_ERR_DENIED, "grant expired");
    dm_h_raw_destroy(&raw);
    dm_buf_free(&g);
}

Test(fed_grant, a_restarted_owner_still_refuses_a_replay)
{
    dm_buf_t g = DM_BUF_INIT;
    s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() + 60000);
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_relay_id);
    Dm__Envelope *rep = s_open(raw, &g, T_SQL);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&raw);

    char dir[sizeof s_node.dir];
    snprintf(dir, sizeof dir, "%s", s_node.dir);
    dm_h_node_signal(&s_node, SIGTERM);
    const char *extra[] = {"--governance", s_gov.hex, "--fed-relay-nonces", T_RELAY_NONCES, NULL};
    cr_assert(dm_h_node_start(&s_node, dir, "commerce", extra), "meshd did not restart");
    s_seen_t w = {&s_node, &s_relay_node};
    cr_assert(dm_h_wait_until(s_seen, &w, DM_H_WAIT_MS), "the owner does not see the relay");
    s_open_refused(s_relay_id, &g, T_SQL, "grant replayed: nonce ");
    /* A fresh grant still opens. */
    s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() + 60000);
    raw = dm_h_raw_new(s_node.addr, s_relay_id);
    rep = s_open(raw, &g, T_SQL);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_FED_OPEN_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&raw);
    dm_buf_free(&g);
}

Test(fed_grant, only_an_alive_certified_member_may_relay)
{
    /* A stranger with a valid key, not a member: refused before its
     * grant is even looked at, whatever it signs. */
    dm_h_person_t stranger;
    cr_assert(dm_h_person(&stranger, s_tmp, "stranger"));
    dm_identity_t *sid = dm_h_person_identity(&stranger);
    cr_assert_not_null(sid);
    dm_buf_t g = DM_BUF_INIT;
    s_grant(&g, sid, sid, T_SQL, dm_clock_wall_ms() + 60000);
    s_open_refused(sid, &g, T_SQL, "is not a member to this node");
    dm_identity_destroy(&sid);

    /* A member whose domain governance did not certify. */
    dm_h_node_t rogue_node;
    dm_h_person_t rogue;
    s_member(&rogue_node, &rogue, "rogue", false);
    dm_identity_t *rid = dm_h_person_identity(&rogue);
    cr_assert_not_null(rid);
    s_grant(&g, s_consumer_id, rid, T_SQL, dm_clock_wall_ms() + 60000);
    s_open_refused(rid, &g, T_SQL, "serves domain rogue, which is not certified to it");
    dm_identity_destroy(&rid);

    /* A certified member's session naming none of the owner's products. */
    const char *none = "SELECT 1 FROM relay.stuff JOIN commerce.nosuch";
    s_grant(&g, s_consumer_id, s_relay_id, none, dm_clock_wall_ms() + 60000);
    s_open_refused(s_relay_id, &g, none, "the SQL names none of this node's products");
    /* A dead member no longer relays: stop the relay's meshd and wait until
     * the owner's membership no longer sees it alive (suspect or dead).
     * Opening sessions while waiting would only fill the relay's share. */
    dm_h_node_signal(&s_relay_node, SIGKILL);
    long long deadline = dm_h_now_ms() + 30000;
    for (;;) {
        dm_h_member_t m = dm_h_member(&s_node, "relay");
        if ((m.found && strcmp(m.state, "alive") != 0) || dm_h_now_ms() > deadline)
            break;
        poll(NULL, 0, 50); /* between MembersReq round trips, on a deadline */
    }
    s_grant(&g, s_consumer_id, s_relay_id, T_SQL, dm_clock_wall_ms() + 60000);
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, s_relay_id);
    Dm__Envelope *rep = s_open(raw, &g, T_SQL);
    dm_h_raw_destroy(&raw);
    s_refused(rep, DM_ERR_DENIED, "to this node; only a mesh member this node sees alive");

    /* The owner audited the stranger's refusal. */
    dm_h_audit_want_t w = {stranger.hex, "fed_open", "", "not a member", false, -1};
    char *json = dm_h_audit_wait(&s_node, &w, T_AUDIT_MS);
    cr_assert(dm_h_audit_has(json, &w), "no refusal of the stranger in: %s", json);
    free(json);
    dm_buf_free(&g);
}
