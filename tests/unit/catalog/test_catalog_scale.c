/* test_catalog_scale.c: the catalog at mesh sizes past one digest page
 * (paged digests converge with 10,000 origins, every message within its
 * bound), the stranger quota (what origins unknown to membership can make a
 * catalog store), and what one delta costs the node loop and the store
 * (a full map is an error, never a silent drop). */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "catalog/catalog.h"
#include "proto/catalog.pb-c.h"
#include "fixture.h"
#include "catalog_test.h"

#define S_NOW DM_T_CATALOG_NOW
#define S_ORIGINS 10000       /* past DM_CATALOG_DIGEST_PAGE several times over */
#define S_DELTA_BYTES (256 << 10) /* as DM_GOSSIP_DELTA_BYTES */
#define S_MAX_ROUNDS 200          /* exchanges allowed to converge */
#define S_PATHOLOGICAL_MS 10000   /* one delta judged slower than this is a bug, not load */

static dm_identity_t *s_self_a, *s_self_b;
static dm_catalog_t *s_a, *s_b;

static void s_teardown(void)
{
    dm_catalog_destroy(&s_a);
    dm_catalog_destroy(&s_b);
    dm_identity_destroy(&s_self_a);
    dm_identity_destroy(&s_self_b);
}

TestSuite(catalog_scale, .fini = s_teardown, .timeout = 120);

/* Two in-memory catalogs (no store). */
static void s_pair(void)
{
    cr_assert_eq(dm_identity_new_ephemeral(&s_self_a), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&s_self_b), DM_OK);
    cr_assert_eq(dm_catalog_open(NULL, s_self_a, &s_a, NULL), DM_OK);
    cr_assert_eq(dm_catalog_open(NULL, s_self_b, &s_b, NULL), DM_OK);
}

/* A node record of key signer (NULL: a fresh key) claiming domain,
 * signed, applied to c. origin (may be NULL) receives the key. Returns the
 * verdict. */
static dm_catalog_verdict s_node_of(dm_catalog_t *c, const dm_identity_t *signer,
                                    const char *domain, uint64_t version,
                                    uint8_t origin[DM_ID_PUBLIC_BYTES])
{
    dm_identity_t *fresh = NULL;
    if (!signer)
        cr_assert_eq(dm_identity_new_ephemeral(&fresh), DM_OK);
    const dm_identity_t *id = signer ? signer : fresh;
    char addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(dm_identity_public(id), "tcp://127.0.0.1:9", addr, sizeof addr, NULL),
                 DM_OK);
    Dm__NodeRecord nr = DM__NODE_RECORD__INIT;
    nr.domain = (char *)domain;
    nr.address = addr;
    uint8_t payload[512];
    dm_catalog_entry_t e = {0};
    memcpy(e.origin, dm_identity_public(id), DM_ID_PUBLIC_BYTES);
    e.key = DM_CATALOG_NODE_KEY;
    e.version = version;
    e.issued_at_ms = S_NOW;
    e.payload = payload;
    e.payload_len = dm__node_record__pack(&nr, payload);
    dm_buf_t sb = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(&e, &sb);
    cr_assert_eq(dm_identity_sign(id, sb.data, sb.len, e.signature, NULL), DM_OK);
    dm_buf_free(&sb);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(c, &e, S_NOW, &v, NULL), DM_OK);
    if (origin)
        memcpy(origin, e.origin, DM_ID_PUBLIC_BYTES);
    dm_identity_destroy(&fresh);
    return v;
}

static dm_catalog_verdict s_foreign_node(dm_catalog_t *c, const char *domain, uint64_t version,
                                         uint8_t origin[DM_ID_PUBLIC_BYTES])
{
    return s_node_of(c, NULL, domain, version, origin);
}

static bool s_same(const dm_catalog_t *x, const dm_catalog_t *y)
{
    dm_buf_t dx = DM_BUF_INIT, dy = DM_BUF_INIT;
    dm_catalog_digest(x, &dx);
    dm_catalog_digest(y, &dy);
    bool same = dx.len == dy.len && memcmp(dx.data, dy.data, dx.len) == 0;
    dm_buf_free(&dx);
    dm_buf_free(&dy);
    return same;
}

typedef struct {
    size_t messages, max_digest, max_delta, pages;
} s_traffic;

static void s_apply(dm_catalog_t *c, const dm_buf_t *delta, s_traffic *t)
{
    if (delta->len > t->max_delta)
        t->max_delta = delta->len;
    if (!delta->len)
        return;
    cr_assert_eq(dm_catalog_apply_delta(c, delta->data, delta->len, S_NOW, NULL, NULL, NULL),
                 DM_OK);
}

static void s_digest_seen(const dm_buf_t *d, s_traffic *t)
{
    if (d->len > t->max_digest)
        t->max_digest = d->len;
    cr_assert_leq(d->len, DM_CATALOG_DIGEST_MAX_BYTES);
    t->pages += d->len > 0;
}

/* One poke of a by b's differing hash, as node/gossip/gossip.c runs it: b sends
 * its first page with its hash; a answers with its page of that range and
 * the delta b lacks; b answers with the delta a lacks and, while pages
 * remain, its next page (ask); and so on. */
static void s_round(dm_catalog_t *a, dm_catalog_t *b, s_traffic *t)
{
    dm_buf_t page = DM_BUF_INIT;
    dm_catalog_digest_first(b, &page);
    for (;;) {
        s_digest_seen(&page, t);
        dm_buf_t da = DM_BUF_INIT, mine = DM_BUF_INIT, db = DM_BUF_INIT, next = DM_BUF_INIT;
        bool ask = false;
        cr_assert_eq(dm_catalog_answer(a, page.data, page.len, true, S_DELTA_BYTES, &da, &mine,
                                       &ask),
                     DM_OK);
        cr_assert_not(ask);
        s_digest_seen(&mine, t);
        s_apply(b, &da, t);
        cr_assert_eq(dm_catalog_answer(b, mine.data, mine.len, false, S_DELTA_BYTES, &db, &next,
                                       &ask),
                     DM_OK);
        s_apply(a, &db, t);
        t->messages += 3;
        dm_buf_free(&page);
        page = next;
        dm_buf_free(&da);
        dm_buf_free(&db);
        dm_buf_free(&mine);
        if (!ask)
            break;
    }
    dm_buf_free(&page);
}

Test(catalog_scale, ten_thousand_origins_converge_by_pages)
{
    s_pair();
    char domain[DM_CATALOG_NAME_MAX + 1];
    /* a holds 6,000 origins, b 5,000, 1,000 of them in both. */
    for (unsigned i = 0; i < S_ORIGINS; i++) {
        snprintf(domain, sizeof domain, "d%05u", i);
        uint8_t origin[DM_ID_PUBLIC_BYTES];
        if (i < 6000) {
            cr_assert_eq(s_foreign_node(s_a, domain, 1, origin), DM_CATALOG_ACCEPTED);
            if (i >= 5000) { /* the same entry at b too */
                dm_catalog_entry_t e;
                cr_assert_eq(dm_catalog_get(s_a, origin, DM_CATALOG_NODE_KEY, &e), DM_OK);
                dm_catalog_verdict v;
                cr_assert_eq(dm_catalog_apply(s_b, &e, S_NOW, &v, NULL), DM_OK);
                cr_assert_eq(v, DM_CATALOG_ACCEPTED);
                dm_catalog_entry_clear(&e);
            }
        } else {
            cr_assert_eq(s_foreign_node(s_b, domain, 1, NULL), DM_CATALOG_ACCEPTED);
        }
    }
    /* The unpaged digest of a is what every peer used to refuse. */
    dm_buf_t whole = DM_BUF_INIT, delta = DM_BUF_INIT;
    bool more = false;
    dm_catalog_digest(s_a, &whole);
    cr_assert_eq(dm_catalog_delta(s_b, whole.data, whole.len, S_DELTA_BYTES, &delta, &more),
                 DM_ERR_PROTO);
    dm_buf_free(&whole);
    dm_buf_free(&delta);

    s_traffic t = {0};
    size_t rounds = 0;
    while (!s_same(s_a, s_b) && rounds < S_MAX_ROUNDS) {
        s_round(s_a, s_b, &t);
        rounds++;
    }
    cr_assert(s_same(s_a, s_b), "not converged after %zu rounds", rounds);
    cr_assert_eq(dm_catalog_count(s_a), S_ORIGINS);
    cr_assert_eq(dm_catalog_count(s_b), S_ORIGINS);
    cr_assert_leq(t.max_delta, DM_CATALOG_DELTA_MAX_BYTES);
    cr_log_info("10,000 origins: %zu rounds, %zu messages, %zu digest pages, largest page %zu "
                "bytes, largest delta %zu bytes",
                rounds, t.messages, t.pages, t.max_digest, t.max_delta);
}

Test(catalog_scale, page_over_the_limit_or_out_of_order_is_refused)
{
    s_pair();
    /* DM_CATALOG_DIGEST_PAGE + 1 ascending rows: one too many. */
    size_t n = DM_CATALOG_DIGEST_PAGE + 1;
    Dm__OriginVersion *rows = calloc(n, sizeof *rows), **ptrs = calloc(n, sizeof *ptrs);
    uint8_t(*ids)[DM_ID_PUBLIC_BYTES] = calloc(n, DM_ID_PUBLIC_BYTES);
    for (size_t i = 0; i < n; i++) {
        ids[i][0] = (uint8_t)(i >> 8);
        ids[i][1] = (uint8_t)i;
        dm__origin_version__init(&rows[i]);
        rows[i].origin.data = ids[i];
        rows[i].origin.len = DM_ID_PUBLIC_BYTES;
        rows[i].max_version = 1;
        ptrs[i] = &rows[i];
    }
    Dm__CatalogDigest d = DM__CATALOG_DIGEST__INIT;
    d.origins = ptrs;
    uint8_t *buf = malloc(DM_CATALOG_DIGEST_MAX_BYTES * 2);
    dm_buf_t delta = DM_BUF_INIT, mine = DM_BUF_INIT;
    bool more = false, ask = false;
    d.n_origins = n;
    size_t len = dm__catalog_digest__pack(&d, buf);
    cr_assert_eq(dm_catalog_delta(s_a, buf, len, S_DELTA_BYTES, &delta, &more), DM_ERR_PROTO);
    d.n_origins = n - 1; /* exactly a page: taken */
    len = dm__catalog_digest__pack(&d, buf);
    cr_assert_eq(dm_catalog_answer(s_a, buf, len, true, S_DELTA_BYTES, &delta, &mine, &ask),
                 DM_OK);
    ptrs[1] = &rows[0]; /* a duplicate: out of order */
    len = dm__catalog_digest__pack(&d, buf);
    cr_assert_eq(dm_catalog_delta(s_a, buf, len, S_DELTA_BYTES, &delta, &more), DM_ERR_PROTO);
    ptrs[1] = &rows[1];
    d.after.data = ids[5]; /* rows 0..5 lie outside (after, upto] */
    d.after.len = DM_ID_PUBLIC_BYTES;
    len = dm__catalog_digest__pack(&d, buf);
    cr_assert_eq(dm_catalog_delta(s_a, buf, len, S_DELTA_BYTES, &delta, &more), DM_ERR_PROTO);
    d.after.len = 7; /* not a node id */
    len = dm__catalog_digest__pack(&d, buf);
    cr_assert_eq(dm_catalog_delta(s_a, buf, len, S_DELTA_BYTES, &delta, &more), DM_ERR_PROTO);
    dm_buf_free(&delta);
    dm_buf_free(&mine);
    free(buf);
    free(ids);
    free(rows);
    free(ptrs);
}

/* ---- strangers ---- */

typedef struct {
    uint8_t known[4][DM_ID_PUBLIC_BYTES];
    size_t n;
} s_members;

static bool s_known(void *ctx, const uint8_t origin[DM_ID_PUBLIC_BYTES])
{
    const s_members *m = ctx;
    for (size_t i = 0; i < m->n; i++)
        if (memcmp(m->known[i], origin, DM_ID_PUBLIC_BYTES) == 0)
            return true;
    return false;
}

Test(catalog_scale, origins_unknown_to_membership_are_bounded)
{
    s_pair();
    static s_members members;
    dm_catalog_set_known(s_a, s_known, &members);
    char domain[DM_CATALOG_NAME_MAX + 1];
    size_t taken = 0;
    uint8_t refused[DM_ID_PUBLIC_BYTES];
    for (unsigned i = 0; i < 4 * DM_CATALOG_STRANGERS_MAX; i++) {
        snprintf(domain, sizeof domain, "flood%u", i);
        dm_catalog_verdict v = s_foreign_node(s_a, domain, 1, refused);
        cr_assert(v == DM_CATALOG_ACCEPTED || v == DM_CATALOG_UNKNOWN_ORIGIN, "%s",
                  dm_catalog_verdict_name(v));
        taken += v == DM_CATALOG_ACCEPTED;
    }
    cr_assert_eq(taken, DM_CATALOG_STRANGERS_MAX);
    cr_assert_eq(dm_catalog_count(s_a), DM_CATALOG_STRANGERS_MAX);
    /* A refused origin is not in the digest: a peer offers it again ... */
    dm_buf_t whole = DM_BUF_INIT;
    dm_catalog_digest(s_a, &whole);
    Dm__CatalogDigest *d = dm__catalog_digest__unpack(NULL, whole.len, (uint8_t *)whole.data);
    cr_assert_not_null(d);
    cr_assert_eq(d->n_origins, DM_CATALOG_STRANGERS_MAX);
    dm__catalog_digest__free_unpacked(d, NULL);
    dm_buf_free(&whole);
    /* ... a member is taken however many strangers came ... */
    dm_identity_t *member = NULL, *late = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&member), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&late), DM_OK);
    memcpy(members.known[members.n++], dm_identity_public(member), DM_ID_PUBLIC_BYTES);
    cr_assert_eq(s_node_of(s_a, member, "member", 1, NULL), DM_CATALOG_ACCEPTED);
    /* ... and a stranger refused now is taken once membership knows it. */
    cr_assert_eq(s_node_of(s_a, late, "late", 1, NULL), DM_CATALOG_UNKNOWN_ORIGIN);
    memcpy(members.known[members.n++], dm_identity_public(late), DM_ID_PUBLIC_BYTES);
    cr_assert_eq(s_node_of(s_a, late, "late", 1, NULL), DM_CATALOG_ACCEPTED);
    dm_identity_destroy(&member);
    dm_identity_destroy(&late);
}

/* A stranger's products beyond DM_CATALOG_STRANGER_ENTRIES are refused;
 * a known member's are not. */
static dm_catalog_verdict s_product_of(dm_catalog_t *c, dm_identity_t *id, const char *domain,
                                       unsigned k)
{
    char key[DM_CATALOG_KEY_MAX], yaml[1024];
    snprintf(key, sizeof key, "product/%s/p%u", domain, k);
    snprintf(yaml, sizeof yaml,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: p%u\n"
             "  domain: %s\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@c.com\n"
             "spec:\n  schema:\n    fields:\n      - {name: id, type: int}\n",
             k, domain);
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_contract_parse("t", yaml, strlen(yaml), NULL, &cs, &n, &diags), DM_OK);
    dm_buf_t json = DM_BUF_INIT, sb = DM_BUF_INIT;
    dm_contract_canonical(cs[0], &json);
    dm_contract_destroy(&cs[0]);
    free(cs);
    dm_diags_clear(&diags);
    dm_catalog_entry_t e = {0};
    memcpy(e.origin, dm_identity_public(id), DM_ID_PUBLIC_BYTES);
    e.key = key;
    e.version = 2 + k;
    e.issued_at_ms = S_NOW;
    e.payload = (uint8_t *)json.data;
    e.payload_len = json.len;
    dm_catalog_entry_signed_bytes(&e, &sb);
    cr_assert_eq(dm_identity_sign(id, sb.data, sb.len, e.signature, NULL), DM_OK);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(c, &e, S_NOW, &v, NULL), DM_OK);
    dm_buf_free(&json);
    dm_buf_free(&sb);
    return v;
}

Test(catalog_scale, a_stranger_stores_few_entries_a_member_many)
{
    s_pair();
    static s_members members;
    dm_catalog_set_known(s_a, s_known, &members);
    dm_identity_t *stranger = NULL, *member = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&stranger), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&member), DM_OK);
    memcpy(members.known[members.n++], dm_identity_public(member), DM_ID_PUBLIC_BYTES);
    size_t stranger_taken = 0, member_taken = 0;
    for (unsigned k = 0; k < 2 * DM_CATALOG_STRANGER_ENTRIES; k++) {
        stranger_taken += s_product_of(s_a, stranger, "sdomain", k) == DM_CATALOG_ACCEPTED;
        member_taken += s_product_of(s_a, member, "mdomain", k) == DM_CATALOG_ACCEPTED;
    }
    cr_assert_eq(stranger_taken, DM_CATALOG_STRANGER_ENTRIES);
    cr_assert_eq(member_taken, 2 * DM_CATALOG_STRANGER_ENTRIES);
    /* Known later (it joined): the rest of it is taken. */
    memcpy(members.known[members.n++], dm_identity_public(stranger), DM_ID_PUBLIC_BYTES);
    cr_assert_eq(s_product_of(s_a, stranger, "sdomain", 99), DM_CATALOG_ACCEPTED);
    dm_identity_destroy(&stranger);
    dm_identity_destroy(&member);
}

/* ---- what one delta costs: time on the node loop, room in the store ---- */

/* The largest deltas a member can send: DM_CATALOG_DELTA_MAX_BYTES of wide
 * contracts (judged DM_CATALOG_JUDGE_BYTES per call), and one large
 * contract alone. Each call runs on the node loop; the figures go to
 * docs/catalog.md. */
Test(catalog_scale, the_largest_deltas_are_judged_within_bounded_time)
{
    s_pair();
    dm_t_publish_wide(s_a, s_self_a, "wide", 160, 40, true);
    dm_t_publish_wide(s_b, s_self_b, "huge", 1, 4000, true);
    struct {
        dm_catalog_t *from;
        const char *what;
    } runs[] = {{s_a, "160 40-field contracts"}, {s_b, "one 4,000-field contract"}};
    for (size_t r = 0; r < 2; r++) {
        dm_identity_t *id = NULL;
        dm_catalog_t *fresh = NULL;
        cr_assert_eq(dm_identity_new_ephemeral(&id), DM_OK);
        cr_assert_eq(dm_catalog_open(NULL, id, &fresh, NULL), DM_OK);
        long long worst = 0;
        size_t biggest = 0, msgs = 0;
        for (bool more = true; more && msgs < S_MAX_ROUNDS; msgs++) {
            dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
            dm_catalog_digest_first(fresh, &digest);
            cr_assert_eq(dm_catalog_delta(runs[r].from, digest.data, digest.len,
                                          DM_CATALOG_DELTA_MAX_BYTES, &delta, &more),
                         DM_OK);
            long long t0 = dm_clock_mono_ms();
            bool more_in = false;
            cr_assert_eq(dm_catalog_apply_delta(fresh, delta.data, delta.len, S_NOW, NULL,
                                                &more_in, NULL),
                         DM_OK);
            more = more || more_in;
            long long ms = dm_clock_mono_ms() - t0;
            worst = ms > worst ? ms : worst;
            biggest = delta.len > biggest ? delta.len : biggest;
            dm_buf_free(&digest);
            dm_buf_free(&delta);
        }
        cr_assert(s_same(runs[r].from, fresh));
        cr_log_info("%s: %zu deltas, largest %zu bytes, slowest judged in %lld ms", runs[r].what,
                    msgs, biggest, worst);
        /* The figures are the point; the bound only catches the pathological
         * (seconds), with room for a sanitizer build on a loaded machine. */
        cr_assert_lt(worst, S_PATHOLOGICAL_MS, "a delta took %lld ms on the node loop", worst);
        dm_catalog_destroy(&fresh);
        dm_identity_destroy(&id);
    }
}

/* A store whose map may grow to a small maximum: a catalog delta that
 * needs more than the map can grow to is an error (DM_ERR_MAPFULL),
 * nothing of it is kept, and the map grows on its own below the maximum. */
Test(catalog_scale, a_full_map_is_an_error_and_keeps_nothing)
{
    enum { S_INITIAL = 1 << 20, S_MAX = 2 << 20 };
    s_pair();
    dm_t_publish_wide(s_a, s_self_a, "wide", 400, 40, true);
    char dir[64];
    cr_assert_not_null(dm_t_tmpdir(dir, sizeof dir, "test_catalog_map"));
    dm_store_opts_t opts = {.initial_map_bytes = S_INITIAL, .max_map_bytes = S_MAX};
    dm_store_t *store = NULL;
    dm_catalog_t *c = NULL;
    dm_identity_t *id = NULL;
    cr_assert_eq(dm_store_open(dir, &opts, &store, NULL), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&id), DM_OK);
    cr_assert_eq(dm_catalog_open(store, id, &c, NULL), DM_OK);
    dm_err last = DM_OK;
    size_t before = 0;
    for (int round = 0; round < S_MAX_ROUNDS && last == DM_OK; round++) {
        dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
        bool more = false;
        dm_catalog_digest_first(c, &digest);
        cr_assert_eq(dm_catalog_delta(s_a, digest.data, digest.len, S_DELTA_BYTES, &delta, &more),
                     DM_OK);
        before = dm_catalog_count(c);
        /* A window apart: the judging budget per window is not the point. */
        int64_t now = S_NOW + (int64_t)round * DM_CATALOG_JUDGE_WINDOW_MS;
        last = dm_catalog_apply_delta(c, delta.data, delta.len, now, NULL, NULL, NULL);
        dm_buf_free(&digest);
        dm_buf_free(&delta);
        if (!more && last == DM_OK)
            break;
    }
    cr_assert_eq(last, DM_ERR_MAPFULL, "%s", dm_err_str(last));
    cr_assert_gt(dm_store_map_size(store), S_INITIAL, "the map did not grow before it was full");
    cr_assert_eq(dm_catalog_count(c), before, "a refused delta left entries in memory");
    /* Memory and store agree: reopening shows the same catalog. */
    dm_buf_t d1 = DM_BUF_INIT, d2 = DM_BUF_INIT;
    dm_catalog_digest(c, &d1);
    dm_catalog_destroy(&c);
    cr_assert_eq(dm_catalog_open(store, id, &c, NULL), DM_OK);
    dm_catalog_digest(c, &d2);
    cr_assert(d1.len == d2.len && memcmp(d1.data, d2.data, d1.len) == 0);
    dm_buf_free(&d1);
    dm_buf_free(&d2);
    dm_catalog_destroy(&c);
    dm_store_destroy(&store);
    dm_identity_destroy(&id);
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s", dir);
    dm_t_rmdir(sub);
}

/* A peer may send a delta up to DM_CATALOG_DELTA_MAX_BYTES; the receiver
 * judges DM_CATALOG_JUDGE_BYTES of it per call, says more, and the next
 * exchanges bring the rest. */
Test(catalog_scale, a_delta_over_the_judging_budget_is_taken_in_parts)
{
    s_pair();
    dm_t_publish_wide(s_a, s_self_a, "wide", 120, 40, true); /* about 700 KB of contracts */
    dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
    bool more = false, more_in = false;
    dm_catalog_digest_first(s_b, &digest);
    cr_assert_eq(dm_catalog_delta(s_a, digest.data, digest.len, DM_CATALOG_DELTA_MAX_BYTES, &delta,
                                  &more),
                 DM_OK);
    cr_assert_gt(delta.len, 2 * DM_CATALOG_JUDGE_BYTES);
    dm_catalog_counts_t counts;
    cr_assert_eq(dm_catalog_apply_delta(s_b, delta.data, delta.len, S_NOW, &counts, &more_in, NULL),
                 DM_OK);
    cr_assert(more_in, "a cut delta must ask for more");
    cr_assert_gt(counts.n[DM_CATALOG_ACCEPTED], 0);
    cr_assert_lt(dm_catalog_count(s_b), dm_catalog_count(s_a));
    dm_buf_free(&digest);
    dm_buf_free(&delta);
    size_t rounds = 1;
    while (!s_same(s_a, s_b) && rounds < S_MAX_ROUNDS) {
        dm_catalog_digest_first(s_b, &digest);
        cr_assert_eq(dm_catalog_delta(s_a, digest.data, digest.len, DM_CATALOG_DELTA_MAX_BYTES,
                                      &delta, &more),
                     DM_OK);
        cr_assert_eq(dm_catalog_apply_delta(s_b, delta.data, delta.len, S_NOW, NULL, NULL, NULL),
                     DM_OK);
        dm_buf_free(&digest);
        dm_buf_free(&delta);
        rounds++;
    }
    cr_assert(s_same(s_a, s_b), "not converged in %zu rounds", rounds);
    cr_assert_geq(rounds, 3);
}

/* However many deltas arrive (from however many peers), a window of
 * DM_CATALOG_JUDGE_WINDOW_MS judges DM_CATALOG_JUDGE_BYTES_PER_WINDOW of
 * payload (one entry may overshoot); the next window goes on. */
Test(catalog_scale, judging_per_window_is_bounded_whoever_sends)
{
    s_pair();
    dm_t_publish_wide(s_a, s_self_a, "wide", 400, 40, true); /* about 2.4 MB of contracts */
    size_t total = 0, windows = 0;
    for (int64_t now = S_NOW; !s_same(s_a, s_b) && windows < S_MAX_ROUNDS;
         now += DM_CATALOG_JUDGE_WINDOW_MS, windows++) {
        size_t before = dm_catalog_count(s_b);
        size_t stored_bytes = 0;
        for (int msg = 0; msg < 20; msg++) { /* many peers' deltas in one window */
            dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
            bool more = false;
            dm_catalog_digest_first(s_b, &digest);
            cr_assert_eq(dm_catalog_delta(s_a, digest.data, digest.len, S_DELTA_BYTES, &delta,
                                          &more),
                         DM_OK);
            cr_assert_eq(dm_catalog_apply_delta(s_b, delta.data, delta.len, now, NULL, NULL,
                                                NULL),
                         DM_OK);
            dm_buf_free(&digest);
            dm_buf_free(&delta);
        }
        size_t taken = dm_catalog_count(s_b) - before;
        dm_catalog_entry_t e;
        cr_assert_eq(dm_catalog_get(s_a, dm_identity_public(s_self_a), "product/wide/p0", &e),
                     DM_OK);
        stored_bytes = taken * e.payload_len;
        dm_catalog_entry_clear(&e);
        cr_assert_leq(stored_bytes, DM_CATALOG_JUDGE_BYTES_PER_WINDOW + DM_CATALOG_PAYLOAD_MAX,
                      "window %zu judged about %zu bytes", windows, stored_bytes);
        total += taken;
    }
    cr_assert(s_same(s_a, s_b), "not converged in %zu windows", windows);
    cr_assert_geq(windows, 2);
    cr_log_info("%zu entries over %zu windows of %d ms", total, windows,
                DM_CATALOG_JUDGE_WINDOW_MS);
}
