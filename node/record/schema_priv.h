/* schema_priv.h: the compiled schema's layout, shared by
 * node/record/schema.c (compiling, validating, encoding) and row.c
 * (decoding rows, encoding keys, a value as text). Calls go one way:
 * schema.c reads rows and formats values with row.c's dm_row_get,
 * dm_schema_key_append, dm_schema__value_text and dm_schema__fmt_double
 * (row-level checks, primary keys); row.c calls nothing in schema.c.
 * Nobody else includes it. */
#ifndef DM_SCHEMA_PRIV_H
#define DM_SCHEMA_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "contract/pattern.h"
#include "record/schema.h"
#include "base/sidx.h"

#define DM_SCHEMA__ROW_FIXED 4 /* version, reserved, u16 field count */
#define DM_SCHEMA__TEXT_MAX 64 /* formatted scalar (number, timestamp, uuid) */

typedef struct {
    const dm_field_t *f;
    size_t nlen;
    uint32_t slot;    /* offset of the fixed slot in a row of this schema */
    uint32_t width;   /* bytes of the slot */
    size_t *vlens;    /* enum value lengths */
    dm_sidx_t vidx;   /* enum values, sorted: a lookup is O(log values) */
    dm_pattern_t *re; /* pattern, or NULL */
} dm_schema__field_t;

struct dm_schema__rcheck; /* a row-level check, schema.c's */

struct dm_schema {
    const dm_contract_t *c;
    size_t nfields;
    dm_schema__field_t *fields;
    uint32_t *htab; /* field index + 1; 0 = empty */
    unsigned char hkey[crypto_shorthash_KEYBYTES]; /* random: see s_hash */
    size_t hmask;
    size_t bitmap_end; /* end of the null bitmap = start of the slots */
    size_t header;     /* fixed part of every row: bitmap and slots */
    struct dm_schema__rcheck *checks;
    size_t nchecks;
};

/* Shortest "%g" text of d that reads back as d; returns its length. */
size_t dm_schema__fmt_double(double d, char *buf, size_t cap);

/* Text of a decoded value (not null): *t points at it, either into v or
 * into tmp (DM_SCHEMA__TEXT_MAX bytes); returns its length. */
size_t dm_schema__value_text(const dm_value_t *v, char *tmp, const char **t);

#endif
