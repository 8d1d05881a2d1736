/* grant.c: signing and checking the consumer's grant of one relayed query
 * (grant.h). The signature covers DM_GRANT_SIG_PREFIX, a NUL, then the
 * encoded Grant exactly as sent, so no re-encoding is ever trusted. */
#include "transport/grant.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>

#include "proto/mesh.pb-c.h"

#define DM_GRANT_SIG_PREFIX "datamesh grant v1" /* then NUL, then the Grant */
#define DM_GRANT_BODY_MAX (DM_GRANT_MAX_BYTES - DM_ID_SIGNATURE_BYTES)

_Static_assert(crypto_hash_sha256_BYTES == sizeof(((dm_grant_t *)0)->sql_sha256),
               "a grant signs a SHA-256");

/* The bytes the consumer signs for grant (len bytes) into msg (cap bytes);
 * returns their count, 0 when grant is too long. */
static size_t s_signed_bytes(const uint8_t *grant, size_t len, uint8_t *msg, size_t cap)
{
    size_t plen = sizeof DM_GRANT_SIG_PREFIX; /* the prefix and its NUL */
    if (len > cap - plen)
        return 0;
    memcpy(msg, DM_GRANT_SIG_PREFIX, plen);
    memcpy(msg + plen, grant, len);
    return plen + len;
}

dm_err dm_grant_sign(const dm_identity_t *consumer, const uint8_t relay[DM_ID_PUBLIC_BYTES],
                     const char *sql, size_t len, int64_t expires_ms, dm_buf_t *out,
                     dm_buf_t *why)
{
    uint8_t hash[crypto_hash_sha256_BYTES], nonce[DM_GRANT_NONCE_BYTES];
    uint8_t body[DM_GRANT_BODY_MAX], msg[DM_GRANT_BODY_MAX + sizeof DM_GRANT_SIG_PREFIX];
    uint8_t sig[DM_ID_SIGNATURE_BYTES];
    dm_buf_reset(out);
    if (expires_ms <= 0) {
        dm_buf_why(why, "grant: expiry %" PRId64 " ms is not a Unix time in milliseconds",
                   expires_ms);
        return DM_ERR_INVALID;
    }
    crypto_hash_sha256(hash, (const unsigned char *)(sql ? sql : ""), sql ? len : 0);
    randombytes_buf(nonce, sizeof nonce);

    Dm__Grant g = DM__GRANT__INIT;
    g.consumer.data = (uint8_t *)dm_identity_public(consumer);
    g.consumer.len = DM_ID_PUBLIC_BYTES;
    g.relay.data = (uint8_t *)relay;
    g.relay.len = DM_ID_PUBLIC_BYTES;
    g.sql_sha256.data = hash;
    g.sql_sha256.len = sizeof hash;
    g.nonce.data = nonce;
    g.nonce.len = sizeof nonce;
    g.expires_ms = expires_ms;
    size_t blen = dm__grant__get_packed_size(&g);
    if (blen > sizeof body) /* cannot happen with fixed-size fields */
        return DM_ERR_INVALID;
    dm__grant__pack(&g, body);
    size_t mlen = s_signed_bytes(body, blen, msg, sizeof msg);
    dm_err rc = dm_identity_sign(consumer, msg, mlen, sig, why);
    if (rc != DM_OK)
        return rc;

    Dm__SignedGrant sg = DM__SIGNED_GRANT__INIT;
    sg.grant.data = body;
    sg.grant.len = blen;
    sg.sig.data = sig;
    sg.sig.len = sizeof sig;
    size_t slen = dm__signed_grant__get_packed_size(&sg);
    dm_buf_reserve(out, slen);
    out->len = dm__signed_grant__pack(&sg, (uint8_t *)out->data);
    out->data[out->len] = 0;
    return DM_OK;
}

/* Copies the fixed-size fields of g into out; false (a line in why) when
 * one has the wrong length. */
static bool s_fields(const Dm__Grant *g, dm_grant_t *out, dm_buf_t *why)
{
    const struct {
        const char *name;
        const ProtobufCBinaryData *v;
        uint8_t *dst;
        size_t want;
    } f[] = {
        {"consumer", &g->consumer, out->consumer, sizeof out->consumer},
        {"relay", &g->relay, out->relay, sizeof out->relay},
        {"sql_sha256", &g->sql_sha256, out->sql_sha256, sizeof out->sql_sha256},
        {"nonce", &g->nonce, out->nonce, sizeof out->nonce},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].v->len != f[i].want) {
            dm_buf_why(why, "grant: field %s has %zu bytes; it must have %zu", f[i].name,
                       f[i].v->len, f[i].want);
            return false;
        }
        memcpy(f[i].dst, f[i].v->data, f[i].want);
    }
    out->expires_ms = g->expires_ms;
    return true;
}

/* Decodes data as a SignedGrant and its Grant into out, checking sizes
 * and, when verify, the signature. DM_ERR_PROTO or DM_ERR_DENIED with a
 * line in why. */
static dm_err s_decode(const void *data, size_t len, dm_grant_t *out, bool verify, dm_buf_t *why)
{
    uint8_t msg[DM_GRANT_BODY_MAX + sizeof DM_GRANT_SIG_PREFIX];
    dm_err rc = DM_ERR_PROTO;
    Dm__SignedGrant *sg = NULL;
    Dm__Grant *g = NULL;
    if (!data || len == 0 || len > DM_GRANT_MAX_BYTES) {
        dm_buf_why(why, "grant: %zu bytes; a signed grant has 1 to %d", len,
                   DM_GRANT_MAX_BYTES);
        goto out;
    }
    sg = dm__signed_grant__unpack(NULL, len, data);
    if (!sg) {
        dm_buf_why(why, "grant: %zu bytes are not an encoded SignedGrant", len);
        goto out;
    }
    if (sg->sig.len != DM_ID_SIGNATURE_BYTES || sg->grant.len == 0) {
        dm_buf_why(why, "grant: signature has %zu bytes and grant %zu; want %d and at least 1",
                   sg->sig.len, sg->grant.len, DM_ID_SIGNATURE_BYTES);
        goto out;
    }
    g = dm__grant__unpack(NULL, sg->grant.len, sg->grant.data);
    if (!g) {
        dm_buf_why(why, "grant: its %zu grant bytes are not an encoded Grant", sg->grant.len);
        goto out;
    }
    if (!s_fields(g, out, why))
        goto out;
    size_t mlen = s_signed_bytes(sg->grant.data, sg->grant.len, msg, sizeof msg);
    if (verify && (mlen == 0 || !dm_identity_verify(out->consumer, msg, mlen, sg->sig.data))) {
        char hex[DM_ID_HEX_BYTES];
        dm_identity_key_hex(out->consumer, hex);
        dm_buf_why(why, "grant signature does not verify for consumer %s", hex);
        rc = DM_ERR_DENIED;
        goto out;
    }
    rc = DM_OK;
out:
    if (g)
        dm__grant__free_unpacked(g, NULL);
    if (sg)
        dm__signed_grant__free_unpacked(sg, NULL);
    return rc;
}

/* The checks of a decoded grant g against relay, sql and now_ms. */
static dm_err s_check(const dm_grant_t *g, const uint8_t relay[DM_ID_PUBLIC_BYTES],
                      const char *sql, size_t sql_len, int64_t now_ms, dm_buf_t *why)
{
    uint8_t hash[crypto_hash_sha256_BYTES];
    if (sodium_memcmp(g->relay, relay, DM_ID_PUBLIC_BYTES) != 0) {
        char want[DM_ID_HEX_BYTES], got[DM_ID_HEX_BYTES];
        dm_identity_key_hex(g->relay, want);
        dm_identity_key_hex(relay, got);
        dm_buf_why(why, "grant is for relay %s, not %s", want, got);
        return DM_ERR_DENIED;
    }
    crypto_hash_sha256(hash, (const unsigned char *)(sql ? sql : ""), sql ? sql_len : 0);
    if (sodium_memcmp(hash, g->sql_sha256, sizeof hash) != 0) {
        dm_buf_why(why, "grant does not sign this SQL (its hash differs from the signed one)");
        return DM_ERR_DENIED;
    }
    if (g->expires_ms <= 0) {
        dm_buf_why(why, "grant expiry %" PRId64 " is not a Unix time in milliseconds",
                   g->expires_ms);
        return DM_ERR_DENIED;
    }
    if (g->expires_ms < now_ms - DM_GRANT_SKEW_MS) {
        dm_buf_why(why, "grant expired %" PRId64 " s ago (expiry %" PRId64
                   " ms; %d s of clock skew allowed)",
                   (now_ms - g->expires_ms) / 1000, g->expires_ms, DM_GRANT_SKEW_MS / 1000);
        return DM_ERR_DENIED;
    }
    if (g->expires_ms > now_ms + DM_GRANT_MAX_LIFETIME_MS + DM_GRANT_SKEW_MS) {
        dm_buf_why(why, "grant expires %" PRId64 " s from now; at most %d s ahead is valid",
                   (g->expires_ms - now_ms) / 1000,
                   (DM_GRANT_MAX_LIFETIME_MS + DM_GRANT_SKEW_MS) / 1000);
        return DM_ERR_DENIED;
    }
    return DM_OK;
}

dm_err dm_grant_verify(const void *data, size_t len, const uint8_t relay[DM_ID_PUBLIC_BYTES],
                       const char *sql, size_t sql_len, int64_t now_ms, dm_grant_t *out,
                       dm_buf_t *why)
{
    dm_grant_t g;
    memset(&g, 0, sizeof g);
    dm_err rc = s_decode(data, len, &g, true, why);
    if (rc == DM_OK)
        rc = s_check(&g, relay, sql, sql_len, now_ms, why);
    if (rc == DM_OK)
        *out = g;
    else
        memset(out, 0, sizeof *out);
    return rc;
}

dm_err dm_grant_read(const void *data, size_t len, dm_grant_t *out, dm_buf_t *why)
{
    return s_decode(data, len, out, false, why);
}
