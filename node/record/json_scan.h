/* json_scan.h: a strict, allocation-free scanner for one JSON object on one line.
 *
 * Why not cJSON on the ingest hot path (cJSON stays the project's JSON
 * library everywhere else): it turns every number into a double, losing
 * int64 precision beyond 2^53; it accepts duplicate keys silently; it does
 * not validate UTF-8; and it allocates a node per value. This scanner walks
 * the line once, in place, and hands out each top-level member as pointers
 * into the line. It enforces RFC 8259 strictly: exactly one object, nothing
 * but whitespace after it, UTF-8 without overlongs or surrogates, no lone
 * surrogate \u escapes, no raw control characters in strings, no NaN or
 * Infinity. Nested objects and arrays are validated (to DM_JSON_MAX_DEPTH)
 * and returned as one opaque value. Duplicate keys are left to the caller,
 * which knows the field set. */
#ifndef DM_JSON_SCAN_H
#define DM_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#define DM_JSON_MAX_DEPTH 512 /* nesting levels of containers inside one line */

typedef enum {
    DM_JSON_NULL,
    DM_JSON_FALSE,
    DM_JSON_TRUE,
    DM_JSON_NUMBER,
    DM_JSON_STRING,
    DM_JSON_OBJECT,
    DM_JSON_ARRAY
} dm_json_type;

/* One top-level member. Pointers borrow the scanned line. */
typedef struct {
    const char *key; /* raw bytes between the quotes (escapes not decoded) */
    size_t key_len;
    bool key_escaped; /* key holds a backslash escape: decode before comparing */
    size_t key_col;   /* 1-based byte column of the key's opening quote */
    dm_json_type type;
    const char *val; /* string: raw bytes between the quotes; else the value's text */
    size_t val_len;
    bool val_escaped; /* string holds a backslash escape */
    bool num_is_int;  /* number without fraction or exponent */
    size_t val_cps;   /* string: decoded length in Unicode code points */
    size_t val_col;   /* 1-based byte column where the value starts */
} dm_json_member_t;

/* Scanner state; plain data, lives on the caller's stack.
 *
 * err is the documented exception to the dm_buf_t *why convention
 * (base/err.h): the scanner runs once per record on the ingest hot path and
 * must not allocate or format, so it only points at a static text and a
 * column; the schema, which reports the record, formats both into its
 * reasons, and only for invalid records. */
typedef struct {
    const char *start, *p, *end;
    int state;
    const char *err; /* static description of the first error, NULL if none */
    size_t err_col;  /* 1-based byte column of the error */
} dm_json_scan_t;

/* Starts scanning line (len bytes, no NUL needed). Cannot fail. */
void dm_json_scan_init(dm_json_scan_t *sc, const char *line, size_t len);

/* Returns 1 and fills *m with the next member; 0 when the object ended and
 * nothing but whitespace follows it; -1 on malformed input, with sc->err
 * and sc->err_col set (for example "trailing characters", 57). Once it has
 * returned 0 or -1 it keeps returning that. */
int dm_json_scan_next(dm_json_scan_t *sc, dm_json_member_t *m);

/* Decodes the raw body of a string that dm_json_scan_next accepted into out,
 * which must hold len bytes (decoding never grows text). Returns the number
 * of bytes written. Cannot fail on accepted input. */
size_t dm_json_scan_unescape(const char *raw, size_t len, char *out);

#endif
