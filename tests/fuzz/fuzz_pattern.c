/* fuzz_pattern.c: the contract pattern cost check (pattern.c) and the
 * linear matcher (pattern_match.c) over any bytes. The input is a pattern,
 * a NUL byte, then a subject (no NUL: an empty subject). A pattern that
 * dm_pattern_check accepts must compile and, differentially, must be read
 * by glibc's regcomp(REG_EXTENDED | REG_NOSUB) in the C locale and match
 * the same subjects: dm_pattern_match and regexec both answer "does some
 * substring of the subject match" (node/record/schema.c matches a value that way).
 * regexec sees the subject up to its first NUL, at most
 * FUZZ_PATTERN_DIFF_MAX bytes, so it stays cheap; dm_pattern_match also
 * runs over the whole subject, NULs included, for the sanitizers. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "base/log.h"
#include "contract/pattern.h"

#define FUZZ_PATTERN_DIFF_MAX 256 /* subject bytes compared with regexec */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_pattern", DM_LOG_ERR);
    return 0;
}

/* Compares dm_pattern_match with glibc on pattern (accepted by the check)
 * and the first n bytes of t (no NUL among them). */
static void s_differential(const dm_pattern_t *p, const char *pattern, const char *t, size_t n)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    DM_FUZZ_CHECK(rc == 0); /* the checker accepted what glibc refuses */
    char *s = malloc(n + 1);
    DM_FUZZ_CHECK(s != NULL);
    memcpy(s, t, n);
    s[n] = '\0';
    bool glibc = regexec(&re, s, 0, NULL, 0) == 0;
    bool ours = dm_pattern_match(p, s, n);
    DM_FUZZ_CHECK(glibc == ours);
    free(s);
    regfree(&re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    const char *subject = nul ? (const char *)nul + 1 : "";
    size_t slen = nul ? size - plen - 1 : 0;

    char *pattern = malloc(plen + 1);
    if (!pattern)
        return 0;
    memcpy(pattern, data, plen);
    pattern[plen] = '\0';

    dm_buf_t why = DM_BUF_INIT;
    dm_pattern_info_t info;
    if (dm_pattern_check(pattern, &info, &why) != DM_OK) {
        DM_FUZZ_CHECK(why.len > 0 && why.len < DM_PATTERN_WHY_MAX);
        dm_buf_free(&why);
        goto out;
    }
    DM_FUZZ_CHECK(info.len == plen && info.len <= DM_PATTERN_MAX_LEN);
    DM_FUZZ_CHECK(info.depth <= DM_PATTERN_MAX_DEPTH && info.cost <= DM_PATTERN_MAX_COST);

    dm_pattern_t *p = NULL;
    DM_FUZZ_CHECK(dm_pattern_compile(pattern, &p) == DM_OK && p != NULL);
    DM_FUZZ_IGNORE(dm_pattern_match(p, subject, slen));
    const char *snul = memchr(subject, 0, slen);
    size_t dlen = snul ? (size_t)(snul - subject) : slen;
    if (dlen > FUZZ_PATTERN_DIFF_MAX)
        dlen = FUZZ_PATTERN_DIFF_MAX;
    s_differential(p, pattern, subject, dlen);
    dm_pattern_destroy(&p);
    DM_FUZZ_CHECK(p == NULL);
out:
    free(pattern);
    return 0;
}
