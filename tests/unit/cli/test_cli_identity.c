/* test_cli_identity.c: which identity a client tool acts with
 * (dm_cli_identity's order: --identity, $MESH_IDENTITY, --data DIR's
 * node key, the XDG default created on first use) and keygen's refusal
 * to replace a file (suite "cli_identity"). Each test runs in its own
 * process, so the environment it sets is its own. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/cli.h"
#include "fixture.h"

#define T_PATH (PATH_MAX + 64)

static char s_dir[PATH_MAX];
static char s_xdg[T_PATH], s_home[T_PATH], s_data[T_PATH];

static void s_setup(void)
{
    dm_log_init("t", DM_LOG_WARN); /* "identity: created ..." is not under test */
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_cli_identity"));
    snprintf(s_xdg, sizeof s_xdg, "%s/xdg", s_dir);
    snprintf(s_home, sizeof s_home, "%s/home", s_dir);
    snprintf(s_data, sizeof s_data, "%s/node", s_dir);
    cr_assert_eq(mkdir(s_data, 0700), 0);
    setenv("XDG_CONFIG_HOME", s_xdg, 1);
    setenv("HOME", s_home, 1);
    unsetenv(DM_CLI_ENV_IDENTITY);
}

static void s_teardown(void)
{
    dm_t_rmdir(s_dir);
}

/* Tests that check what is printed redirect it first, then set up. */
static void s_setup_err(void)
{
    cr_redirect_stderr();
    s_setup();
}

static void s_setup_out(void)
{
    cr_redirect_stdout();
    s_setup();
}

TestSuite(cli_identity, .fini = s_teardown);

/* Parses a command line (NULL-terminated) with the global options. */
static dm_cli_args_t s_parse(const char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    dm_cli_args_t a;
    cr_assert_eq(dm_cli_parse("t", argc, (char **)argv, dm_cli_global_opts, dm_cli_nglobal_opts,
                              &a),
                 0);
    return a;
}

/* The identity the command line acts with: its public key into key, its
 * file returned (copied). */
static const char *s_pick(const char **argv, uint8_t key[DM_ID_PUBLIC_BYTES])
{
    static char path[T_PATH];
    dm_cli_args_t a = s_parse(argv);
    dm_identity_t *id = NULL;
    const char *p = NULL;
    cr_assert_eq(dm_cli_identity(&a, &id, &p), DM_EXIT_OK);
    cr_assert_not_null(p);
    snprintf(path, sizeof path, "%s", p);
    memcpy(key, dm_identity_public(id), DM_ID_PUBLIC_BYTES);
    dm_identity_destroy(&id);
    return path;
}

/* Writes a new identity to path; its key into key. */
static void s_keygen(const char *path, uint8_t key[DM_ID_PUBLIC_BYTES])
{
    dm_identity_t *id = NULL;
    cr_assert_eq(dm_identity_keygen(path, &id, NULL), DM_OK);
    memcpy(key, dm_identity_public(id), DM_ID_PUBLIC_BYTES);
    dm_identity_destroy(&id);
}

Test(cli_identity, default_is_created_under_xdg_config_home_and_reused, .init = s_setup)
{
    const char *argv[] = {"t", "whoami", NULL};
    uint8_t k1[DM_ID_PUBLIC_BYTES], k2[DM_ID_PUBLIC_BYTES];
    char want[T_PATH + 32];
    snprintf(want, sizeof want, "%s/datamesh/identity", s_xdg);
    cr_assert_str_eq(s_pick(argv, k1), want);
    struct stat st;
    cr_assert_eq(stat(want, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);
    cr_assert_str_eq(s_pick(argv, k2), want);
    cr_assert_eq(memcmp(k1, k2, sizeof k1), 0, "created once, then reused");
}

Test(cli_identity, without_xdg_config_home_the_default_is_under_home, .init = s_setup)
{
    unsetenv("XDG_CONFIG_HOME");
    const char *argv[] = {"t", "whoami", NULL};
    uint8_t k[DM_ID_PUBLIC_BYTES];
    char want[T_PATH + 32];
    snprintf(want, sizeof want, "%s/.config/datamesh/identity", s_home);
    cr_assert_str_eq(s_pick(argv, k), want);
    setenv("XDG_CONFIG_HOME", "relative/dir", 1); /* not absolute: ignored, as XDG says */
    cr_assert_str_eq(s_pick(argv, k), want);
}

Test(cli_identity, data_dir_with_a_readable_node_key_beats_the_default, .init = s_setup)
{
    char node_key[T_PATH + 32];
    snprintf(node_key, sizeof node_key, "%s/%s", s_data, DM_ID_KEY_FILE);
    uint8_t want[DM_ID_PUBLIC_BYTES], got[DM_ID_PUBLIC_BYTES];
    s_keygen(node_key, want);
    const char *argv[] = {"t", "--data", s_data, "products", NULL};
    cr_assert_str_eq(s_pick(argv, got), node_key);
    cr_assert_eq(memcmp(want, got, sizeof want), 0);
    char def[T_PATH + 32];
    snprintf(def, sizeof def, "%s/datamesh/identity", s_xdg);
    cr_assert_neq(access(def, F_OK), 0, "no default identity was made");
}

Test(cli_identity, data_dir_without_a_node_key_falls_back_to_the_default, .init = s_setup)
{
    const char *argv[] = {"t", "--data", s_data, "products", NULL};
    uint8_t k[DM_ID_PUBLIC_BYTES];
    char want[T_PATH + 32];
    snprintf(want, sizeof want, "%s/datamesh/identity", s_xdg);
    cr_assert_str_eq(s_pick(argv, k), want);
}

Test(cli_identity, mesh_identity_beats_data_and_identity_option_beats_both, .init = s_setup)
{
    char node_key[T_PATH + 32], env_key[T_PATH + 32], opt_key[T_PATH + 32];
    snprintf(node_key, sizeof node_key, "%s/%s", s_data, DM_ID_KEY_FILE);
    snprintf(env_key, sizeof env_key, "%s/env.key", s_dir);
    snprintf(opt_key, sizeof opt_key, "%s/opt.key", s_dir);
    uint8_t kn[DM_ID_PUBLIC_BYTES], ke[DM_ID_PUBLIC_BYTES], ko[DM_ID_PUBLIC_BYTES];
    uint8_t got[DM_ID_PUBLIC_BYTES];
    s_keygen(node_key, kn);
    s_keygen(env_key, ke);
    s_keygen(opt_key, ko);
    setenv(DM_CLI_ENV_IDENTITY, env_key, 1);
    const char *with_data[] = {"t", "--data", s_data, "products", NULL};
    cr_assert_str_eq(s_pick(with_data, got), env_key);
    cr_assert_eq(memcmp(got, ke, sizeof got), 0);
    const char *with_opt[] = {"t", "products", "--data", s_data, "--identity", opt_key, NULL};
    cr_assert_str_eq(s_pick(with_opt, got), opt_key);
    cr_assert_eq(memcmp(got, ko, sizeof got), 0);
}

Test(cli_identity, a_named_identity_must_exist_and_is_not_created, .init = s_setup_err)
{
    char missing[T_PATH + 32];
    snprintf(missing, sizeof missing, "%s/nobody.key", s_dir);
    const char *argv[] = {"t", "--identity", missing, "whoami", NULL};
    dm_cli_args_t a = s_parse(argv);
    dm_identity_t *id = NULL;
    const char *p = NULL;
    cr_assert_eq(dm_cli_identity(&a, &id, &p), DM_EXIT_USAGE);
    cr_assert_null(id);
    cr_assert_neq(access(missing, F_OK), 0, "not created");
    setenv(DM_CLI_ENV_IDENTITY, missing, 1);
    const char *plain[] = {"t", "whoami", NULL};
    a = s_parse(plain);
    cr_assert_eq(dm_cli_identity(&a, &id, &p), DM_EXIT_USAGE);
    cr_assert_neq(access(missing, F_OK), 0, "not created from the environment either");
    fflush(stderr);
    static char want[4 * (T_PATH + 32) + 256];
    snprintf(want, sizeof want,
             "t: identity: %s does not exist (create one with keygen %s) (the identity from "
             "--identity)\n"
             "t: identity: %s does not exist (create one with keygen %s) (the identity from "
             "$MESH_IDENTITY)\n",
             missing, missing, missing, missing);
    cr_assert_stderr_eq_str(want);
}

Test(cli_identity, keygen_refuses_an_existing_file, .init = s_setup_err)
{
    char path[T_PATH + 32];
    snprintf(path, sizeof path, "%s/mine.key", s_dir);
    uint8_t before[DM_ID_PUBLIC_BYTES], after[DM_ID_PUBLIC_BYTES];
    s_keygen(path, before);
    const char *argv[] = {"t", "keygen", path, NULL};
    dm_cli_args_t a = s_parse(argv);
    cr_assert_eq(dm_cli_keygen(&a), DM_EXIT_FAIL);
    fflush(stderr);
    char want[2 * T_PATH];
    snprintf(want, sizeof want, "t: keygen: %s exists; choose another path or remove it\n", path);
    cr_assert_stderr_eq_str(want);
    dm_identity_t *id = NULL;
    cr_assert_eq(dm_identity_load_file(path, false, &id, NULL), DM_OK);
    memcpy(after, dm_identity_public(id), sizeof after);
    dm_identity_destroy(&id);
    cr_assert_eq(memcmp(before, after, sizeof before), 0, "the file is untouched");
}

Test(cli_identity, keygen_writes_a_new_file_and_whoami_shows_it, .init = s_setup_out)
{
    char path[T_PATH + 32];
    snprintf(path, sizeof path, "%s/new.key", s_dir);
    const char *argv[] = {"t", "keygen", path, NULL};
    dm_cli_args_t a = s_parse(argv);
    cr_assert_eq(dm_cli_keygen(&a), DM_EXIT_OK);
    dm_identity_t *id = NULL;
    cr_assert_eq(dm_identity_load_file(path, false, &id, NULL), DM_OK);
    char hex[DM_ID_HEX_BYTES];
    dm_identity_hex(id, hex);
    dm_identity_destroy(&id);
    const char *who[] = {"t", "whoami", "--identity", path, "--json", NULL};
    a = s_parse(who);
    cr_assert_eq(dm_cli_whoami(&a), DM_EXIT_OK);
    fflush(stdout);
    char want[6 * T_PATH];
    snprintf(want, sizeof want, "key: %s\nfile: %s\n{\"key\":\"%s\",\"file\":\"%s\"}\n", hex,
             path, hex, path);
    cr_assert_stdout_eq_str(want);
}
