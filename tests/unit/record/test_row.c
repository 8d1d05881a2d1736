/* test_row.c: the row encoding (every type, truncated rows, rows of an
 * older schema) and the order-preserving primary-key encoding. */
#include "schema_test.h"

TestSuite(row, .fini = s_fini);

/* ---- row encoding ---- */

static void s_all_types(void)
{
    s_field("s", DM_FT_STRING, false);
    s_field("i", DM_FT_INT, false);
    s_field("d", DM_FT_DOUBLE, false);
    s_field("b", DM_FT_BOOLEAN, false);
    s_field("t", DM_FT_TIMESTAMP, false);
    s_field("dt", DM_FT_DATE, false);
    s_field("u", DM_FT_UUID, false);
    dm_field_t *e = s_field("e", DM_FT_ENUM, false);
    e->values = ORDER_STATUS;
    e->nvalues = 4;
    s_field("n", DM_FT_STRING, false);
    s_compile();
}

#define ALL_TYPES "{\"s\":\"h\\u00e9\\u0000!\",\"i\":-42,\"d\":2.5,\"b\":true,\"t\":\"2026-03-01T12:34:56.789+01:00\"," \
                  "\"dt\":\"2024-02-29\",\"u\":\"3F1C0000-AAAA-BBBB-CCCC-0123456789AB\",\"e\":\"shipped\",\"n\":null}"

Test(row, row_get_returns_every_type)
{
    dm_value_t v;
    s_all_types();
    VALID(ALL_TYPES);
    cr_assert(dm_row_get(S, row.data, row.len, 0, &v));
    cr_assert_eq(v.slen, 5);
    cr_assert_arr_eq(v.s, "h\xc3\xa9\0!", 5);
    cr_assert(dm_row_get(S, row.data, row.len, 1, &v) && v.i == -42);
    cr_assert(dm_row_get(S, row.data, row.len, 2, &v) && v.d == 2.5);
    cr_assert(dm_row_get(S, row.data, row.len, 3, &v) && v.i == 1);
    cr_assert(dm_row_get(S, row.data, row.len, 4, &v) && v.i == INT64_C(1772364896789000));
    cr_assert(dm_row_get(S, row.data, row.len, 5, &v) && v.i == 19782);
    cr_assert(dm_row_get(S, row.data, row.len, 6, &v));
    cr_assert_eq(v.uuid[0], 0x3f);
    cr_assert_eq(v.uuid[15], 0xab);
    cr_assert(dm_row_get(S, row.data, row.len, 7, &v) && v.i == 2);
    cr_assert_str_eq(v.s, "shipped");
    cr_assert(dm_row_get(S, row.data, row.len, 8, &v));
    cr_assert(v.is_null);
    cr_assert(dm_row_get(S, row.data, row.len, 1, &v));
    cr_assert_not(v.is_null);
}

Test(row, row_to_json_renders_every_type)
{
    dm_buf_t out = DM_BUF_INIT;
    s_all_types();
    VALID(ALL_TYPES);
    dm_row_to_json(S, row.data, row.len, &out);
    cr_assert_str_eq(out.data, "{\"s\":\"h\xc3\xa9\\u0000!\",\"i\":-42,\"d\":2.5,\"b\":true,"
                               "\"t\":\"2026-03-01T11:34:56.789Z\",\"dt\":\"2024-02-29\","
                               "\"u\":\"3f1c0000-aaaa-bbbb-cccc-0123456789ab\",\"e\":\"shipped\",\"n\":null}");
    dm_buf_free(&out);
}

Test(row, row_get_rejects_truncated_row)
{
    dm_value_t v;
    s_all_types();
    VALID(ALL_TYPES);
    cr_assert_not(dm_row_get(S, row.data, 3, 1, &v));
    cr_assert_not(dm_row_get(S, row.data, row.len - 1, 0, &v)); /* string runs past the end */
}

Test(row, row_get_rejects_field_count_beyond_the_row)
{
    dm_value_t v;
    s_all_types();
    VALID(ALL_TYPES);
    row.data[2] = (char)0xff; /* 65535 fields: a null bitmap longer than the row */
    row.data[3] = (char)0xff;
    cr_assert_not(dm_row_get(S, row.data, row.len, 1, &v));
}

/* An upgrade adds optional fields at the end: rows written before it have
 * fewer fields, and the new schema reads them with the new fields null. */
Test(row, row_get_reads_old_rows_after_an_upgrade)
{
    for (int i = 0; i < 7; i++) /* 7 fields: a 1-byte null bitmap */
        s_field(i == 0 ? "a" : i == 1 ? "s" : i == 2 ? "c" : i == 3 ? "d" : i == 4 ? "e"
                : i == 5 ? "f" : "g", i == 1 ? DM_FT_STRING : DM_FT_INT, false);
    s_compile();
    VALID("{\"a\":1,\"s\":\"old\",\"c\":3,\"g\":7}");
    dm_buf_t old = DM_BUF_INIT;
    dm_buf_append(&old, row.data, row.len);
    dm_schema_destroy(&S);
    /* version 2: nine fields (a 2-byte bitmap, so every slot moves) */
    s_field("h", DM_FT_STRING, false);
    s_field("i", DM_FT_INT, false);
    s_compile();
    dm_value_t v;
    cr_assert(dm_row_get(S, old.data, old.len, 0, &v) && !v.is_null && v.i == 1);
    cr_assert(dm_row_get(S, old.data, old.len, 1, &v) && v.slen == 3);
    cr_assert_arr_eq(v.s, "old", 3);
    cr_assert(dm_row_get(S, old.data, old.len, 3, &v) && v.is_null);
    cr_assert(dm_row_get(S, old.data, old.len, 6, &v) && v.i == 7);
    cr_assert(dm_row_get(S, old.data, old.len, 7, &v) && v.is_null);
    cr_assert(dm_row_get(S, old.data, old.len, 8, &v) && v.is_null);
    dm_buf_t json = DM_BUF_INIT;
    dm_row_to_json(S, old.data, old.len, &json);
    cr_assert_str_eq(json.data, "{\"a\":1,\"s\":\"old\",\"c\":3,\"d\":null,\"e\":null,"
                                "\"f\":null,\"g\":7,\"h\":null,\"i\":null}");
    dm_buf_free(&json);
    dm_buf_free(&old);
}

/* A reader holding the older schema reads the first fields of a newer row. */
Test(row, row_get_reads_newer_rows_with_the_older_schema)
{
    for (int i = 0; i < 9; i++) {
        char *name = malloc(4);
        name[0] = 'f';
        name[1] = (char)('0' + i);
        name[2] = '\0';
        s_field(name, i == 2 ? DM_FT_STRING : DM_FT_INT, false);
    }
    s_compile();
    VALID("{\"f0\":10,\"f2\":\"x\",\"f8\":80}");
    dm_schema_destroy(&S);
    M.nfields = 3; /* the version before f3..f8 */
    s_compile();
    dm_value_t v;
    cr_assert(dm_row_get(S, row.data, row.len, 0, &v) && v.i == 10);
    cr_assert(dm_row_get(S, row.data, row.len, 1, &v) && v.is_null);
    cr_assert(dm_row_get(S, row.data, row.len, 2, &v) && v.slen == 1 && v.s[0] == 'x');
    for (int i = 0; i < 9; i++)
        free(F[i].name);
}

/* A row with fewer fields whose string slot points into its own slots is
 * refused like any out-of-bounds string. */
Test(row, row_get_bounds_strings_of_old_rows)
{
    s_field("a", DM_FT_INT, false);
    s_field("s", DM_FT_STRING, false);
    s_compile();
    VALID("{\"a\":1,\"s\":\"xy\"}");
    dm_buf_t old = DM_BUF_INIT;
    dm_buf_append(&old, row.data, row.len);
    old.data[5 + 8] = 5; /* string offset (after a 1-byte bitmap and the int slot): inside the slots */
    dm_schema_destroy(&S);
    s_field("b", DM_FT_INT, false);
    s_compile();
    dm_value_t v;
    cr_assert_not(dm_row_get(S, old.data, old.len, 1, &v));
    dm_buf_free(&old);
}

/* ---- primary keys ---- */

Test(row, key_is_empty_without_primary_key)
{
    s_one(DM_FT_INT);
    s_compile();
    VALID("{\"v\":1}");
    cr_assert_eq(key.len, 0);
}

Test(row, uuid_key_is_its_16_bytes)
{
    s_orders();
    VALID(ORDER_OK);
    cr_assert_eq(key.len, DM_UUID_BYTES);
    cr_assert_arr_eq(key.data, "\x3f\x1c\x00\x00\xaa\xaa\xbb\xbb\xcc\xcc\x01\x23\x45\x67\x89\xab", 16);
}

/* Encodes each record's key and asserts memcmp order is ascending. */
static void s_keys_ascend(const char **recs, size_t n)
{
    dm_buf_t prev = DM_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        VALID(recs[i]);
        if (i) {
            size_t m = prev.len < key.len ? prev.len : key.len;
            int c = memcmp(prev.data, key.data, m);
            cr_assert(c < 0 || (c == 0 && prev.len < key.len), "%s !< %s", recs[i - 1], recs[i]);
        }
        dm_buf_reset(&prev);
        dm_buf_append(&prev, key.data, key.len);
    }
    dm_buf_free(&prev);
}

Test(row, int_keys_sort_numerically)
{
    const char *r[] = {"{\"v\":-9223372036854775808}", "{\"v\":-5}", "{\"v\":-1}", "{\"v\":0}",
                       "{\"v\":3}", "{\"v\":256}", "{\"v\":9223372036854775807}"};
    s_field("v", DM_FT_INT, true);
    s_pk(0);
    s_compile();
    s_keys_ascend(r, sizeof r / sizeof r[0]);
}

Test(row, double_keys_sort_numerically)
{
    const char *r[] = {"{\"v\":-1e300}", "{\"v\":-2.5}", "{\"v\":-1e-300}", "{\"v\":0}",
                       "{\"v\":1e-300}", "{\"v\":3}", "{\"v\":1e300}"};
    s_field("v", DM_FT_DOUBLE, true);
    s_pk(0);
    s_compile();
    s_keys_ascend(r, sizeof r / sizeof r[0]);
}

Test(row, negative_zero_key_equals_zero)
{
    dm_buf_t zero = DM_BUF_INIT;
    s_field("v", DM_FT_DOUBLE, true);
    s_pk(0);
    s_compile();
    VALID("{\"v\":0}");
    dm_buf_append(&zero, key.data, key.len);
    VALID("{\"v\":-0.0}");
    cr_assert_eq(key.len, zero.len);
    cr_assert_arr_eq(key.data, zero.data, key.len);
    dm_buf_free(&zero);
}

Test(row, timestamp_and_date_keys_sort_in_time)
{
    const char *r[] = {"{\"t\":\"1969-12-31T23:59:59Z\",\"d\":\"1969-12-31\"}",
                       "{\"t\":\"1969-12-31T23:59:59Z\",\"d\":\"1970-01-01\"}",
                       "{\"t\":\"1970-01-01T00:00:00Z\",\"d\":\"1900-01-01\"}",
                       "{\"t\":\"2026-01-01T00:00:00+01:00\",\"d\":\"1900-01-01\"}",
                       "{\"t\":\"2026-01-01T00:00:00Z\",\"d\":\"1900-01-01\"}"};
    s_field("t", DM_FT_TIMESTAMP, true);
    s_field("d", DM_FT_DATE, true);
    s_pk(0);
    s_pk(1);
    s_compile();
    s_keys_ascend(r, sizeof r / sizeof r[0]);
}

Test(row, composite_string_keys_are_self_delimiting)
{
    const char *r[] = {"{\"s\":\"a\",\"i\":10}", "{\"s\":\"a\\u0000\",\"i\":1}",
                       "{\"s\":\"a\\u0000b\",\"i\":1}", "{\"s\":\"ab\",\"i\":-1}", "{\"s\":\"b\",\"i\":0}"};
    s_field("s", DM_FT_STRING, true);
    s_field("i", DM_FT_INT, true);
    s_pk(0);
    s_pk(1);
    s_compile();
    s_keys_ascend(r, sizeof r / sizeof r[0]);
}

Test(row, key_append_matches_validate)
{
    dm_buf_t k2 = DM_BUF_INIT;
    dm_value_t v = {.type = DM_FT_STRING, .s = "a\0b", .slen = 3};
    s_field("s", DM_FT_STRING, true);
    s_pk(0);
    s_compile();
    VALID("{\"s\":\"a\\u0000b\"}");
    dm_schema_key_append(S, 0, &v, &k2);
    cr_assert_eq(k2.len, 6);
    cr_assert_arr_eq(k2.data, "a\0\xff" "b\0\x01", 6);
    cr_assert_arr_eq(key.data, k2.data, 6);
    dm_buf_free(&k2);
}

/* ---- misc ---- */

Test(row, field_index_finds_fields)
{
    s_orders();
    cr_assert_eq(dm_schema_field_index(S, "status", 6), 3);
    cr_assert_eq(dm_schema_field_index(S, "nope", 4), -1);
    cr_assert_eq(dm_schema_contract(S), &M);
}

Test(row, new_refuses_too_many_fields)
{
    M.nfields = DM_SCHEMA_MAX_FIELDS + 1;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_schema_new(&M, &S, &why), DM_ERR_TOOBIG);
    cr_assert_str_eq(why.data, "the contract has 4097 fields, over the limit of 4096");
    dm_buf_free(&why);
}

Test(row, validates_many_fields_by_hash)
{
    static char names[S_FIELDS][8];
    for (int i = 0; i < S_FIELDS; i++) {
        sprintf(names[i], "f%d", i);
        s_field(names[i], DM_FT_INT, true);
    }
    s_compile();
    char line[512] = "{";
    for (int i = S_FIELDS - 1; i >= 0; i--)
        sprintf(line + strlen(line), "\"f%d\":%d%s", i, i, i ? "," : "}");
    VALID(line);
    dm_value_t v;
    cr_assert(dm_row_get(S, row.data, row.len, 17, &v) && v.i == 17);
}
