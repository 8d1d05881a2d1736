/* contract.c: what a parsed contract is: the names of its enumerations,
 * its version order, and its release. The parser is contract_parse.c. */
#include "contract/contract.h"

#include <stdlib.h>

#include "contract/contract_priv.h"

static const char *const s_ftype_names[DM_FT__COUNT] = {
    "string", "int", "double", "boolean", "timestamp", "date", "uuid", "enum"};
static const char *const s_rule_names[DM_CHECK__COUNT] = {
    "not_null", "in_list", "range", "regex", "unique", "row_count_delta", "freshness"};
static const char *const s_access_names[] = {"public", "restricted", "private"};

const char *dm_contract_ftype_name(dm_ftype t)
{
    return (unsigned)t < DM_FT__COUNT ? s_ftype_names[t] : "?";
}

const char *dm_contract_rule_name(dm_check_rule r)
{
    return (unsigned)r < DM_CHECK__COUNT ? s_rule_names[r] : "?";
}

const char *dm_contract_access_name(dm_access a)
{
    return (unsigned)a <= DM_ACCESS_PRIVATE ? s_access_names[a] : "?";
}

static void s_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void dm_contract_destroy(dm_contract_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_contract_t *c = *self_p;
    free(c->name);
    free(c->domain);
    free(c->version);
    free(c->owner_team);
    free(c->owner_contact);
    free(c->description);
    s_strv_free(c->tags, c->ntags);
    free(c->schema_location);
    for (size_t i = 0; i < c->nfields; i++)
        dm_contract__field_free(&c->fields[i]);
    free(c->fields);
    free(c->pk);
    free(c->storage_format);
    free(c->storage_location);
    for (size_t i = 0; i < c->npartitions; i++)
        free(c->partitions[i].field);
    free(c->partitions);
    for (size_t i = 0; i < c->nchecks; i++) {
        free(c->checks[i].column);
        s_strv_free(c->checks[i].values, c->checks[i].nvalues);
        free(c->checks[i].pattern);
        free(c->checks[i].name);
        free(c->checks[i].description);
        s_strv_free(c->checks[i].columns, c->checks[i].ncolumns);
        free(c->checks[i].column_index);
    }
    free(c->checks);
    for (size_t i = 0; i < c->nupstream; i++) {
        free(c->upstream[i].product);
        free(c->upstream[i].domain);
    }
    free(c->upstream);
    s_strv_free(c->readers, c->nreaders);
    dm_ytree_doc_t *doc = c->tree;
    dm_ytree_doc_destroy(&doc);
    free(c);
    *self_p = NULL;
}

int dm_contract_version_cmp(const dm_contract_t *a, const dm_contract_t *b)
{
    if (a->version_major != b->version_major)
        return a->version_major < b->version_major ? -1 : 1;
    if (a->version_minor != b->version_minor)
        return a->version_minor < b->version_minor ? -1 : 1;
    if (a->version_patch != b->version_patch)
        return a->version_patch < b->version_patch ? -1 : 1;
    return 0;
}
