/* test_varint.c: protobuf-style varints: length, encoding, decoding, and
 * refusal of cut-off or over-long input. */
#include <criterion/criterion.h>

#include "base/varint.h"

Test(varint, len_counts_seven_bits_a_byte)
{
    cr_assert_eq(dm_varint_len(0), 1);
    cr_assert_eq(dm_varint_len(127), 1);
    cr_assert_eq(dm_varint_len(128), 2);
    cr_assert_eq(dm_varint_len(16383), 2);
    cr_assert_eq(dm_varint_len(16384), 3);
    cr_assert_eq(dm_varint_len(UINT64_MAX), DM_VARINT_MAX_BYTES);
}

Test(varint, encode_writes_low_group_first)
{
    uint8_t b[DM_VARINT_MAX_BYTES];
    cr_assert_eq(dm_varint_encode(300, b), 2);
    cr_assert_eq(b[0], 0xac);
    cr_assert_eq(b[1], 0x02);
}

Test(varint, decode_reads_what_encode_wrote)
{
    const uint64_t vals[] = {0, 1, 127, 128, 300, UINT32_MAX, (uint64_t)1 << 63, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[DM_VARINT_MAX_BYTES];
        size_t n = dm_varint_encode(vals[i], b);
        cr_assert_eq(n, dm_varint_len(vals[i]));
        uint64_t v = 0;
        cr_assert_eq(dm_varint_decode(b, n, &v), n);
        cr_assert_eq(v, vals[i]);
    }
}

Test(varint, decode_stops_at_the_last_byte)
{
    const uint8_t b[] = {0x96, 0x01, 0xff};
    uint64_t v = 0;
    cr_assert_eq(dm_varint_decode(b, sizeof b, &v), 2);
    cr_assert_eq(v, 150);
}

Test(varint, decode_refuses_a_cut_varint)
{
    const uint8_t b[] = {0x96, 0x81};
    uint64_t v = 7;
    cr_assert_eq(dm_varint_decode(b, sizeof b, &v), 0);
    cr_assert_eq(v, 0);
}

Test(varint, decode_refuses_more_than_64_bits)
{
    const uint8_t b[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    uint64_t v = 7;
    cr_assert_eq(dm_varint_decode(b, sizeof b, &v), 0);
}

Test(varint, decode_of_nothing_is_zero_bytes)
{
    uint64_t v = 7;
    cr_assert_eq(dm_varint_decode(NULL, 0, &v), 0);
}
