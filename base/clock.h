/* clock.h: the project's clocks, in one place.
 *
 * Monotonic time measures intervals and deadlines (timers, budgets,
 * benchmarks); wall time is what is stored or sent (issued_at, received_at).
 * None of these can fail: clock_gettime with these clocks does not. */
#ifndef DM_CLOCK_H
#define DM_CLOCK_H

#include <stdint.h>

#define DM_CLOCK_NS_PER_MS INT64_C(1000000)
#define DM_CLOCK_NS_PER_S INT64_C(1000000000)

/* Monotonic nanoseconds since an arbitrary origin. */
int64_t dm_clock_mono_ns(void);
/* Monotonic milliseconds since an arbitrary origin. */
int64_t dm_clock_mono_ms(void);
/* Monotonic seconds, fractional, for benchmark figures. */
double dm_clock_mono_s(void);
/* Wall-clock milliseconds since the Unix epoch (UTC); may go back. */
int64_t dm_clock_wall_ms(void);

#define DM_CLOCK_UTC_TEXT_MAX 40
/* Writes Unix milliseconds unix_ms as "12:01:03 UTC" when it is today
 * (UTC), else "2026-11-30 12:01:03 UTC", into out: how errors name a
 * moment. */
void dm_clock_utc_text(int64_t unix_ms, char out[DM_CLOCK_UTC_TEXT_MAX]);

#endif
