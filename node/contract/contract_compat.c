/* contract_compat.c: the upgrade rules for a product that holds records
 * (see contract_compat.h). Checked in the order a reader would notice the
 * problem: fewer fields, then each kept field's name, type and enum values,
 * then the new fields, then the primary key; the first broken rule is
 * reported. */
#include "contract/contract_compat.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>


/* Appends the reason to why when there is one (a NULL why only asks yes or
 * no) and returns DM_ERR_CONFLICT. */
static dm_err s_refuse(dm_buf_t *why, const char *fmt, ...) DM_PRINTF(2, 3);
static dm_err s_refuse(dm_buf_t *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_buf_vwhy(why, fmt, ap);
    va_end(ap);
    return DM_ERR_CONFLICT;
}

/* True if b's values start with all of a's, in a's order. */
static bool s_enum_extends(const dm_field_t *a, const dm_field_t *b)
{
    if (b->nvalues < a->nvalues)
        return false;
    for (size_t j = 0; j < a->nvalues; j++)
        if (strcmp(a->values[j], b->values[j]) != 0)
            return false;
    return true;
}

dm_err dm_contract_compat_check(const dm_contract_t *old, const dm_contract_t *new, dm_buf_t *why)
{
    if (new->nfields < old->nfields)
        return s_refuse(why, "it removes %zu field(s)", old->nfields - new->nfields);
    for (size_t i = 0; i < old->nfields; i++) {
        const dm_field_t *a = &old->fields[i], *b = &new->fields[i];
        if (strcmp(a->name, b->name) != 0)
            return s_refuse(why, "field %zu changes from '%s' to '%s'", i + 1, a->name, b->name);
        if (a->type != b->type)
            return s_refuse(why, "field '%s' changes type from %s to %s", a->name,
                            dm_contract_ftype_name(a->type), dm_contract_ftype_name(b->type));
        if (a->type == DM_FT_ENUM && !s_enum_extends(a, b))
            return s_refuse(why, "enum field '%s' must keep its values in order and only add "
                                 "new ones at the end",
                            a->name);
    }
    for (size_t i = old->nfields; i < new->nfields; i++)
        if (new->fields[i].required)
            return s_refuse(why, "new field '%s' is required, but stored records lack it",
                            new->fields[i].name);
    bool same_pk = old->npk == new->npk;
    for (size_t i = 0; same_pk && i < old->npk; i++)
        same_pk = old->pk[i] == new->pk[i];
    if (!same_pk)
        return s_refuse(why, "it changes the primary key");
    return DM_OK;
}
