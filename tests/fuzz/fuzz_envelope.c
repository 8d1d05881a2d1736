/* fuzz_envelope.c: one request as meshd's loop and write pipeline decode
 * it: the loop's routing peek (dm_envelope_body_field), the envelope, then per
 * body what the node does with it before any storage: the write pipeline's
 * validation (register, ingest, deregister via dm_ingest_check, against a
 * registry holding a product of this node's domain), the catalog sync
 * body (delta applied to and digest answered by an in-memory catalog,
 * reply address parsed), the SWIM body (decoded), and the fields the read
 * handlers use. */
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "fuzz.h"
#include "identity/identity.h"
#include "ingest/ingest.h"
#include "base/log.h"
#include "membership/membership.h"
#include "record/registry.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define S_DOMAIN "commerce"
#define S_RECORD_LIMIT 4096
#define S_NOW_MS 1800000000000LL
#define S_DELTA_BYTES (256 * 1024)

static const char s_orders[] =
    "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":\"DataProduct\",\"metadata\":{\"domain\":"
    "\"commerce\",\"name\":\"orders\",\"owner\":{\"contact\":\"a@b.co\",\"team\":\"t\"},"
    "\"version\":\"1.0.0\"},\"spec\":{\"schema\":{\"fields\":[{\"name\":\"orderId\",\"type\":"
    "\"uuid\"},{\"name\":\"amount\",\"type\":\"double\",\"exclusiveMinimum\":0},{\"name\":"
    "\"status\",\"type\":\"enum\",\"values\":[\"created\",\"paid\"]},{\"name\":\"ts\","
    "\"type\":\"timestamp\",\"required\":true},{\"name\":\"note\",\"type\":\"string\","
    "\"maxLength\":20}],\"primaryKey\":\"orderId\",\"type\":\"inline\"}}}";

static dm_registry_t *s_registry;
static dm_identity_t *s_self;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dm_log_init("fuzz_envelope", DM_LOG_ERR);
    DM_FUZZ_CHECK(dm_registry_new(&s_registry) == DM_OK);
    DM_FUZZ_CHECK(dm_registry_install(s_registry, 1, s_orders, strlen(s_orders), NULL) == DM_OK);
    DM_FUZZ_CHECK(dm_identity_new_ephemeral(&s_self) == DM_OK);
    return 0;
}

/* What the loop does with a CatalogSync before the transport-key check
 * and after it. */
static void s_catalog_sync(const Dm__CatalogSync *m)
{
    uint8_t id[DM_ID_PUBLIC_BYTES];
    char ep[256];
    DM_FUZZ_CHECK(m->reply_to);
    DM_FUZZ_IGNORE(dm_identity_address_parse(m->reply_to, id, ep, sizeof ep, NULL));
    dm_catalog_t *c = NULL;
    DM_FUZZ_CHECK(dm_catalog_open(NULL, s_self, &c, NULL) == DM_OK);
    dm_catalog_counts_t counts;
    bool more = false;
    dm_buf_t refused = DM_BUF_INIT, delta = DM_BUF_INIT;
    if (m->delta.len > 0)
        DM_FUZZ_IGNORE(dm_catalog_apply_delta(c, m->delta.data, m->delta.len, S_NOW_MS, &counts, &more,
                                     &refused));
    if (m->digest.len > 0)
        DM_FUZZ_IGNORE(dm_catalog_delta(c, m->digest.data, m->digest.len, S_DELTA_BYTES, &delta, &more));
    dm_buf_free(&refused);
    dm_buf_free(&delta);
    dm_catalog_destroy(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_registry)
        LLVMFuzzerInitialize(NULL, NULL);
    unsigned field = dm_envelope_body_field(data, size);
    bool write_path = field == DM__ENVELOPE__BODY_INGEST_REQ ||
                      field == DM__ENVELOPE__BODY_REGISTER_REQ ||
                      field == DM__ENVELOPE__BODY_DEREGISTER_REQ;
    if (write_path) {
        size_t rows = 0, quarantined = 0;
        DM_FUZZ_IGNORE(dm_ingest_check(s_registry, S_DOMAIN, S_RECORD_LIMIT, data, size, &rows,
                              &quarantined));
    }
    Dm__Envelope *env = dm_rpc_unpack(data, size);
    if (!env)
        return 0;
    switch (env->body_case) {
    case DM__ENVELOPE__BODY_REGISTER_REQ:
    case DM__ENVELOPE__BODY_INGEST_REQ:
    case DM__ENVELOPE__BODY_DEREGISTER_REQ:
        if (!write_path) {
            /* The loop routed it as a read (body after another field):
             * the validator must still refuse it cleanly. */
            DM_FUZZ_IGNORE(dm_ingest_check(s_registry, S_DOMAIN, S_RECORD_LIMIT, data, size, NULL, NULL));
        }
        break;
    case DM__ENVELOPE__BODY_PRODUCTS_REQ:
        DM_FUZZ_CHECK(env->products_req);
        break;
    case DM__ENVELOPE__BODY_QUARANTINE_REQ:
        DM_FUZZ_CHECK(env->quarantine_req && env->quarantine_req->domain &&
                      env->quarantine_req->product);
        break;
    case DM__ENVELOPE__BODY_DESCRIBE_REQ:
        DM_FUZZ_CHECK(env->describe_req && env->describe_req->domain &&
                      env->describe_req->product);
        break;
    case DM__ENVELOPE__BODY_QUERY_REQ:
        DM_FUZZ_CHECK(env->query_req && env->query_req->sql);
        break;
    case DM__ENVELOPE__BODY_QUERY_NEXT:
        DM_FUZZ_CHECK(env->query_next);
        break;
    case DM__ENVELOPE__BODY_QUERY_CLOSE:
        DM_FUZZ_CHECK(env->query_close);
        break;
    case DM__ENVELOPE__BODY_CATALOG_SYNC:
        DM_FUZZ_CHECK(env->catalog_sync);
        s_catalog_sync(env->catalog_sync);
        break;
    case DM__ENVELOPE__BODY_SWIM: {
        static dm_swim_msg_t msg;
        DM_FUZZ_IGNORE(dm_membership_decode(env->swim.data, env->swim.len, &msg));
        break;
    }
    default:
        break;
    }
    dm__envelope__free_unpacked(env, NULL);
    return 0;
}
