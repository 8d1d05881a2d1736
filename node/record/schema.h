/* schema.h: the record validator: a contract compiled for checking NDJSON
 * records and encoding the valid ones as rows and primary keys.
 *
 * "Schema" here is not the contract's spec.schema (the field list, see
 * contract/contract.h's dm_field_t): it is what that field list, with the
 * field constraints and the row-level quality checks, becomes once compiled
 * for the ingest hot path. A dm_schema_t is compiled once from a dm_contract_t (field lookup hash,
 * enum tables, compiled regexes, typed in_list values) and then validates
 * NDJSON records, one line at a time, without allocating per record: all
 * per-call state lives in the caller's buffers, whose allocations are reused
 * across calls. The schema is immutable after dm_schema_new and may be
 * shared by threads.
 *
 * The row encoding and its decoding are record/row.h's.
 *
 * Primary-key encoding is order-preserving: memcmp order of encoded keys is
 * the order of the values, field by field. Parts are self-delimiting and
 * concatenated in primaryKey order: int and timestamp as 8 bytes big-endian
 * with the sign bit flipped, date as 4 such bytes, uuid its 16 bytes, boolean
 * one byte, enum index as u16 big-endian, double as 8 bytes big-endian of
 * its bits with the sign bit flipped when positive and all bits flipped when
 * negative (-0 encodes as +0), string its bytes with 0x00 written as
 * 0x00 0xFF and terminated by 0x00 0x01. */
#ifndef DM_SCHEMA_H
#define DM_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "contract/contract.h"
#include "base/err.h"
#include "contract/types.h"

#define DM_RECORD_LIMIT_DEFAULT (1024 * 1024) /* bytes per record line */
#define DM_SCHEMA_MAX_FIELDS 4096             /* fields per contract the schema supports */
#define DM_SCHEMA_MAX_REASONS 16              /* reasons listed per record; the rest are counted */
#define DM_SCHEMA_QUOTE_MAX 40                /* bytes of a value quoted in a reason */

typedef struct dm_schema dm_schema_t;

/* One decoded column. */
typedef struct {
    dm_ftype type;
    bool is_null;
    int64_t i;     /* int, timestamp (UTC micros), date (days), bool (0/1), enum index */
    double d;      /* double */
    const char *s; /* string (points into the row), enum text (points into the contract) */
    size_t slen;
    uint8_t uuid[DM_UUID_BYTES];
} dm_value_t;

/* Compiles c into *out. Borrows c: it must outlive the schema. Returns
 * DM_ERR_INVALID if a pattern or regex check is refused or fails to compile,
 * a row-level check names no field, or an in_list value is not valid for its
 * column; DM_ERR_TOOBIG over DM_SCHEMA_MAX_FIELDS fields; DM_ERR_NOMEM. On
 * DM_ERR_INVALID and DM_ERR_TOOBIG one line naming the field and the problem
 * is appended to why (may be NULL), for example "field 'sku': pattern
 * '(a+)+' is refused: ..."; nothing is logged. On error *out is NULL. */
DM_NODISCARD dm_err dm_schema_new(const dm_contract_t *c, dm_schema_t **out, dm_buf_t *why);

/* Frees the schema. NULL-safe; sets *self_p to NULL. */
void dm_schema_destroy(dm_schema_t **self_p);

/* Validates one record: line is len bytes without its newline, not
 * NUL-terminated. The caller enforces the record size limit beforehand.
 * Valid: row gets the encoded row and key the encoded primary key (both
 * reset first; key stays empty when the contract has no primary key);
 * returns true. Invalid: reasons (reset first) gets every reason joined by
 * "; ", for example "field 'amount': must be > 0, got -3"; returns false.
 * row and key then hold garbage. Thread-safe for a shared schema. */
bool dm_schema_validate(const dm_schema_t *s, const char *line, size_t len, dm_buf_t *row,
                        dm_buf_t *key, dm_buf_t *reasons);

/* The contract the schema was compiled from (borrowed). */
const dm_contract_t *dm_schema_contract(const dm_schema_t *s);

/* Parses t, a value as a contract writes it (an in_list entry), as a
 * value of field f's type into v: an enum value gets its index and text.
 * False if t is not a valid value of that type. */
bool dm_schema_value_parse(const dm_field_t *f, const char *t, dm_value_t *v);

/* Index of the field called name (len bytes), or -1. */
int dm_schema_field_index(const dm_schema_t *s, const char *name, size_t len);

/* Appends the key part of value v (not null) for field to key, in the
 * primary-key encoding above. Cannot fail. */
void dm_schema_key_append(const dm_schema_t *s, size_t field, const dm_value_t *v,
                          dm_buf_t *key);

#endif
