/* test_buf_why.c: dm_buf_why, the one way a callee appends its reason
 * (base/buf.h, base/err.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "base/buf.h"

Test(buf_why, appends_formatted_lines_without_resetting)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_why(&why, "bad %s at %d", "field", 3);
    dm_buf_why(&why, "; then %s", "more");
    cr_assert_str_eq(why.data, "bad field at 3; then more");
    cr_assert_eq(why.len, strlen(why.data));
    dm_buf_free(&why);
}

Test(buf_why, null_buffer_is_ignored)
{
    dm_buf_why(NULL, "nobody asked: %d", 1);
    cr_assert(true, "did not crash");
}

Test(buf_why, a_long_reason_is_cut_at_the_cap)
{
    size_t n = DM_BUF_WHY_MAX + 100;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, 'x', n);
    big[n] = 0;
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_why(&why, "%s", big);
    cr_assert_eq(why.len, (size_t)DM_BUF_WHY_MAX);
    cr_assert_eq(strlen(why.data), (size_t)DM_BUF_WHY_MAX);
    dm_buf_free(&why);
    free(big);
}
