/* log.h: levelled logging to stderr, the only global mutable state.
 *
 * Lines look like "2026-11-25T05:10:57.123Z meshd[123] warn: text". Never
 * log key material. Thread-safe: each line is written with one write(2). */
#ifndef DM_LOG_H
#define DM_LOG_H

#include "base/err.h"

typedef enum { DM_LOG_ERR = 0, DM_LOG_WARN, DM_LOG_INFO, DM_LOG_DEBUG } dm_log_level;

/* Sets the program name shown in each line and the most verbose level
 * written. Call once at start-up, before threads start. */
void dm_log_init(const char *program, dm_log_level level);

/* Parses "err", "warn", "info" or "debug". Returns -1 if unknown. */
int dm_log_level_parse(const char *name);

void dm_log(dm_log_level level, const char *fmt, ...) DM_PRINTF(2, 3);

#define dm_log_err(...) dm_log(DM_LOG_ERR, __VA_ARGS__)
#define dm_log_warn(...) dm_log(DM_LOG_WARN, __VA_ARGS__)
#define dm_log_info(...) dm_log(DM_LOG_INFO, __VA_ARGS__)
#define dm_log_debug(...) dm_log(DM_LOG_DEBUG, __VA_ARGS__)

#endif
