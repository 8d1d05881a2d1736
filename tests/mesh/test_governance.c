/* test_governance.c: the mesh's signed governance on real meshd processes
 * (issue 9). Nodes start with `meshd --governance GKEY`; the governance
 * identity publishes documents with the real `dmctl policy publish`; the
 * test builds its own bad entries (forged, tampered, unsigned, replayed,
 * older) and sends them to a node as a client would (PolicyPublishReq)
 * and as a peer would (CatalogSync), then checks on every node that they
 * never became active. Also: a deny beats an owner's public access, a pii
 * mask and a row filter change what a group sees, a group reader is
 * served, key rotation follows TUF's rule, an uncertified impostor domain
 * is not served. */
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
#define T_SPREAD_MS 15000 /* for gossip to carry an entry to every node */
#define T_APPLY_MS 5000   /* for a node to act on what it accepted */

static const char *s_tmp;
static dm_h_node_t s_nodes[T_NODES];
static dm_h_person_t s_gov, s_stranger, s_member, s_eu;
static char s_gov_arg[DM_ID_HEX_BYTES];

static void s_up(void)
{
    s_tmp = dm_h_tmpdir();
    cr_assert_not_null(s_tmp);
    cr_assert(dm_h_person(&s_gov, s_tmp, "governance"));
    cr_assert(dm_h_person(&s_stranger, s_tmp, "stranger"));
    cr_assert(dm_h_person(&s_member, s_tmp, "member"));
    cr_assert(dm_h_person(&s_eu, s_tmp, "eu"));
    snprintf(s_gov_arg, sizeof s_gov_arg, "%s", s_gov.hex);
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(governance, .init = s_up, .fini = s_down, .timeout = 180);

/* Starts node i for domain with the governance key gkey, joining node 0
 * unless it is node 0. */
static void s_start(int i, const char *domain, const char *gkey)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s-%d", s_tmp, domain, i);
    const char *extra[] = {"--governance", gkey, i ? "--join" : NULL, s_nodes[0].addr, NULL};
    cr_assert(dm_h_node_start(&s_nodes[i], dir, domain, extra), "node %d (%s) did not start", i,
              domain);
}

/* Writes text to TMP/name and returns the path (static, 4 in rotation). */
static const char *s_file(const char *name, const char *text)
{
    return dm_h_file(s_tmp, name, text);
}

/* `dmctl policy publish FILE` as identity file `as` on node n. */
static dm_h_result_t s_publish(const dm_h_person_t *as, const dm_h_node_t *n, const char *file)
{
    const char *args[] = {"policy", "publish", file, NULL};
    return dm_h_run_as("dmctl", as->file, n, args, NULL);
}

/* Publishes file as the governance identity on n, which must accept it. */
static void s_publish_ok(const dm_h_node_t *n, const char *file)
{
    dm_h_result_t r = s_publish(&s_gov, n, file);
    cr_assert_eq(r.status, 0, "policy publish %s: %s%s", file, r.out, r.err);
    dm_h_result_free(&r);
}

/* Publishes the DomainCertificate binding n's domain to n's key: with a
 * governance key an uncertified domain's products are served to no one
 * but its admins. */
static void s_certify(const dm_h_node_t *n)
{
    char key[DM_ID_HEX_BYTES], doc[512], file[200];
    dm_h_node_key(n, key);
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: %s}\n"
             "spec: {domain: %s, node: \"%s\"}\n",
             n->domain, n->domain, key);
    snprintf(file, sizeof file, "cert-%.64s.yaml", n->domain);
    s_publish_ok(n, s_file(file, doc));
}

/* Registers DOMAIN/NAME (access, readers) on n as its admin and ingests
 * the four sample records. */
static void s_product(const dm_h_node_t *n, const char *name, const char *access,
                      const char *readers)
{
    cr_assert(dm_h_orders_product(n, s_tmp, name, access, readers), "%s/%s was not set up",
              n->domain, name);
}

/* meshq query SQL --format csv on node 0 as p (NULL: as its admin). */
static dm_h_result_t s_sql(const dm_h_person_t *p, const char *sql)
{
    const char *q[] = {"query", sql, "--format", "csv", NULL};
    return p ? dm_h_run_as("meshq", p->file, &s_nodes[0], q, NULL)
             : dm_h_run_admin("meshq", &s_nodes[0], q, NULL);
}

/* The csv result of sql for p, which must be served. */
static char *s_rows(const dm_h_person_t *p, const char *sql)
{
    dm_h_result_t r = s_sql(p, sql);
    cr_assert_eq(r.status, 0, "%s refused to %s: %s", sql, p ? p->hex : "the admin", r.err);
    free(r.err);
    return r.out;
}

/* ---- a deny overrides the owner ---- */

typedef struct {
    const dm_h_person_t *who;
    bool refused;
} s_read_t;

static bool s_read_state(void *ctx)
{
    s_read_t *c = ctx;
    dm_h_result_t r = s_sql(c->who, "SELECT count(*) AS n FROM commerce.orders");
    bool refused = r.status != 0;
    dm_h_result_free(&r);
    return refused == c->refused;
}

Test(governance, a_governance_deny_overrides_an_owners_public_access)
{
    s_start(0, "commerce", s_gov_arg);
    s_certify(&s_nodes[0]);
    s_product(&s_nodes[0], "orders", "public", "");
    char *rows = s_rows(&s_stranger, "SELECT count(*) AS n FROM commerce.orders");
    cr_assert_str_eq(rows, "n\n4\n");
    free(rows);

    char doc[1024];
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: no-strangers}\n"
             "spec:\n  access:\n    - name: deny-stranger\n      effect: deny\n"
             "      actions: [read]\n      products: [\"commerce/orders\"]\n"
             "      consumers: [\"%s\"]\n",
             s_stranger.hex);
    const char *file = s_file("deny.yaml", doc);
    /* Only the governance identity may publish; the stranger is told why. */
    dm_h_result_t r = s_publish(&s_stranger, &s_nodes[0], file);
    cr_assert_neq(r.status, 0, "a stranger published a governance document");
    cr_assert(strstr(r.err, s_gov.hex), "the refusal does not name the governance key: %s", r.err);
    dm_h_result_free(&r);
    s_publish_ok(&s_nodes[0], file);

    s_read_t refused = {&s_stranger, true};
    cr_assert(dm_h_wait_until(s_read_state, &refused, T_APPLY_MS),
              "the governance deny did not override public access");
    dm_h_gov_t g = dm_h_policy_get(&s_nodes[0]);
    cr_assert(g.answered && dm_h_gov_has(&g, "no-strangers", 0), "the document is not active");
    r = s_sql(&s_stranger, "SELECT count(*) AS n FROM commerce.orders");
    cr_assert_eq(r.status, 1, "%s", r.out);
    char expect[512];
    snprintf(expect, sizeof expect,
             "access denied to commerce.orders (public): governance policy no-strangers rule "
             "deny-stranger (version %llu) denies read to %s",
             (unsigned long long)g.policy_version, s_stranger.hex);
    cr_assert(strstr(r.err, expect), "expected '%s' in: %s", expect, r.err);
    dm_h_result_free(&r);
    /* The rule names one consumer: others are still served. */
    rows = s_rows(&s_member, "SELECT count(*) AS n FROM commerce.orders");
    cr_assert_str_eq(rows, "n\n4\n");
    free(rows);

    /* The audit has the publish, the deny with its rule and the policy
     * version, and the reads allowed before and beside it. */
    const dm_h_audit_want_t deny = {s_stranger.hex, "read", "commerce/orders",
                                    "no-strangers", false, (long long)g.policy_version};
    char *json = dm_h_audit_wait(&s_nodes[0], &deny, T_APPLY_MS);
    const dm_h_audit_want_t want[] = {
        {s_stranger.hex, "read", "commerce/orders", "owner: public", true, -1},
        {s_member.hex, "read", "commerce/orders", "owner: public", true,
         (long long)g.policy_version},
        {s_gov.hex, "policy publish", "", "gov/doc/no-strangers", true, -1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(dm_h_audit_has(json, &want[i]), "the audit lacks %s %s (%s, %s): %s",
                  want[i].caller, want[i].action, want[i].rule ? want[i].rule : "any rule",
                  want[i].allowed ? "allowed" : "denied", json);
    cr_assert(dm_h_audit_has(json, &deny), "the audit lacks the governance deny: %s", json);
    free(json);
}

Test(governance, a_register_breaking_a_contract_rule_is_refused_naming_rule_and_version)
{
    s_start(0, "commerce", s_gov_arg);
    s_certify(&s_nodes[0]);
    s_publish_ok(&s_nodes[0],
                 s_file("baseline.yaml",
                        "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: baseline}\n"
                        "spec:\n  contractRules:\n"
                        "    - {name: require-freshness, require: sla.freshness}\n"
                        "    - {name: no-public-pii, forbid: public-pii}\n"));
    dm_h_gov_t g = dm_h_policy_get(&s_nodes[0]);
    cr_assert(dm_h_gov_has(&g, "baseline", 0));
    /* A public product with a pii field and no sla.freshness. */
    char text[2048];
    snprintf(text, sizeof text, "%s",
             dm_h_orders_contract("commerce", "orders", "1.0.0", "public", ""));
    char *sla = strstr(text, "  sla:\n    freshness: 5m\n");
    cr_assert_not_null(sla);
    memmove(sla, sla + strlen("  sla:\n    freshness: 5m\n"),
            strlen(sla + strlen("  sla:\n    freshness: 5m\n")) + 1);
    const char *file = s_file("no-sla.yaml", text);
    const char *reg[] = {"register", file, NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_nodes[0], reg, NULL);
    cr_assert_neq(r.status, 0, "a contract breaking the mesh's rules was registered");
    char version[64];
    snprintf(version, sizeof version, "version %llu", (unsigned long long)g.policy_version);
    cr_assert(strstr(r.err, "require-freshness") && strstr(r.err, "no-public-pii") &&
                  strstr(r.err, "baseline") && strstr(r.err, version),
              "the refusal does not name both rules, the policy and %s: %s", version, r.err);
    dm_h_result_free(&r);
    /* dmctl validate with a node checks the same rules. */
    const char *val[] = {"validate", file, NULL};
    r = dm_h_run_admin("dmctl", &s_nodes[0], val, NULL);
    cr_assert_eq(r.status, 1, "validate passed a contract breaking the mesh's rules: %s", r.out);
    cr_assert(strstr(r.out, "require-freshness") || strstr(r.err, "require-freshness"), "%s%s",
              r.out, r.err);
    dm_h_result_free(&r);
    const char *list[] = {"products", "--json", NULL};
    r = dm_h_run_admin("dmctl", &s_nodes[0], list, NULL);
    cr_assert_null(strstr(r.out, "\"orders\""), "the refused product is listed: %s", r.out);
    dm_h_result_free(&r);
}

/* ---- masks, row filters, group readers ---- */

Test(governance, a_pii_mask_and_a_row_filter_change_what_a_group_sees)
{
    s_start(0, "commerce", s_gov_arg);
    s_certify(&s_nodes[0]);
    s_product(&s_nodes[0], "orders", "public", "");
    s_product(&s_nodes[0], "invoices", "restricted", "\"group:eu-analysts\"");
    char groups[1024];
    snprintf(groups, sizeof groups,
             "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: pii-readers}\n"
             "spec: {members: [\"%s\"]}\n---\n"
             "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: eu-analysts}\n"
             "spec: {members: [\"%s\"]}\n",
             s_member.hex, s_eu.hex);
    s_publish_ok(&s_nodes[0], s_file("groups.yaml", groups));
    s_publish_ok(&s_nodes[0],
                 s_file("privacy.yaml",
                        "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: privacy}\n"
                        "spec:\n"
                        "  masks:\n"
                        "    - name: mask-pii\n"
                        "      products: [\"commerce/orders\"]\n"
                        "      fields: {classification: pii}\n"
                        "      mask: redact\n"
                        "      except: [\"group:pii-readers\"]\n"
                        "  rowFilters:\n"
                        "    - name: eu-only\n"
                        "      products: [\"commerce/orders\"]\n"
                        "      consumers: [\"group:eu-analysts\"]\n"
                        "      predicate: \"region = 'eu'\"\n"));
    dm_h_gov_t g = dm_h_policy_get(&s_nodes[0]);
    cr_assert(dm_h_gov_has(&g, "pii-readers", 0) && dm_h_gov_has(&g, "eu-analysts", 0) &&
                  dm_h_gov_has(&g, "privacy", 0),
              "not every document is active (%zu docs)", g.ndocs);
    const char *who[] = {"whoami", "--json", NULL};
    dm_h_result_t w = dm_h_run_as("dmctl", s_member.file, &s_nodes[0], who, NULL);
    cr_assert(strstr(w.out, "pii-readers") && !strstr(w.out, "eu-analysts"),
              "the node does not see the member's groups: %s%s", w.out, w.err);
    dm_h_result_free(&w);

    const char *sql = "SELECT orderId, email FROM commerce.orders ORDER BY orderId";
    const char *raw = "orderId,email\no1,ann@example.com\no2,bob@example.com\n"
                      "o3,cid@example.com\no4,dee@example.com\n";
    char *rows = s_rows(&s_stranger, sql);
    cr_assert_str_eq(rows, "orderId,email\no1,***\no2,***\no3,***\no4,***\n");
    free(rows);
    rows = s_rows(&s_member, sql);
    cr_assert_str_eq(rows, raw, "a pii-readers member does not see raw values");
    free(rows);
    rows = s_rows(&s_eu, sql);
    cr_assert_str_eq(rows, "orderId,email\no1,***\no3,***\n", "the eu filter or the mask failed");
    free(rows);
    rows = s_rows(NULL, sql);
    cr_assert_str_eq(rows, raw, "the domain's admin is masked");
    free(rows);
    /* A WHERE on a masked column compares the masked value. */
    rows = s_rows(&s_stranger,
                  "SELECT count(*) AS n FROM commerce.orders WHERE email = 'ann@example.com'");
    cr_assert_str_eq(rows, "n\n0\n", "a masked column leaked through WHERE");
    free(rows);

    /* A restricted product whose reader is a governance group. */
    rows = s_rows(&s_eu, "SELECT count(*) AS n FROM commerce.invoices");
    cr_assert_str_eq(rows, "n\n4\n");
    free(rows);
    dm_h_result_t r = s_sql(&s_member, "SELECT count(*) AS n FROM commerce.invoices");
    cr_assert_eq(r.status, 1, "a non-member of the reader group was served: %s", r.out);
    cr_assert(strstr(r.err, "access denied to commerce.invoices (restricted)"), "%s", r.err);
    dm_h_result_free(&r);
    /* The owner grants a whole group. */
    const char *grant[] = {"grant", "commerce/invoices", "group:pii-readers", NULL};
    r = dm_h_run_admin("dmctl", &s_nodes[0], grant, NULL);
    cr_assert_eq(r.status, 0, "grant group:pii-readers: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    rows = s_rows(&s_member, "SELECT count(*) AS n FROM commerce.invoices");
    cr_assert_str_eq(rows, "n\n4\n");
    free(rows);
}

/* ---- forged, tampered, unsigned and replayed documents ---- */

typedef struct {
    int node;
    const char *name;
    uint64_t version; /* 0: any */
} s_has_t;

static bool s_node_has(void *ctx)
{
    s_has_t *h = ctx;
    dm_h_gov_t g = dm_h_policy_get(&s_nodes[h->node]);
    return g.answered && dm_h_gov_has(&g, h->name, h->version);
}

/* Waits until nodes 0..n-1 all have gov/doc/name (at version, if not 0). */
static void s_wait_everywhere(int n, const char *name, uint64_t version)
{
    for (int i = 0; i < n; i++) {
        s_has_t h = {i, name, version};
        cr_assert(dm_h_wait_until(s_node_has, &h, T_SPREAD_MS),
                  "node %d never had gov/doc/%s (version %llu)", i, name,
                  (unsigned long long)version);
    }
}

/* Sends g to node i as a client: it must be refused with the catalog's
 * verdict want ("bad signature", "not owner", "stale", "malformed"). */
static void s_refused(int i, const dm_h_gov_entry_t *g, const char *what, const char *want)
{
    char why[512];
    cr_assert_not(dm_h_gov_publish(&s_nodes[i], NULL, g, why, sizeof why),
                  "node %d accepted the %s entry", i, what);
    char verdict[64];
    snprintf(verdict, sizeof verdict, "(%s)", want);
    cr_assert(strstr(why, verdict), "node %d refused the %s entry, but not as %s: %s", i, what,
              verdict, why);
}

/* `dmctl policy show --json` as node i's admin. */
static char *s_show(int i)
{
    const char *args[] = {"policy", "show", "--json", NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_nodes[i], args, NULL);
    cr_assert_eq(r.status, 0, "policy show on node %d: %s", i, r.err);
    free(r.err);
    return r.out;
}

static const char *s_group_doc(const char *name, const char *member)
{
    static char text[512];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: %s}\n"
             "spec: {members: [\"%s\"]}\n",
             name, member);
    return text;
}

Test(governance, forged_tampered_unsigned_and_replayed_documents_are_refused_by_every_node)
{
    s_start(0, "commerce", s_gov_arg);
    s_start(1, "logistics", s_gov_arg);
    s_publish_ok(&s_nodes[0], s_file("baseline.yaml", s_group_doc("baseline", s_member.hex)));
    s_wait_everywhere(2, "baseline", 0);

    dm_identity_t *gov = dm_h_person_identity(&s_gov), *forger = NULL, *peer0 = NULL;
    cr_assert_not_null(gov);
    cr_assert_eq(dm_identity_new_ephemeral(&forger), DM_OK);
    cr_assert_eq(dm_identity_load(s_nodes[0].dir, &peer0, NULL), DM_OK);
    const uint8_t *gkey = dm_identity_public(gov), *fkey = dm_identity_public(forger);
    dm_h_gov_t g = dm_h_policy_get(&s_nodes[0]);
    cr_assert(g.answered);
    uint64_t m = g.max_version;

    /* dmctl itself refuses to publish as another key than the governance's. */
    dm_h_person_t other;
    cr_assert(dm_h_person(&other, s_tmp, "other"));
    dm_h_result_t r = s_publish(&other, &s_nodes[0], s_file("f.yaml", s_group_doc("forged", other.hex)));
    cr_assert_neq(r.status, 0, "dmctl published as a non-governance key");
    dm_h_result_free(&r);

    /* The bad entries, on the wire. */
    dm_h_gov_entry_t foreign, forged, tampered, unsigned_, good, good2, marker;
    cr_assert(dm_h_gov_doc(&foreign, forger, fkey, "foreign", s_group_doc("foreign", s_eu.hex), 1));
    cr_assert(dm_h_gov_doc(&forged, forger, gkey, "forged", s_group_doc("forged", s_eu.hex), m + 2));
    cr_assert(dm_h_gov_doc(&tampered, gov, gkey, "tampered", s_group_doc("tampered", s_eu.hex),
                           m + 3));
    /* After signing, one hex digit of the member key changes: still a
     * valid document, no longer the one signed. */
    char *digit = strstr(tampered.t.payload.data, s_eu.hex);
    cr_assert_not_null(digit);
    *digit = *digit == 'a' ? 'b' : 'a';
    cr_assert(dm_h_gov_doc(&unsigned_, gov, gkey, "unsigned", s_group_doc("unsigned", s_eu.hex),
                           m + 4));
    memset(unsigned_.t.e.signature, 0, sizeof unsigned_.t.e.signature);
    cr_assert(dm_h_gov_doc(&good, gov, gkey, "replayable", s_group_doc("replayable", s_eu.hex),
                           m + 1));
    s_refused(0, &foreign, "foreign-key", "not owner");
    s_refused(0, &forged, "forged", "bad signature");
    s_refused(0, &tampered, "tampered", "bad signature");
    s_refused(0, &unsigned_, "unsigned", "bad signature");
    s_refused(1, &forged, "forged", "bad signature");
    s_refused(1, &tampered, "tampered", "bad signature");

    /* As a peer would relay them (node 0's key and address), with one good
     * entry behind them: once node 1 has the good one, it judged them all. */
    dm_h_entry_t *delta[] = {&foreign.t, &forged.t, &tampered.t, &unsigned_.t, &good.t};
    cr_assert(dm_h_catalog_inject(&s_nodes[1], peer0, s_nodes[0].addr, delta, 5));
    s_wait_everywhere(2, "replayable", m + 1);

    /* Replays: the same entry again, then the older one after a newer. */
    s_refused(0, &good, "replayed", "stale");
    cr_assert(dm_h_gov_doc(&good2, gov, gkey, "replayable", s_group_doc("replayable", s_member.hex),
                           m + 5));
    char why[512];
    cr_assert(dm_h_gov_publish(&s_nodes[0], NULL, &good2, why, sizeof why), "%s", why);
    s_wait_everywhere(2, "replayable", m + 5);
    s_refused(0, &good, "older", "stale");
    s_refused(1, &good, "older", "stale");
    cr_assert(dm_h_gov_doc(&marker, gov, gkey, "marker", s_group_doc("marker", s_eu.hex), m + 6));
    dm_h_entry_t *replay[] = {&good.t, &marker.t};
    cr_assert(dm_h_catalog_inject(&s_nodes[1], peer0, s_nodes[0].addr, replay, 2));
    s_wait_everywhere(2, "marker", m + 6);

    for (int i = 0; i < 2; i++) {
        g = dm_h_policy_get(&s_nodes[i]);
        cr_assert(dm_h_gov_has(&g, "replayable", m + 5), "node %d went back to an older version", i);
        char *show = s_show(i);
        cr_assert(strstr(show, "gov/doc/baseline") && strstr(show, "gov/doc/replayable"), "%s",
                  show);
        const char *bad[] = {"foreign", "forged", "tampered", "unsigned"};
        for (size_t k = 0; k < 4; k++) {
            char key[64];
            snprintf(key, sizeof key, "gov/doc/%s", bad[k]);
            cr_assert_null(strstr(show, key), "node %d shows %s: %s", i, key, show);
        }
        free(show);
    }
    /* Node 0 audited each publish it judged, with the verdict. */
    const dm_h_audit_want_t want[] = {
        {s_gov.hex, "policy publish", "", "gov/doc/baseline", true, -1},
        {NULL, "policy publish", "", "gov/doc/foreign v1: not owner", false, -1},
        {NULL, "policy publish", "", "gov/doc/forged", false, -1},
        {NULL, "policy publish", "", "gov/doc/tampered", false, -1},
        {NULL, "policy publish", "", "gov/doc/unsigned", false, -1},
        {NULL, "policy publish", "", "gov/doc/replayable", true, -1},
        {NULL, "policy publish", "", "stale", false, -1},
    };
    char *json = dm_h_audit_wait(&s_nodes[0], &want[6], T_APPLY_MS);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(dm_h_audit_has(json, &want[i]), "node 0's audit lacks the %s publish %s: %s",
                  want[i].allowed ? "accepted" : "refused", want[i].rule, json);
    free(json);
    dm_h_gov_entry_free(&foreign);
    dm_h_gov_entry_free(&forged);
    dm_h_gov_entry_free(&tampered);
    dm_h_gov_entry_free(&unsigned_);
    dm_h_gov_entry_free(&good);
    dm_h_gov_entry_free(&good2);
    dm_h_gov_entry_free(&marker);
    dm_identity_destroy(&gov);
    dm_identity_destroy(&forger);
    dm_identity_destroy(&peer0);
}

/* ---- key rotation ---- */

typedef struct {
    int node;
    const char *key;
    uint64_t root_version;
} s_root_t;

static bool s_root_is(void *ctx)
{
    s_root_t *c = ctx;
    dm_h_gov_t g = dm_h_policy_get(&s_nodes[c->node]);
    return g.answered && strcmp(g.key, c->key) == 0 && g.root_version == c->root_version;
}

Test(governance, a_rotation_signed_by_the_old_key_is_accepted_and_one_by_the_new_key_only_is_not)
{
    s_start(0, "commerce", s_gov_arg);
    s_start(1, "logistics", s_gov_arg);
    dm_h_person_t next;
    cr_assert(dm_h_person(&next, s_tmp, "next-governance"));
    dm_identity_t *old = dm_h_person_identity(&s_gov), *new_ = dm_h_person_identity(&next);
    cr_assert(old && new_);
    const uint8_t *okey = dm_identity_public(old), *nkey = dm_identity_public(new_);
    dm_h_gov_t g = dm_h_policy_get(&s_nodes[0]);
    cr_assert(g.answered && strcmp(g.key, s_gov.hex) == 0 && g.root_version == 1,
              "governance key %s root %llu", g.key, (unsigned long long)g.root_version);

    /* Signed only by the new key; skipping a root version; signed by the
     * new key in the old key's name. */
    dm_h_gov_entry_t by_new, skip, forged;
    cr_assert(dm_h_gov_root(&by_new, new_, nkey, nkey, 2, 1));
    cr_assert(dm_h_gov_root(&skip, old, okey, nkey, 3, g.max_version + 1));
    cr_assert(dm_h_gov_root(&forged, new_, okey, nkey, 2, g.max_version + 1));
    s_refused(0, &by_new, "rotation signed by the new key only", "not owner");
    s_refused(0, &skip, "rotation skipping a root version", "malformed");
    s_refused(0, &forged, "rotation with a forged signature", "bad signature");
    const char *rot[] = {"policy", "rotate", next.hex, NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", next.file, &s_nodes[0], rot, NULL);
    cr_assert_neq(r.status, 0, "the new key rotated to itself: %s", r.out);
    dm_h_result_free(&r);
    s_root_t still = {1, s_gov.hex, 1};
    cr_assert(s_root_is(&still), "a refused rotation changed node 1's key");

    r = dm_h_run_as("dmctl", s_gov.file, &s_nodes[0], rot, NULL);
    cr_assert_eq(r.status, 0, "policy rotate by the current key: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    for (int i = 0; i < 2; i++) {
        s_root_t now = {i, next.hex, 2};
        cr_assert(dm_h_wait_until(s_root_is, &now, T_SPREAD_MS),
                  "node %d did not take the rotation", i);
    }

    /* The old key is done; the new one publishes. */
    const char *doc = s_file("after.yaml", s_group_doc("after-rotation", s_member.hex));
    r = s_publish(&s_gov, &s_nodes[0], doc);
    cr_assert_neq(r.status, 0, "the old governance key still publishes");
    dm_h_result_free(&r);
    dm_h_gov_entry_t stale;
    cr_assert(dm_h_gov_doc(&stale, old, okey, "old-key", s_group_doc("old-key", s_eu.hex), 1000));
    s_refused(0, &stale, "old-key document", "not owner");
    s_refused(1, &stale, "old-key document", "not owner");
    r = s_publish(&next, &s_nodes[0], doc);
    cr_assert_eq(r.status, 0, "the new governance key cannot publish: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    s_wait_everywhere(2, "after-rotation", 0);

    const dm_h_audit_want_t want[] = {
        {s_gov.hex, "policy publish", "", "gov/root", true, -1},
        {NULL, "policy publish", "", "gov/root v1: not owner", false, -1},
        {NULL, "policy publish", "", "gov/root", false, -1},
        {next.hex, "policy publish", "", "gov/doc/after-rotation", true, -1},
    };
    char *json = dm_h_audit_wait(&s_nodes[0], &want[3], T_APPLY_MS);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(dm_h_audit_has(json, &want[i]), "node 0's audit lacks the %s publish %s: %s",
                  want[i].allowed ? "accepted" : "refused", want[i].rule, json);
    free(json);

    /* The chain survives a restart given the first key again. */
    dm_h_node_signal(&s_nodes[1], SIGTERM);
    s_start(1, "logistics", s_gov_arg);
    s_root_t kept = {1, next.hex, 2};
    cr_assert(s_root_is(&kept), "node 1 forgot the rotation across a restart");
    dm_h_gov_entry_free(&by_new);
    dm_h_gov_entry_free(&skip);
    dm_h_gov_entry_free(&forged);
    dm_h_gov_entry_free(&stale);
    dm_identity_destroy(&old);
    dm_identity_destroy(&new_);
}

/* ---- certificates ---- */

Test(governance, an_uncertified_impostor_domain_is_not_served)
{
    /* Node 0 (logistics) is the honest observer; node 1 claims commerce
     * without a certificate; commerce's certified node starts later with
     * the key the certificate names. */
    s_start(0, "logistics", s_gov_arg);
    s_start(1, "commerce", s_gov_arg);
    char honest_dir[600];
    snprintf(honest_dir, sizeof honest_dir, "%s/commerce-2", s_tmp);
    cr_assert_eq(mkdir(honest_dir, 0700), 0);
    dm_h_person_t honest;
    cr_assert(dm_h_person(&honest, honest_dir, "identity")); /* DIR/identity.key */
    char observer[DM_ID_HEX_BYTES];
    dm_h_node_key(&s_nodes[0], observer);

    s_product(&s_nodes[1], "leads", "public", "");
    dm_h_listing_t uncertified = {&s_nodes[0], "commerce", "leads", 1};
    cr_assert(dm_h_wait_until(dm_h_listing_is, &uncertified, T_SPREAD_MS),
              "node 0 does not list the impostor's product as uncertified (state %d)",
              dm_h_listed(&s_nodes[0], "commerce", "leads"));
    const char *list[] = {"products", "--json", NULL};
    dm_h_result_t r = dm_h_run_as("meshq", s_stranger.file, &s_nodes[0], list, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"uncertified\":true"), "meshq products does not mark it: %s", r.out);
    dm_h_result_free(&r);
    const char *desc[] = {"describe", "commerce/leads", NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_nodes[0], desc, NULL);
    cr_assert_neq(r.status, 0, "the honest node described the impostor's product: %s", r.out);
    cr_assert(strstr(r.err, "not certified"), "%s", r.err);
    dm_h_result_free(&r);
    const char *q[] = {"query", "SELECT count(*) FROM commerce.leads", NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_nodes[0], q, NULL);
    cr_assert_neq(r.status, 0, "the honest node served the impostor's rows: %s", r.out);
    dm_h_result_free(&r);

    /* Certificates: commerce is the honest node's, logistics node 0's. */
    char certs[1024];
    snprintf(certs, sizeof certs,
             "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: commerce}\n"
             "spec: {domain: commerce, node: \"%s\"}\n---\n"
             "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: logistics}\n"
             "spec: {domain: logistics, node: \"%s\"}\n",
             honest.hex, observer);
    s_publish_ok(&s_nodes[0], s_file("certs.yaml", certs));
    dm_h_listing_t gone = {&s_nodes[0], "commerce", "leads", -1};
    cr_assert(dm_h_wait_until(dm_h_listing_is, &gone, T_SPREAD_MS),
              "node 0 still lists the impostor's product after the certificate (state %d)",
              dm_h_listed(&s_nodes[0], "commerce", "leads"));
    /* Nor does the impostor itself serve it to others once it knows. */
    r = dm_h_run_as("meshq", s_stranger.file, &s_nodes[1], q, NULL);
    cr_assert_neq(r.status, 0, "the impostor still serves its product: %s", r.out);
    cr_assert(strstr(r.err, "not certified"), "%s", r.err);
    dm_h_result_free(&r);

    /* The certified node takes the domain; node 0's own product is certified. */
    const char *extra[] = {"--governance", s_gov_arg, "--join", s_nodes[0].addr, NULL};
    cr_assert(dm_h_node_start(&s_nodes[2], honest_dir, "commerce", extra));
    s_product(&s_nodes[2], "orders", "public", "");
    s_product(&s_nodes[0], "shipments", "public", "");
    dm_h_listing_t certified = {&s_nodes[0], "commerce", "orders", 0};
    cr_assert(dm_h_wait_until(dm_h_listing_is, &certified, T_SPREAD_MS),
              "node 0 does not list the certified node's product as certified (state %d)",
              dm_h_listed(&s_nodes[0], "commerce", "orders"));
    cr_assert_eq(dm_h_listed(&s_nodes[0], "logistics", "shipments"), 0);
    cr_assert_eq(dm_h_listed(&s_nodes[0], "commerce", "leads"), -1, "the impostor's product came back");
}

/* ---- table-driven policy tests ---- */

Test(governance, the_example_policy_cases_pass_and_a_wrong_expectation_fails)
{
    const char *ok[] = {"policy", "test", dm_h_src("docs/examples/policy-cases.yaml"), "--policies",
                        dm_h_src("docs/examples/governance.yaml"), NULL};
    dm_h_result_t r = dm_h_run("dmctl", ok, NULL, DM_H_CMD_MS);
    cr_assert_eq(r.status, 0, "the example cases fail: %s%s", r.out, r.err);
    cr_assert(strstr(r.out, "PASS"), "%s", r.out);
    cr_assert_null(strstr(r.out, "FAIL"), "%s", r.out);
    dm_h_result_free(&r);
    /* The same cases with one expectation turned around. */
    FILE *f = fopen(dm_h_src("docs/examples/policy-cases.yaml"), "r");
    cr_assert_not_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *flip = strstr(text, "expect: deny");
    cr_assert_not_null(flip, "the example has no deny case");
    memcpy(flip, "expect: allo", 12);
    memmove(flip + 13, flip + 12, strlen(flip + 12) + 1);
    flip[12] = 'w';
    const char *wrong[] = {"policy", "test", s_file("wrong-cases.yaml", text), "--policies",
                           dm_h_src("docs/examples/governance.yaml"), NULL};
    r = dm_h_run("dmctl", wrong, NULL, DM_H_CMD_MS);
    cr_assert_eq(r.status, 1, "a wrong expectation passed: %s%s", r.out, r.err);
    cr_assert(strstr(r.out, "FAIL"), "%s", r.out);
    dm_h_result_free(&r);
}
