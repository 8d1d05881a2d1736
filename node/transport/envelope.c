/* envelope.c: building Envelopes and peeking at their body field. */
#include "transport/envelope.h"

#include <assert.h>

#include "base/varint.h"

void dm_envelope_init(Dm__Envelope *env, uint64_t id, Dm__Envelope__BodyCase body_case,
                      void *body)
{
    assert(body_case != DM__ENVELOPE__BODY_SWIM);
    dm__envelope__init(env);
    env->id = id;
    env->body_case = body_case;
    /* Every message body shares the one union slot (C11 6.2.5: pointers to
     * structures have one representation), so one member sets any of them. */
    env->error = body;
}

void dm_envelope_swim(Dm__Envelope *env, const uint8_t *data, size_t len)
{
    dm__envelope__init(env);
    env->body_case = DM__ENVELOPE__BODY_SWIM;
    env->swim.data = (uint8_t *)data;
    env->swim.len = len;
}

void dm_envelope_error(Dm__Envelope *env, Dm__Error *e, uint64_t id, dm_err code,
                       const char *text)
{
    dm__error__init(e);
    e->code = (uint32_t)code;
    e->message = (char *)text;
    dm_envelope_init(env, id, DM__ENVELOPE__BODY_ERROR, e);
}

unsigned dm_envelope_body_field(const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t i = 0;
    while (p && i < len) {
        uint64_t key = 0, id = 0;
        size_t n = dm_varint_decode(p + i, len - i, &key);
        if (n == 0)
            return 0;
        i += n;
        uint64_t field = key >> 3;
        unsigned wire = (unsigned)(key & 7);
        if (field >= 2)
            return field > UINT32_MAX ? 0 : (unsigned)field;
        if (field != 1 || wire != 0)
            return 0;
        n = dm_varint_decode(p + i, len - i, &id);
        if (n == 0)
            return 0;
        i += n;
    }
    return 0;
}
