/* fuzz_grant.c: a FedOpen's grant bytes as an owner checks them
 * (dm_grant_verify) for a fixed relay, SQL and time. Whatever the bytes,
 * the answer is DM_OK, DM_ERR_DENIED or DM_ERR_PROTO; a refusal gives one
 * reason line and clears the output; an accepted grant is within the
 * lifetime window and names the relay. */
#include <string.h>

#include "base/log.h"
#include "fuzz.h"
#include "transport/grant.h"

#define S_NOW_MS 1800000000000LL
#define S_SQL "SELECT 1"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_grant", DM_LOG_ERR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t relay[DM_ID_PUBLIC_BYTES];
    memset(relay, 0x11, sizeof relay);
    dm_grant_t g;
    memset(&g, 0xa5, sizeof g);
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_grant_verify(data, size, relay, S_SQL, strlen(S_SQL), S_NOW_MS, &g, &why);
    DM_FUZZ_CHECK(rc == DM_OK || rc == DM_ERR_DENIED || rc == DM_ERR_PROTO);
    if (rc == DM_OK) {
        DM_FUZZ_CHECK(memcmp(g.relay, relay, sizeof relay) == 0);
        DM_FUZZ_CHECK(g.expires_ms >= S_NOW_MS - DM_GRANT_SKEW_MS);
        DM_FUZZ_CHECK(g.expires_ms <= S_NOW_MS + DM_GRANT_MAX_LIFETIME_MS + DM_GRANT_SKEW_MS);
    } else {
        static const dm_grant_t zero;
        DM_FUZZ_CHECK(why.len > 0 && strchr(why.data, '\n') == strrchr(why.data, '\n'));
        DM_FUZZ_CHECK(memcmp(&g, &zero, sizeof g) == 0);
    }
    dm_buf_free(&why);
    return 0;
}
