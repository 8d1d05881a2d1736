/* policy_decide.c: one decision (policy.h's order: governance deny ->
 * governance allow gate -> owner -> deny), the masks and row filter of an
 * allowed read, and the explanation of a decision. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy_priv.h"

#define S_UNVERIFIED "an unverified caller"

typedef struct {
    const dm_policy_set_t *gov;
    const dm_policy_owner_t *owner;
    const dm_policy_request_t *req;
    const dm_policy_product_t *prod;
    const char *const *extra;
    size_t nextra;
    dm_buf_t *trace;
    char who[DM_POLICY_HEX + 1]; /* the caller's key in hex, or S_UNVERIFIED */
    bool admin;
    const dm_policy__applicable_t *app;
} s_cx_t;

static void s_trace(s_cx_t *cx, const char *fmt, ...) DM_PRINTF(2, 3);
static void s_trace(s_cx_t *cx, const char *fmt, ...)
{
    if (!cx->trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    dm_buf_t line = DM_BUF_INIT;
    dm_buf_vwhy(&line, fmt, ap);
    va_end(ap);
    dm_buf_printf(cx->trace, "%s\n", line.data ? line.data : "");
    dm_buf_free(&line);
}

static bool s_in_extra(const s_cx_t *cx, const char *group)
{
    for (size_t i = 0; i < cx->nextra; i++)
        if (strcmp(cx->extra[i], group) == 0)
            return true;
    return false;
}

static bool s_is_admin(const dm_policy_owner_t *o, const uint8_t *key)
{
    for (size_t i = 0; key && i < o->nadmins; i++)
        if (memcmp(o->admins[i], key, DM_POLICY_KEY_BYTES) == 0)
            return true;
    return false;
}

static bool s_is_reader(const s_cx_t *cx)
{
    const uint8_t *key = cx->req->key;
    size_t gl = strlen(DM_POLICY_GROUP_PREFIX);
    for (size_t i = 0; key && i < cx->prod->nreaders; i++) {
        const char *r = cx->prod->readers[i];
        if (strncmp(r, DM_POLICY_GROUP_PREFIX, gl) == 0) {
            if (s_in_extra(cx, r + gl) || (cx->gov && dm_policy_set_in_group(cx->gov, r + gl, key)))
                return true;
        } else if (strcasecmp(r, cx->who) == 0) {
            return true;
        }
    }
    return false;
}

static bool s_field_selected(const dm_policy__fields_t *f, const char *name, const char *cls)
{
    if (f->kind == DM_POLICY__FIELDS_ANY)
        return true;
    if (f->kind == DM_POLICY__FIELDS_CLASS)
        return cls && strcmp(cls, f->classification) == 0;
    for (size_t i = 0; i < f->nnames; i++)
        if (dm_policy__field_eq(name, f->names[i]))
            return true;
    return false;
}

/* Whether fields selects one of the product's fields. */
static bool s_fields_hit(const dm_policy_product_t *p, const dm_policy__fields_t *f)
{
    bool hit = false;
    for (size_t i = 0; i < p->nfields && !hit; i++)
        hit = s_field_selected(f, p->fields[i], p->classifications ? p->classifications[i] : NULL);
    return hit;
}

/* Whether access rule r is about the request's product and action
 * (products already match); who the caller is is not looked at. If not,
 * *why (for explain) says what does not match. */
static bool s_access_covers(const s_cx_t *cx, const dm_policy__access_t *r, const char **why)
{
    const dm_policy_product_t *p = cx->prod;
    *why = "its actions do not include this one";
    if (!(r->actions & (1u << cx->req->action)))
        return false;
    if (r->ntags) {
        bool hit = false;
        for (size_t i = 0; i < r->ntags && !hit; i++)
            for (size_t k = 0; k < p->ntags && !hit; k++)
                hit = strcmp(r->tags[i], p->tags[k]) == 0;
        *why = "the product has none of its tags";
        if (!hit)
            return false;
    }
    *why = "it selects none of the product's fields";
    return r->fields.kind == DM_POLICY__FIELDS_ANY || s_fields_hit(p, &r->fields);
}

/* Appends the consumers of w to out as a user writes them ("*",
 * group:NAME, keys in hex), at most S_WHO_SHOWN of them. */
#define S_WHO_SHOWN 3
static void s_who_text(const dm_policy__who_t *w, dm_buf_t *out)
{
    if (w->any) {
        dm_buf_puts(out, "*");
        return;
    }
    size_t total = w->ngroups + w->nkeys, shown = total < S_WHO_SHOWN ? total : S_WHO_SHOWN;
    if (!total)
        dm_buf_puts(out, "nobody");
    for (size_t i = 0; i < shown; i++) {
        char hex[DM_POLICY_HEX + 1];
        if (i >= w->ngroups)
            dm_policy__key_hex(w->keys[i - w->ngroups], hex);
        dm_buf_printf(out, "%s%s%s", i ? ", " : "", i < w->ngroups ? DM_POLICY_GROUP_PREFIX : "",
                      i < w->ngroups ? w->groups[i] : hex);
    }
    if (shown < total)
        dm_buf_printf(out, " and %zu more", total - shown);
}

/* Step 2, the owner: true to allow; rule and reason filled either way. */
static bool s_owner(const s_cx_t *cx, dm_policy_decision_t *out)
{
    const dm_policy_product_t *p = cx->prod;
    const char *dom = cx->owner->domain ? cx->owner->domain : "?";
    char *rule = out->rule, *reason = out->reason;
    size_t rl = sizeof out->rule, nl = sizeof out->reason;
    if (cx->admin) {
        snprintf(rule, rl, "owner: admin");
        return true;
    }
    if (cx->req->action == DM_POLICY_WRITE) {
        snprintf(rule, rl, "owner: write needs a %s admin", dom);
        if (p)
            snprintf(reason, nl, "permission denied: write to %s/%s needs a %s admin; you are %s",
                     p->domain, p->name, dom, cx->who);
        else
            snprintf(reason, nl, "permission denied: this needs a %s admin; you are %s", dom, cx->who);
        return false;
    }
    if (cx->req->action == DM_POLICY_DESCRIBE) {
        snprintf(rule, rl, "owner: describe is open");
        return true;
    }
    if (!p) {
        snprintf(rule, rl, "owner: admins only");
        snprintf(reason, nl, "access denied: only %s admins may read this; you are %s", dom, cx->who);
        return false;
    }
    const char *acc = dm_contract_access_name(p->access);
    if (p->access == DM_ACCESS_PUBLIC) {
        snprintf(rule, rl, "owner: public");
        return true;
    }
    if (!cx->req->key) {
        snprintf(rule, rl, "owner: %s, caller not verified", acc);
        snprintf(reason, nl, "access denied to %s.%s (%s): the caller's key is not verified, and "
                             "such a caller may read public products only", p->domain, p->name, acc);
        return false;
    }
    if (p->access == DM_ACCESS_PRIVATE) {
        snprintf(rule, rl, "owner: private, admins only");
        snprintf(reason, nl, "access denied to %s.%s (private): %s is not a %s admin", p->domain,
                 p->name, cx->who, dom);
        return false;
    }
    if (s_is_reader(cx)) {
        snprintf(rule, rl, "owner: restricted, a reader");
        return true;
    }
    snprintf(rule, rl, "owner: restricted, not a reader");
    snprintf(reason, nl, "access denied to %s.%s (restricted): %s is not a reader", p->domain, p->name,
             cx->who);
    return false;
}

/* Masks of an allowed read: the first mask rule that selects a field and
 * whose exceptions do not name the caller (ties were refused at add). */
static dm_err s_masks(s_cx_t *cx, dm_policy_decision_t *out)
{
    const dm_policy_product_t *p = cx->prod;
    for (size_t f = 0; f < p->nfields; f++) {
        const char *cls = p->classifications ? p->classifications[f] : NULL;
        for (size_t i = 0; i < cx->app->nmasks; i++) {
            const dm_policy__maskrule_t *r = cx->gov->masks[cx->app->masks[i]];
            if (!s_field_selected(&r->fields, p->fields[f], cls) ||
                dm_policy__who_match(cx->gov, &r->except, cx->req->key, cx->extra, cx->nextra))
                continue;
            if (!out->masks) {
                out->masks = calloc(p->nfields, sizeof *out->masks);
                if (!out->masks)
                    return DM_ERR_NOMEM;
                out->nmasks = p->nfields;
            }
            out->masks[f] = r->mask;
            s_trace(cx, "mask %s/%s: %s -> %s", r->doc->name, r->name, p->fields[f],
                    dm_policy_mask_name(r->mask));
            break;
        }
    }
    return DM_OK;
}

/* The row filter of an allowed read: (permissive OR ...) AND restrictive
 * AND ...; a lone predicate stays as written. */
static dm_err s_filter(s_cx_t *cx, dm_policy_decision_t *out)
{
    dm_buf_t perm = DM_BUF_INIT, restr = DM_BUF_INIT;
    size_t np = 0, nr = 0;
    for (size_t i = 0; i < cx->app->nfilters; i++) {
        const dm_policy__filter_t *r = cx->gov->filters[cx->app->filters[i]];
        if (!dm_policy__who_match(cx->gov, &r->consumers, cx->req->key, cx->extra, cx->nextra))
            continue;
        s_trace(cx, "row filter %s/%s (%s): %s", r->doc->name, r->name,
                r->restrictive ? "restrictive" : "permissive", r->predicate);
        dm_buf_t *b = r->restrictive ? &restr : &perm;
        size_t *n = r->restrictive ? &nr : &np;
        dm_buf_printf(b, "%s(%s)", *n ? (r->restrictive ? " AND " : " OR ") : "", r->predicate);
        ++*n;
    }
    if (np + nr == 0)
        return DM_OK;
    dm_buf_t all = DM_BUF_INIT;
    if (np + nr == 1) {
        const dm_buf_t *one = np ? &perm : &restr;
        dm_buf_append(&all, one->data + 1, one->len - 2); /* without its parentheses */
    } else if (np && nr) {
        dm_buf_printf(&all, "%s%s%s AND %s", np > 1 ? "(" : "", perm.data, np > 1 ? ")" : "", restr.data);
    } else {
        dm_buf_puts(&all, np ? perm.data : restr.data);
    }
    out->row_filter = dm_buf_steal(&all);
    dm_buf_free(&perm);
    dm_buf_free(&restr);
    return DM_OK;
}

/* The governance rules about a request: the first deny that names the
 * caller, the first allow about the product and action (the gate), and
 * the first such allow that names the caller (the gate is passed). */
typedef struct {
    const dm_policy__access_t *deny, *gate, *pass;
} s_gov_t;

/* Steps 1 and 2 of policy.h; every rule that applies is traced. */
static void s_governance(s_cx_t *cx, s_gov_t *g)
{
    const char *act = dm_policy_action_name(cx->req->action);
    for (size_t i = 0; cx->app && i < cx->app->naccess; i++) {
        const dm_policy__access_t *r = cx->gov->access[cx->app->access[i]];
        const char *no = NULL;
        if (!s_access_covers(cx, r, &no)) {
            s_trace(cx, "governance %s/%s: %s: not applied, %s", r->doc->name, r->name,
                    r->deny ? "deny" : "allow", no);
            continue;
        }
        bool named = dm_policy__who_match(cx->gov, &r->consumers, cx->req->key, cx->extra, cx->nextra);
        if (r->deny) {
            if (!named) {
                s_trace(cx, "governance %s/%s: deny %s: not applied, the caller is not among "
                        "its consumers", r->doc->name, r->name, act);
                continue;
            }
            s_trace(cx, "governance %s/%s: deny %s", r->doc->name, r->name, act);
            if (!g->deny)
                g->deny = r;
        } else {
            s_trace(cx, "governance %s/%s: allow %s, %s among its consumers", r->doc->name, r->name,
                    act, named ? "the caller is" : "the caller is not");
            if (!g->gate)
                g->gate = r;
            if (named && !g->pass)
                g->pass = r;
        }
        if (g->deny && !cx->trace)
            return;
    }
}

/* A refusal by governance rule r: its rule and reason. */
static void s_gov_refuse(s_cx_t *cx, const dm_policy__access_t *r, dm_policy_decision_t *out)
{
    const dm_policy_product_t *p = cx->prod;
    const char *act = dm_policy_action_name(cx->req->action);
    unsigned long long v = (unsigned long long)out->policy_version;
    snprintf(out->rule, sizeof out->rule, "governance %s/%s", r->doc->name, r->name);
    int n = snprintf(out->reason, sizeof out->reason, "access denied to %s.%s (%s): governance policy %s "
                     "rule %s ", p->domain, p->name, dm_contract_access_name(p->access), r->doc->name,
                     r->name);
    size_t used = n > 0 && (size_t)n < sizeof out->reason ? (size_t)n : sizeof out->reason - 1;
    char *rest = out->reason + used;
    size_t left = sizeof out->reason - used;
    if (r->deny) {
        snprintf(rest, left, "(version %llu) denies %s to %s", v, act, cx->who);
        return;
    }
    dm_buf_t who = DM_BUF_INIT;
    s_who_text(&r->consumers, &who);
    snprintf(rest, left, "allows %s only to %s (version %llu); %s is not one of them", act, who.data,
             v, cx->who);
    dm_buf_free(&who);
}

static dm_err s_decide(s_cx_t *cx, dm_policy_decision_t *out)
{
    s_gov_t g = {NULL, NULL, NULL};
    s_governance(cx, &g);
    const dm_policy_product_t *p = cx->prod;
    if (g.deny || (g.gate && !g.pass)) {
        s_gov_refuse(cx, g.deny ? g.deny : g.gate, out);
        return DM_OK;
    }
    out->allow = s_owner(cx, out);
    s_trace(cx, "%s", out->rule);
    if (out->allow)
        out->reason[0] = 0;
    if (!out->allow || cx->req->action != DM_POLICY_READ || cx->admin || !cx->app || !p)
        return DM_OK;
    dm_err rc = s_masks(cx, out);
    return rc == DM_OK ? s_filter(cx, out) : rc;
}

/* For explain: the mask and row filter rules about the product that did
 * not apply to this read, and why. */
static void s_trace_unapplied(s_cx_t *cx, const dm_policy_decision_t *out)
{
    const dm_policy_product_t *p = cx->prod;
    if (!cx->trace || !cx->app || !p || cx->req->action != DM_POLICY_READ)
        return;
    const char *all = !out->allow ? "the read is denied"
                      : cx->admin ? "a domain admin reads raw rows" : NULL;
    for (size_t i = 0; i < cx->app->nmasks; i++) {
        const dm_policy__maskrule_t *r = cx->gov->masks[cx->app->masks[i]];
        const char *no = all;
        if (!no && !s_fields_hit(p, &r->fields))
            no = "it selects none of the product's fields";
        else if (!no && dm_policy__who_match(cx->gov, &r->except, cx->req->key, cx->extra,
                                             cx->nextra))
            no = "the caller is among its exceptions";
        if (no)
            s_trace(cx, "mask %s/%s (%s): not applied, %s", r->doc->name, r->name,
                    dm_policy_mask_name(r->mask), no);
    }
    for (size_t i = 0; i < cx->app->nfilters; i++) {
        const dm_policy__filter_t *r = cx->gov->filters[cx->app->filters[i]];
        const char *no = all;
        if (!no && !dm_policy__who_match(cx->gov, &r->consumers, cx->req->key, cx->extra,
                                         cx->nextra))
            no = "the caller is not among its consumers";
        if (no)
            s_trace(cx, "row filter %s/%s: not applied, %s", r->doc->name, r->name, no);
    }
}

dm_err dm_policy__decide(const dm_policy_set_t *gov, const dm_policy_owner_t *owner,
                         const dm_policy_request_t *req, const char *const *extra, size_t nextra,
                         dm_buf_t *trace, dm_policy_decision_t *out)
{
    assert(!gov || gov->sealed);
    memset(out, 0, sizeof *out);
    out->policy_version = gov ? gov->version : 0;
    s_cx_t cx = {gov, owner, req, req->product, extra, nextra, trace, {0}, false, NULL};
    if (req->key)
        dm_policy__key_hex(req->key, cx.who);
    else
        snprintf(cx.who, sizeof cx.who, "%s", S_UNVERIFIED);
    cx.admin = s_is_admin(owner, req->key);
    bool tmp = false;
    if (gov && req->product &&
        !(cx.app = dm_policy__applicable(gov, req->product->domain, req->product->name, &tmp)))
        return DM_ERR_NOMEM;
    dm_err rc = s_decide(&cx, out);
    if (rc == DM_OK)
        s_trace_unapplied(&cx, out);
    if (tmp)
        dm_policy__applicable_free((dm_policy__applicable_t *)cx.app);
    if (rc != DM_OK)
        dm_policy_decision_clear(out);
    else
        s_trace(&cx, "decision: %s by %s%s%s", out->allow ? "allow" : "deny", out->rule,
                out->allow ? "" : ": ", out->reason);
    return rc;
}

dm_err dm_policy_decide(const dm_policy_set_t *gov, const dm_policy_owner_t *owner,
                        const dm_policy_request_t *req, dm_policy_decision_t *out)
{
    return dm_policy__decide(gov, owner, req, NULL, 0, NULL, out);
}

void dm_policy_decision_clear(dm_policy_decision_t *d)
{
    if (!d)
        return;
    free(d->masks);
    free(d->row_filter);
    memset(d, 0, sizeof *d);
}

void dm_policy_explain(const dm_policy_set_t *gov, const dm_policy_owner_t *owner,
                       const dm_policy_request_t *req, dm_buf_t *out)
{
    dm_policy_decision_t d;
    if (dm_policy__decide(gov, owner, req, NULL, 0, out, &d) != DM_OK)
        dm_buf_puts(out, "error: out of memory while deciding\n");
    dm_policy_decision_clear(&d);
}
