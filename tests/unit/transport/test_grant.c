/* test_grant.c: the consumer's signed grant (suite "grant"): a signed one
 * verifies for its relay, SQL and time; each alteration, a foreign relay
 * or SQL, an expired or far-future expiry and hostile bytes are refused
 * with the reason named. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "proto/mesh.pb-c.h"
#include "transport/grant.h"

#define T_NOW_MS ((int64_t)1800000000000)
#define T_SQL "SELECT o.id FROM commerce.orders o"

static dm_identity_t *s_consumer, *s_relay, *s_other;
static dm_buf_t s_grant = DM_BUF_INIT, s_why = DM_BUF_INIT;

static void s_setup(void)
{
    cr_assert_eq(dm_identity_new_ephemeral(&s_consumer), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&s_relay), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&s_other), DM_OK);
    cr_assert_eq(dm_grant_sign(s_consumer, dm_identity_public(s_relay), T_SQL, strlen(T_SQL),
                               T_NOW_MS + DM_GRANT_DEFAULT_LIFETIME_MS, &s_grant, &s_why),
                 DM_OK, "%s", s_why.data ? s_why.data : "");
    dm_buf_reset(&s_why);
}

static void s_teardown(void)
{
    dm_identity_destroy(&s_consumer);
    dm_identity_destroy(&s_relay);
    dm_identity_destroy(&s_other);
    dm_buf_free(&s_grant);
    dm_buf_free(&s_why);
}

TestSuite(grant, .init = s_setup, .fini = s_teardown);

/* Verifies data as the relay over T_SQL at now; returns the code, the
 * reason in s_why. */
static dm_err s_verify(const void *data, size_t len, int64_t now)
{
    dm_grant_t g;
    dm_buf_reset(&s_why);
    return dm_grant_verify(data, len, dm_identity_public(s_relay), T_SQL, strlen(T_SQL), now, &g,
                           &s_why);
}

static const char *s_reason(void) { return s_why.data ? s_why.data : ""; }

Test(grant, round_trip_fills_every_field)
{
    dm_grant_t g;
    cr_assert_eq(dm_grant_verify(s_grant.data, s_grant.len, dm_identity_public(s_relay), T_SQL,
                                 strlen(T_SQL), T_NOW_MS, &g, &s_why),
                 DM_OK, "%s", s_reason());
    cr_assert_eq(memcmp(g.consumer, dm_identity_public(s_consumer), DM_ID_PUBLIC_BYTES), 0);
    cr_assert_eq(memcmp(g.relay, dm_identity_public(s_relay), DM_ID_PUBLIC_BYTES), 0);
    cr_assert_eq(g.expires_ms, T_NOW_MS + DM_GRANT_DEFAULT_LIFETIME_MS);
    uint8_t zero[DM_GRANT_NONCE_BYTES] = {0};
    cr_assert_neq(memcmp(g.nonce, zero, sizeof zero), 0);
    cr_assert_leq(s_grant.len, DM_GRANT_MAX_BYTES);
}

Test(grant, two_signatures_have_different_nonces)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_grant_t g1, g2;
    cr_assert_eq(dm_grant_sign(s_consumer, dm_identity_public(s_relay), T_SQL, strlen(T_SQL),
                               T_NOW_MS + 1000, &b, NULL),
                 DM_OK);
    cr_assert_eq(dm_grant_verify(b.data, b.len, dm_identity_public(s_relay), T_SQL,
                                 strlen(T_SQL), T_NOW_MS, &g1, NULL),
                 DM_OK);
    cr_assert_eq(dm_grant_verify(s_grant.data, s_grant.len, dm_identity_public(s_relay), T_SQL,
                                 strlen(T_SQL), T_NOW_MS, &g2, NULL),
                 DM_OK);
    cr_assert_neq(memcmp(g1.nonce, g2.nonce, DM_GRANT_NONCE_BYTES), 0);
    dm_buf_free(&b);
}

Test(grant, any_altered_byte_is_refused)
{
    uint8_t copy[DM_GRANT_MAX_BYTES];
    memcpy(copy, s_grant.data, s_grant.len);
    for (size_t i = 0; i < s_grant.len; i++) {
        for (unsigned bit = 0; bit < 8; bit += 3) {
            copy[i] ^= (uint8_t)(1u << bit);
            dm_err rc = s_verify(copy, s_grant.len, T_NOW_MS);
            cr_assert_neq(rc, DM_OK, "byte %zu bit %u altered yet accepted", i, bit);
            cr_assert(rc == DM_ERR_DENIED || rc == DM_ERR_PROTO, "byte %zu: %s", i,
                      dm_err_str(rc));
            cr_assert_gt(s_why.len, 0, "byte %zu: no reason given", i);
            copy[i] ^= (uint8_t)(1u << bit);
        }
    }
}

Test(grant, forged_signature_is_refused)
{
    /* Another key signs a grant naming the consumer: re-wrap its Grant
     * with the signature the other key made over its own grant. */
    dm_buf_t forged = DM_BUF_INIT;
    cr_assert_eq(dm_grant_sign(s_other, dm_identity_public(s_relay), T_SQL, strlen(T_SQL),
                               T_NOW_MS + 1000, &forged, NULL),
                 DM_OK);
    Dm__SignedGrant *mine = dm__signed_grant__unpack(NULL, s_grant.len, (uint8_t *)s_grant.data);
    Dm__SignedGrant *theirs = dm__signed_grant__unpack(NULL, forged.len, (uint8_t *)forged.data);
    cr_assert(mine && theirs);
    Dm__SignedGrant mix = DM__SIGNED_GRANT__INIT;
    mix.grant = mine->grant;
    mix.sig = theirs->sig;
    uint8_t out[DM_GRANT_MAX_BYTES];
    size_t n = dm__signed_grant__pack(&mix, out);
    cr_assert_eq(s_verify(out, n, T_NOW_MS), DM_ERR_DENIED);
    cr_assert(strstr(s_reason(), "signature does not verify"), "%s", s_reason());
    dm__signed_grant__free_unpacked(mine, NULL);
    dm__signed_grant__free_unpacked(theirs, NULL);
    dm_buf_free(&forged);
}

Test(grant, wrong_relay_is_refused)
{
    dm_grant_t g;
    cr_assert_eq(dm_grant_verify(s_grant.data, s_grant.len, dm_identity_public(s_other), T_SQL,
                                 strlen(T_SQL), T_NOW_MS, &g, &s_why),
                 DM_ERR_DENIED);
    cr_assert(strstr(s_reason(), "grant is for relay"), "%s", s_reason());
    uint8_t zero[DM_ID_PUBLIC_BYTES] = {0};
    cr_assert_eq(memcmp(g.consumer, zero, sizeof zero), 0, "output not cleared on failure");
}

Test(grant, other_sql_is_refused)
{
    const char *sql = "SELECT * FROM commerce.orders";
    dm_grant_t g;
    cr_assert_eq(dm_grant_verify(s_grant.data, s_grant.len, dm_identity_public(s_relay), sql,
                                 strlen(sql), T_NOW_MS, &g, &s_why),
                 DM_ERR_DENIED);
    cr_assert(strstr(s_reason(), "does not sign this SQL"), "%s", s_reason());
    /* A prefix of the signed SQL is another SQL too. */
    dm_buf_reset(&s_why);
    cr_assert_eq(dm_grant_verify(s_grant.data, s_grant.len, dm_identity_public(s_relay), T_SQL,
                                 strlen(T_SQL) - 1, T_NOW_MS, &g, &s_why),
                 DM_ERR_DENIED);
}

Test(grant, expired_is_refused_after_the_skew)
{
    int64_t expiry = T_NOW_MS + DM_GRANT_DEFAULT_LIFETIME_MS;
    cr_assert_eq(s_verify(s_grant.data, s_grant.len, expiry + DM_GRANT_SKEW_MS), DM_OK,
                 "%s", s_reason());
    cr_assert_eq(s_verify(s_grant.data, s_grant.len, expiry + DM_GRANT_SKEW_MS + 1000),
                 DM_ERR_DENIED);
    cr_assert(strstr(s_reason(), "grant expired"), "%s", s_reason());
}

Test(grant, too_far_in_the_future_is_refused)
{
    dm_buf_t far = DM_BUF_INIT;
    int64_t expiry = T_NOW_MS + DM_GRANT_MAX_LIFETIME_MS + DM_GRANT_SKEW_MS + 1000;
    cr_assert_eq(dm_grant_sign(s_consumer, dm_identity_public(s_relay), T_SQL, strlen(T_SQL),
                               expiry, &far, NULL),
                 DM_OK);
    cr_assert_eq(s_verify(far.data, far.len, T_NOW_MS), DM_ERR_DENIED);
    cr_assert(strstr(s_reason(), "at most"), "%s", s_reason());
    /* The same grant is fine once its expiry is within the lifetime. */
    cr_assert_eq(s_verify(far.data, far.len, T_NOW_MS + 2000), DM_OK, "%s", s_reason());
    dm_buf_free(&far);
}

Test(grant, truncated_is_refused_at_every_length)
{
    for (size_t n = 0; n < s_grant.len; n++) {
        dm_err rc = s_verify(s_grant.data, n, T_NOW_MS);
        cr_assert(rc == DM_ERR_PROTO || rc == DM_ERR_DENIED, "length %zu: %s", n,
                  dm_err_str(rc));
    }
}

Test(grant, oversized_and_empty_are_refused)
{
    uint8_t big[DM_GRANT_MAX_BYTES + 1];
    memset(big, 0, sizeof big);
    memcpy(big, s_grant.data, s_grant.len);
    cr_assert_eq(s_verify(big, sizeof big, T_NOW_MS), DM_ERR_PROTO);
    cr_assert(strstr(s_reason(), "a signed grant has 1 to"), "%s", s_reason());
    cr_assert_eq(s_verify(NULL, 0, T_NOW_MS), DM_ERR_PROTO);
    cr_assert_eq(s_verify("", 0, T_NOW_MS), DM_ERR_PROTO);
}

Test(grant, malformed_fields_are_refused)
{
    /* A well-formed SignedGrant around a Grant whose nonce is short. */
    uint8_t k[DM_ID_PUBLIC_BYTES] = {1}, h[32] = {2}, nonce[4] = {3}, sig[64] = {4};
    Dm__Grant g = DM__GRANT__INIT;
    g.consumer = (ProtobufCBinaryData){sizeof k, k};
    g.relay = (ProtobufCBinaryData){sizeof k, k};
    g.sql_sha256 = (ProtobufCBinaryData){sizeof h, h};
    g.nonce = (ProtobufCBinaryData){sizeof nonce, nonce};
    g.expires_ms = T_NOW_MS;
    uint8_t body[256], out[DM_GRANT_MAX_BYTES];
    Dm__SignedGrant sg = DM__SIGNED_GRANT__INIT;
    sg.grant = (ProtobufCBinaryData){dm__grant__pack(&g, body), body};
    sg.sig = (ProtobufCBinaryData){sizeof sig, sig};
    size_t n = dm__signed_grant__pack(&sg, out);
    cr_assert_eq(s_verify(out, n, T_NOW_MS), DM_ERR_PROTO);
    cr_assert(strstr(s_reason(), "field nonce has 4 bytes"), "%s", s_reason());
    /* Garbage bytes that are no protobuf at all. */
    memset(out, 0xff, 64);
    cr_assert_eq(s_verify(out, 64, T_NOW_MS), DM_ERR_PROTO);
    /* A short signature. */
    sg.sig.len = 10;
    n = dm__signed_grant__pack(&sg, out);
    cr_assert_eq(s_verify(out, n, T_NOW_MS), DM_ERR_PROTO);
    cr_assert(strstr(s_reason(), "signature has 10 bytes"), "%s", s_reason());
}

/* Signs a Grant built here field by field, as docs/protocol.md describes
 * the signed bytes ("datamesh grant v1", NUL, the encoded Grant), so the
 * format is checked independently of dm_grant_sign. */
static size_t s_handmade(int64_t expires, uint8_t out[DM_GRANT_MAX_BYTES])
{
    uint8_t h[32], nonce[DM_GRANT_NONCE_BYTES] = {9}, body[256], msg[300];
    uint8_t sig[DM_ID_SIGNATURE_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)T_SQL, strlen(T_SQL));
    Dm__Grant g = DM__GRANT__INIT;
    g.consumer.data = (uint8_t *)dm_identity_public(s_consumer);
    g.consumer.len = DM_ID_PUBLIC_BYTES;
    g.relay.data = (uint8_t *)dm_identity_public(s_relay);
    g.relay.len = DM_ID_PUBLIC_BYTES;
    g.sql_sha256 = (ProtobufCBinaryData){sizeof h, h};
    g.nonce = (ProtobufCBinaryData){sizeof nonce, nonce};
    g.expires_ms = expires;
    size_t blen = dm__grant__pack(&g, body);
    static const char prefix[] = "datamesh grant v1";
    memcpy(msg, prefix, sizeof prefix);
    memcpy(msg + sizeof prefix, body, blen);
    cr_assert_eq(dm_identity_sign(s_consumer, msg, sizeof prefix + blen, sig, NULL), DM_OK);
    Dm__SignedGrant sg = DM__SIGNED_GRANT__INIT;
    sg.grant = (ProtobufCBinaryData){blen, body};
    sg.sig = (ProtobufCBinaryData){sizeof sig, sig};
    return dm__signed_grant__pack(&sg, out);
}

Test(grant, the_documented_bytes_verify)
{
    uint8_t out[DM_GRANT_MAX_BYTES];
    size_t n = s_handmade(T_NOW_MS + 1000, out);
    cr_assert_eq(s_verify(out, n, T_NOW_MS), DM_OK, "%s", s_reason());
}

Test(grant, a_signed_negative_or_extreme_expiry_is_refused)
{
    uint8_t out[DM_GRANT_MAX_BYTES];
    int64_t bad[] = {INT64_MIN, -1, 0, INT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = s_handmade(bad[i], out);
        cr_assert_eq(s_verify(out, n, T_NOW_MS), DM_ERR_DENIED, "expiry %lld",
                     (long long)bad[i]);
        cr_assert_gt(s_why.len, 0);
    }
}

/* A relay reads the grant's names and nonce without the SQL or the
 * signature's verdict (the owner decides those): dm_grant_read takes a
 * grant whatever it signs, and refuses what is not a grant at all. */
Test(grant, read_gives_the_fields_and_refuses_malformed_bytes)
{
    dm_grant_t g;
    cr_assert_eq(dm_grant_read(s_grant.data, s_grant.len, &g, &s_why), DM_OK, "%s", s_reason());
    cr_assert_eq(memcmp(g.consumer, dm_identity_public(s_consumer), DM_ID_PUBLIC_BYTES), 0);
    cr_assert_eq(memcmp(g.relay, dm_identity_public(s_relay), DM_ID_PUBLIC_BYTES), 0);
    cr_assert_eq(g.expires_ms, T_NOW_MS + DM_GRANT_DEFAULT_LIFETIME_MS);
    for (size_t n = 0; n < s_grant.len; n++) {
        dm_buf_reset(&s_why);
        cr_assert_neq(dm_grant_read(s_grant.data, n, &g, &s_why), DM_OK, "%zu bytes read", n);
        cr_assert_gt(s_why.len, 0);
    }
}
