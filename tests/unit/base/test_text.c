/* test_text.c: the name rule, the banded edit distance and "did you mean"
 * that dmctl, ingest and SQL share (base/text.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "base/text.h"

Test(text, name_rule_accepts_lowercase_start_then_allowed_chars)
{
    cr_assert(dm_text_is_name("orders"));
    cr_assert(dm_text_is_name("a"));
    cr_assert(dm_text_is_name("web-shop_2"));
}

Test(text, name_rule_refuses_bad_start_chars_and_length)
{
    char longest[DM_TEXT_NAME_MAX + 2];
    memset(longest, 'a', sizeof longest - 1);
    longest[DM_TEXT_NAME_MAX] = 0;
    cr_assert(dm_text_is_name(longest));
    longest[DM_TEXT_NAME_MAX] = 'a';
    longest[DM_TEXT_NAME_MAX + 1] = 0;
    cr_assert_not(dm_text_is_name(longest));
    cr_assert_not(dm_text_is_name(""));
    cr_assert_not(dm_text_is_name("Orders"));
    cr_assert_not(dm_text_is_name("1orders"));
    cr_assert_not(dm_text_is_name("_orders"));
    cr_assert_not(dm_text_is_name("ord.ers"));
}

Test(text, name_rule_with_length_ignores_what_follows)
{
    cr_assert(dm_text_is_name_n("sales/orders", 5));
    cr_assert_not(dm_text_is_name_n("sales/orders", 6));
    cr_assert_not(dm_text_is_name_n("sales", 0));
}

Test(text, distance_counts_edits_within_the_limit)
{
    cr_assert_eq(dm_text_distance("orders", "orders"), 0);
    cr_assert_eq(dm_text_distance("orders", "order"), 1);
    cr_assert_eq(dm_text_distance("orders", "odrers"), 2);
    cr_assert_eq(dm_text_distance("", "ab"), 2);
}

Test(text, distance_past_the_limit_is_limit_plus_one)
{
    cr_assert_eq(dm_text_distance("orders", "customers"), DM_TEXT_SUGGEST_MAX + 1);
    cr_assert_eq(dm_text_distance("a", "abcd"), DM_TEXT_SUGGEST_MAX + 1);
}

Test(text, words_over_the_cap_are_never_close)
{
    char big[DM_TEXT_WORD_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cr_assert_eq(dm_text_distance(big, big), DM_TEXT_SUGGEST_MAX + 1);
    const char *cands[] = {big};
    cr_assert_null(dm_text_suggest(big, cands, 1));
}

Test(text, suggest_picks_the_closest_first_on_ties)
{
    const char *cands[] = {"customers", "ordrs", "orders", "odrers"};
    cr_assert_str_eq(dm_text_suggest("orders_", cands, 4), "orders");
    const char *ties[] = {"abd", "abe"};
    cr_assert_str_eq(dm_text_suggest("abc", ties, 2), "abd");
}

Test(text, suggest_needs_fewer_edits_than_half_the_word)
{
    const char *cands[] = {"b", "xy"};
    cr_assert_null(dm_text_suggest("a", cands, 2));
    cr_assert_null(dm_text_suggest("ab", cands + 1, 1));
    const char *four[] = {"ints"};
    cr_assert_str_eq(dm_text_suggest("int", four, 1), "ints");
}

Test(text, suggest_fed_one_by_one_matches_the_list_form)
{
    const char *cands[] = {"sales.orders", "sales.returns", "hr.staff"};
    dm_text_suggest_t s;
    dm_text_suggest_init(&s, "sales.order");
    for (size_t i = 0; i < 3; i++)
        dm_text_suggest_add(&s, cands[i]);
    cr_assert_str_eq(s.pick, dm_text_suggest("sales.order", cands, 3));
    cr_assert_eq(s.best, 1);
}

Test(text, cost_grows_with_the_word_and_is_bounded)
{
    cr_assert_eq(dm_text_cost("abc"), 4u * DM_TEXT_BAND);
    char big[DM_TEXT_WORD_MAX * 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cr_assert_eq(dm_text_cost(big), (uint64_t)(DM_TEXT_WORD_MAX + 2) * DM_TEXT_BAND);
}

Test(text, utf8_len_accepts_valid_and_refuses_broken_sequences)
{
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"a", 1), 1);
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"\xc3\xa9", 2), 2);     /* é */
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"\xe2\x82\xac", 3), 3); /* € */
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"\xc0\xaf", 2), 0);     /* overlong */
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"\xed\xa0\x80", 3), 0); /* surrogate */
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"\xe2\x82", 2), 0);     /* cut short */
    cr_assert_eq(dm_text_utf8_len((const unsigned char *)"\x80", 1), 0);
}
