/* query_remote_learn.c: a dry run that batches a join's probes of remote
 * tables.
 *
 * A nested-loop join whose inner side is a remote table filters it once
 * per outer row ("WHERE k = ?", a value known only at run time), which
 * would cost one round trip per distinct key. Before such a statement
 * returns rows it is stepped once as a dry run: remote probes record
 * their value in the table's probe index (query_remote_snap.c) and
 * answer with nothing, or with the rows of a key already fetched; probes
 * the index cannot take (more terms, another column, a value that does not
 * convert exactly) answer nothing without a round trip; other scans run
 * for real and stay in the probe cache by their SQL. The learned values
 * then go to the owner in IN batches of DM_QUERY_IN_BATCH (or one key
 * range when dense), the statement is reset, and the real run finds those
 * keys in memory; any other probe goes to the owner as before. A probe
 * whose value comes from another remote table's probe (a 3-way join) is
 * learned in the next round, up to DM_QUERY_LEARN_ROUNDS.
 *
 * Bounds: DM_QUERY_LEARN_MAX_KEYS keys per query (one batch when the SQL
 * has a LIMIT or EXISTS, which may need few rows of the outer side),
 * DM_QUERY_LEARN_WALK_MAX rows walked per round, a scan of more than
 * S_LEARN_SCAN_MAX bytes (query_remote.c) ends the dry run, and the
 * query's deadline and cancel flag hold throughout (the progress handler,
 * query_sandbox.c, ends a step once learn_stop is set). No dry run when no
 * plan of a remote table has such a probe. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/query_remote.h"

#define DM_QUERY_LEARN_MAX_KEYS 100000  /* keys one query learns at most */
#define DM_QUERY_LEARN_ROUNDS 3         /* dry runs at most (one per level of nested probes) */
#define DM_QUERY_LEARN_WALK_MAX 4000000 /* rows a dry run walks at most */

/* Whether sql says LIMIT or EXISTS outside quotes: its outer side may stop
 * early, so the dry run learns one batch at most. */
static bool s_limited(const char *sql)
{
    char quote = 0;
    for (const char *p = sql; p && *p; p++) {
        if (quote) {
            quote = *p == quote ? 0 : quote;
            continue;
        }
        if (*p == '\'' || *p == '"' || *p == '`' || *p == '[') {
            quote = *p == '[' ? ']' : *p;
            continue;
        }
        bool start = p == sql || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        if (start && (strncasecmp(p, "limit", 5) == 0 || strncasecmp(p, "exists", 6) == 0)) {
            size_t n = tolower((unsigned char)*p) == 'l' ? 5 : 6;
            if (!isalnum((unsigned char)p[n]) && p[n] != '_')
                return true;
        }
    }
    return false;
}

/* One dry run of stmt; true when it ran to its end (another round may
 * learn more), false when it stopped early. */
static bool s_dry_run(dm_qctx_t *ctx, sqlite3_stmt *stmt)
{
    ctx->learning = true;
    ctx->learn_stop = false;
    ctx->learn_walk_max = ctx->walked + DM_QUERY_LEARN_WALK_MAX;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && !ctx->learn_stop)
        ;
    ctx->learning = false;
    bool whole = rc == SQLITE_DONE && !ctx->learn_stop;
    sqlite3_reset(stmt);
    ctx->remote_err = DM_OK; /* a failure the real run meets again, it reports */
    return whole;
}

/* Fetches what the dry run learned, table by table. An index that does
 * not fit or whose owner failed is dropped (its probes go to the owner,
 * which reports a failure the real run meets). DM_ERR_NOMEM only. */
static dm_err s_fetch(dm_qctx_t *ctx)
{
    for (size_t i = 0; i < ctx->ntables; i++) {
        dm_qtable_t *t = &ctx->tables[i];
        dm_qremote_t *r = t->remote;
        if (!r || !r->snap || !dm_query_remote__snap_pending(r->snap))
            continue;
        dm_query_remote_count_t n = {0};
        dm_buf_t why = DM_BUF_INIT;
        bool kept = true;
        dm_err rc = dm_query_remote__snap_fetch(ctx, t, r->snap, &n, &r->batches, &r->ranges,
                                                &r->last_sql, &kept, &why);
        dm_buf_free(&why);
        r->trips += n.trips;
        r->rows += n.rows;
        r->bytes += n.bytes;
        if (rc == DM_ERR_NOMEM)
            return rc;
        if (rc || !kept) {
            dm_query_remote__snap_free(&r->snap);
            r->snap_failed = true;
        }
    }
    return DM_OK;
}

dm_err dm_query__remote_learn(dm_qctx_t *ctx, sqlite3_stmt *stmt, dm_buf_t *why)
{
    size_t probed = 0;
    for (size_t i = 0; ctx->remote && i < ctx->ntables; i++)
        probed += ctx->tables[i].remote && ctx->tables[i].remote->probed;
    if (!probed)
        return DM_OK;
    ctx->learn_keys = 0;
    ctx->learn_max = s_limited(sqlite3_sql(stmt)) ? DM_QUERY_IN_BATCH : DM_QUERY_LEARN_MAX_KEYS;
    size_t rounds = probed < DM_QUERY_LEARN_ROUNDS ? probed : DM_QUERY_LEARN_ROUNDS;
    for (size_t round = 0; round < rounds; round++) {
        size_t keys = ctx->learn_keys;
        bool whole = s_dry_run(ctx, stmt);
        if (atomic_load(&ctx->cancel) || ctx->timed_out || ctx->learn_keys == keys)
            break; /* the real run names a cancel or the time limit */
        if (s_fetch(ctx) != DM_OK) {
            dm_buf_puts(why, "out of memory while fetching a join's keys from their owners");
            return DM_ERR_NOMEM;
        }
        if (!whole)
            break;
    }
    return DM_OK;
}
