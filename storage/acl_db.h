/* acl_db.h: the domain's admins, kept in the store's "acl" database.
 *
 * A node's domain admins are its own key (always, never stored) plus the
 * keys added with dmctl admins add. Each call is one LMDB transaction
 * (writes synchronous), so a grant survives a kill the moment it is
 * acknowledged. Thread-safe as the store is. */
#ifndef DM_ACL_DB_H
#define DM_ACL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "storage/store.h"

#define DM_ACL_DB_KEY_BYTES 32   /* an ed25519 public key */
#define DM_ACL_DB_MAX_ADMINS 1024

/* Adds key. *changed false when it was already an admin. DM_ERR_TOOBIG
 * past DM_ACL_DB_MAX_ADMINS, a store error (why names it). */
DM_NODISCARD dm_err dm_acl_db_admin_add(dm_store_t *s, const uint8_t key[DM_ACL_DB_KEY_BYTES],
                                        bool *changed, dm_buf_t *why);
/* Removes key. *changed false when it was not an admin. */
DM_NODISCARD dm_err dm_acl_db_admin_remove(dm_store_t *s, const uint8_t key[DM_ACL_DB_KEY_BYTES],
                                           bool *changed, dm_buf_t *why);
/* The stored admins, ascending: *keys malloc'd (free), *n of them. */
DM_NODISCARD dm_err dm_acl_db_admins(dm_store_t *s, uint8_t (**keys)[DM_ACL_DB_KEY_BYTES],
                                     size_t *n, dm_buf_t *why);

#endif
