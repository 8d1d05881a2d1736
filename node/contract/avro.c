/* avro.c: converts a local .avsc record schema into contract fields.
 *
 * Only the flat subset that maps one-to-one onto contract types is taken;
 * every other construct is refused with a message naming the field and the
 * construct, so that a client never registers a contract that silently
 * lost part of its schema. */
#include "contract/avro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "contract/contract_priv.h"
#include "base/lines.h"

#define S_SUPPORTED                                                                          \
    "(supported: boolean, int, long, float, double, string, enum, nullable unions, logical " \
    "types date, timestamp-millis, timestamp-micros, uuid)"

#define S_STR2(v) #v
#define S_STR(v) S_STR2(v) /* a numeric macro as a string literal */

typedef struct {
    const char *location, *file;
    unsigned line, col;
    dm_diags_t *diags;
    int errors;
} s_ctx_t;

static void s_err(s_ctx_t *x, const char *field, const char *fmt, const char *arg)
{
    char what[256];
    if (field)
        snprintf(what, sizeof what, "avro field '%.128s'", field);
    else
        snprintf(what, sizeof what, "avro schema '%.200s'", x->location);
    dm_buf_t msg = DM_BUF_INIT;
    dm_buf_printf(&msg, "%s: ", what);
    dm_buf_printf(&msg, fmt, arg ? arg : "");
    dm_diags_add(x->diags, x->file, x->line, x->col, "%s", msg.data);
    dm_buf_free(&msg);
    x->errors++;
}

/* Reads the whole file; returns its text (caller frees) or NULL. */
static char *s_read(s_ctx_t *x, const char *path, size_t *len, dm_err *rc)
{
    FILE *f = NULL;
    struct stat st;
    char *buf = NULL;
    dm_buf_t why = DM_BUF_INIT;
    int fd = -1;
    *rc = DM_ERR_IO;
    if (dm_lines_open_read(path, DM_FILE_REGULAR, &fd, &why) != DM_OK ||
        !(f = fdopen(fd, "rb")) || fstat(fd, &st) != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot read %.300s: %s", path,
                 fd < 0 ? (why.len ? why.data : "?") : strerror(errno));
        dm_buf_free(&why);
        if (fd >= 0 && !f)
            close(fd);
        s_err(x, NULL, "%s", msg);
        goto out;
    }
    if (st.st_size > DM_CONTRACT_MAX_FILE) {
        s_err(x, NULL, "the file is larger than %s bytes", "1048576");
        *rc = DM_ERR_TOOBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        abort();
    *len = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        s_err(x, NULL, "cannot read it: %s", strerror(errno));
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[*len] = 0;
    *rc = DM_OK;
out:
    if (f)
        fclose(f);
    return buf;
}

/* A primitive type name -> contract type; false if not supported. */
static bool s_primitive(s_ctx_t *x, const char *field, const char *t, dm_ftype *out)
{
    static const struct {
        const char *avro;
        dm_ftype type;
    } map[] = {{"boolean", DM_FT_BOOLEAN}, {"int", DM_FT_INT},       {"long", DM_FT_INT},
               {"float", DM_FT_DOUBLE},    {"double", DM_FT_DOUBLE}, {"string", DM_FT_STRING}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(t, map[i].avro) == 0) {
            *out = map[i].type;
            return true;
        }
    if (strcmp(t, "bytes") == 0)
        s_err(x, field, "bytes are not supported %s", S_SUPPORTED);
    else if (strcmp(t, "null") == 0)
        s_err(x, field, "a field that is always null is not supported %s", S_SUPPORTED);
    else if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0 || strcmp(t, "record") == 0 ||
             strcmp(t, "fixed") == 0 || strcmp(t, "enum") == 0)
        s_err(x, field, "type '%s' must be written as a JSON object, and only enum is supported "
                        S_SUPPORTED, t);
    else
        s_err(x, field, "type '%s' (a reference to a named type) is not supported " S_SUPPORTED,
              t);
    return false;
}

/* Reports the first string of n (each at base + i * stride, a char *)
 * that repeats an earlier one, through fmt; returns false if there is one.
 * Sorting keeps this O(n log n). */
static bool s_unique(s_ctx_t *x, const char *field, const void *base, size_t n, size_t stride,
                     const char *fmt)
{
    dm_sidx_t idx = DM_SIDX_INIT;
    for (size_t i = 0; i < n; i++) {
        const char *s = *(const char *const *)((const char *)base + i * stride);
        dm_sidx_add(&idx, s, strlen(s), i);
    }
    dm_sidx_sort(&idx);
    size_t dup = DM_SIDX_NONE; /* the earliest repeat, as the pairwise scan reported */
    for (size_t i = 1; i < idx.n; i++)
        if (dm_sidx_dup(&idx, i) && (dup == DM_SIDX_NONE || idx.e[i].pos < idx.e[dup].pos))
            dup = i;
    if (dup != DM_SIDX_NONE)
        s_err(x, field ? field : idx.e[dup].s, fmt, field ? idx.e[dup].s : "");
    dm_sidx_free(&idx);
    return dup == DM_SIDX_NONE;
}

static bool s_enum(s_ctx_t *x, const char *field, const cJSON *t, dm_field_t *f)
{
    const cJSON *sym = cJSON_GetObjectItemCaseSensitive(t, "symbols");
    int n = cJSON_GetArraySize(sym);
    if (!cJSON_IsArray(sym) || n == 0) {
        s_err(x, field, "an enum needs a non-empty 'symbols' array%s", "");
        return false;
    }
    if (n > DM_CONTRACT_MAX_VALUES) {
        s_err(x, field, "an enum has at most " S_STR(DM_CONTRACT_MAX_VALUES)
                        " symbols (the limit DM_CONTRACT_MAX_VALUES)%s", "");
        return false;
    }
    f->values = calloc((size_t)n, sizeof *f->values);
    if (!f->values)
        abort();
    const cJSON *s;
    cJSON_ArrayForEach(s, sym)
    {
        if (!cJSON_IsString(s) || !s->valuestring[0]) {
            s_err(x, field, "enum symbols must be non-empty strings%s", "");
            return false;
        }
        f->values[f->nvalues++] = dm_contract__strdup(s->valuestring);
    }
    f->type = DM_FT_ENUM;
    return s_unique(x, field, (const char *const *)f->values, f->nvalues, sizeof *f->values,
                    "duplicate enum symbol '%s'");
}

/* A type object: enum, a primitive with a logical type, or unsupported. */
static bool s_object(s_ctx_t *x, const char *field, const cJSON *t, dm_field_t *f)
{
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(t, "logicalType");
    if (!cJSON_IsString(ty)) {
        s_err(x, field, "a type object needs a string 'type' %s", S_SUPPORTED);
        return false;
    }
    const char *b = ty->valuestring;
    if (strcmp(b, "enum") == 0)
        return s_enum(x, field, t, f);
    if (strcmp(b, "array") == 0) {
        s_err(x, field, "arrays are not supported %s", S_SUPPORTED);
        return false;
    }
    if (strcmp(b, "map") == 0) {
        s_err(x, field, "maps are not supported %s", S_SUPPORTED);
        return false;
    }
    if (strcmp(b, "record") == 0) {
        s_err(x, field, "nested records are not supported %s", S_SUPPORTED);
        return false;
    }
    if (strcmp(b, "fixed") == 0) {
        s_err(x, field, "fixed is not supported %s", S_SUPPORTED);
        return false;
    }
    if (!lt)
        return s_primitive(x, field, b, &f->type);
    if (!cJSON_IsString(lt)) {
        s_err(x, field, "logicalType must be a string %s", S_SUPPORTED);
        return false;
    }
    static const struct {
        const char *logical, *base;
        dm_ftype type;
    } logicals[] = {{"date", "int", DM_FT_DATE},
                    {"timestamp-millis", "long", DM_FT_TIMESTAMP},
                    {"timestamp-micros", "long", DM_FT_TIMESTAMP},
                    {"uuid", "string", DM_FT_UUID}};
    for (size_t i = 0; i < sizeof logicals / sizeof logicals[0]; i++) {
        if (strcmp(lt->valuestring, logicals[i].logical) != 0)
            continue;
        if (strcmp(b, logicals[i].base) != 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "logical type %s needs type %s, not %.64s",
                     logicals[i].logical, logicals[i].base, b);
            s_err(x, field, "%s", msg);
            return false;
        }
        f->type = logicals[i].type;
        return true;
    }
    if (strcmp(lt->valuestring, "decimal") == 0)
        s_err(x, field, "logical type decimal is not supported %s", S_SUPPORTED);
    else
        s_err(x, field, "logical type '%s' is not supported " S_SUPPORTED, lt->valuestring);
    return false;
}

/* Resolves a field's type (no unions inside). */
static bool s_type(s_ctx_t *x, const char *field, const cJSON *t, dm_field_t *f)
{
    if (cJSON_IsString(t))
        return s_primitive(x, field, t->valuestring, &f->type);
    if (cJSON_IsObject(t))
        return s_object(x, field, t, f);
    if (cJSON_IsArray(t)) {
        s_err(x, field, "unions other than [\"null\", T] are not supported %s", S_SUPPORTED);
        return false;
    }
    s_err(x, field, "'type' must be a string, an object or a union %s", S_SUPPORTED);
    return false;
}

static bool s_field(s_ctx_t *x, const cJSON *j, dm_field_t *f)
{
    memset(f, 0, sizeof *f);
    f->min_length = f->max_length = -1;
    f->line = x->line;
    f->col = x->col;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0]) {
        s_err(x, NULL, "every record field needs a 'name' string%s", "");
        return false;
    }
    const char *nm = name->valuestring;
    if (!dm_contract__is_field_name(nm)) {
        s_err(x, nm, "the name must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$%s", "");
        return false;
    }
    f->name = dm_contract__strdup(nm);
    const cJSON *doc = cJSON_GetObjectItemCaseSensitive(j, "doc");
    if (cJSON_IsString(doc))
        f->description = dm_contract__strdup(doc->valuestring);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    f->required = true;
    if (cJSON_IsArray(t) && cJSON_GetArraySize(t) == 2) {
        const cJSON *a = cJSON_GetArrayItem(t, 0), *b = cJSON_GetArrayItem(t, 1);
        bool an = cJSON_IsString(a) && strcmp(a->valuestring, "null") == 0;
        bool bn = cJSON_IsString(b) && strcmp(b->valuestring, "null") == 0;
        if (an != bn) {
            f->required = false;
            t = an ? b : a;
        }
    }
    if (!t) {
        s_err(x, nm, "the field has no 'type'%s", "");
        return false;
    }
    return s_type(x, nm, t, f);
}

dm_err dm_avro_fields(const char *path, const char *location, const char *file, unsigned line,
                      unsigned col, dm_diags_t *diags, dm_field_t **fields, size_t *n)
{
    s_ctx_t x = {location, file, line, col, diags, 0};
    *fields = NULL;
    *n = 0;
    dm_err rc;
    size_t len = 0;
    char *buf = s_read(&x, path, &len, &rc);
    cJSON *root = NULL;
    dm_field_t *fs = NULL;
    size_t nf = 0;
    if (!buf)
        return rc;
    rc = DM_ERR_INVALID;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!root) {
        unsigned l = 1;
        for (const char *p = buf; end && p < end && p < buf + len; p++)
            l += *p == '\n';
        char msg[64];
        snprintf(msg, sizeof msg, "%u", l);
        s_err(&x, NULL, "not valid JSON (near line %s of the .avsc file)", msg);
        goto out;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsObject(root) || !cJSON_IsString(type) ||
        strcmp(type->valuestring, "record") != 0) {
        s_err(&x, NULL, "the top level must be a record ({\"type\": \"record\", \"fields\": "
                        "[...]})%s", "");
        goto out;
    }
    const cJSON *jf = cJSON_GetObjectItemCaseSensitive(root, "fields");
    int count = cJSON_GetArraySize(jf);
    if (!cJSON_IsArray(jf) || count == 0) {
        s_err(&x, NULL, "the record needs a non-empty 'fields' array%s", "");
        goto out;
    }
    if (count > DM_CONTRACT_MAX_FIELDS) {
        s_err(&x, NULL, "the record has more than " S_STR(DM_CONTRACT_MAX_FIELDS)
                        " fields (the limit DM_CONTRACT_MAX_FIELDS)%s", "");
        goto out;
    }
    fs = calloc((size_t)count, sizeof *fs);
    if (!fs)
        abort();
    const cJSON *j;
    cJSON_ArrayForEach(j, jf)
    {
        dm_field_t f;
        if (s_field(&x, j, &f))
            fs[nf++] = f;
        else
            dm_contract__field_free(&f);
    }
    (void)s_unique(&x, NULL, &fs[0].name, nf, sizeof *fs, "duplicate field name%s");
    if (x.errors == 0) {
        *fields = fs;
        *n = nf;
        fs = NULL;
        rc = DM_OK;
    }
out:
    for (size_t i = 0; fs && i < nf; i++)
        dm_contract__field_free(&fs[i]);
    free(fs);
    cJSON_Delete(root);
    free(buf);
    return rc;
}
