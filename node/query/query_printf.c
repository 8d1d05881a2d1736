/* query_printf.c: printf() and format() with their widths and precisions
 * bounded by the string length limit.
 *
 * SQLite 3.40's printf('%.*c', 1000000000, 'x') does not fail at
 * SQLITE_LIMIT_LENGTH: it appends the character once per unit of
 * precision, each append refused, for seconds of CPU inside one call
 * (where the progress handler cannot stop it), and then returns NULL.
 * The query connection therefore overrides both names (a function of the
 * connection is found before the built-in of the same name) with a check
 * of every width and precision, literal or '*', against the limit: over
 * it the call fails with "string or blob too big". A call that passes is
 * evaluated by the built-in on a bare helper connection of the query
 * (same length limit, no tables), so the text is exactly SQLite's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/query_priv.h"

#define S_SQL_MAX 32 /* "SELECT printf(?1,...)" grows by up to 5 bytes per argument */

/* Whether every width and precision of fmt (with '*' taken from
 * argv[1..argc)) is within the length limit. */
static bool s_bounded(const char *fmt, int argc, sqlite3_value **argv)
{
    int arg = 1;
    for (const char *p = fmt; p && *p; p++) {
        if (*p != '%')
            continue;
        p++;
        if (*p == '%')
            continue;
        while (*p && strchr("-+ #0,!", *p))
            p++;
        for (int part = 0; part < 2 && *p; part++) {
            if (part == 1) {
                if (*p != '.')
                    break;
                p++;
            }
            int64_t v = 0;
            if (*p == '*') {
                v = arg < argc ? sqlite3_value_int64(argv[arg]) : 0;
                arg++;
                p++;
            } else {
                while (*p >= '0' && *p <= '9' && v <= DM_QUERY_LIMIT_LENGTH)
                    v = v * 10 + (*p++ - '0');
                while (*p >= '0' && *p <= '9')
                    p++;
            }
            if (v > DM_QUERY_LIMIT_LENGTH || v < -DM_QUERY_LIMIT_LENGTH)
                return false;
        }
        while (*p == 'l')
            p++;
        if (!*p)
            break;
        if (*p != 'n')
            arg++;
    }
    return true;
}

/* Prepares "SELECT printf(?1, ..., ?argc)" on the helper connection. */
static sqlite3_stmt *s_helper(dm_qctx_t *ctx, int argc)
{
    if (argc < 1 || argc > DM_QUERY_LIMIT_FUNCTION_ARG)
        return NULL;
    if (!ctx->printf_db) {
        if (sqlite3_open_v2(":memory:", &ctx->printf_db,
                            SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
            return NULL;
        sqlite3_limit(ctx->printf_db, SQLITE_LIMIT_LENGTH, DM_QUERY_LIMIT_LENGTH);
        sqlite3_db_config(ctx->printf_db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);
    }
    if (!ctx->printf_stmt[argc]) {
        char sql[S_SQL_MAX + 5 * DM_QUERY_LIMIT_FUNCTION_ARG];
        size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT printf(?1");
        for (int i = 2; i <= argc; i++)
            n += (size_t)snprintf(sql + n, sizeof sql - n, ",?%d", i);
        snprintf(sql + n, sizeof sql - n, ")");
        if (sqlite3_prepare_v2(ctx->printf_db, sql, -1, &ctx->printf_stmt[argc], NULL) != SQLITE_OK)
            return NULL;
    }
    return ctx->printf_stmt[argc];
}

/* printf()/format(): refuses widths and precisions over the length limit,
 * else returns what the built-in returns on the helper connection. */
static void s_printf(sqlite3_context *fctx, int argc, sqlite3_value **argv)
{
    dm_qctx_t *ctx = sqlite3_user_data(fctx);
    if (argc < 1)
        return; /* printf() of nothing is NULL */
    if (!s_bounded((const char *)sqlite3_value_text(argv[0]), argc, argv)) {
        sqlite3_result_error_toobig(fctx);
        return;
    }
    sqlite3_stmt *st = s_helper(ctx, argc);
    if (!st) {
        sqlite3_result_error_nomem(fctx);
        return;
    }
    for (int i = 0; i < argc; i++)
        sqlite3_bind_value(st, i + 1, argv[i]);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        sqlite3_result_value(fctx, sqlite3_column_value(st, 0));
    else if (rc == SQLITE_TOOBIG)
        sqlite3_result_error_toobig(fctx);
    else
        sqlite3_result_error(fctx, sqlite3_errmsg(ctx->printf_db), -1);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int dm_query__register_printf(sqlite3 *db, dm_qctx_t *ctx)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int rc = sqlite3_create_function(db, "printf", -1, flags, ctx, s_printf, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "format", -1, flags, ctx, s_printf, NULL, NULL);
    return rc;
}

void dm_query__printf_free(dm_qctx_t *ctx)
{
    for (int i = 0; i <= DM_QUERY_LIMIT_FUNCTION_ARG; i++) {
        sqlite3_finalize(ctx->printf_stmt[i]);
        ctx->printf_stmt[i] = NULL;
    }
    sqlite3_close(ctx->printf_db);
    ctx->printf_db = NULL;
}
