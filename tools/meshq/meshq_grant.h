/* meshq_grant.h: how long meshq's grant for a query lives (docs/protocol.md
 * "Federated query", "Grant"). */
#ifndef DM_MESHQ_GRANT_H
#define DM_MESHQ_GRANT_H

#include <stdint.h>

#include "cli/cli.h"
#include "transport/rpc.h"

#define DM_MESHQ_GRANT_MARGIN_MS 5000 /* a grant outlives the node's query limit by this */

/* --grant-life SECS when given (1..600), else the longest of 60 s,
 * --timeout and the node's query time limit (asked on client with
 * WhoamiReq) + DM_MESHQ_GRANT_MARGIN_MS, at most DM_GRANT_MAX_LIFETIME_MS.
 * -1 after printing a bad value or why the node could not be asked. */
int64_t dm_meshq_grant_life(const dm_cli_args_t *a, dm_rpc_client_t *client);

#endif
