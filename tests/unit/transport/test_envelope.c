/* test_envelope.c: the Envelope builders, the Error reply and the peek at
 * the body field the node loop routes by. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "transport/envelope.h"

/* Packs env into a fresh buffer; *len its size. */
static uint8_t *s_pack(const Dm__Envelope *env, size_t *len)
{
    *len = dm__envelope__get_packed_size(env);
    uint8_t *buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    dm__envelope__pack(env, buf);
    return buf;
}

Test(envelope, init_carries_id_and_body)
{
    Dm__Envelope env;
    Dm__ProductsReq body = DM__PRODUCTS_REQ__INIT;
    body.mesh = true;
    dm_envelope_init(&env, 42, DM__ENVELOPE__BODY_PRODUCTS_REQ, &body);
    size_t len;
    uint8_t *buf = s_pack(&env, &len);
    Dm__Envelope *back = dm__envelope__unpack(NULL, len, buf);
    cr_assert_not_null(back);
    cr_assert_eq(back->id, 42);
    cr_assert_eq(back->body_case, DM__ENVELOPE__BODY_PRODUCTS_REQ);
    cr_assert(back->products_req->mesh);
    dm__envelope__free_unpacked(back, NULL);
    free(buf);
}

Test(envelope, swim_carries_the_bytes)
{
    const uint8_t swim[] = {1, 2, 3};
    Dm__Envelope env;
    dm_envelope_swim(&env, swim, sizeof swim);
    size_t len;
    uint8_t *buf = s_pack(&env, &len);
    Dm__Envelope *back = dm__envelope__unpack(NULL, len, buf);
    cr_assert_not_null(back);
    cr_assert_eq(back->id, 0);
    cr_assert_eq(back->body_case, DM__ENVELOPE__BODY_SWIM);
    cr_assert_eq(back->swim.len, sizeof swim);
    cr_assert_arr_eq(back->swim.data, swim, sizeof swim);
    dm__envelope__free_unpacked(back, NULL);
    free(buf);
}

Test(envelope, error_carries_code_and_text)
{
    Dm__Envelope env;
    Dm__Error e;
    dm_envelope_error(&env, &e, 7, DM_ERR_BUSY, "the node is busy");
    size_t len;
    uint8_t *buf = s_pack(&env, &len);
    Dm__Envelope *back = dm__envelope__unpack(NULL, len, buf);
    cr_assert_not_null(back);
    cr_assert_eq(back->id, 7);
    cr_assert_eq(back->body_case, DM__ENVELOPE__BODY_ERROR);
    cr_assert_eq(back->error->code, (uint32_t)DM_ERR_BUSY);
    cr_assert_str_eq(back->error->message, "the node is busy");
    dm__envelope__free_unpacked(back, NULL);
    free(buf);
}

Test(envelope, body_field_skips_the_id)
{
    Dm__Envelope env;
    Dm__Ping ping = DM__PING__INIT;
    dm_envelope_init(&env, 300, DM__ENVELOPE__BODY_PING, &ping);
    size_t len;
    uint8_t *buf = s_pack(&env, &len);
    cr_assert_eq(dm_envelope_body_field(buf, len), DM__ENVELOPE__BODY_PING);
    free(buf);
}

Test(envelope, body_field_without_an_id)
{
    Dm__Envelope env;
    Dm__IngestReq req = DM__INGEST_REQ__INIT;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_INGEST_REQ, &req);
    size_t len;
    uint8_t *buf = s_pack(&env, &len);
    cr_assert_eq(dm_envelope_body_field(buf, len), DM__ENVELOPE__BODY_INGEST_REQ);
    free(buf);
}

Test(envelope, body_field_of_an_empty_envelope_is_zero)
{
    const uint8_t id_only[] = {0x08, 0x05};
    cr_assert_eq(dm_envelope_body_field(id_only, sizeof id_only), 0);
    cr_assert_eq(dm_envelope_body_field(NULL, 0), 0);
}

Test(envelope, body_field_refuses_a_cut_id)
{
    const uint8_t cut[] = {0x08, 0x85};
    cr_assert_eq(dm_envelope_body_field(cut, sizeof cut), 0);
}

Test(envelope, body_field_refuses_an_id_of_the_wrong_wire_type)
{
    const uint8_t fixed64_id[] = {0x09, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(dm_envelope_body_field(fixed64_id, sizeof fixed64_id), 0);
}
