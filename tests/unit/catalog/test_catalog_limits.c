/* test_catalog_limits.c: what one member (or a restart) may cost the
 * catalog: junk entries spend nothing of the judging window, one sender
 * spends only its own share of it, costly sync messages are rate-limited
 * per member, and the stranger quota holds across a
 * restart. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "proto/catalog.pb-c.h"
#include "fixture.h"
#include "catalog_test.h"

#define S_NOW DM_T_CATALOG_NOW
#define S_DELTA_BYTES (256 << 10)
#define S_MAX_IDS 8

static dm_identity_t *s_ids[S_MAX_IDS];
static dm_catalog_t *s_cats[S_MAX_IDS];
static size_t s_n;
static dm_store_t *s_store;
static char s_dir[PATH_MAX];

static void s_teardown(void)
{
    for (size_t i = 0; i < s_n; i++) {
        dm_catalog_destroy(&s_cats[i]);
        dm_identity_destroy(&s_ids[i]);
    }
    s_n = 0;
    if (s_store) {
        dm_store_destroy(&s_store);
        dm_t_rmdir(s_dir);
    }
}

TestSuite(catalog_limits, .fini = s_teardown, .timeout = 120);

/* An in-memory catalog with a fresh identity; *id (may be NULL) gets it. */
static dm_catalog_t *s_cat(dm_identity_t **id)
{
    cr_assert_lt(s_n, S_MAX_IDS);
    cr_assert_eq(dm_identity_new_ephemeral(&s_ids[s_n]), DM_OK);
    cr_assert_eq(dm_catalog_open(NULL, s_ids[s_n], &s_cats[s_n], NULL), DM_OK);
    if (id)
        *id = s_ids[s_n];
    return s_cats[s_n++];
}

/* One exchange from -> to at now: to's first page, from's delta, applied
 * by to as sent by sender (NULL: anonymous). Returns the accepted count. */
static size_t s_exchange(dm_catalog_t *from, dm_catalog_t *to, const uint8_t *sender,
                         int64_t now)
{
    dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
    bool more = false;
    dm_catalog_digest_first(to, &digest);
    cr_assert_eq(dm_catalog_delta(from, digest.data, digest.len, S_DELTA_BYTES, &delta, &more),
                 DM_OK);
    dm_catalog_counts_t counts;
    cr_assert_eq(dm_catalog_apply_delta_from(to, sender, delta.data, delta.len, now, &counts,
                                             NULL, NULL),
                 DM_OK);
    dm_buf_free(&digest);
    dm_buf_free(&delta);
    return counts.n[DM_CATALOG_ACCEPTED];
}

/* ---- the judging window ---- */

/* A delta of one entry of a random origin with a payload of the largest
 * size and a zero signature: junk that costs its sender nothing to make. */
static void s_junk_delta(dm_buf_t *out)
{
    uint8_t origin[DM_ID_PUBLIC_BYTES], sig[DM_ID_SIGNATURE_BYTES] = {0};
    for (size_t i = 0; i < sizeof origin; i++)
        origin[i] = (uint8_t)(rand() & 0xff);
    uint8_t *payload = malloc(DM_CATALOG_PAYLOAD_MAX);
    cr_assert_not_null(payload);
    memset(payload, '{', DM_CATALOG_PAYLOAD_MAX);
    Dm__CatalogEntry pb = DM__CATALOG_ENTRY__INIT;
    pb.origin.data = origin;
    pb.origin.len = sizeof origin;
    pb.key = "product/junk/x";
    pb.version = 1;
    pb.payload.data = payload;
    pb.payload.len = DM_CATALOG_PAYLOAD_MAX;
    pb.signature.data = sig;
    pb.signature.len = sizeof sig;
    Dm__CatalogEntry *list[] = {&pb};
    Dm__CatalogDelta d = DM__CATALOG_DELTA__INIT;
    d.entries = list;
    d.n_entries = 1;
    size_t n = dm__catalog_delta__get_packed_size(&d);
    dm_buf_reserve(out, n);
    out->len += dm__catalog_delta__pack(&d, (uint8_t *)out->data + out->len);
    free(payload);
}

/* The reviewer's experiment: a junk delta of a 1 MiB payload with a zero
 * signature, then an honest small delta in the same second. The junk used
 * to be charged to the window before its signature was checked, so the
 * honest delta applied nothing. */
Test(catalog_limits, junk_payload_does_not_spend_the_judging_window)
{
    dm_identity_t *ida = NULL;
    dm_catalog_t *a = s_cat(&ida), *b = s_cat(NULL);
    dm_t_publish_wide(a, ida, "commerce", 2, 4, false);
    dm_buf_t junk = DM_BUF_INIT;
    s_junk_delta(&junk);
    cr_assert_gt(junk.len, DM_CATALOG_PAYLOAD_MAX);
    for (int i = 0; i < 4; i++) { /* more than the whole window, anonymous sender */
        dm_catalog_counts_t counts;
        cr_assert_eq(dm_catalog_apply_delta(b, junk.data, junk.len, S_NOW, &counts, NULL, NULL),
                     DM_OK);
        cr_assert_eq(counts.n[DM_CATALOG_BAD_SIGNATURE], 1);
    }
    cr_assert_eq(s_exchange(a, b, NULL, S_NOW), 3, "the honest delta must be taken");
    dm_buf_free(&junk);
}

/* A sender that spends its share on valid, signed, parsable contracts
 * (its own: each reaches the parser) leaves the rest of the window to the
 * others: another member's small delta in the same second is taken. */
Test(catalog_limits, one_sender_spends_only_its_own_share)
{
    dm_identity_t *ida = NULL, *idc = NULL;
    dm_catalog_t *a = s_cat(&ida), *b = s_cat(NULL), *c = s_cat(&idc);
    dm_t_publish_wide(a, ida, "wide", 120, 40, false); /* about 700 KB of contracts */
    dm_t_publish_wide(c, idc, "small", 1, 2, false);
    const uint8_t *sender_a = dm_identity_public(ida), *sender_c = dm_identity_public(idc);
    size_t taken = 0, got;
    for (int msg = 0; msg < 20; msg++)
        taken += s_exchange(a, b, sender_a, S_NOW);
    cr_assert_gt(taken, 0);
    cr_assert_lt(taken, dm_catalog_count(a), "one sender took the whole window");
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(a, sender_a, "product/wide/p0", &e), DM_OK);
    cr_assert_leq((taken - 1) * e.payload_len, DM_CATALOG_JUDGE_SENDER_BYTES + e.payload_len);
    dm_catalog_entry_clear(&e);
    got = s_exchange(c, b, sender_c, S_NOW);
    cr_assert_eq(got, 2, "another member's delta must be taken, got %zu", got);
    /* The next window gives the first sender its share again. */
    cr_assert_gt(s_exchange(a, b, sender_a, S_NOW + DM_CATALOG_JUDGE_WINDOW_MS), 0);
}

/* ---- costly sync messages per member ---- */

/* A member gets DM_CATALOG_SYNC_BURST costly messages at once, then
 * DM_CATALOG_SYNC_PER_S a second; another member is not affected, and a
 * table of DM_CATALOG_SYNC_SENDERS rows takes any number of members. */
Test(catalog_limits, costly_sync_messages_are_rate_limited_per_member)
{
    dm_catalog_t *a = s_cat(NULL);
    uint8_t x[DM_ID_PUBLIC_BYTES], y[DM_ID_PUBLIC_BYTES];
    memset(x, 1, sizeof x);
    memset(y, 2, sizeof y);
    size_t allowed = 0;
    for (int i = 0; i < 10 * DM_CATALOG_SYNC_BURST; i++) /* a flood within one instant */
        allowed += dm_catalog_sync_allow(a, x, S_NOW);
    cr_assert_eq(allowed, DM_CATALOG_SYNC_BURST);
    cr_assert(dm_catalog_sync_allow(a, y, S_NOW), "another member must not pay for it");
    allowed = 0;
    for (int64_t ms = 1; ms <= 1000; ms++) /* a second of flooding, one a millisecond */
        allowed += dm_catalog_sync_allow(a, x, S_NOW + ms);
    cr_assert_leq(allowed, DM_CATALOG_SYNC_PER_S);
    cr_assert_geq(allowed, DM_CATALOG_SYNC_PER_S - 1);
    /* A clock that goes back refills nothing. */
    cr_assert_not(dm_catalog_sync_allow(a, x, S_NOW - 100000));
    /* Many members: every new one starts with a full bucket. */
    uint8_t z[DM_ID_PUBLIC_BYTES] = {0};
    for (unsigned i = 0; i < 2 * DM_CATALOG_SYNC_SENDERS; i++) {
        memcpy(z, &i, sizeof i);
        cr_assert(dm_catalog_sync_allow(a, z, S_NOW + 2000 + i));
    }
}
