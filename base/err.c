/* err.c: descriptions for the dm_err codes. */
#include "base/err.h"

static const char *const s_messages[DM_ERR__COUNT] = {
    [DM_OK] = "success",
    [DM_ERR_NOMEM] = "out of memory",
    [DM_ERR_IO] = "I/O error",
    [DM_ERR_INVALID] = "invalid input",
    [DM_ERR_NOTFOUND] = "not found",
    [DM_ERR_EXISTS] = "already exists",
    [DM_ERR_CONFLICT] = "conflicts with stored state",
    [DM_ERR_TOOBIG] = "over the size limit",
    [DM_ERR_STORE] = "storage error",
    [DM_ERR_MAPFULL] = "storage map full",
    [DM_ERR_CRYPTO] = "cryptographic failure",
    [DM_ERR_NET] = "network error",
    [DM_ERR_TIMEOUT] = "timed out",
    [DM_ERR_PROTO] = "protocol error",
    [DM_ERR_DENIED] = "permission denied",
    [DM_ERR_USAGE] = "usage error",
    [DM_ERR_BUSY] = "busy, retry shortly",
};

const char *dm_err_str(dm_err err)
{
    if ((unsigned)err >= DM_ERR__COUNT)
        return "unknown error";
    return s_messages[err];
}
