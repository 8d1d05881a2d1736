/* avro.h: a local Avro schema (.avsc) -> contract fields.
 *
 * Supported: a top-level record whose fields are boolean, int, long, float,
 * double, string, enum, the unions ["null", T] / [T, "null"] (not
 * required), and the logical types date (int), timestamp-millis and
 * timestamp-micros (long), uuid (string). Anything else is an error that
 * names the field and the construct. The file is read with cJSON and may
 * be at most DM_CONTRACT_MAX_FILE bytes. */
#ifndef DM_AVRO_H
#define DM_AVRO_H

#include <stddef.h>

#include "contract/contract.h"

/* Reads path and converts its record's fields. Diagnostics are reported at
 * file:line:col (the YAML `location` value that named the schema) and start
 * with "avro schema 'LOCATION'". On DM_OK, *fields holds *n fields (with
 * min_length = max_length = -1 and line/col set to the given position) that
 * the caller owns (a contract's fields, freed by dm_contract_destroy). On
 * failure (DM_ERR_IO, DM_ERR_TOOBIG, DM_ERR_INVALID) *fields is NULL. */
DM_NODISCARD dm_err dm_avro_fields(const char *path, const char *location, const char *file,
                                   unsigned line, unsigned col, dm_diags_t *diags,
                                   dm_field_t **fields, size_t *n);

#endif
