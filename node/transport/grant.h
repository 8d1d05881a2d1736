/* grant.h: the consent a consumer signs for one relayed (federated) query.
 *
 * A consumer asking node R for SQL that reads products other nodes own
 * signs a Grant (proto/mesh.proto): its key, R's key, the SHA-256 of the
 * SQL, a random nonce and an expiry. R forwards it in a FedOpen to each
 * owner, which verifies it (signature, relay = the authenticated caller,
 * hash of the SQL it is given, expiry, nonce not seen before) and then
 * decides every scan of the session on the consumer's key, for the
 * products the SQL names only. So a relay can read no more than the
 * consumer could ask for itself, for no longer than the grant lives, and
 * cannot replay the grant for another query. Pure: no sockets, no clock
 * (now is an argument). */
#ifndef DM_TRANSPORT_GRANT_H
#define DM_TRANSPORT_GRANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "identity/identity.h"

#define DM_GRANT_NONCE_BYTES 16
#define DM_GRANT_MAX_BYTES 512                  /* an encoded SignedGrant, at most */
#define DM_GRANT_MAX_LIFETIME_MS (10 * 60 * 1000) /* expiry at most this far ahead */
#define DM_GRANT_SKEW_MS (30 * 1000)            /* clock difference tolerated */
#define DM_GRANT_DEFAULT_LIFETIME_MS (60 * 1000) /* what the tools sign */

typedef struct {
    uint8_t consumer[DM_ID_PUBLIC_BYTES];
    uint8_t relay[DM_ID_PUBLIC_BYTES];
    uint8_t sql_sha256[32];
    uint8_t nonce[DM_GRANT_NONCE_BYTES];
    int64_t expires_ms; /* Unix milliseconds */
} dm_grant_t;

/* Signs a grant as consumer for relay over sql (len bytes), with a fresh
 * random nonce, expiring at expires_ms; out (reset first) gets the encoded
 * SignedGrant. DM_ERR_NOMEM, or DM_ERR_INVALID with a line in why. */
DM_NODISCARD dm_err dm_grant_sign(const dm_identity_t *consumer,
                                  const uint8_t relay[DM_ID_PUBLIC_BYTES], const char *sql,
                                  size_t len, int64_t expires_ms, dm_buf_t *out, dm_buf_t *why);

/* Decodes and checks an encoded SignedGrant (data, len bytes; hostile):
 * size and field lengths, the consumer's signature, relay equal to the
 * given key (the caller the transport authenticated), the hash of sql,
 * and that it has not expired at now_ms (nor expires more than
 * DM_GRANT_MAX_LIFETIME_MS ahead, both with DM_GRANT_SKEW_MS of slack).
 * The nonce is the caller's to check for reuse. DM_OK with *out filled;
 * else DM_ERR_DENIED with one line in why naming what failed ("grant
 * expired 12 s ago", "grant signature does not verify", "grant is for
 * relay HEX, not HEX", "grant does not sign this SQL"), or DM_ERR_PROTO
 * for a malformed one. */
DM_NODISCARD dm_err dm_grant_verify(const void *data, size_t len,
                                    const uint8_t relay[DM_ID_PUBLIC_BYTES], const char *sql,
                                    size_t sql_len, int64_t now_ms, dm_grant_t *out,
                                    dm_buf_t *why);

/* Decodes an encoded SignedGrant (hostile) into *out with the size and
 * field checks of dm_grant_verify but not its signature, hash or expiry:
 * for a relay, which forwards the grant to owners that verify it and only
 * reads its nonce and names. DM_ERR_PROTO with a line in why. */
DM_NODISCARD dm_err dm_grant_read(const void *data, size_t len, dm_grant_t *out, dm_buf_t *why);

#endif
