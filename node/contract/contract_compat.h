/* contract_compat.h: which upgrades of a contract a product that already
 * holds records may take.
 *
 * Stored rows are decoded with the newest contract (record/row.h reads a
 * row by field position), so an upgrade must keep every stored row
 * readable: fields keep their position, name and type; enums only gain
 * values at the end; new fields are optional and come last; the primary
 * key is unchanged. Everything else (constraints, quality checks, SLA,
 * policies, metadata) may change freely. Pure: no I/O, no logging; the
 * ingest writer calls it before it stores an upgrade. */
#ifndef DM_CONTRACT_COMPAT_H
#define DM_CONTRACT_COMPAT_H

#include "base/buf.h"
#include "base/err.h"
#include "contract/contract.h"

/* Checks that rows stored under old still decode under new. Returns DM_OK
 * if so. Otherwise returns DM_ERR_CONFLICT and appends to why (may be NULL)
 * the first rule broken, as a clause the caller puts into its own sentence,
 * for example "it removes 2 field(s)" or "field 'amount' changes type from
 * int to string". Does not look at versions: the caller decides whether
 * this is an upgrade of a product with records. Cannot fail otherwise. */
DM_NODISCARD dm_err dm_contract_compat_check(const dm_contract_t *old, const dm_contract_t *new,
                                             dm_buf_t *why);

#endif
