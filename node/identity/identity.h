/* identity.h: the node's ed25519 identity and its self-certifying address.
 *
 * One ed25519 keypair per node; its public key is the node id. The
 * Curve25519 keys for CurveZMQ are derived from it, so one key both signs
 * catalog entries and authenticates the transport. An address carries the
 * node id as well as the endpoint, so a client cannot be pointed at an
 * impostor: "<64 lowercase hex of the public key>@tcp://HOST:PORT".
 * Every function calls sodium_init() itself (idempotent). */
#ifndef DM_IDENTITY_H
#define DM_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define DM_ID_PUBLIC_BYTES 32
#define DM_ID_SIGNATURE_BYTES 64
#define DM_ID_CURVE_BYTES 32
#define DM_ID_HEX_BYTES 65    /* 64 hex digits + NUL */
#define DM_ADDRESS_MAX 320    /* bytes incl. NUL */
#define DM_ID_ENDPOINT_MAX 256 /* bytes of an address's endpoint part incl. NUL */
#define DM_ID_KEY_FILE "identity.key"

typedef struct dm_identity dm_identity_t;

/* Loads DIR/identity.key, creating it (mode 0600, written to a temp file,
 * fsynced, renamed, directory fsynced) if absent. The file holds the 64-byte
 * libsodium ed25519 secret key (seed + public key). The secret lives in
 * sodium_malloc memory. Refuses a file of the wrong size, one whose public
 * half does not match its seed, and one readable or writable by group or
 * others. On error *out is NULL, DM_ERR_IO, DM_ERR_CRYPTO or DM_ERR_NOMEM,
 * and why gets a line naming the file and the cause (base/err.h: not
 * logged here). */
DM_NODISCARD dm_err dm_identity_load(const char *dir, dm_identity_t **out, dm_buf_t *why);
/* Loads the identity in file path (the same 64-byte format as a node's
 * identity.key, so a client may act with a node's key), creating it
 * (mode 0600, parent folders 0700, written as dm_identity_load writes)
 * when create is true and it does not exist (DM_ERR_NOTFOUND, a line
 * naming path, when create is false). Refusals and errors as
 * dm_identity_load, naming path. */
DM_NODISCARD dm_err dm_identity_load_file(const char *path, bool create, dm_identity_t **out,
                                          dm_buf_t *why);

/* Writes a new identity to path, which must not exist (DM_ERR_EXISTS).
 * Errors as dm_identity_load_file. */
DM_NODISCARD dm_err dm_identity_keygen(const char *path, dm_identity_t **out, dm_buf_t *why);

/* Parses 64 hex digits (either case) into key; false otherwise. */
DM_NODISCARD bool dm_identity_key_parse(const char *hex, uint8_t key[DM_ID_PUBLIC_BYTES]);

/* Writes key as 64 lowercase hex digits and a NUL. */
void dm_identity_key_hex(const uint8_t key[DM_ID_PUBLIC_BYTES], char out[DM_ID_HEX_BYTES]);

/* A throwaway identity in memory (clients use one per run). DM_ERR_NOMEM
 * or DM_ERR_CRYPTO on failure (libsodium refused: the code says it all). */
DM_NODISCARD dm_err dm_identity_new_ephemeral(dm_identity_t **out);
/* Wipes and frees the identity. NULL-safe; sets *self_p to NULL. */
void dm_identity_destroy(dm_identity_t **self_p);

/* The ed25519 public key (the node id), DM_ID_PUBLIC_BYTES long; valid
 * while self lives. */
const uint8_t *dm_identity_public(const dm_identity_t *self);
/* Writes the node id as 64 lowercase hex digits and a NUL. */
void dm_identity_hex(const dm_identity_t *self, char out[DM_ID_HEX_BYTES]);

/* CurveZMQ keys derived with crypto_sign_ed25519_{pk,sk}_to_curve25519.
 * The secret goes into caller memory that the caller wipes
 * (sodium_memzero). Outputs are zeroed on failure (DM_ERR_CRYPTO, a line
 * in why). */
DM_NODISCARD dm_err dm_identity_curve_keys(const dm_identity_t *self,
                                           uint8_t public_out[DM_ID_CURVE_BYTES],
                                           uint8_t secret_out[DM_ID_CURVE_BYTES], dm_buf_t *why);
/* The Curve25519 public key of another node, from its node id.
 * DM_ERR_CRYPTO (output zeroed) if node_id is not a valid ed25519 point. */
DM_NODISCARD dm_err dm_identity_curve_from_id(const uint8_t node_id[DM_ID_PUBLIC_BYTES],
                                                 uint8_t curve_out[DM_ID_CURVE_BYTES]);

/* Detached ed25519 signature of msg. DM_ERR_CRYPTO (sig zeroed, a line in
 * why) on failure. */
DM_NODISCARD dm_err dm_identity_sign(const dm_identity_t *self, const void *msg, size_t len,
                                     uint8_t sig[DM_ID_SIGNATURE_BYTES], dm_buf_t *why);
/* True only if sig is node_id's valid signature of msg. */
DM_NODISCARD bool dm_identity_verify(const uint8_t node_id[DM_ID_PUBLIC_BYTES], const void *msg,
                                     size_t len, const uint8_t sig[DM_ID_SIGNATURE_BYTES]);

/* Writes "<hex node id>@<endpoint>" into out (cap bytes). endpoint must be
 * "tcp://HOST:PORT" (checked as dm_identity_address_parse does). DM_ERR_INVALID for
 * a bad endpoint, DM_ERR_TOOBIG if out is too small; either with one line in
 * why naming the endpoint (base/err.h; not logged). Formatting a node's own
 * checked endpoint cannot fail, so most callers pass NULL. */
DM_NODISCARD dm_err dm_identity_address_format(const uint8_t node_id[DM_ID_PUBLIC_BYTES],
                                      const char *endpoint, char *out, size_t cap,
                                      dm_buf_t *why);
/* Parses and validates an address: 64 hex digits (either case), '@',
 * "tcp://", HOST (a name, an IPv4 address or [IPv6]), ':', PORT 1-65535.
 * Writes the node id and the endpoint ("tcp://HOST:PORT", NUL-terminated).
 * On error (DM_ERR_INVALID, or DM_ERR_TOOBIG when endpoint_cap is too
 * small) appends to why a line naming what is wrong and the expected form
 * (base/err.h). */
DM_NODISCARD dm_err dm_identity_address_parse(const char *addr, uint8_t node_id[DM_ID_PUBLIC_BYTES],
                                     char *endpoint, size_t endpoint_cap, dm_buf_t *why);

#endif
