/* dt.h: the seeded differential tester (tests/difftest/README.md): the
 * products it fills, the random queries it builds from parts (so the
 * minimiser can drop parts) and the run over both engines. */
#ifndef DM_DT_H
#define DM_DT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

#define DT_MAXCOLS 8
#define DT_NWHERE 5

/* Column kinds: I int, R double, T string, S timestamp, D date, U uuid, E enum. */
typedef struct {
    const char *name;
    char kind;
} dt_col_t;

typedef struct {
    const char *name;  /* product in domain dt */
    const char *pk;    /* primaryKey YAML line */
    int nkey;          /* the first nkey columns are the key */
    int ncols;
    dt_col_t cols[DT_MAXCOLS];
    int64_t rows;      /* rows in the native copy */
} dt_prod_t;

extern dt_prod_t dt_prods[];
extern const int dt_nprods;

/* Query classes (bit per class; --classes / DT_CLASSES names them). */
enum { DT_FILTER, DT_ORDER, DT_GROUP, DT_IN, DT_JOIN, DT_CORR, DT_CTE, DT_LONG, DT_AGG, DT_RANGE, DT_NCLASS };
/* DT_RANGE is no query class: it puts timestamps an offset pushes out of
 * range into the data (defect 5). */
extern bool dt_out_of_range;
extern const char *const dt_class_names[DT_NCLASS];

/* A query in parts: every part from P_W0 on may be dropped by the minimiser. */
enum { P_WITH, P_SEL, P_FROM, P_W0, P_GROUP = P_W0 + DT_NWHERE, P_ORDER, P_LIMIT, P_N };
typedef struct {
    dm_buf_t part[P_N];
    bool ordered;   /* ORDER BY is a total order: compare in order */
    int cls;
} dt_query_t;

uint64_t dt_rand(uint64_t *s);
/* Builds a random query of class cls (native is the copy, used for sampling values). */
void dt_gen(dt_query_t *q, int cls, uint64_t *rng, sqlite3 *native);
/* Writes the SQL of q with the parts in mask on (bit per part). */
void dt_sql(const dt_query_t *q, uint32_t mask, dm_buf_t *out);
void dt_query_free(dt_query_t *q);
/* Appends a JSON value for a column of kind k to out (NULL allowed unless key). */
void dt_json_value(char k, bool key, uint64_t *rng, dm_buf_t *out);

#endif
