/* quality_keys.c: the unique checks' value keys made by the ingest
 * validator, beside each row it validates.
 *
 * Making a row's key for a unique check reads the row's columns: in the
 * validator the row was just written and is in its cache; in the writer's
 * hook (quality_batch.c), which sees the rows in primary-key order long
 * after, nearly every row is a cache miss, on the thread that bounds the
 * ingest. So the validator appends a block of keys after each row in its
 * job's buffer (past the row's length: the store never reads it), and the
 * hook takes them from there (dm_quality_batch_rows_keyed).
 *
 * A block: u8 S_MAGIC, u8 n, then n times: u64 check id, u16 key length
 * (S_NULL_KEY: a column is null, no key), the key; host byte order (it
 * never leaves the process). Entries are found by check id, so a block
 * that lacks a check's key only costs the hook making it. The hook reads a
 * block only after the batch's own rows (dm_quality_batch_rows_keyed); the
 * magic byte is a second guard, not the first. */
#include "quality/quality_priv.h"

#include <stdlib.h>

#define S_MAGIC 0xB7 /* a block's first byte */
#define S_NULL_KEY UINT16_MAX
#define S_KEYS_MAX UINT8_MAX /* unique checks a block holds */

struct dm_quality_keys {
    dm_quality__ccheck_t *cc;
    size_t n;
    const dm_schema_t *s;
    dm_buf_t key;
};

dm_err dm_quality_keys_new(const dm_contract_t *c, const dm_schema_t *s,
                           dm_quality_keys_t **out, dm_buf_t *why)
{
    *out = NULL;
    size_t want = 0;
    for (size_t i = 0; i < c->nchecks; i++)
        want += c->checks[i].rule == DM_CHECK_UNIQUE && c->checks[i].ncolumns > 0;
    if (!want)
        return DM_OK;
    dm_quality_keys_t *k = calloc(1, sizeof *k);
    if (!k || !(k->cc = calloc(want, sizeof *k->cc))) {
        free(k);
        return DM_ERR_NOMEM;
    }
    k->s = s;
    k->key = (dm_buf_t)DM_BUF_INIT;
    for (size_t i = 0; i < c->nchecks && k->n < S_KEYS_MAX; i++) {
        const dm_check_t *ck = &c->checks[i];
        if (ck->rule != DM_CHECK_UNIQUE || ck->ncolumns == 0)
            continue;
        dm_err err = dm_quality__ccheck_init(&k->cc[k->n], s, ck, why);
        if (err) {
            dm_quality_keys_destroy(&k);
            return err;
        }
        /* as the hook (quality_batch.c): unique on the primary key keeps
         * nothing, and a check defined like an earlier one is counted once */
        bool shared = false;
        for (size_t j = 0; j < k->n && !shared; j++)
            shared = k->cc[j].id == k->cc[k->n].id;
        if (k->cc[k->n].trivial || shared)
            dm_quality__ccheck_clear(&k->cc[k->n]);
        else
            k->n++;
    }
    if (!k->n)
        dm_quality_keys_destroy(&k);
    *out = k;
    return DM_OK;
}

void dm_quality_keys_destroy(dm_quality_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_quality_keys_t *k = *self_p;
    for (size_t i = 0; i < k->n; i++)
        dm_quality__ccheck_clear(&k->cc[i]);
    free(k->cc);
    dm_buf_free(&k->key);
    free(k);
    *self_p = NULL;
}

void dm_quality_keys_append(dm_quality_keys_t *self, const void *row, size_t len, dm_buf_t *out)
{
    uint8_t head[2] = {S_MAGIC, (uint8_t)self->n};
    dm_buf_append(out, head, sizeof head);
    for (size_t i = 0; i < self->n; i++) {
        bool has = dm_quality__unique_key(&self->cc[i], self->s, row, len, &self->key, NULL);
        uint16_t kl = has ? (uint16_t)self->key.len : S_NULL_KEY;
        dm_buf_append(out, &self->cc[i].id, sizeof self->cc[i].id);
        dm_buf_append(out, &kl, sizeof kl);
        if (has)
            dm_buf_append(out, self->key.data, self->key.len);
    }
}

int dm_quality__key_given(const void *row, size_t len, uint64_t id, const uint8_t **key,
                          size_t *klen)
{
    const uint8_t *p = (const uint8_t *)row + len;
    if (p[0] != S_MAGIC)
        return -1;
    size_t n = p[1];
    p += 2;
    for (size_t i = 0; i < n; i++) {
        uint64_t kid;
        uint16_t kl;
        memcpy(&kid, p, sizeof kid);
        memcpy(&kl, p + sizeof kid, sizeof kl);
        p += sizeof kid + sizeof kl;
        if (kid == id) {
            *key = p;
            *klen = kl == S_NULL_KEY ? 0 : kl;
            return kl != S_NULL_KEY;
        }
        p += kl == S_NULL_KEY ? 0 : kl;
    }
    return -1;
}
