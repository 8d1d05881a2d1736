/* test_access.c: who may do what on one real meshd, driven by the real
 * dmctl and meshq as different identities (issue 9): a stranger's writes
 * are refused and change nothing, an admin added with `dmctl admins add`
 * can write, restricted and private products serve their readers and the
 * admins only, grants and revocations take effect within a second, the
 * default identity lives in the test's own config home, the audit lists
 * every decision, and the quarantine (raw records) is the admins' only.
 * The suite's node runs with owner rules only (no governance key); the
 * last tests start a second node with one, for what the write gate and
 * the listings and the quarantine do with governance rules;
 * test_governance.c covers the mesh-wide rules. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "harness_access.h"
#include "transport/envelope.h"

#define T_GRANT_MS 1000 /* a grant or a revocation holds on the owner within this */

static dm_h_node_t s_node;
static const char *s_tmp;
static char s_yaml[600], s_rows[600];
static dm_h_person_t s_stranger, s_reader, s_alice;

static void s_up(void)
{
    s_tmp = dm_h_tmpdir();
    cr_assert_not_null(s_tmp);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/commerce", s_tmp);
    snprintf(s_yaml, sizeof s_yaml, "%s/orders.yaml", s_tmp);
    snprintf(s_rows, sizeof s_rows, "%s/orders.ndjson", s_tmp);
    dm_h_write(s_rows, dm_h_orders_rows);
    cr_assert(dm_h_person(&s_stranger, s_tmp, "stranger"));
    cr_assert(dm_h_person(&s_reader, s_tmp, "reader"));
    cr_assert(dm_h_person(&s_alice, s_tmp, "alice"));
    cr_assert(dm_h_node_start(&s_node, dir, "commerce", NULL), "meshd did not start");
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(access, .init = s_up, .fini = s_down, .timeout = 120);

/* Registers the orders contract (access, readers) and ingests the four
 * records as the node's admin. */
static void s_product(const char *access, const char *readers)
{
    dm_h_write(s_yaml, dm_h_orders_contract("commerce", "orders", "1.0.0", access, readers));
    const char *reg[] = {"register", s_yaml, NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_node, reg, NULL);
    cr_assert_eq(r.status, 0, "register: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    const char *ing[] = {"ingest", "commerce/orders", s_rows, NULL};
    r = dm_h_run_admin("dmctl", &s_node, ing, NULL);
    cr_assert_eq(r.status, 0, "ingest: %s%s", r.out, r.err);
    dm_h_result_free(&r);
}

/* `meshq query "SELECT count(*) ..." --format csv` as file (NULL: as the
 * node's admin). */
static dm_h_result_t s_count_as(const char *file)
{
    const char *q[] = {"query", "SELECT count(*) AS n FROM commerce.orders", "--format", "csv",
                       NULL};
    return file ? dm_h_run_as("meshq", file, &s_node, q, NULL)
                : dm_h_run_admin("meshq", &s_node, q, NULL);
}

/* The node's own listing as its admin sees it (--json). */
static char *s_products_json(void)
{
    const char *args[] = {"products", "--json", NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_node, args, NULL);
    cr_assert_eq(r.status, 0, "products: %s", r.err);
    free(r.err);
    return r.out;
}

/* A write by file that the node must refuse: exit status non-zero, and
 * stderr says "permission denied: VERB PRODUCT needs a commerce admin; you
 * are KEY". */
static void s_refused_write(const char *file, const char *hex, const char *const *args,
                            const char *verb)
{
    dm_h_result_t r = dm_h_run_as("dmctl", file, &s_node, args, NULL);
    cr_assert_neq(r.status, 0, "%s by a stranger was not refused: %s", verb, r.out);
    char expect[256];
    snprintf(expect, sizeof expect, "permission denied: %s", verb);
    cr_assert(strstr(r.err, expect), "expected '%s' in: %s", expect, r.err);
    cr_assert(strstr(r.err, "needs a commerce admin"), "%s", r.err);
    cr_assert(strstr(r.err, hex), "the refusal does not name the caller %s: %s", hex, r.err);
    dm_h_result_free(&r);
}

/* r must be a failure whose stderr holds want (NULL: anything); frees r. */
static void s_fails(dm_h_result_t r, const char *want)
{
    cr_assert_neq(r.status, 0, "passed: %s", r.out);
    cr_assert(!want || strstr(r.err, want), "expected '%s' in: %s", want, r.err);
    dm_h_result_free(&r);
}

Test(access, a_strangers_writes_are_refused_and_change_nothing)
{
    s_product("restricted", "");
    char *before = s_products_json();
    cr_assert(strstr(before, "\"orders\""), "%s", before);

    /* An upgrade of the product, a new product, an ingest and a delete. */
    dm_h_write(s_yaml, dm_h_orders_contract("commerce", "orders", "1.1.0", "public", ""));
    const char *reg[] = {"register", s_yaml, NULL};
    s_refused_write(s_stranger.file, s_stranger.hex, reg, "register commerce/orders");
    const char *ing[] = {"ingest", "commerce/orders", s_rows, NULL};
    s_refused_write(s_stranger.file, s_stranger.hex, ing, "ingest into commerce/orders");
    const char *dereg[] = {"deregister", "commerce/orders", NULL};
    s_refused_write(s_stranger.file, s_stranger.hex, dereg, "deregister commerce/orders");

    /* Nor may the stranger make itself an admin or a reader. */
    const char *add[] = {"admins", "add", s_stranger.hex, NULL};
    s_fails(dm_h_run_as("dmctl", s_stranger.file, &s_node, add, NULL), "permission denied");
    const char *grant[] = {"grant", "commerce/orders", s_stranger.hex, NULL};
    s_fails(dm_h_run_as("dmctl", s_stranger.file, &s_node, grant, NULL), "permission denied");

    /* Same products, versions and counts as before. */
    char *after = s_products_json();
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
    const char *list[] = {"admins", "list", NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_node, list, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_null(strstr(r.out, s_stranger.hex), "the stranger became an admin: %s", r.out);
    dm_h_result_free(&r);
    s_fails(s_count_as(s_stranger.file), NULL); /* nor a reader */
}

Test(access, an_admin_added_with_admins_add_can_ingest_until_removed)
{
    s_product("restricted", "");
    const char *one[] = {"ingest", "commerce/orders", "-", NULL};
    const char *row =
        "{\"orderId\":\"o9\",\"email\":\"eve@example.com\",\"region\":\"eu\",\"amount\":90}\n";
    s_fails(dm_h_run_as("dmctl", s_alice.file, &s_node, one, row), "permission denied");

    /* How the node sees alice, before and after. */
    const char *who[] = {"whoami", "--json", NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", s_alice.file, &s_node, who, NULL);
    cr_assert_eq(r.status, 0, "whoami: %s", r.err);
    cr_assert(strstr(r.out, "\"verified\":true") && strstr(r.out, "\"admin\":false"), "%s",
              r.out);
    dm_h_result_free(&r);
    const char *add[] = {"admins", "add", s_alice.hex, NULL};
    r = dm_h_run_admin("dmctl", &s_node, add, NULL);
    cr_assert_eq(r.status, 0, "admins add: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    r = dm_h_run_as("dmctl", s_alice.file, &s_node, who, NULL);
    cr_assert(strstr(r.out, "\"admin\":true"), "the node does not see alice as an admin: %s",
              r.out);
    dm_h_result_free(&r);
    /* Anyone may list the admins. */
    const char *list[] = {"admins", "list", NULL};
    r = dm_h_run_as("dmctl", s_stranger.file, &s_node, list, NULL);
    cr_assert_eq(r.status, 0, "admins list: %s", r.err);
    cr_assert(strstr(r.out, s_alice.hex), "%s", r.out);
    dm_h_result_free(&r);

    r = dm_h_run_as("dmctl", s_alice.file, &s_node, one, row);
    cr_assert_eq(r.status, 0, "the added admin's ingest: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    r = s_count_as(s_alice.file); /* an admin reads a restricted product */
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "n\n5\n");
    dm_h_result_free(&r);

    /* The node's own key cannot be removed; alice can. */
    char node_hex[DM_ID_HEX_BYTES];
    dm_h_node_key(&s_node, node_hex);
    const char *rm_node[] = {"admins", "remove", node_hex, NULL};
    s_fails(dm_h_run_admin("dmctl", &s_node, rm_node, NULL), NULL);
    const char *rm[] = {"admins", "remove", s_alice.hex, NULL};
    r = dm_h_run_admin("dmctl", &s_node, rm, NULL);
    cr_assert_eq(r.status, 0, "admins remove: %s", r.err);
    dm_h_result_free(&r);
    s_fails(dm_h_run_as("dmctl", s_alice.file, &s_node, one, row), "permission denied");
}

Test(access, a_restricted_product_serves_its_readers_and_admins_only)
{
    char readers[128];
    snprintf(readers, sizeof readers, "\"%s\"", s_reader.hex);
    s_product("restricted", readers);

    dm_h_result_t r = s_count_as(s_stranger.file);
    cr_assert_eq(r.status, 1, "a non-reader's SQL: status %d, %s%s", r.status, r.out, r.err);
    cr_assert(strstr(r.err, "access denied to commerce.orders (restricted)"), "%s", r.err);
    cr_assert(strstr(r.err, s_stranger.hex), "%s", r.err);
    cr_assert(strstr(r.err, "is not a reader"), "%s", r.err);
    cr_assert_null(strstr(r.out, "4"), "rows leaked: %s", r.out);
    dm_h_result_free(&r);
    /* Hidden in a subquery, or joined with a product the stranger may
     * read: still refused whole. */
    const char *sub[] = {"query", "SELECT 1 WHERE EXISTS (SELECT 1 FROM commerce.orders)", NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_node, sub, NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "access denied to commerce.orders"), "%s", r.err);
    dm_h_result_free(&r);
    dm_h_write(s_yaml, dm_h_orders_contract("commerce", "stock", "1.0.0", "public", ""));
    const char *reg[] = {"register", s_yaml, NULL};
    r = dm_h_run_admin("dmctl", &s_node, reg, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    const char *ing[] = {"ingest", "commerce/stock", s_rows, NULL};
    r = dm_h_run_admin("dmctl", &s_node, ing, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    const char *join[] = {"query",
                          "SELECT s.orderId, o.email FROM commerce.stock s JOIN commerce.orders o "
                          "USING (orderId)",
                          "--format", "csv", NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_node, join, NULL);
    cr_assert_eq(r.status, 1, "a join leaked the restricted product: %s", r.out);
    cr_assert(strstr(r.err, "access denied to commerce.orders (restricted)"), "%s", r.err);
    cr_assert_null(strstr(r.out, "@example.com"), "rows leaked: %s", r.out);
    dm_h_result_free(&r);
    const char *alone[] = {"query", "SELECT count(*) AS n FROM commerce.stock", "--format", "csv",
                           NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_node, alone, NULL);
    cr_assert_eq(r.status, 0, "the public product alone was refused: %s", r.err);
    cr_assert_str_eq(r.out, "n\n4\n");
    dm_h_result_free(&r);

    r = s_count_as(s_reader.file);
    cr_assert_eq(r.status, 0, "the reader was refused: %s", r.err);
    cr_assert_str_eq(r.out, "n\n4\n");
    dm_h_result_free(&r);
    r = s_count_as(NULL);
    cr_assert_eq(r.status, 0, "the admin was refused: %s", r.err);
    cr_assert_str_eq(r.out, "n\n4\n");
    dm_h_result_free(&r);

    /* Metadata stays open; quarantined records are records. */
    const char *desc[] = {"describe", "commerce/orders", NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_node, desc, NULL);
    cr_assert_eq(r.status, 0, "describe refused to a stranger: %s", r.err);
    dm_h_result_free(&r);
    const char *quar[] = {"quarantine", "commerce/orders", NULL};
    s_fails(dm_h_run_as("dmctl", s_stranger.file, &s_node, quar, NULL),
            "access denied to commerce.orders");
}

Test(access, a_private_product_serves_admins_only)
{
    char readers[128];
    snprintf(readers, sizeof readers, "\"%s\"", s_reader.hex);
    s_product("private", readers);
    dm_h_result_t r = s_count_as(s_reader.file);
    cr_assert_eq(r.status, 1, "a listed reader read a private product: %s", r.out);
    cr_assert(strstr(r.err, "access denied to commerce.orders (private)"), "%s", r.err);
    dm_h_result_free(&r);
    r = s_count_as(s_stranger.file);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "access denied to commerce.orders (private)"), "%s", r.err);
    dm_h_result_free(&r);

    r = s_count_as(NULL);
    cr_assert_eq(r.status, 0, "the node's admin was refused: %s", r.err);
    cr_assert_str_eq(r.out, "n\n4\n");
    dm_h_result_free(&r);
    const char *add[] = {"admins", "add", s_alice.hex, NULL};
    r = dm_h_run_admin("dmctl", &s_node, add, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    r = s_count_as(s_alice.file);
    cr_assert_eq(r.status, 0, "an added admin was refused: %s", r.err);
    cr_assert_str_eq(r.out, "n\n4\n");
    dm_h_result_free(&r);
}

/* A one-batch count of commerce.orders by a client the node cannot verify
 * (a throwaway CURVE key): true when served. */
static bool s_unverified_count(void)
{
    Dm__QueryReq q = DM__QUERY_REQ__INIT;
    q.sql = "SELECT count(*) FROM commerce.orders";
    Dm__Envelope req = DM__ENVELOPE__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_QUERY_REQ, &q);
    Dm__Envelope *rep = dm_h_call_as(&s_node, NULL, &req);
    cr_assert_not_null(rep, "no reply to an unverified client's query");
    bool served = rep->body_case == DM__ENVELOPE__BODY_QUERY_REP && rep->query_rep->nrows == 1;
    if (!served)
        cr_assert(rep->body_case == DM__ENVELOPE__BODY_ERROR &&
                      strstr(rep->error->message, "access denied to commerce.orders"),
                  "unexpected reply %d", (int)rep->body_case);
    dm__envelope__free_unpacked(rep, NULL);
    return served;
}

Test(access, a_public_product_serves_any_identity_and_only_it_serves_unverified_ones)
{
    s_product("public", "");
    dm_h_result_t r = s_count_as(s_stranger.file);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "n\n4\n");
    dm_h_result_free(&r);
    cr_assert(s_unverified_count(), "an unverified client was refused a public product");
    /* The same product made restricted, with the stranger as a reader: an
     * unverified key is no one's reader. */
    char readers[128];
    snprintf(readers, sizeof readers, "\"%s\"", s_stranger.hex);
    dm_h_write(s_yaml, dm_h_orders_contract("commerce", "orders", "1.1.0", "restricted", readers));
    const char *reg[] = {"register", s_yaml, NULL};
    r = dm_h_run_admin("dmctl", &s_node, reg, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    dm_h_result_free(&r);
    cr_assert_not(s_unverified_count(), "an unverified client read a restricted product");
    r = s_count_as(s_stranger.file);
    cr_assert_eq(r.status, 0, "the listed reader was refused: %s", r.err);
    dm_h_result_free(&r);
}

/* Whether the stranger's count query currently has status want. */
typedef struct {
    int want;
} s_status_t;

static bool s_stranger_status(void *ctx)
{
    dm_h_result_t r = s_count_as(s_stranger.file);
    bool hit = ((s_status_t *)ctx)->want == 0 ? r.status == 0 : r.status != 0;
    dm_h_result_free(&r);
    return hit;
}

Test(access, a_grant_and_a_revoke_take_effect_within_a_second)
{
    s_product("restricted", "");
    s_status_t refused = {1}, served = {0};
    cr_assert(s_stranger_status(&refused), "served before any grant");

    const char *grant[] = {"grant", "commerce/orders", s_stranger.hex, NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_node, grant, NULL);
    cr_assert_eq(r.status, 0, "grant: %s%s", r.out, r.err);
    cr_assert(strstr(r.out, s_stranger.hex), "grant does not print the readers: %s", r.out);
    dm_h_result_free(&r);
    cr_assert(dm_h_wait_until(s_stranger_status, &served, T_GRANT_MS),
              "the grantee was not served within %d ms", T_GRANT_MS);
    r = s_count_as(s_stranger.file);
    cr_assert_str_eq(r.out, "n\n4\n");
    dm_h_result_free(&r);
    /* The owner's listing shows the effective readers. */
    const char *list[] = {"products", "--json", NULL};
    r = dm_h_run_admin("dmctl", &s_node, list, NULL);
    cr_assert(strstr(r.out, s_stranger.hex), "the listing lacks the grantee: %s", r.out);
    dm_h_result_free(&r);

    const char *revoke[] = {"revoke", "commerce/orders", s_stranger.hex, NULL};
    r = dm_h_run_admin("dmctl", &s_node, revoke, NULL);
    cr_assert_eq(r.status, 0, "revoke: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    cr_assert(dm_h_wait_until(s_stranger_status, &refused, T_GRANT_MS),
              "the revoked reader was still served after %d ms", T_GRANT_MS);
    r = s_count_as(s_stranger.file);
    cr_assert(strstr(r.err, "is not a reader"), "%s", r.err);
    dm_h_result_free(&r);
}

Test(access, the_default_identity_lives_in_the_tests_own_config_home)
{
    const char *home = dm_h_config_home();
    cr_assert_not_null(home);
    cr_assert_eq(strncmp(home, "/tmp/", 5), 0, "XDG_CONFIG_HOME is %s", home);
    const char *who[] = {"whoami", NULL};
    dm_h_result_t r = dm_h_run("dmctl", who, NULL, DM_H_CMD_MS);
    cr_assert_eq(r.status, 0, "whoami: %s", r.err);
    char path[700];
    snprintf(path, sizeof path, "%s/datamesh/identity", home);
    cr_assert(strstr(r.out, path), "whoami does not name %s: %s", path, r.out);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "whoami did not create %s", path);
    cr_assert_eq(st.st_mode & 077, 0, "%s is open to others: %o", path, st.st_mode & 0777);
    dm_h_person_t me;
    snprintf(me.file, sizeof me.file, "%.590s", path);
    dm_identity_t *id = dm_h_person_identity(&me);
    cr_assert_not_null(id);
    dm_identity_hex(id, me.hex);
    dm_identity_destroy(&id);
    cr_assert(strstr(r.out, me.hex), "%s", r.out);
    dm_h_result_free(&r);
    /* meshq acts as the same person. */
    r = dm_h_run("meshq", who, NULL, DM_H_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, me.hex), "meshq whoami differs: %s", r.out);
    dm_h_result_free(&r);
    /* --identity FILE and --data DIR choose other keys. */
    const char *as[] = {"whoami", "--identity", s_reader.file, NULL};
    r = dm_h_run("dmctl", as, NULL, DM_H_CMD_MS);
    cr_assert(strstr(r.out, s_reader.hex), "%s", r.out);
    dm_h_result_free(&r);
    char node_hex[DM_ID_HEX_BYTES];
    dm_h_node_key(&s_node, node_hex);
    r = dm_h_run_admin("dmctl", &s_node, who, NULL);
    cr_assert(strstr(r.out, node_hex), "--data does not act as the node: %s", r.out);
    dm_h_result_free(&r);
    /* keygen refuses to overwrite an identity. */
    const char *again[] = {"keygen", s_reader.file, NULL};
    r = dm_h_run("dmctl", again, NULL, DM_H_CMD_MS);
    cr_assert_neq(r.status, 0, "keygen overwrote %s", s_reader.file);
    cr_assert(strstr(r.err, "exists"), "%s", r.err);
    dm_h_result_free(&r);
}

/* ---- audit ---- */

Test(access, the_audit_lists_every_decision_allowed_and_denied)
{
    char readers[128];
    snprintf(readers, sizeof readers, "\"%s\"", s_reader.hex);
    s_product("restricted", readers); /* register and ingest by the node */
    const char *ing[] = {"ingest", "commerce/orders", s_rows, NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", s_stranger.file, &s_node, ing, NULL);
    cr_assert_neq(r.status, 0);
    dm_h_result_free(&r);
    const char *desc[] = {"describe", "commerce/orders", NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_node, desc, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    r = s_count_as(s_stranger.file);
    cr_assert_eq(r.status, 1);
    dm_h_result_free(&r);
    const char *add[] = {"admins", "add", s_alice.hex, NULL};
    r = dm_h_run_admin("dmctl", &s_node, add, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    /* The audit is for admins only. */
    const char *aud[] = {"audit", "--json", NULL};
    s_fails(dm_h_run_as("dmctl", s_stranger.file, &s_node, aud, NULL), "permission denied");
    r = s_count_as(s_reader.file);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);

    char node_hex[DM_ID_HEX_BYTES];
    dm_h_node_key(&s_node, node_hex);
    const dm_h_audit_want_t last = {s_reader.hex, "read", "commerce/orders", NULL, true, 0};
    char *json = dm_h_audit_wait(&s_node, &last, 5000);
    /* No governance key: every decision is at policy version 0. */
    const dm_h_audit_want_t want[] = {
        {node_hex, "register", "commerce/orders", "owner: admin", true, 0},
        {node_hex, "ingest", "commerce/orders", "owner: admin", true, 0},
        {s_stranger.hex, "ingest", "commerce/orders", NULL, false, 0},
        {s_stranger.hex, "describe", "commerce/orders", NULL, true, 0},
        {s_stranger.hex, "read", "commerce/orders", "not a reader", false, 0},
        {node_hex, "admins add", "", NULL, true, 0},
        {s_stranger.hex, "audit", "", NULL, false, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(dm_h_audit_has(json, &want[i]), "the audit lacks %s %s %s (%s): %s",
                  want[i].caller, want[i].action, want[i].product,
                  want[i].allowed ? "allowed" : "denied", json);
    free(json);
}

Test(access, the_quarantine_is_for_admins_only)
{
    char readers[128];
    snprintf(readers, sizeof readers, "\"%s\"", s_reader.hex);
    s_product("restricted", readers);
    const char *ing[] = {"ingest", "commerce/orders", "-", NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_node, ing, "this line is not json\n");
    dm_h_result_free(&r);
    /* The reader may query the product, masked and filtered as governance
     * says, but not its raw invalid lines. */
    const char *quar[] = {"quarantine", "commerce/orders", NULL};
    r = dm_h_run_as("dmctl", s_reader.file, &s_node, quar, NULL);
    cr_assert_neq(r.status, 0, "a reader read the quarantine: %s", r.out);
    char expect[400];
    snprintf(expect, sizeof expect,
             "access denied to commerce.orders quarantine: it holds raw records; only commerce "
             "admins may read it; you are %s",
             s_reader.hex);
    cr_assert(strstr(r.err, expect), "expected '%s' in: %s", expect, r.err);
    cr_assert_null(strstr(r.out, "this line is not json"));
    dm_h_result_free(&r);
    r = dm_h_run_admin("dmctl", &s_node, quar, NULL);
    cr_assert_eq(r.status, 0, "the admin was refused the quarantine: %s", r.err);
    cr_assert(strstr(r.out, "this line is not json"), "%s", r.out);
    dm_h_result_free(&r);
    /* The mesh listing names the own product's readers. */
    const char *mesh[] = {"products", "--json", NULL};
    r = dm_h_run_admin("meshq", &s_node, mesh, NULL);
    cr_assert(r.status == 0 && strstr(r.out, s_reader.hex), "%s%s", r.out, r.err);
    dm_h_result_free(&r);

    char node_hex[DM_ID_HEX_BYTES];
    dm_h_node_key(&s_node, node_hex);
    const dm_h_audit_want_t admin = {node_hex, "quarantine", "commerce/orders",
                                     "quarantine is for admins", true, 0};
    char *json = dm_h_audit_wait(&s_node, &admin, 5000);
    const dm_h_audit_want_t reader = {s_reader.hex, "quarantine", "commerce/orders",
                                      "quarantine is for admins", false, 0};
    cr_assert(dm_h_audit_has(json, &admin) && dm_h_audit_has(json, &reader), "%s", json);
    free(json);
}

/* ---- with a governance key ---- */

static dm_h_node_t s_gnode;
static dm_h_person_t s_gov;

/* Starts s_gnode (domain commerce) under the governance key of s_gov. */
static void s_gov_start(void)
{
    cr_assert(dm_h_person(&s_gov, s_tmp, "governance"));
    char dir[600];
    snprintf(dir, sizeof dir, "%s/gov-commerce", s_tmp);
    const char *extra[] = {"--governance", s_gov.hex, NULL};
    cr_assert(dm_h_node_start(&s_gnode, dir, "commerce", extra), "meshd did not start");
}

typedef struct {
    const char *doc;
    uint64_t version;
} s_active_t;

static bool s_is_active(void *ctx)
{
    s_active_t *a = ctx;
    dm_h_gov_t g = dm_h_policy_get(&s_gnode);
    a->version = g.policy_version;
    return g.answered && dm_h_gov_has(&g, a->doc, 0);
}

/* Publishes doc as the governance document name (the governance
 * identity's `dmctl policy publish`); returns the version in force once
 * the node applies it. */
static uint64_t s_gov_publish(const char *name, const char *doc)
{
    char file[700];
    snprintf(file, sizeof file, "%s/%s.yaml", s_tmp, name);
    dm_h_write(file, doc);
    const char *args[] = {"policy", "publish", file, NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", s_gov.file, &s_gnode, args, NULL);
    cr_assert_eq(r.status, 0, "policy publish: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    s_active_t a = {name, 0};
    cr_assert(dm_h_wait_until(s_is_active, &a, 5000), "policy %s is not active", name);
    return a.version;
}

/* The Policy NAME with one access rule RULE: deny ACTION of PRODUCT to
 * KEY; as s_gov_publish. */
static uint64_t s_gov_deny(const char *name, const char *rule, const char *action,
                           const char *product, const char *key)
{
    char doc[1024];
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: %s}\n"
             "spec:\n  access:\n    - name: %s\n      effect: deny\n"
             "      actions: [%s]\n      products: [\"%s\"]\n      consumers: [\"%s\"]\n",
             name, rule, action, product, key);
    return s_gov_publish(name, doc);
}

/* Registers domain commerce's product name on s_gnode as its admin. */
static void s_gov_register(const char *name)
{
    char file[700];
    snprintf(file, sizeof file, "%s/%s.yaml", s_tmp, name);
    dm_h_write(file, dm_h_orders_contract("commerce", name, "1.0.0", "public", ""));
    const char *reg[] = {"register", file, NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_gnode, reg, NULL);
    cr_assert_eq(r.status, 0, "register %s: %s%s", name, r.out, r.err);
    dm_h_result_free(&r);
}

Test(access, a_yaml_register_is_judged_on_its_parsed_contract_by_governance)
{
    s_gov_start();
    char node_hex[DM_ID_HEX_BYTES];
    dm_h_node_key(&s_gnode, node_hex);
    uint64_t v = s_gov_deny("no-customers2", "deny-admin", "write", "commerce/customers2",
                            node_hex);
    /* The gate in the loop reads names from JSON only; YAML must be judged
     * all the same. An admin's raw register, as a client would send it. */
    const char *yaml = dm_h_orders_contract("commerce", "customers2", "1.0.0", "public", "");
    Dm__RegisterReq body = DM__REGISTER_REQ__INIT;
    body.contract.data = (uint8_t *)yaml;
    body.contract.len = strlen(yaml);
    Dm__Envelope req = DM__ENVELOPE__INIT;
    dm_envelope_init(&req, 7, DM__ENVELOPE__BODY_REGISTER_REQ, &body);
    dm_identity_t *admin = dm_h_node_identity(&s_gnode);
    cr_assert_not_null(admin);
    Dm__Envelope *rep = dm_h_call_as(&s_gnode, admin, &req);
    dm_identity_destroy(&admin);
    cr_assert_not_null(rep, "no reply to the register");
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR, "the register passed: %d",
                 (int)rep->body_case);
    cr_expect_eq(rep->error->code, DM_ERR_DENIED);
    char expect[400];
    snprintf(expect, sizeof expect,
             "permission denied: register commerce/customers2: governance policy "
             "no-customers2 rule deny-admin (version %llu) denies write to %s",
             (unsigned long long)v, node_hex);
    cr_assert_str_eq(rep->error->message, expect);
    dm__envelope__free_unpacked(rep, NULL);
    /* Nothing was registered; another product is. */
    s_gov_register("orders");
    const char *desc[] = {"describe", "commerce/customers2", NULL};
    s_fails(dm_h_run_admin("meshq", &s_gnode, desc, NULL), "unknown product");
    /* A register that breaks contract rules: its audit names the first few. */
    uint64_t rv = s_gov_publish(
        "base", "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: base}\nspec:\n"
                "  contractRules:\n    - {name: r1, forbid: public-pii}\n    - {name: r2, "
                "require: sla.latency}\n    - {name: r3, require: description}\n"
                "    - {name: r4, require: sla.availability}\n");
    const char *reg[] = {"register", s_yaml, NULL};
    dm_h_write(s_yaml, dm_h_orders_contract("commerce", "pii", "1.0.0", "public", ""));
    s_fails(dm_h_run_admin("dmctl", &s_gnode, reg, NULL), "contract rule r1 of policy base");
    char rules[200];
    snprintf(rules, sizeof rules, "(policy version %llu): base/r1, base/r2, base/r3 (+1 more)",
             (unsigned long long)rv);
    const dm_h_audit_want_t want[] = {
        {node_hex, "register", "commerce/customers2", "governance no-customers2/deny-admin", false,
         (long long)v},
        {node_hex, "register", "commerce/orders", "owner: admin", true, -1},
        {node_hex, "register", "commerce/pii", rules, false, -1}};
    char *json = dm_h_audit_wait(&s_gnode, &want[2], 5000);
    for (size_t i = 0; i < 3; i++)
        cr_assert(dm_h_audit_has(json, &want[i]), "%s: %s", want[i].rule, json);
    free(json);
}

Test(access, the_listing_withholds_what_governance_denies_describing)
{
    s_gov_start();
    s_gov_register("orders");
    s_gov_register("secret");
    s_gov_deny("hide-secret", "no-describe", "describe", "commerce/secret", s_stranger.hex);
    const char *args[] = {"products", "--json", NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", s_stranger.file, &s_gnode, args, NULL);
    cr_assert_eq(r.status, 0, "products: %s", r.err);
    cr_assert(strstr(r.out, "\"orders\""), "%s", r.out);
    cr_assert_null(strstr(r.out, "secret"), "a describe-denied product is listed: %s", r.out);
    dm_h_result_free(&r);
    r = dm_h_run_as("dmctl", s_reader.file, &s_gnode, args, NULL);
    cr_assert_eq(r.status, 0, "products: %s", r.err);
    cr_assert(strstr(r.out, "\"secret\""), "others no longer see it: %s", r.out);
    dm_h_result_free(&r);
    /* Nor does a "did you mean" name it to the stranger; to others it does. */
    const char *near[] = {"describe", "commerce/secre", NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_gnode, near, NULL);
    cr_assert(r.status != 0 && strstr(r.err, "unknown product") && !strstr(r.err, "secret"),
              "%s", r.err);
    dm_h_result_free(&r);
    r = dm_h_run_as("meshq", s_reader.file, &s_gnode, near, NULL);
    cr_assert(strstr(r.err, "did you mean 'commerce/secret'"), "%s", r.err);
    dm_h_result_free(&r);
    /* The mesh listing (meshq products) decides as the node's own. */
    r = dm_h_run_as("meshq", s_stranger.file, &s_gnode, args, NULL);
    cr_assert_eq(r.status, 0, "meshq products: %s", r.err);
    cr_assert(strstr(r.out, "\"orders\""), "%s", r.out);
    cr_assert_null(strstr(r.out, "secret"), "the mesh listing shows it: %s", r.out);
    dm_h_result_free(&r);
    const dm_h_audit_want_t listing = {s_stranger.hex, "products", "",
                                       "describe: 1 listed, 1 withheld", true, -1};
    const dm_h_audit_want_t mesh = {s_stranger.hex, "products", "",
                                    "describe (mesh): 1 listed, 1 withheld", true, -1};
    char *json = dm_h_audit_wait(&s_gnode, &mesh, 5000);
    cr_assert(dm_h_audit_has(json, &listing) && dm_h_audit_has(json, &mesh), "%s", json);
    free(json);
}

Test(access, the_quarantine_follows_governance_for_admins_too)
{
    s_gov_start();
    s_gov_register("orders");
    const char *ing[] = {"ingest", "commerce/orders", "-", NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_gnode, ing, "this line is not json\n");
    dm_h_result_free(&r);
    char key[DM_ID_HEX_BYTES];
    dm_h_node_key(&s_gnode, key);
    uint64_t v = s_gov_deny("no-quar", "deny-admin-read", "read", "commerce/orders", key);
    const char *quar[] = {"quarantine", "commerce/orders", NULL};
    s_fails(dm_h_run_admin("dmctl", &s_gnode, quar, NULL),
            "quarantine: governance policy no-quar rule deny-admin-read");
    const dm_h_audit_want_t deny = {key, "quarantine", "commerce/orders",
                                    "governance no-quar/deny-admin-read", false, (long long)v};
    char *json = dm_h_audit_wait(&s_gnode, &deny, 5000);
    cr_assert(dm_h_audit_has(json, &deny), "%s", json);
    free(json);
}

/* Runs dmctl args as s_node's admin; the command must fail. */
static void s_admin_fails(const char *const *args)
{
    s_fails(dm_h_run_admin("dmctl", &s_node, args, NULL), NULL);
}

Test(access, the_audit_says_the_outcome_of_an_admins_request)
{
    s_product("restricted", "");
    char node_hex[DM_ID_HEX_BYTES], other[700];
    dm_h_node_key(&s_node, node_hex);
    const char *grant[] = {"grant", "commerce/nothere", s_reader.hex, NULL};
    s_admin_fails(grant);
    const char *rm[] = {"admins", "remove", node_hex, NULL};
    s_admin_fails(rm);
    snprintf(other, sizeof other, "%s/billing.yaml", s_tmp);
    dm_h_write(other, dm_h_orders_contract("billing", "orders", "1.0.0", "public", ""));
    const char *reg[] = {"register", other, NULL};
    s_admin_fails(reg);
    const char *ing[] = {"ingest", "commerce/nope", s_rows, NULL},
               *ing2[] = {"ingest", "logistics/x", s_rows, NULL},
               *dereg[] = {"deregister", "commerce/nope", NULL};
    s_admin_fails(ing);
    s_admin_fails(ing2);
    s_admin_fails(dereg);
    const char *add[] = {"admins", "add", s_alice.hex, NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_node, add, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    const char *ok[] = {"grant", "commerce/orders", s_reader.hex, NULL};
    r = dm_h_run_admin("dmctl", &s_node, ok, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);

    char added[200], removed[200], granted[200];
    snprintf(added, sizeof added, "owner: admin; added %s", s_alice.hex);
    snprintf(removed, sizeof removed, "owner: admin; refused: %s is the node's own key",
             node_hex);
    snprintf(granted, sizeof granted, "owner: admin; granted %s", s_reader.hex);
    const dm_h_audit_want_t want[] = {
        {node_hex, "grant", "commerce/nothere",
         "owner: admin; refused: no product commerce/nothere", false, 0},
        {node_hex, "admins remove", "", removed, false, 0},
        {node_hex, "register", "billing/orders", "owner: admin; refused: domain billing", false,
         0},
        {node_hex, "ingest", "commerce/nope", "owner: admin; refused: no product commerce/nope",
         false, 0},
        {node_hex, "deregister", "commerce/nope", "refused: no product commerce/nope", false, 0},
        {node_hex, "ingest", "logistics/x", "refused: logistics/x is not a commerce product",
         false, 0},
        {node_hex, "admins add", "", added, true, 0},
        {node_hex, "grant", "commerce/orders", granted, true, 0},
    };
    char *json = dm_h_audit_wait(&s_node, &want[4], 5000);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(dm_h_audit_has(json, &want[i]), "the audit lacks %s %s (%s): %s",
                  want[i].action, want[i].product, want[i].rule, json);
    free(json);
}

Test(access, a_masked_and_filtered_read_is_audited_with_its_masks_and_filter)
{
    s_gov_start();
    char key[DM_ID_HEX_BYTES], doc[1024];
    dm_h_node_key(&s_gnode, key);
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: commerce}\n"
             "spec: {domain: commerce, node: \"%s\"}\n",
             key);
    s_gov_publish("commerce", doc);
    s_gov_register("orders");
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: privacy}\n"
             "spec:\n  masks:\n    - name: mask-pii\n      products: [\"commerce/orders\"]\n"
             "      fields: {classification: pii}\n      mask: hash\n"
             "  rowFilters:\n    - name: eu-only\n      products: [\"commerce/orders\"]\n"
             "      consumers: [\"%s\"]\n      predicate: \"region = 'eu'\"\n",
             s_stranger.hex);
    s_gov_publish("privacy", doc);
    const char *ing[] = {"ingest", "commerce/orders", "-", NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_gnode, ing, dm_h_orders_rows);
    cr_assert_eq(r.status, 0, "ingest: %s%s", r.out, r.err);
    dm_h_result_free(&r);
    const char *q[] = {"query", "SELECT count(*) AS n FROM commerce.orders", "--format", "csv",
                       NULL};
    r = dm_h_run_as("meshq", s_stranger.file, &s_gnode, q, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "n\n2\n", "the row filter did not apply");
    dm_h_result_free(&r);
    const dm_h_audit_want_t read = {s_stranger.hex, "read", "commerce/orders",
                                    "owner: public; masks email=hash; row filter region = 'eu'",
                                    true, -1};
    char *json = dm_h_audit_wait(&s_gnode, &read, 5000);
    cr_assert(dm_h_audit_has(json, &read), "%s", json);
    free(json);
}
