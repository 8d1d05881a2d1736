/* test_array.c: dm_array_reserve grows by doubling, keeps what is there,
 * and refuses sizes that would overflow without touching the array. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/array.h"

Test(array, first_growth_takes_the_first_capacity)
{
    int *a = NULL;
    size_t cap = 0;
    cr_assert(dm_array_reserve(&a, &cap, 1, sizeof *a, 16));
    cr_assert_eq(cap, 16);
    cr_assert_not_null(a);
    free(a);
}

Test(array, doubles_until_need_fits_and_keeps_the_elements)
{
    int *a = NULL;
    size_t cap = 0;
    cr_assert(dm_array_reserve(&a, &cap, 3, sizeof *a, 4));
    for (int i = 0; i < 3; i++)
        a[i] = i + 7;
    cr_assert(dm_array_reserve(&a, &cap, 5, sizeof *a, 4));
    cr_assert_eq(cap, 8);
    cr_assert(dm_array_reserve(&a, &cap, 33, sizeof *a, 4));
    cr_assert_eq(cap, 64);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(a[i], i + 7);
    free(a);
}

Test(array, enough_room_changes_nothing)
{
    int *a = malloc(8 * sizeof *a);
    int *before = a;
    size_t cap = 8;
    cr_assert(dm_array_reserve(&a, &cap, 8, sizeof *a, 4));
    cr_assert_eq(a, before);
    cr_assert_eq(cap, 8);
    free(a);
}

Test(array, an_overflowing_size_is_refused_and_the_array_kept)
{
    int *a = malloc(4 * sizeof *a);
    int *before = a;
    size_t cap = 4;
    cr_assert_not(dm_array_reserve(&a, &cap, SIZE_MAX / 2, sizeof *a, 4));
    cr_assert_eq(a, before);
    cr_assert_eq(cap, 4);
    cr_assert_not(dm_array_reserve(&a, &cap, SIZE_MAX, 1, 4));
    cr_assert_eq(cap, 4);
    free(a);
}
