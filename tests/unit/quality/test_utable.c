/* test_utable.c: a unique check's in-memory table (quality_uniq_table.c)
 * grown far past its first size, through the huge-page arrays, the
 * remapped arena and the in-order rehash of every doubling: each value
 * keeps its count, none is found that was not put in, and the table
 * written to a file reads back the same; a torn or changed file of such a
 * table is not read (and what was mapped for it is unmapped). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "quality/quality_priv.h"

#define T_VALUES 300000 /* past 2 MB of slots and of arena: both kinds of arrays */
#define T_CHUNK 7919    /* values reserved and put at a time (a prime: odd growth points) */

static size_t s_key(uint32_t v, uint8_t *out)
{
    /* keys of several lengths, sharing long prefixes */
    int n = snprintf((char *)out, 48, "customer-%08u-%.*s", v, (int)(v % 13), "abcdefghijklm");
    return (size_t)n;
}

static uint32_t *s_find(dm_quality__utable_t *t, uint32_t v, bool insert)
{
    uint8_t key[48];
    size_t n = s_key(v, key);
    return dm_quality__utable_find(t, key, n, dm_quality__utable_hash(t, key, n), insert);
}

/* Every value below T_VALUES holds count v % 5 + 1; none above is there. */
static void s_check(dm_quality__utable_t *t)
{
    cr_assert_eq(dm_quality__utable_count(t), T_VALUES);
    for (uint32_t v = 0; v < T_VALUES; v++) {
        uint32_t *c = s_find(t, v, false);
        cr_assert_not_null(c, "value %u is lost", v);
        cr_assert_eq(*c, v % 5 + 1, "value %u holds %u", v, *c);
    }
    for (uint32_t v = T_VALUES; v < T_VALUES + 1000; v++)
        cr_assert_null(s_find(t, v, false), "value %u was never put in", v);
}

Test(utable, a_table_grown_to_300k_values_keeps_every_count_and_reads_back)
{
    dm_quality__utable_t *t = dm_quality__utable_new();
    cr_assert_not_null(t);
    for (uint32_t v = 0; v < T_VALUES; v += T_CHUNK) {
        uint32_t end = v + T_CHUNK < T_VALUES ? v + T_CHUNK : T_VALUES;
        cr_assert(dm_quality__utable_reserve(t, end - v, (end - v) * 32));
        for (uint32_t w = v; w < end; w++) {
            uint32_t *c = s_find(t, w, true);
            cr_assert_not_null(c);
            *c = w % 5 + 1;
        }
    }
    s_check(t);
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert(dm_quality__utable_write(t, f));
    rewind(f);
    dm_quality__utable_t *back = dm_quality__utable_read(f, DM_QUALITY_UNIQ_TABLES_MAX);
    fclose(f);
    cr_assert_not_null(back, "the file reads back");
    s_check(back);
    /* and the table read back grows on */
    cr_assert(dm_quality__utable_reserve(back, 1, 48));
    uint8_t key[48] = "a value after the read";
    size_t n = strlen((char *)key);
    cr_assert_not_null(dm_quality__utable_find(back, key, n,
                                               dm_quality__utable_hash(back, key, n), true));
    cr_assert_not_null(dm_quality__utable_find(back, key, n,
                                               dm_quality__utable_hash(back, key, n), false));
    dm_quality__utable_destroy(&back);
    dm_quality__utable_destroy(&t);
}

/* f's bytes [0, n) copied to a new temporary file, rewound; with one byte
 * at flip (if below n) changed. */
static FILE *s_copy(FILE *f, long n, long flip)
{
    FILE *out = tmpfile();
    cr_assert_not_null(out);
    rewind(f);
    for (long i = 0; i < n; i++) {
        int c = fgetc(f);
        cr_assert_neq(c, EOF);
        cr_assert_neq(fputc(i == flip ? c ^ 0x40 : c, out), EOF);
    }
    rewind(out);
    return out;
}

Test(utable, a_large_tables_torn_or_changed_file_is_not_read)
{
    dm_quality__utable_t *t = dm_quality__utable_new();
    cr_assert_not_null(t);
    cr_assert(dm_quality__utable_reserve(t, T_VALUES, T_VALUES * 32));
    for (uint32_t v = 0; v < T_VALUES; v++)
        *s_find(t, v, true) = 1;
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert(dm_quality__utable_write(t, f));
    long size = ftell(f);
    FILE *cases[] = {s_copy(f, size - 1, -1),         /* torn: the last byte missing */
                     s_copy(f, size / 2, -1),         /* torn in the slots */
                     s_copy(f, size, size - 100),     /* a key's byte changed */
                     s_copy(f, size, size / 3)};      /* a slot's byte changed */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_null(dm_quality__utable_read(cases[i], DM_QUALITY_UNIQ_TABLES_MAX),
                       "case %zu is read", i);
        fclose(cases[i]);
    }
    FILE *whole = s_copy(f, size, -1);
    dm_quality__utable_t *back = dm_quality__utable_read(whole, DM_QUALITY_UNIQ_TABLES_MAX);
    cr_assert_not_null(back, "the whole copy reads back");
    cr_assert_eq(dm_quality__utable_count(back), T_VALUES);
    fclose(whole);
    fclose(f);
    dm_quality__utable_destroy(&back);
    dm_quality__utable_destroy(&t);
}
