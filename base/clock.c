/* clock.c: monotonic and wall clocks (see clock.h). */
#include "base/clock.h"

#include <time.h>

static int64_t s_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * DM_CLOCK_NS_PER_S + ts.tv_nsec;
}

int64_t dm_clock_mono_ns(void) { return s_ns(CLOCK_MONOTONIC); }

int64_t dm_clock_mono_ms(void) { return s_ns(CLOCK_MONOTONIC) / DM_CLOCK_NS_PER_MS; }

double dm_clock_mono_s(void) { return (double)s_ns(CLOCK_MONOTONIC) / 1e9; }

int64_t dm_clock_wall_ms(void) { return s_ns(CLOCK_REALTIME) / DM_CLOCK_NS_PER_MS; }
