/* schema_test.h: the hand-built contract model and helpers shared by
 * test_schema.c (validation) and test_row.c (row and key encoding).
 * Contracts are built by hand (the parser is tested on its own): s_field
 * adds a field to the model M, s_compile turns it into the schema S. Each
 * test runs in its own process, so the statics start zeroed. */
#ifndef DM_SCHEMA_TEST_H
#define DM_SCHEMA_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/schema.h"
#include "record/row.h"

#define S_FIELDS 24
#define S_CHECKS 8

static dm_contract_t M;
static dm_field_t F[S_FIELDS];
static size_t PK[4];
static dm_check_t CK[S_CHECKS];
static dm_schema_t *S;
static dm_buf_t row = DM_BUF_INIT, key = DM_BUF_INIT, reasons = DM_BUF_INIT;
static char *ORDER_STATUS[] = {"created", "paid", "shipped", "cancelled"};

__attribute__((unused)) static void s_fini(void)
{
    dm_schema_destroy(&S);
    dm_buf_free(&row);
    dm_buf_free(&key);
    dm_buf_free(&reasons);
}


__attribute__((unused)) static dm_field_t *s_field(const char *name, dm_ftype t, bool required)
{
    dm_field_t *f = &F[M.nfields++];
    f->name = (char *)name;
    f->type = t;
    f->required = required;
    f->min_length = f->max_length = -1;
    M.fields = F;
    return f;
}

__attribute__((unused)) static void s_pk(size_t i)
{
    F[i].primary_key = F[i].required = true;
    PK[M.npk++] = i;
    M.pk = PK;
}

__attribute__((unused)) static dm_check_t *s_check(dm_check_rule rule, const char *column)
{
    dm_check_t *c = &CK[M.nchecks++];
    c->rule = rule;
    c->column = (char *)column;
    c->field_index = -1;
    for (size_t i = 0; i < M.nfields; i++)
        if (strcmp(F[i].name, column) == 0)
            c->field_index = (int)i;
    M.checks = CK;
    return c;
}

__attribute__((unused)) static void s_compile(void)
{
    cr_assert_eq(dm_schema_new(&M, &S, NULL), DM_OK);
}

/* The orders schema of the performance target. */
__attribute__((unused)) static void s_orders(void)
{
    s_field("orderId", DM_FT_UUID, true);
    s_pk(0);
    s_field("customerId", DM_FT_STRING, true);
    dm_field_t *amount = s_field("amount", DM_FT_DOUBLE, true);
    amount->has_exclusive_minimum = true;
    amount->exclusive_minimum = (dm_num_t){.is_int = true, .i = 0};
    dm_field_t *status = s_field("status", DM_FT_ENUM, true);
    status->values = ORDER_STATUS;
    status->nvalues = 4;
    s_field("timestamp", DM_FT_TIMESTAMP, true);
    s_compile();
}

/* One field "v" of type t, optional, compiled. */
__attribute__((unused)) static dm_field_t *s_one(dm_ftype t)
{
    dm_field_t *f = s_field("v", t, false);
    return f;
}

__attribute__((unused)) static bool s_valid(const char *line)
{
    return dm_schema_validate(S, line, strlen(line), &row, &key, &reasons);
}

#define VALID(line) cr_assert(s_valid(line), "rejected %s: %s", line, reasons.data)
#define INVALID(line, want)                                                      \
    do {                                                                         \
        cr_assert_not(s_valid(line), "accepted %s", line);                       \
        cr_assert_str_eq(reasons.data, want);                                    \
    } while (0)
#define INVALID_HAS(line, part)                                                  \
    do {                                                                         \
        cr_assert_not(s_valid(line), "accepted %s", line);                       \
        cr_assert(strstr(reasons.data, part), "reasons: %s", reasons.data);      \
    } while (0)

#define ORDER_OK "{\"orderId\":\"3f1c0000-aaaa-bbbb-cccc-0123456789ab\",\"customerId\":\"cust-001234\"," \
                 "\"amount\":123.45,\"status\":\"paid\",\"timestamp\":\"2026-03-01T12:34:56.789Z\"}"


#endif
