/* test_contract_schema.c: spec.schema of the contract parser (suite
 * "contract"): fields, constraints, primary keys, avro schemas. */
#include "contract_test.h"
#include "fixture.h"

/* ---- schema and fields ---- */

Test(contract, rejects_unknown_field_type_with_suggestion)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: integer}");
    expect_err(&r, 15, 25, "field 'n': type 'integer' is not one of string, int, double, boolean, "
                           "timestamp, date, uuid, enum (did you mean 'int'?)");
    result_free(&r);
}

Test(contract, suggests_close_field_type)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: strng}");
    expect_err(&r, 15, 25, "(did you mean 'string'?)");
    result_free(&r);
}

Test(contract, rejects_missing_field_type)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n}");
    expect_err(&r, 15, 9, "field 'n' is missing the required key 'type'");
    result_free(&r);
}

Test(contract, rejects_duplicate_field)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: id, type: int}");
    expect_err(&r, 15, 16, "duplicate field name 'id' (first declared at line 14)");
    result_free(&r);
}

Test(contract, field_names_are_case_sensitive)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: ID, type: int}");
    expect_ok(&r);
    result_free(&r);
}

Test(contract, rejects_bad_field_name)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: 1n, type: int}");
    expect_err(&r, 15, 16, "field name '1n' must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$");
    result_free(&r);
}

Test(contract, rejects_empty_field_list)
{
    result_t r = parse("apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata: {name: o, domain: c, "
                       "version: 1.0.0, owner: {team: t, contact: a@b.co}}\n"
                       "spec:\n  schema:\n    fields: []\n");
    expect_err(&r, 6, 13, "spec.schema.fields must list at least one field");
    result_free(&r);
}

Test(contract, rejects_missing_fields)
{
    result_t r = parse("apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata: {name: o, domain: c, "
                       "version: 1.0.0, owner: {team: t, contact: a@b.co}}\n"
                       "spec:\n  schema:\n    type: inline\n");
    expect_err(&r, 6, 5, "spec.schema is missing the required key 'fields'");
    result_free(&r);
}

Test(contract, rejects_unknown_schema_type)
{
    result_t r = parse_patch("    primaryKey:", "    type: json\n    primaryKey: id");
    expect_err(&r, 12, 11, "spec.schema.type 'json' is not one of inline, avro");
    result_free(&r);
}

Test(contract, reads_required_and_description)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, required: true, description: count}");
    expect_ok(&r);
    cr_assert(r.cs[0]->fields[1].required);
    cr_assert_str_eq(r.cs[0]->fields[1].description, "count");
    result_free(&r);
}

Test(contract, rejects_quoted_boolean)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, required: \"true\"}");
    expect_err(&r, 15, 40, "required: expected true or false, got the string \"true\"");
    result_free(&r);
}

Test(contract, rejects_yes_as_boolean)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, required: yes}");
    expect_err(&r, 15, 40, "required: expected true or false, got 'yes'");
    result_free(&r);
}

Test(contract, rejects_enum_without_values)
{
    result_t r = parse_patch("      - {name: st,", "      - {name: st, type: enum}");
    expect_err(&r, 20, 9, "field 'st' is an enum and needs 'values'");
    result_free(&r);
}

Test(contract, rejects_empty_enum_values)
{
    result_t r = parse_patch("      - {name: st,", "      - {name: st, type: enum, values: []}");
    expect_err(&r, 20, 40, "field 'st': values must list at least one value");
    result_free(&r);
}

Test(contract, rejects_duplicate_enum_value)
{
    result_t r = parse_patch("      - {name: st,", "      - {name: st, type: enum, values: [a, a]}");
    expect_err(&r, 20, 44, "field 'st': values: duplicate value 'a'");
    result_free(&r);
}

Test(contract, rejects_values_on_string)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, values: [a]}");
    expect_err(&r, 17, 41, "field 's': values applies only to enum fields, not string");
    result_free(&r);
}

Test(contract, keeps_int_bounds_exact)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, minimum: -9223372036854775808, maximum: 9223372036854775807}");
    expect_ok(&r);
    const dm_field_t *f = &r.cs[0]->fields[1];
    cr_assert(f->has_minimum && f->minimum.is_int);
    cr_assert_eq(f->minimum.i, INT64_MIN);
    cr_assert_eq(f->maximum.i, INT64_MAX);
    result_free(&r);
}

Test(contract, rejects_fractional_bound_on_int)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, minimum: 1.5}");
    expect_err(&r, 15, 39, "field 'n': minimum: expected an integer");
    result_free(&r);
}

Test(contract, reads_double_bounds)
{
    result_t r = parse_patch("      - {name: x,", "      - {name: x, type: double, exclusiveMinimum: 0, maximum: 1e3}");
    expect_ok(&r);
    const dm_field_t *f = &r.cs[0]->fields[2];
    cr_assert(f->has_exclusive_minimum);
    cr_assert_float_eq(f->exclusive_minimum.d, 0, 1e-12);
    cr_assert_float_eq(f->maximum.d, 1000, 1e-12);
    cr_assert_not(f->maximum.is_int);
    result_free(&r);
}

Test(contract, rejects_quoted_number)
{
    result_t r = parse_patch("      - {name: x,", "      - {name: x, type: double, minimum: \"99.9\"}");
    expect_err(&r, 15 + 1, 42, "field 'x': minimum: expected a number, got the string \"99.9\"");
    result_free(&r);
}

Test(contract, rejects_minimum_over_maximum)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, minimum: 5, maximum: 1}");
    expect_err(&r, 15, 51, "field 'n': maximum 1 is less than minimum 5");
    result_free(&r);
}

Test(contract, rejects_exclusive_bounds_that_meet)
{
    result_t r = parse_patch("      - {name: x,", "      - {name: x, type: double, exclusiveMinimum: 1, exclusiveMaximum: 1}");
    expect_err(&r, 16, 72, "exclusiveMaximum 1 must be greater than exclusiveMinimum 1");
    result_free(&r);
}

Test(contract, rejects_minimum_at_exclusive_maximum)
{
    result_t r = parse_patch("      - {name: x,", "      - {name: x, type: double, minimum: 2, exclusiveMaximum: 2}");
    expect_err(&r, 16, 63, "exclusiveMaximum 2 must be greater than minimum 2");
    result_free(&r);
}

Test(contract, rejects_minimum_on_string)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, minimum: 1}");
    expect_err(&r, 17, 42, "field 's': minimum applies only to int and double fields, not string");
    result_free(&r);
}

Test(contract, reads_string_constraints)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, minLength: 1, maxLength: 8, pattern: '^[A-Z]+$'}");
    expect_ok(&r);
    const dm_field_t *f = &r.cs[0]->fields[3];
    cr_assert_eq(f->min_length, 1);
    cr_assert_eq(f->max_length, 8);
    cr_assert_str_eq(f->pattern, "^[A-Z]+$");
    result_free(&r);
}

Test(contract, rejects_negative_min_length)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, minLength: -1}");
    expect_err(&r, 17, 44, "field 's': minLength must be zero or more");
    result_free(&r);
}

Test(contract, rejects_min_length_over_max_length)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, minLength: 5, maxLength: 2}");
    expect_err(&r, 17, 58, "field 's': maxLength 2 is less than minLength 5");
    result_free(&r);
}

Test(contract, rejects_length_on_int)
{
    result_t r = parse_patch("      - {name: n,", "      - {name: n, type: int, maxLength: 2}");
    expect_err(&r, 15, 41, "field 'n': maxLength applies only to string fields, not int");
    result_free(&r);
}

Test(contract, rejects_pattern_that_does_not_compile)
{
    result_t r = parse_patch("      - {name: s,", "      - {name: s, type: string, pattern: 'a(b'}");
    expect_err(&r, 17, 42, "field 's': pattern 'a(b' is not a valid POSIX extended regular expression");
    result_free(&r);
}

Test(contract, rejects_pattern_on_enum)
{
    result_t r = parse_patch("      - {name: st,", "      - {name: st, type: enum, values: [a], pattern: a}");
    expect_err(&r, 20, 54, "field 'st': pattern applies only to string fields, not enum");
    result_free(&r);
}

Test(contract, reads_composite_primary_key)
{
    result_t r = parse_patch("    primaryKey:", "    primaryKey: [n, d]");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert_eq(c->npk, 2);
    cr_assert_eq(c->pk[0], 1);
    cr_assert_eq(c->pk[1], 5);
    cr_assert(c->fields[5].required);
    cr_assert_not(c->fields[0].primary_key);
    result_free(&r);
}

Test(contract, rejects_primary_key_of_unknown_field)
{
    result_t r = parse_patch("    primaryKey:", "    primaryKey: idd");
    expect_err(&r, 12, 17, "primaryKey field 'idd' is not a field of the schema (fields: id, n, x, s, "
                           "ts, d, st) (did you mean 'id'?)");
    result_free(&r);
}

Test(contract, rejects_repeated_primary_key_field)
{
    result_t r = parse_patch("    primaryKey:", "    primaryKey: [id, id]");
    expect_err(&r, 12, 22, "primaryKey names field 'id' twice");
    result_free(&r);
}

Test(contract, rejects_double_primary_key)
{
    result_t r = parse_patch("    primaryKey:", "    primaryKey: x");
    expect_err(&r, 12, 17, "primaryKey field 'x' is double");
    result_free(&r);
}

Test(contract, rejects_primary_key_declared_not_required)
{
    result_t r = parse_patch("      - {name: id,", "      - {name: id, type: uuid, required: false}");
    expect_err(&r, 14, 42, "field 'id' is in primaryKey, so it is required");
    result_free(&r);
}

Test(contract, rejects_location_on_inline_schema)
{
    result_t r = parse_patch("    primaryKey:", "    location: x.avsc\n    primaryKey: id");
    expect_err(&r, 12, 15, "spec.schema.location applies only to type: avro");
    result_free(&r);
}

Test(contract, refuses_avro_without_basedir)
{
    result_t r = parse_patch("    primaryKey:", "    type: avro\n    location: x.avsc\n    primaryKey: id");
    expect_err(&r, 13, 15, "avro schemas are resolved by the client; send the canonical contract");
    expect_err(&r, 16, 7, "spec.schema.fields does not apply to an avro schema");
    result_free(&r);
}

/* ---- avro ---- */

/* Writes contract.yaml (base with an avro schema) and schema.avsc into a
 * fresh temp dir and parses the contract file. */
static result_t parse_avro(const char *avsc, const char *schema_extra)
{
    char dir[64];
    cr_assert(dm_t_tmpdir(dir, sizeof dir, "contract"));
    char path[256];
    snprintf(path, sizeof path, "%s/schema.avsc", dir);
    FILE *f = fopen(path, "w");
    fputs(avsc, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/contract.yaml", dir);
    f = fopen(path, "w");
    fprintf(f, "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: orders\n"
               "  domain: commerce\n  version: 1.0.0\n  owner: {team: t, contact: a@b.co}\n"
               "spec:\n  schema:\n    type: avro\n    location: schema.avsc\n%s",
            schema_extra);
    fclose(f);
    result_t r = parse_file(path);
    dm_t_rmdir(dir);
    return r;
}

static const char *const s_avro_all =
    "{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
    "{\"name\": \"id\", \"type\": {\"type\": \"string\", \"logicalType\": \"uuid\"}, \"doc\": \"key\"},"
    "{\"name\": \"b\", \"type\": \"boolean\"}, {\"name\": \"i\", \"type\": \"int\"},"
    "{\"name\": \"l\", \"type\": [\"null\", \"long\"]}, {\"name\": \"f\", \"type\": [\"float\", \"null\"]},"
    "{\"name\": \"d\", \"type\": \"double\"}, {\"name\": \"s\", \"type\": {\"type\": \"string\"}},"
    "{\"name\": \"e\", \"type\": {\"type\": \"enum\", \"name\": \"E\", \"symbols\": [\"x\", \"y\"]}},"
    "{\"name\": \"day\", \"type\": {\"type\": \"int\", \"logicalType\": \"date\"}},"
    "{\"name\": \"ms\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}},"
    "{\"name\": \"us\", \"type\": [\"null\", {\"type\": \"long\", \"logicalType\": \"timestamp-micros\"}]}"
    "]}";

Test(contract, reads_avro_schema)
{
    result_t r = parse_avro(s_avro_all, "    primaryKey: id\n");
    expect_ok(&r);
    const dm_contract_t *c = r.cs[0];
    cr_assert(c->schema_from_avro);
    cr_assert_eq(c->nfields, 11);
    const dm_ftype want[] = {DM_FT_UUID,   DM_FT_BOOLEAN, DM_FT_INT,  DM_FT_INT,
                             DM_FT_DOUBLE, DM_FT_DOUBLE,  DM_FT_STRING, DM_FT_ENUM,
                             DM_FT_DATE,   DM_FT_TIMESTAMP, DM_FT_TIMESTAMP};
    for (size_t i = 0; i < 11; i++)
        cr_assert_eq(c->fields[i].type, want[i], "field %zu", i);
    cr_assert(c->fields[1].required);
    cr_assert_not(c->fields[3].required, "[null, long] is nullable");
    cr_assert_not(c->fields[4].required, "[float, null] is nullable");
    cr_assert_not(c->fields[10].required);
    cr_assert_str_eq(c->fields[0].description, "key");
    cr_assert(c->fields[0].primary_key && c->fields[0].required);
    cr_assert_eq(c->fields[7].nvalues, 2);
    assert_round_trip(c);
    result_free(&r);
}

static void expect_avro_err(const char *avsc, const char *msg)
{
    result_t r = parse_avro(avsc, "");
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "contract.yaml:11:15: error: "), "%s", r.text.data);
    cr_assert(strstr(r.text.data, msg), "want '%s' in:\n%s", msg, r.text.data);
    result_free(&r);
}

Test(contract, rejects_avro_array_naming_field)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"tags\", "
                    "\"type\": {\"type\": \"array\", \"items\": \"string\"}}]}",
                    "avro field 'tags': arrays are not supported (supported: boolean, int, long, "
                    "float, double, string, enum, nullable unions, logical types date, "
                    "timestamp-millis, timestamp-micros, uuid)");
}

Test(contract, rejects_avro_map)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"m\", "
                    "\"type\": {\"type\": \"map\", \"values\": \"long\"}}]}",
                    "avro field 'm': maps are not supported");
}

Test(contract, rejects_avro_nested_record)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"n\", "
                    "\"type\": {\"type\": \"record\", \"name\": \"N\", \"fields\": []}}]}",
                    "avro field 'n': nested records are not supported");
}

Test(contract, rejects_avro_bytes)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"raw\", \"type\": \"bytes\"}]}",
                    "avro field 'raw': bytes are not supported");
}

Test(contract, rejects_avro_fixed)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"h\", "
                    "\"type\": {\"type\": \"fixed\", \"name\": \"H\", \"size\": 16}}]}",
                    "avro field 'h': fixed is not supported");
}

Test(contract, rejects_avro_decimal)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"p\", "
                    "\"type\": {\"type\": \"bytes\", \"logicalType\": \"decimal\", \"precision\": 9}}]}",
                    "avro field 'p': logical type decimal is not supported");
}

Test(contract, rejects_avro_multi_type_union)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"u\", "
                    "\"type\": [\"null\", \"string\", \"long\"]}]}",
                    "avro field 'u': unions other than [\"null\", T] are not supported");
}

Test(contract, rejects_avro_logical_type_on_wrong_base)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"t\", "
                    "\"type\": {\"type\": \"int\", \"logicalType\": \"timestamp-millis\"}}]}",
                    "avro field 't': logical type timestamp-millis needs type long, not int");
}

Test(contract, rejects_avro_top_level_not_record)
{
    expect_avro_err("{\"type\": \"enum\", \"name\": \"E\", \"symbols\": [\"a\"]}",
                    "avro schema 'schema.avsc': the top level must be a record");
}

Test(contract, rejects_avro_invalid_json)
{
    expect_avro_err("{\"type\": \"record\",\n \"fields\": [\n oops]}",
                    "avro schema 'schema.avsc': not valid JSON (near line 3 of the .avsc file)");
}

Test(contract, reports_every_bad_avro_field)
{
    result_t r = parse_avro("{\"type\": \"record\", \"name\": \"R\", \"fields\": ["
                            "{\"name\": \"a\", \"type\": \"bytes\"}, {\"name\": \"b\", \"type\": \"int\"},"
                            "{\"name\": \"c\", \"type\": {\"type\": \"array\", \"items\": \"int\"}}]}",
                            "");
    cr_assert_eq(r.diags.count, 2, "%s", r.text.data);
    result_free(&r);
}

Test(contract, rejects_missing_avro_file)
{
    result_t r = parse_file(DATA "missing-avsc.yaml");
    cr_assert_eq(r.rc, DM_ERR_INVALID);
    cr_assert(strstr(r.text.data, "missing-avsc.yaml:9:39: error: avro schema 'nope.avsc': cannot "
                                  "read " DATA "nope.avsc: No such file or directory"),
              "%s", r.text.data);
    result_free(&r);
}

Test(contract, rejects_remote_avro_location)
{
    result_t r = parse_avro(s_avro_all, "");
    expect_ok(&r);
    result_free(&r);
    r = parse_patch("    primaryKey:", "    type: avro\n    location: https://schemas.example.com/o.avsc");
    expect_err(&r, 13, 15, "spec.schema.location 'https://schemas.example.com/o.avsc' is remote; "
                           "remote schemas are not fetched");
    result_free(&r);
}

Test(contract, rejects_avro_field_with_invalid_name)
{
    expect_avro_err("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"a-b\", \"type\": \"int\"}]}",
                    "avro field 'a-b': the name must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$");
}
