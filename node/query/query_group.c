/* query_group.c: a log scan in groups, for GROUP BY, DISTINCT and ORDER BY
 * on a few enum or boolean columns (query_vtab.c's grouped plan).
 *
 * Without it SQLite sorts every row it reads: at 10M orders, GROUP BY
 * status spent ~75% of its time in the sorter's in-memory merge of 10M
 * records (perf: memcmp and the list merge), and the sorter held ~640 MB
 * (temp_store is MEMORY in the sandbox, so it never spills), growing with
 * the product until the engine's heap limit fails the query. These columns
 * take few values, known from the contract: the scan walks the log once
 * per group instead and yields only that group's rows, so SQLite sees the
 * groups one after the other (in its ORDER BY order when it asks for one)
 * and needs neither the sort nor its memory. A pass that skips a row reads
 * one field of it in place; the first pass yields the first group in
 * SQLite's order (often NULL, often empty) and learns which groups are
 * present, so the other groups no row has cost nothing. */
#include <stdlib.h>
#include <string.h>

#include "query/query_priv.h"
#include "record/row.h"

/* qsort context is not portable C: the enum values being ranked. */
typedef struct {
    const char *s;
    size_t len;
    size_t index;
} s_enum_value;

/* SQLite's BINARY order of two texts: memcmp, then the shorter first. */
static int s_text_cmp(const void *x, const void *y)
{
    const s_enum_value *a = x, *b = y;
    return dm_query__bytes_cmp(a->s, a->len, b->s, b->len);
}

/* Values column f can hold, NULL included; 0 when it is not groupable. */
static size_t s_card(const dm_contract_t *c, size_t f)
{
    const dm_field_t *fd = &c->fields[f];
    if (fd->type == DM_FT_BOOLEAN)
        return 3;
    if (fd->type == DM_FT_ENUM && fd->nvalues + 1 <= DM_QUERY_GROUP_MAX)
        return fd->nvalues + 1;
    return 0;
}

bool dm_query__group_plan(const dm_contract_t *c, sqlite3_index_info *info, int distinct,
                          dm_buf_t *idxstr)
{
    if (info->nOrderBy <= 0 || info->nOrderBy > DM_QUERY_GROUP_COLS_MAX)
        return false;
    size_t groups = 1;
    for (int k = 0; k < info->nOrderBy; k++) {
        int col = info->aOrderBy[k].iColumn;
        size_t card = col >= 0 && (size_t)col < c->nfields ? s_card(c, (size_t)col) : 0;
        if (card == 0 || groups * card > DM_QUERY_GROUP_MAX)
            return false;
        groups *= card;
    }
    /* 2 and 3 may drop all but one row of a group (sqlite3_vtab_distinct).
     * The groups always come in the ORDER BY's order, even when distinct
     * says grouping is enough (1): SQLite 3.40 then still skips the sort
     * of an ORDER BY equal to the GROUP BY (WHERE_SORTBYGROUP), taking
     * the groups as sorted. */
    dm_buf_printf(idxstr, " grouped%s by", distinct >= 2 ? " distinct" : "");
    for (int k = 0; k < info->nOrderBy; k++)
        dm_buf_printf(idxstr, " %d%c", info->aOrderBy[k].iColumn, info->aOrderBy[k].desc ? '-' : '+');
    return true;
}

/* Ranks the values of column k in the order of its ORDER BY term: NULL
 * first (SQLite's ascending order), then the values in BINARY order. */
static bool s_ranks(dm_qgroup_t *g, const dm_contract_t *c, size_t k, bool desc)
{
    const dm_field_t *fd = &c->fields[g->field[k]];
    size_t card = s_card(c, g->field[k]);
    if (card == 0)
        return false;
    g->card[k] = card;
    if (fd->type == DM_FT_BOOLEAN) {
        for (size_t v = 0; v < 2; v++)
            g->rank[k][v] = (uint8_t)(v + 1);
    } else {
        s_enum_value sorted[DM_QUERY_GROUP_MAX];
        for (size_t v = 0; v < fd->nvalues; v++)
            sorted[v] = (s_enum_value){fd->values[v], strlen(fd->values[v]), v};
        qsort(sorted, fd->nvalues, sizeof sorted[0], s_text_cmp);
        for (size_t r = 0; r < fd->nvalues; r++)
            g->rank[k][sorted[r].index] = (uint8_t)(r + 1);
    }
    g->rank_null[k] = 0;
    if (desc) {
        for (size_t v = 0; v + 1 < card; v++)
            g->rank[k][v] = (uint8_t)(card - 1 - g->rank[k][v]);
        g->rank_null[k] = (uint8_t)(card - 1);
    }
    return true;
}

bool dm_query__group_start(dm_qgroup_t *g, const dm_contract_t *c, const char *idxstr)
{
    memset(g, 0, sizeof *g);
    const char *p = idxstr ? strstr(idxstr, " grouped") : NULL;
    const char *by = p ? strstr(p, " by") : NULL;
    if (!by)
        return false;
    g->one = strstr(p, " distinct") != NULL && strstr(p, " distinct") < by;
    g->ngroups = 1;
    for (p = by + 3; p[0] == ' ' && p[1] >= '0' && p[1] <= '9';) { /* " limit" may follow */
        char *end;
        unsigned long f = strtoul(p + 1, &end, 10);
        if (end == p + 1 || (*end != '+' && *end != '-') || g->ncols == DM_QUERY_GROUP_COLS_MAX ||
            f >= c->nfields)
            return false;
        g->field[g->ncols] = (size_t)f;
        if (!s_ranks(g, c, g->ncols, *end == '-'))
            return false;
        g->ngroups *= g->card[g->ncols++];
        p = end + 1;
    }
    if (g->ncols == 0 || g->ngroups > DM_QUERY_GROUP_MAX)
        return false;
    g->first = true;
    g->pass = 0; /* the first group in SQLite's order, present or not */
    return true;
}

int dm_query__group_of(const dm_qgroup_t *g, const dm_schema_t *s, const void *row, size_t len)
{
    size_t b = 0;
    for (size_t k = 0; k < g->ncols; k++) {
        dm_value_t v;
        if (!dm_row_get(s, row, len, g->field[k], &v))
            return -1;
        size_t r = v.is_null ? g->rank_null[k] : v.i >= 0 && v.i < DM_QUERY_GROUP_MAX - 1
                                                     ? g->rank[k][v.i] : DM_QUERY_GROUP_MAX;
        if (r >= g->card[k])
            return -1;
        b = b * g->card[k] + r;
    }
    return (int)b;
}

bool dm_query__group_take(dm_qgroup_t *g, int group)
{
    if (g->first)
        g->seen |= UINT64_C(1) << group;
    if ((size_t)group != g->pass || (g->one && g->taken))
        return false;
    g->taken = true;
    return true;
}

bool dm_query__group_next(dm_qgroup_t *g)
{
    g->done |= UINT64_C(1) << g->pass;
    g->first = false;
    g->taken = false;
    uint64_t left = g->seen & ~g->done;
    if (!left)
        return false;
    size_t b = 0;
    while (!(left >> b & 1))
        b++;
    g->pass = b; /* the lowest left: SQLite's order */
    return true;
}
