/* test_dmctl_access.c: the identity and access commands of dmctl and
 * meshq that need no node (suite "dmctl_access"): whoami and keygen, and
 * the argument checks of admins, grant, revoke and audit, which must
 * refuse before connecting. Runs the real build/bin tools. */
#include <criterion/criterion.h>
#include <string.h>

#include "fixture.h"
#include "tool_run.h"

/* A node address nothing listens on: a command that got past its argument
 * checks would fail to connect instead (exit 2 too, but another message). */
#define T_NOWHERE "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0@tcp://127.0.0.1:1"

static char s_dir[256];
static t_run_t s_r;

static void s_setup(void) { cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "dmctl")); }
static void s_teardown(void) { dm_t_rmdir(s_dir); }

TestSuite(dmctl_access, .init = s_setup, .fini = s_teardown);

/* The 64-hex key on the first line of out that holds one, into key. */
static bool s_key_in(const char *out, char key[65])
{
    for (const char *p = out; *p; p++) {
        size_t n = strspn(p, "0123456789abcdef");
        if (n == 64) {
            memcpy(key, p, 64);
            key[64] = 0;
            return true;
        }
        p += n;
        if (!*p)
            break;
    }
    return false;
}

Test(dmctl_access, keygen_then_whoami_show_one_key_in_both_tools)
{
    char file[512], made[65], dm[65], mq[65];
    snprintf(file, sizeof file, "%s/alice.key", s_dir);
    const char *keygen[] = {"keygen", file, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", keygen), 0, "%s%s", s_r.out, s_r.err);
    cr_assert(s_key_in(s_r.out, made), "no key in: %s", s_r.out);
    const char *whoami[] = {"whoami", "--identity", file, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", whoami), 0, "%s%s", s_r.out, s_r.err);
    cr_assert(s_key_in(s_r.out, dm), "no key in: %s", s_r.out);
    cr_assert_eq(t_run(&s_r, s_dir, "meshq", whoami), 0, "%s%s", s_r.out, s_r.err);
    cr_assert(s_key_in(s_r.out, mq), "no key in: %s", s_r.out);
    cr_assert_str_eq(made, dm);
    cr_assert_str_eq(made, mq);
}

Test(dmctl_access, keygen_refuses_an_existing_file)
{
    char file[512];
    snprintf(file, sizeof file, "%s/alice.key", s_dir);
    const char *keygen[] = {"keygen", file, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "meshq", keygen), 0, "%s%s", s_r.out, s_r.err);
    cr_assert_neq(t_run(&s_r, s_dir, "dmctl", keygen), 0, "%s", s_r.out);
    cr_assert_not_null(strstr(s_r.err, "exists"), "%s", s_r.err);
}

Test(dmctl_access, whoami_makes_the_default_identity_once)
{
    char first[65], second[65];
    const char *whoami[] = {"whoami", NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", whoami), 0, "%s%s", s_r.out, s_r.err);
    cr_assert(s_key_in(s_r.out, first), "no key in: %s", s_r.out);
    cr_assert_not_null(strstr(s_r.out, "datamesh/identity"), "%s", s_r.out);
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", whoami), 0, "%s%s", s_r.out, s_r.err);
    cr_assert(s_key_in(s_r.out, second), "no key in: %s", s_r.out);
    cr_assert_str_eq(first, second);
}

Test(dmctl_access, admins_refuses_a_key_that_is_not_hex)
{
    const char *args[] = {"admins", "add", "alice", "--node", T_NOWHERE, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "'alice' is not a key: expected 64 hex digits"), "%s",
                       s_r.err);
}

Test(dmctl_access, admins_needs_a_known_operation)
{
    const char *args[] = {"admins", "promote", NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "usage: dmctl admins list | add KEY | remove KEY"), "%s",
                       s_r.err);
}

Test(dmctl_access, grant_refuses_a_reader_that_is_neither_key_nor_group)
{
    const char *args[] = {"grant", "commerce/orders", "bob", "--node", T_NOWHERE, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "grant: 'bob' is not a reader"), "%s", s_r.err);
    const char *revoke[] = {"revoke", "commerce", "group:x", NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", revoke), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "is not DOMAIN/PRODUCT"), "%s", s_r.err);
}

Test(dmctl_access, audit_refuses_a_since_that_is_neither_time_nor_duration)
{
    const char *args[] = {"audit", "--since", "yesterday", "--node", T_NOWHERE, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "invalid --since 'yesterday'"), "%s", s_r.err);
}

Test(dmctl_access, audit_takes_a_duration_and_then_needs_the_node)
{
    const char *args[] = {"audit", "--since", "10m", "--node", T_NOWHERE, "--timeout", "0.5",
                          NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_null(strstr(s_r.err, "invalid --since"), "%s", s_r.err);
    const char *rfc[] = {"audit", "--since", "2026-12-01T05:00:00Z", "--limit", "x", NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", rfc), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "invalid --limit 'x'"), "%s", s_r.err);
}
