/* text.c: the name rule, banded edit distance and "did you mean" (see
 * text.h). */
#include "base/text.h"

#include <string.h>

bool dm_text_is_name(const char *s) { return dm_text_is_name_n(s, strlen(s)); }

bool dm_text_is_name_n(const char *s, size_t len)
{
    if (len < 1 || len > DM_TEXT_NAME_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Only the band |i - j| <= k is computed: cells outside it cannot lead back
 * under the limit, so a pair costs at most DM_TEXT_WORD_MAX * DM_TEXT_BAND
 * cells. */
size_t dm_text_distance(const char *a, const char *b)
{
    const size_t k = DM_TEXT_SUGGEST_MAX, far = DM_TEXT_SUGGEST_MAX + 1;
    size_t la = strnlen(a, DM_TEXT_WORD_MAX + 1), lb = strnlen(b, DM_TEXT_WORD_MAX + 1);
    if (la > DM_TEXT_WORD_MAX || lb > DM_TEXT_WORD_MAX)
        return far;
    if ((la > lb ? la - lb : lb - la) > k)
        return far;
    size_t row[DM_TEXT_WORD_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j <= k ? j : far;
    for (size_t i = 1; i <= la; i++) {
        size_t lo = i > k ? i - k : 1, hi = i + k < lb ? i + k : lb;
        size_t diag = row[lo - 1];
        row[lo - 1] = lo == 1 && i <= k ? i : far; /* column lo-1 of row i */
        size_t best = row[lo - 1];
        for (size_t j = lo; j <= hi; j++) {
            size_t up = row[j]; /* beyond the previous band: still far */
            size_t v = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < v)
                v = up + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v < far ? v : far;
            diag = up;
            if (row[j] < best)
                best = row[j];
        }
        if (best >= far)
            return far;
    }
    return row[lb];
}

uint64_t dm_text_cost(const char *word)
{
    return (uint64_t)(strnlen(word, DM_TEXT_WORD_MAX + 1) + 1) * DM_TEXT_BAND;
}

void dm_text_suggest_init(dm_text_suggest_t *s, const char *word)
{
    s->word = word;
    s->wlen = strnlen(word, DM_TEXT_WORD_MAX + 1);
    s->best = DM_TEXT_SUGGEST_MAX + 1;
    s->pick = NULL;
}

bool dm_text_suggest_add(dm_text_suggest_t *s, const char *cand)
{
    if (s->wlen > DM_TEXT_WORD_MAX)
        return false;
    size_t d = dm_text_distance(s->word, cand);
    if (d >= s->best || d * 2 >= s->wlen)
        return false;
    s->best = d;
    s->pick = cand;
    return true;
}

const char *dm_text_suggest(const char *word, const char *const *cands, size_t n)
{
    dm_text_suggest_t s;
    dm_text_suggest_init(&s, word);
    for (size_t i = 0; i < n && s.best > 0; i++)
        dm_text_suggest_add(&s, cands[i]);
    return s.pick;
}

size_t dm_text_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t min, cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}
