/* row.h: the row encoding of a validated record, and reading it back.
 *
 * dm_schema_validate (schema.h) writes rows; the store keeps them as they
 * are; queries and exports read them here, one column at a time.
 *
 * Row encoding (all integers little-endian, no alignment; the header size
 * follows from the row's own field count):
 *   [0]      u8   format version, DM_ROW_VERSION
 *   [1]      u8   reserved, 0
 *   [2..3]   u16  number of fields
 *   [4..]    null bitmap, ceil(nfields / 8) bytes; bit i (byte i/8, bit
 *            i%8) set = field i is null (absent or JSON null)
 *   then one fixed-width slot per field, in contract order:
 *            int, double, timestamp  8 bytes (int64, IEEE double, UTC micros)
 *            date                    4 bytes (int32 days since 1970-01-01)
 *            boolean                 1 byte  (0 or 1)
 *            enum                    2 bytes (u16 index into values[])
 *            uuid                    16 bytes
 *            string                  8 bytes (u32 offset from row start, u32 length)
 *            a null field's slot is all zero
 *   then the string bytes (decoded UTF-8, not NUL-terminated).
 * Any column is thus read in O(1) from its slot; dm_row_get does it. */
#ifndef DM_ROW_H
#define DM_ROW_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "record/schema.h"

#define DM_ROW_VERSION 1

/* Decodes column field of an encoded row into *out. The row
 * may have fewer fields than the schema (written before an upgrade added
 * optional fields at the end: the missing ones read as null) or more
 * (written under a newer version: the extra ones are not read). Returns
 * false if the row is malformed (short, wrong version, a field count its
 * length cannot hold, a string slot out of bounds, a bad enum index).
 * field must be < the contract's nfields. */
bool dm_row_get(const dm_schema_t *s, const void *row, size_t len, size_t field,
                dm_value_t *out);

/* Appends the row as one JSON object (every field, null when null; timestamps
 * as RFC 3339, dates as YYYY-MM-DD, uuids lowercase) to out. A malformed row
 * appends "{}". */
void dm_row_to_json(const dm_schema_t *s, const void *row, size_t len, dm_buf_t *out);

#endif
