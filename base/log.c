/* log.c: levelled logging to stderr. */
#include "base/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

#define DM_LOG_LINE_MAX 2048

static const char *s_program = "mesh";
static dm_log_level s_level = DM_LOG_INFO;
static const char *const s_names[] = {"error", "warn", "info", "debug"};

void dm_log_init(const char *program, dm_log_level level)
{
    s_program = program;
    s_level = level;
}

int dm_log_level_parse(const char *name)
{
    if (strcmp(name, "err") == 0)
        return DM_LOG_ERR;
    for (int i = 0; i <= DM_LOG_DEBUG; i++)
        if (strcmp(name, s_names[i]) == 0)
            return i;
    return -1;
}

void dm_log(dm_log_level level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    char line[DM_LOG_LINE_MAX];
    int64_t now_ms = dm_clock_wall_ms();
    time_t sec = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(now_ms % 1000), s_program, (int)getpid(),
                     s_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
