/* clock.c: monotonic and wall clocks (see clock.h). */
#include "base/clock.h"

#include <stdio.h>
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

void dm_clock_utc_text(int64_t unix_ms, char out[DM_CLOCK_UTC_TEXT_MAX])
{
    time_t t = (time_t)(unix_ms / 1000), now = time(NULL);
    struct tm tm, tn;
    if (!gmtime_r(&t, &tm) || !gmtime_r(&now, &tn)) {
        snprintf(out, DM_CLOCK_UTC_TEXT_MAX, "?");
        return;
    }
    const char *fmt = tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday ? "%H:%M:%S UTC"
                                                                           : "%Y-%m-%d %H:%M:%S UTC";
    if (strftime(out, DM_CLOCK_UTC_TEXT_MAX, fmt, &tm) == 0)
        snprintf(out, DM_CLOCK_UTC_TEXT_MAX, "?");
}
