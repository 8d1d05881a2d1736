/* catalog_entry.c: one catalog entry as bytes: its wire and stored form
 * (the CatalogEntry message), the byte string its signature covers, and
 * the names of the verdicts on it. Pure codecs: catalog.c (judging and
 * storage) and catalog_sync.c (anti-entropy) both call down into this file. */
#include "catalog/catalog_priv.h"

#include "base/varint.h"

#include <stdlib.h>
#include <string.h>

/* Domain separation: a catalog signature can never be mistaken for (or
 * replayed as) a signature over anything else the node signs. */
static const char s_sign_context[] = "datamesh catalog entry v1";

static void s_be(dm_buf_t *out, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    dm_buf_append(out, b, (size_t)bytes);
}

void dm_catalog_entry_signed_bytes(const dm_catalog_entry_t *e, dm_buf_t *out)
{
    size_t klen = strlen(e->key);
    dm_buf_append(out, s_sign_context, sizeof s_sign_context); /* NUL included */
    dm_buf_append(out, e->origin, DM_ID_PUBLIC_BYTES);
    s_be(out, klen, 4);
    dm_buf_append(out, e->key, klen);
    s_be(out, e->version, 8);
    s_be(out, (uint64_t)e->issued_at_ms, 8);
    dm_buf_putc(out, e->tombstone ? 1 : 0);
    s_be(out, e->payload_len, 4);
    if (e->payload_len)
        dm_buf_append(out, e->payload, e->payload_len);
}

void dm_catalog__entry_to_pb(const dm_catalog_entry_t *e, Dm__CatalogEntry *pb)
{
    dm__catalog_entry__init(pb);
    pb->origin.data = (uint8_t *)e->origin;
    pb->origin.len = DM_ID_PUBLIC_BYTES;
    pb->key = e->key;
    pb->version = e->version;
    pb->issued_at_ms = e->issued_at_ms;
    pb->payload.data = e->payload;
    pb->payload.len = e->payload_len;
    pb->signature.data = (uint8_t *)e->signature;
    pb->signature.len = DM_ID_SIGNATURE_BYTES;
    pb->tombstone = e->tombstone;
}

size_t dm_catalog__wire_bytes(const dm_catalog_entry_t *e)
{
    Dm__CatalogEntry pb;
    dm_catalog__entry_to_pb(e, &pb);
    size_t body = dm__catalog_entry__get_packed_size(&pb);
    return 1 + dm_varint_len(body) + body;
}

bool dm_catalog__entry_view(const Dm__CatalogEntry *pb, dm_catalog_entry_t *out, dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    if (pb->origin.len != DM_ID_PUBLIC_BYTES || pb->signature.len != DM_ID_SIGNATURE_BYTES ||
        !pb->key || strnlen(pb->key, DM_CATALOG_KEY_MAX) >= DM_CATALOG_KEY_MAX ||
        pb->payload.len > DM_CATALOG_PAYLOAD_MAX) {
        if (why)
            dm_buf_printf(why,
                          "an entry needs a %d-byte origin, a %d-byte signature, a key under "
                          "%d bytes and a payload of at most %d bytes",
                          DM_ID_PUBLIC_BYTES, DM_ID_SIGNATURE_BYTES, DM_CATALOG_KEY_MAX,
                          DM_CATALOG_PAYLOAD_MAX);
        return false;
    }
    memcpy(out->origin, pb->origin.data, DM_ID_PUBLIC_BYTES);
    out->key = pb->key;
    out->version = pb->version;
    out->issued_at_ms = pb->issued_at_ms;
    out->tombstone = pb->tombstone;
    out->payload = pb->payload.len ? pb->payload.data : NULL;
    out->payload_len = pb->payload.len;
    memcpy(out->signature, pb->signature.data, DM_ID_SIGNATURE_BYTES);
    return true;
}

void dm_catalog_entry_encode(const dm_catalog_entry_t *e, dm_buf_t *out)
{
    Dm__CatalogEntry pb;
    dm_catalog__entry_to_pb(e, &pb);
    size_t n = dm__catalog_entry__get_packed_size(&pb);
    dm_buf_reserve(out, n);
    out->len += dm__catalog_entry__pack(&pb, (uint8_t *)out->data + out->len);
    out->data[out->len] = 0;
}

dm_err dm_catalog_entry_decode(const void *data, size_t len, dm_catalog_entry_t *out)
{
    memset(out, 0, sizeof *out);
    if (len > DM_CATALOG_ENTRY_MAX_BYTES)
        return DM_ERR_PROTO;
    Dm__CatalogEntry *pb = dm__catalog_entry__unpack(NULL, len, data);
    if (!pb)
        return DM_ERR_PROTO;
    dm_catalog_entry_t view;
    dm_err err = DM_ERR_PROTO;
    if (!dm_catalog__entry_view(pb, &view, NULL))
        goto out;
    err = DM_ERR_NOMEM;
    *out = view;
    out->key = strdup(view.key);
    out->payload = view.payload_len ? malloc(view.payload_len) : NULL;
    if (!out->key || (view.payload_len && !out->payload)) {
        dm_catalog_entry_clear(out);
        goto out;
    }
    if (view.payload_len)
        memcpy(out->payload, view.payload, view.payload_len);
    err = DM_OK;
out:
    dm__catalog_entry__free_unpacked(pb, NULL);
    return err;
}

void dm_catalog_entry_clear(dm_catalog_entry_t *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->payload);
    memset(e, 0, sizeof *e);
}

const char *dm_catalog_verdict_name(dm_catalog_verdict v)
{
    static const char *const names[] = {"accepted", "stale", "bad signature", "not owner",
                                        "malformed", "domain conflict", "unknown origin"};
    return (unsigned)v < DM_CATALOG__VERDICTS ? names[v] : "unknown";
}
