/* index_pkf_file.c: the writer's product filters (index_pkf.c) kept over a
 * clean restart: written to DIR/pkf.bin when the store is closed, read
 * back when it is opened if LMDB's last transaction id is still the one
 * they were written at (nothing changed the store in between), and the
 * file deleted once read, so that a crash never finds an old one valid.
 * Otherwise the first batch into a big product builds its filter by a walk
 * of its keys (~0.1 us a key: ~1.2 s at 14M keys). The file is checked as
 * any input: a bad or short one is ignored. */
#include "storage/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAGIC "DMPKF1\n"
#define S_MAGIC_BYTES 8
#define S_NAME "/pkf.bin"
#define S_BLOCK_BYTES 64
#define S_FILTERS_MAX 65536

typedef struct {
    uint64_t pid, keys, cap, added, len;
} s_head;

static bool s_path(dm_store_t *self, char *out, size_t cap, const char *suffix)
{
    const char *dir = NULL;
    if (mdb_env_get_path(self->env, &dir) != MDB_SUCCESS || !dir)
        return false;
    int n = snprintf(out, cap, "%s%s%s", dir, S_NAME, suffix);
    return n > 0 && (size_t)n < cap;
}

static uint64_t s_txnid(dm_store_t *self)
{
    MDB_envinfo info;
    return mdb_env_info(self->env, &info) == MDB_SUCCESS ? (uint64_t)info.me_last_txnid : 0;
}

void dm_store__pkf_save(dm_store_t *self)
{
    char path[4096], tmp[4096];
    if (!self->npkf) /* also: an environment that never opened has none */
        return;
    uint64_t txnid = s_txnid(self), n = 0;
    if (!txnid || !s_path(self, path, sizeof path, "") || !s_path(self, tmp, sizeof tmp, ".tmp"))
        return;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    for (size_t i = 0; i < self->npkf; i++)
        n += self->pkf[i]->bits != NULL;
    bool ok = fwrite(S_MAGIC, 1, S_MAGIC_BYTES, f) == S_MAGIC_BYTES &&
              fwrite(&txnid, sizeof txnid, 1, f) == 1 && fwrite(&n, sizeof n, 1, f) == 1;
    for (size_t i = 0; ok && i < self->npkf; i++) {
        const dm_store__pkf_t *p = self->pkf[i];
        s_head h = {p->pid, p->keys, p->cap, p->added, p->len};
        if (p->bits)
            ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(p->bits, 1, p->len, f) == p->len;
    }
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
}

/* Reads one filter of the file; false when it is not one. */
static bool s_read_one(dm_store_t *self, FILE *f, uint64_t *bytes)
{
    s_head h;
    if (fread(&h, sizeof h, 1, f) != 1 || h.pid > UINT32_MAX || h.len < S_BLOCK_BYTES ||
        h.len % S_BLOCK_BYTES || h.len > DM_STORE_PKF_BYTES_MAX - *bytes)
        return false;
    dm_store__pkf_t *p = calloc(1, sizeof *p);
    dm_store__pkf_t **grown = p ? realloc(self->pkf, (self->npkf + 1) * sizeof *grown) : NULL;
    if (grown)
        self->pkf = grown;
    if (!grown || !(p->bits = malloc((size_t)h.len)) ||
        fread(p->bits, 1, (size_t)h.len, f) != h.len) {
        if (p)
            free(p->bits);
        free(p);
        return false;
    }
    *p = (dm_store__pkf_t){(uint32_t)h.pid, p->bits, (size_t)h.len, h.keys, h.cap, h.added};
    self->pkf[self->npkf++] = p;
    self->pkf_bytes += p->len;
    *bytes += h.len;
    return true;
}

void dm_store__pkf_load(dm_store_t *self)
{
    char path[4096];
    if (!s_path(self, path, sizeof path, ""))
        return;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    char magic[S_MAGIC_BYTES];
    uint64_t txnid = 0, n = 0, bytes = 0;
    bool ok = fread(magic, 1, sizeof magic, f) == sizeof magic &&
              memcmp(magic, S_MAGIC, S_MAGIC_BYTES) == 0 && fread(&txnid, sizeof txnid, 1, f) == 1 &&
              fread(&n, sizeof n, 1, f) == 1 && txnid == s_txnid(self) && n <= S_FILTERS_MAX;
    for (uint64_t i = 0; ok && i < n; i++)
        ok = s_read_one(self, f, &bytes);
    fclose(f);
    unlink(path); /* valid for this open only */
    if (!ok) /* all or nothing */
        dm_store__pkf_free_all(self);
}

void dm_store__pkf_free_all(dm_store_t *self)
{
    for (size_t i = 0; i < self->npkf; i++) {
        free(self->pkf[i]->bits);
        free(self->pkf[i]);
    }
    free(self->pkf);
    self->pkf = NULL;
    self->npkf = 0;
    self->pkf_bytes = 0;
}
