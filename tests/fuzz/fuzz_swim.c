/* fuzz_swim.c: SWIM membership messages as the gossip layer handles one:
 * decode (bounds on every field), then the message fed to a fresh
 * membership machine as if its transport key matched the claimed sender,
 * then the timers and the replies it queues. A decoded message that
 * encodes must decode back to the same message. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "base/log.h"
#include "membership/membership.h"

#define S_NOW_MS 1000000
#define S_TICK_STEP_MS 60000 /* past every probe, suspicion and retention timer */
#define S_TICKS 4

static const uint8_t s_self[DM_ID_PUBLIC_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const char s_self_addr[] =
    "0102030405060708090a00000000000000000000000000000000000000000000@tcp://127.0.0.1:7400";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_swim", DM_LOG_ERR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dm_swim_msg_t msg, again;
    static dm_swim_out_t out;
    if (dm_membership_decode(data, size, &msg) != DM_OK)
        return 0;
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (dm_membership_encode(&msg, &enc, &enc_len) == DM_OK) {
        DM_FUZZ_CHECK(dm_membership_decode(enc, enc_len, &again) == DM_OK);
        DM_FUZZ_CHECK(again.type == msg.type && again.seq == msg.seq &&
                      again.n_updates == msg.n_updates);
        free(enc);
    }
    dm_membership_t *m = NULL;
    DM_FUZZ_CHECK(dm_membership_new(s_self, "fuzz", s_self_addr, NULL, 1, &m) == DM_OK);
    int64_t now = S_NOW_MS;
    dm_membership_tick(m, now);
    DM_FUZZ_IGNORE(dm_membership_receive(m, msg.sender.id, &msg, now));
    DM_FUZZ_IGNORE(dm_membership_receive(m, NULL, &msg, now));
    for (int i = 0; i < S_TICKS; i++) {
        while (dm_membership_next_outgoing(m, &out)) {
            DM_FUZZ_CHECK(dm_membership_encode(&out.msg, &enc, &enc_len) == DM_OK);
            free(enc);
        }
        now += S_TICK_STEP_MS;
        dm_membership_tick(m, now);
    }
    dm_membership_destroy(&m);
    return 0;
}
