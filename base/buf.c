/* buf.c: growable byte buffer. */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dm_buf_free(dm_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void dm_buf_reserve(dm_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    b->data = p;
    b->cap = cap;
}

void dm_buf_append(dm_buf_t *b, const void *data, size_t len)
{
    dm_buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
}

void dm_buf_putc(dm_buf_t *b, char c) { dm_buf_append(b, &c, 1); }

void dm_buf_puts(dm_buf_t *b, const char *s) { dm_buf_append(b, s, strlen(s)); }

void dm_buf_printf(dm_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    dm_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dm_buf_vwhy(dm_buf_t *why, const char *fmt, va_list ap)
{
    if (!why)
        return;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n >= 0) {
        size_t len = (size_t)n < DM_BUF_WHY_MAX ? (size_t)n : DM_BUF_WHY_MAX;
        dm_buf_reserve(why, len);
        vsnprintf(why->data + why->len, len + 1, fmt, again);
        why->len += len;
    }
    va_end(again);
}

void dm_buf_why(dm_buf_t *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_buf_vwhy(why, fmt, ap);
    va_end(ap);
}

void dm_buf_json_string(dm_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    dm_buf_reserve(b, len + 2);
    dm_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': dm_buf_append(b, "\\\"", 2); break;
        case '\\': dm_buf_append(b, "\\\\", 2); break;
        case '\n': dm_buf_append(b, "\\n", 2); break;
        case '\r': dm_buf_append(b, "\\r", 2); break;
        case '\t': dm_buf_append(b, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                dm_buf_append(b, esc, 6);
            } else {
                dm_buf_putc(b, (char)c);
            }
        }
    }
    dm_buf_putc(b, '"');
}

char *dm_buf_steal(dm_buf_t *b)
{
    if (!b->data)
        dm_buf_reserve(b, 0);
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
