/* types.h: parsers and formatters for the contract's scalar types.
 *
 * Shared by contract validation (typed constraint values) and record
 * validation (the hot path): every function is allocation-free, takes the
 * text as (pointer, length) without needing a NUL, and returns false when
 * the text is not a valid value of the type. */
#ifndef DM_TYPES_H
#define DM_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_UUID_BYTES 16
#define DM_TIMESTAMP_TEXT_MAX 40 /* bytes incl. NUL for dm_types_timestamp_format */

/* The instants a timestamp may name, in UTC microseconds since 1970: the
 * years a four-digit year can spell, so every stored timestamp has the
 * fixed-width canonical text "YYYY-MM-DDTHH:MM:SS.ffffffZ" and sorts as it. */
#define DM_TIMESTAMP_MIN_US INT64_C(-62167219200000000) /* 0000-01-01T00:00:00Z */
#define DM_TIMESTAMP_MAX_US INT64_C(253402300799999999) /* 9999-12-31T23:59:59.999999Z */
#define DM_TIMESTAMP_RANGE_TEXT "0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"

/* Outcome of dm_types_timestamp_check. */
typedef enum {
    DM_TS_OK = 0,
    DM_TS_SYNTAX, /* not RFC 3339 with an offset, or an impossible date or time */
    DM_TS_RANGE,  /* well formed, but its offset moves it outside DM_TIMESTAMP_RANGE_TEXT */
} dm_types_ts_status_t;

/* RFC 3339 date-time with a mandatory offset (Z or +HH:MM), optional
 * fraction up to nanoseconds (kept to microseconds), 'T' or 't' or ' '
 * between date and time. Rejects impossible dates and times, and instants
 * outside DM_TIMESTAMP_MIN_US..DM_TIMESTAMP_MAX_US once the offset is applied
 * (DM_TS_RANGE). Writes UTC microseconds since 1970-01-01 only on DM_TS_OK. */
dm_types_ts_status_t dm_types_timestamp_check(const char *s, size_t len, int64_t *us_out);
/* dm_types_timestamp_check(...) == DM_TS_OK. */
bool dm_types_timestamp_parse(const char *s, size_t len, int64_t *us_out);

/* Formats UTC microseconds as RFC 3339 ("2026-11-25T05:10:57.123456Z",
 * fraction omitted when zero). buf must hold DM_TIMESTAMP_TEXT_MAX bytes.
 * Returns the length written. */
size_t dm_types_timestamp_format(int64_t us, char *buf);

/* YYYY-MM-DD, a real calendar date (years 0000-9999). Writes days since
 * 1970-01-01. */
bool dm_types_date_parse(const char *s, size_t len, int32_t *days_out);
/* Formats days since 1970-01-01 as YYYY-MM-DD; buf holds 11 bytes. */
size_t dm_types_date_format(int32_t days, char *buf);

/* 8-4-4-4-12 hex digits, either case. */
bool dm_types_uuid_parse(const char *s, size_t len, uint8_t out[DM_UUID_BYTES]);
/* Lowercase 8-4-4-4-12; buf holds 37 bytes. */
size_t dm_types_uuid_format(const uint8_t in[DM_UUID_BYTES], char *buf);

/* A JSON number whose value is an integer within int64 ("42", "-7",
 * "1.0", "1e3" are accepted; "1.5", "9223372036854775808" are not). */
bool dm_types_int_parse(const char *s, size_t len, int64_t *out);
/* A JSON number that is a finite double. */
bool dm_types_double_parse(const char *s, size_t len, double *out);

/* Days since 1970-01-01 for a proleptic Gregorian date (no validation). */
int64_t dm_types_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
