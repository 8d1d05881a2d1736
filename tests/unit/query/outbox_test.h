/* outbox_test.h: the node loop's side of a query pool in a test: the
 * outbox the pool's replies arrive on (a PULL socket bound to
 * DM_CTL_OUTBOX, receives bounded by S_WAIT_MS), the next reply on it, a
 * request made as the loop hands it over, and a wait for the pool's
 * callbacks to count up. Shared by the pool tests that drive
 * dm_query_pool_t directly. */
#ifndef DM_OUTBOX_TEST_H
#define DM_OUTBOX_TEST_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "base/clock.h"

#include "transport/ctl.h"
#include "transport/envelope.h"

#define S_WAIT_MS 10000

/* The outbox of a pool made in zctx. */
static inline void *q_outbox_open(void *zctx)
{
    void *pull = zmq_socket(zctx, ZMQ_PULL);
    cr_assert_not_null(pull);
    cr_assert_eq(zmq_bind(pull, DM_CTL_OUTBOX), 0);
    int wait = S_WAIT_MS;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &wait, sizeof wait);
    return pull;
}

/* The next reply on pull ([routing id][envelope]), unpacked. */
static inline Dm__Envelope *q_outbox_reply(void *pull)
{
    zmq_msg_t f1, f2;
    zmq_msg_init(&f1);
    zmq_msg_init(&f2);
    cr_assert_geq(zmq_msg_recv(&f1, pull, 0), 0, "no reply in %d ms", S_WAIT_MS);
    cr_assert_geq(zmq_msg_recv(&f2, pull, 0), 0);
    Dm__Envelope *rep = dm__envelope__unpack(NULL, zmq_msg_size(&f2), zmq_msg_data(&f2));
    cr_assert_not_null(rep);
    zmq_msg_close(&f1);
    zmq_msg_close(&f2);
    return rep;
}

/* A request as the node loop hands it to the pool: env packed into a
 * fresh payload message, unpacked back into *in, from routing id "peer1". */
static inline void q_request_msgs(Dm__Envelope *env, zmq_msg_t *rid, zmq_msg_t *payload,
                                  Dm__Envelope **in)
{
    size_t n = dm__envelope__get_packed_size(env);
    zmq_msg_init_size(payload, n);
    dm__envelope__pack(env, zmq_msg_data(payload));
    *in = dm__envelope__unpack(NULL, n, zmq_msg_data(payload));
    cr_assert_not_null(*in);
    zmq_msg_init_size(rid, 5);
    memcpy(zmq_msg_data(rid), "peer1", 5);
}

/* Waits (S_WAIT_MS at most) until *count reaches want, and asserts it. */
static inline void q_wait_count(atomic_int *count, int want)
{
    int64_t until = dm_clock_mono_ms() + S_WAIT_MS;
    while (atomic_load(count) < want && dm_clock_mono_ms() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* polling a condition with a deadline */
    }
    cr_assert_eq(atomic_load(count), want);
}

#endif
