/* hex.h: bytes as lowercase hex digits and back, in one place, for keys in
 * messages, addresses ("HEX(id)@endpoint") and policy documents. */
#ifndef DM_HEX_H
#define DM_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes the n bytes at in as 2n lowercase hex digits and a NUL: out holds
 * 2n + 1 bytes. n may be less than the key's length, for a short prefix. */
void dm_hex_encode(const uint8_t *in, size_t n, char *out);
/* The value of the hex digit c (either case), or -1. */
int dm_hex_digit(char c);
/* Reads the 2n hex digits at s into the n bytes at out; false at the first
 * character that is not a hex digit (a NUL included: s is read no further),
 * out then partly written. */
bool dm_hex_decode(const char *s, size_t n, uint8_t *out);

#endif
