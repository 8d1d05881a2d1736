/* test_governance_moves.c: governance that changes hands on real meshd
 * processes (issue 9, after review): a rotation keeps the documents in
 * force, the new key withdraws one the old key published (`dmctl policy
 * withdraw`) and the read it denied is served again on every node, policy
 * versions keep rising across the rotation; and a domain moved by a
 * certificate to a node that registered while another held it is listed
 * mesh-wide at once, without waiting for the once-a-minute retry. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "harness_access.h"
#include "harness_catalog.h"
#include "transport/envelope.h"

#define T_NODES 3
#define T_SPREAD_MS 15000 /* for gossip to carry an entry to every node; well under a minute */
#define T_APPLY_MS 5000   /* for a node to act on what it accepted */

static const char *s_tmp;
static dm_h_node_t s_nodes[T_NODES];
static dm_h_person_t s_gov, s_next, s_stranger;

static void s_up(void)
{
    s_tmp = dm_h_tmpdir();
    cr_assert_not_null(s_tmp);
    cr_assert(dm_h_person(&s_gov, s_tmp, "governance"));
    cr_assert(dm_h_person(&s_next, s_tmp, "next-governance"));
    cr_assert(dm_h_person(&s_stranger, s_tmp, "stranger"));
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(governance_moves, .init = s_up, .fini = s_down, .timeout = 180);

/* Starts node i for domain with the first governance key, joining node 0
 * unless it is node 0; dir NULL: TMP/DOMAIN-i. */
static void s_start(int i, const char *domain, const char *dir)
{
    char own[600];
    if (!dir) {
        snprintf(own, sizeof own, "%s/%s-%d", s_tmp, domain, i);
        dir = own;
    }
    const char *extra[] = {"--governance", s_gov.hex, i ? "--join" : NULL, s_nodes[0].addr,
                           NULL};
    cr_assert(dm_h_node_start(&s_nodes[i], dir, domain, extra), "node %d (%s) did not start", i,
              domain);
}

/* Writes text to TMP/name and returns the path (static, 4 in rotation). */
static const char *s_file(const char *name, const char *text)
{
    return dm_h_file(s_tmp, name, text);
}

/* `dmctl policy ARGS...` as identity `as` on node i, which must succeed. */
static void s_policy_ok(const dm_h_person_t *as, int i, const char *verb, const char *arg)
{
    const char *args[] = {"policy", verb, arg, NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", as->file, &s_nodes[i], args, NULL);
    cr_assert_eq(r.status, 0, "policy %s %s on node %d: %s%s", verb, arg, i, r.out, r.err);
    dm_h_result_free(&r);
}

/* Registers DOMAIN/NAME (public) on node i as its admin and ingests the
 * four sample records. */
static void s_product(int i, const char *name)
{
    cr_assert(dm_h_orders_product(&s_nodes[i], s_tmp, name, "public", ""),
              "%s/%s was not set up on node %d", s_nodes[i].domain, name, i);
}

/* The certificates of the domains of nodes 0..n-1 as one YAML stream. */
static const char *s_certs(int n)
{
    static char text[2048];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        char key[DM_ID_HEX_BYTES];
        dm_h_node_key(&s_nodes[i], key);
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "%sapiVersion: datamesh.io/v1\nkind: DomainCertificate\n"
                                "metadata: {name: %s}\nspec: {domain: %s, node: \"%s\"}\n",
                                i ? "---\n" : "", s_nodes[i].domain, s_nodes[i].domain, key);
    }
    return text;
}

/* ---- rotation and withdrawal ---- */

typedef struct {
    int node;
    const char *table;
    bool refused;
} s_read_t;

/* Whether the stranger's count of table on its node is refused as wanted. */
static bool s_read_state(void *ctx)
{
    s_read_t *c = ctx;
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) AS n FROM %s", c->table);
    const char *q[] = {"query", sql, "--format", "csv", NULL};
    dm_h_result_t r = dm_h_run_as("meshq", s_stranger.file, &s_nodes[c->node], q, NULL);
    bool refused = r.status != 0;
    bool served = r.status == 0 && strcmp(r.out, "n\n4\n") == 0;
    dm_h_result_free(&r);
    return c->refused ? refused : served;
}

static void s_wait_reads(bool refused, const char *when)
{
    static const char *const tables[] = {"commerce.orders", "logistics.shipments"};
    for (int i = 0; i < 2; i++) {
        s_read_t want = {i, tables[i], refused};
        cr_assert(dm_h_wait_until(s_read_state, &want, T_SPREAD_MS),
                  "%s: node %d %s %s to the stranger", when, i,
                  refused ? "still serves" : "does not serve", tables[i]);
    }
}

/* Whether node *ctx has root version 2. */
static bool s_rotated(void *ctx)
{
    dm_h_gov_t g = dm_h_policy_get(&s_nodes[*(int *)ctx]);
    return g.answered && g.root_version == 2;
}

Test(governance_moves, a_rotation_keeps_a_deny_and_the_new_key_withdraws_it)
{
    s_start(0, "commerce", NULL);
    s_start(1, "logistics", NULL);
    s_policy_ok(&s_gov, 0, "publish", s_file("certs.yaml", s_certs(2)));
    s_product(0, "orders");
    s_product(1, "shipments");
    s_wait_reads(false, "before the deny");

    char doc[1024];
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: no-strangers}\n"
             "spec:\n  access:\n    - name: deny-stranger\n      effect: deny\n"
             "      actions: [read]\n"
             "      products: [\"commerce/orders\", \"logistics/shipments\"]\n"
             "      consumers: [\"%s\"]\n",
             s_stranger.hex);
    s_policy_ok(&s_gov, 0, "publish", s_file("deny.yaml", doc));
    s_wait_reads(true, "after the deny");

    /* The rotation keeps every document in force, and its version. */
    dm_h_gov_t before = dm_h_policy_get(&s_nodes[1]);
    cr_assert(before.answered && dm_h_gov_has(&before, "no-strangers", 0));
    s_policy_ok(&s_gov, 0, "rotate", s_next.hex);
    for (int i = 0; i < 2; i++) {
        cr_assert(dm_h_wait_until(s_rotated, &i, T_SPREAD_MS), "node %d did not take the rotation",
                  i);
        dm_h_gov_t g = dm_h_policy_get(&s_nodes[i]);
        cr_assert(dm_h_gov_has(&g, "no-strangers", 0) && dm_h_gov_has(&g, "commerce", 0) &&
                      dm_h_gov_has(&g, "logistics", 0),
                  "node %d dropped documents at the rotation (%zu left)", i, g.ndocs);
        cr_assert_eq(g.policy_version, before.policy_version, "node %d", i);
    }
    s_wait_reads(true, "after the rotation");

    /* The old key cannot withdraw; the new key withdraws its predecessor's
     * document, through node 1: gossip carries it to node 0. */
    const char *wd[] = {"policy", "withdraw", "no-strangers", NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", s_gov.file, &s_nodes[1], wd, NULL);
    cr_assert_neq(r.status, 0, "the retired key withdrew a document: %s", r.out);
    dm_h_result_free(&r);
    const char *none[] = {"policy", "withdraw", "no-such-document", NULL};
    r = dm_h_run_as("dmctl", s_next.file, &s_nodes[1], none, NULL);
    cr_assert_neq(r.status, 0, "withdrew a document that does not exist: %s", r.out);
    cr_assert(strstr(r.err, "no active document gov/doc/no-such-document"), "%s", r.err);
    dm_h_result_free(&r);
    s_policy_ok(&s_next, 1, "withdraw", "no-strangers");
    s_wait_reads(false, "after the withdrawal");
    for (int i = 0; i < 2; i++) {
        dm_h_gov_t g = dm_h_policy_get(&s_nodes[i]);
        cr_assert(g.answered && !dm_h_gov_has(&g, "no-strangers", 0), "node %d", i);
        cr_assert(dm_h_gov_has(&g, "commerce", 0), "node %d lost the certificates", i);
        cr_assert_gt(g.policy_version, before.policy_version,
                     "node %d: the withdrawal did not give the set a new version", i);
        cr_assert_gt(g.max_version, before.max_version, "node %d: versions went back", i);
    }
    const dm_h_audit_want_t want = {s_next.hex, "policy publish", "",
                                    "gov/doc/no-strangers", true, -1};
    char *json = dm_h_audit_wait(&s_nodes[1], &want, T_APPLY_MS);
    cr_assert(dm_h_audit_has(json, &want), "node 1's audit lacks the withdrawal: %s", json);
    cr_assert(strstr(json, "withdrawal"), "the audit does not call it a withdrawal: %s", json);
    free(json);
}

/* ---- a domain moved by a certificate ---- */

/* Certificates: commerce to the first key, logistics to the second. */
static const char s_certs_fmt[] =
    "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: commerce}\n"
    "spec: {domain: commerce, node: \"%s\"}\n---\n"
    "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: logistics}\n"
    "spec: {domain: logistics, node: \"%s\"}\n";

Test(governance_moves, a_domain_moved_by_certificate_is_listed_at_once)
{
    /* Node 0 observes; node 1 claims commerce; node 2 claims it too and
     * registers while a certificate names node 1; then the corrected
     * certificate moves commerce to node 2. */
    s_start(0, "logistics", NULL);
    s_start(1, "commerce", NULL);
    s_product(1, "leads");
    dm_h_listing_t first = {&s_nodes[0], "commerce", "leads", 1};
    cr_assert(dm_h_wait_until(dm_h_listing_is, &first, T_SPREAD_MS),
              "node 0 does not list the first claimant's product (state %d)",
              dm_h_listed(&s_nodes[0], "commerce", "leads"));
    /* The first certificate names node 1; node 2 learns it (its own claim
     * moves to node 1) and registers: its publication is refused. */
    char key0[DM_ID_HEX_BYTES], key1[DM_ID_HEX_BYTES], key2[DM_ID_HEX_BYTES], certs[2048];
    dm_h_node_key(&s_nodes[0], key0);
    dm_h_node_key(&s_nodes[1], key1);
    s_start(2, "commerce", NULL);
    dm_h_node_key(&s_nodes[2], key2);
    snprintf(certs, sizeof certs, s_certs_fmt, key1, key0);
    s_policy_ok(&s_gov, 0, "publish", s_file("first.yaml", certs));
    dm_h_listing_t learned = {&s_nodes[2], "commerce", "leads", 0};
    cr_assert(dm_h_wait_until(dm_h_listing_is, &learned, T_SPREAD_MS),
              "node 2 never took the certificate naming node 1 (state %d)",
              dm_h_listed(&s_nodes[2], "commerce", "leads"));
    s_product(2, "orders");
    cr_assert_eq(dm_h_listed(&s_nodes[2], "commerce", "orders"), -1,
                 "node 2 published into a domain certified to another node");

    /* The corrected certificate moves commerce to node 2. */
    snprintf(certs, sizeof certs, s_certs_fmt, key2, key0);
    s_policy_ok(&s_gov, 0, "publish", s_file("move.yaml", certs));
    /* Well before the once-a-minute retry: every node lists it. */
    for (int i = 0; i < T_NODES; i++) {
        dm_h_listing_t moved = {&s_nodes[i], "commerce", "orders", 0};
        cr_assert(dm_h_wait_until(dm_h_listing_is, &moved, T_SPREAD_MS),
                  "node %d does not list the certified node's product (state %d)", i,
                  dm_h_listed(&s_nodes[i], "commerce", "orders"));
    }
    dm_h_listing_t gone = {&s_nodes[0], "commerce", "leads", -1};
    cr_assert(dm_h_wait_until(dm_h_listing_is, &gone, T_SPREAD_MS),
              "node 0 still lists the old claimant's product");
    const char *q[] = {"query", "SELECT count(*) AS n FROM commerce.orders", "--format", "csv",
                       NULL};
    dm_h_result_t r = dm_h_run_as("meshq", s_stranger.file, &s_nodes[2], q, NULL);
    cr_assert_eq(r.status, 0, "the certified node does not serve its product: %s", r.err);
    cr_assert_str_eq(r.out, "n\n4\n");
    dm_h_result_free(&r);
}
