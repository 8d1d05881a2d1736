/* test_identity_file.c: client identity files (dm_identity_load_file,
 * dm_identity_keygen) and the key hex helpers. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/identity.h"
#include "fixture.h"

static char s_dir[PATH_MAX];

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_identity_file"));
}

static void s_teardown(void)
{
    dm_t_rmdir(s_dir);
}

TestSuite(identity_file, .init = s_setup, .fini = s_teardown);

Test(identity_file, create_makes_private_parent_folders)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/cfg/datamesh/identity", s_dir);
    dm_identity_t *a = NULL, *b = NULL;
    cr_assert_eq(dm_identity_load_file(path, true, &a, NULL), DM_OK);
    struct stat st;
    char folder[PATH_MAX + 64];
    snprintf(folder, sizeof folder, "%s/cfg/datamesh", s_dir);
    cr_assert_eq(stat(folder, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);
    cr_assert_eq(dm_identity_load_file(path, false, &b, NULL), DM_OK);
    cr_assert_eq(memcmp(dm_identity_public(a), dm_identity_public(b), DM_ID_PUBLIC_BYTES), 0);
    dm_identity_destroy(&a);
    dm_identity_destroy(&b);
}

Test(identity_file, missing_file_without_create_names_it)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/none", s_dir);
    dm_identity_t *a = NULL;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_identity_load_file(path, false, &a, &why), DM_ERR_NOTFOUND);
    cr_assert_null(a);
    cr_assert_not_null(strstr(why.data, path));
    cr_assert_not_null(strstr(why.data, "does not exist"));
    cr_assert_neq(access(path, F_OK), 0, "nothing is created");
    dm_buf_free(&why);
}

Test(identity_file, node_key_file_loads_as_a_client_identity)
{
    dm_identity_t *node = NULL, *client = NULL;
    cr_assert_eq(dm_identity_load(s_dir, &node, NULL), DM_OK);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", s_dir, DM_ID_KEY_FILE);
    cr_assert_eq(dm_identity_load_file(path, false, &client, NULL), DM_OK);
    cr_assert_eq(
        memcmp(dm_identity_public(node), dm_identity_public(client), DM_ID_PUBLIC_BYTES), 0);
    dm_identity_destroy(&node);
    dm_identity_destroy(&client);
}

Test(identity_file, keygen_writes_a_new_key_and_refuses_an_existing_file)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/sub/alice.key", s_dir);
    dm_identity_t *a = NULL, *b = NULL;
    cr_assert_eq(dm_identity_keygen(path, &a, NULL), DM_OK);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 64);
    uint8_t before[64];
    FILE *f = fopen(path, "rb");
    cr_assert_eq(fread(before, 1, 64, f), 64);
    fclose(f);

    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_identity_keygen(path, &b, &why), DM_ERR_EXISTS);
    cr_assert_null(b);
    cr_assert_not_null(strstr(why.data, "exists; choose another path or remove it"));
    cr_assert_not_null(strstr(why.data, path));
    uint8_t after[64];
    f = fopen(path, "rb");
    cr_assert_eq(fread(after, 1, 64, f), 64);
    fclose(f);
    cr_assert_eq(memcmp(before, after, 64), 0, "the existing key is untouched");
    dm_buf_free(&why);
    dm_identity_destroy(&a);
}

Test(identity_file, two_keygens_give_different_keys)
{
    char p1[PATH_MAX + 64], p2[PATH_MAX + 64];
    snprintf(p1, sizeof p1, "%s/a", s_dir);
    snprintf(p2, sizeof p2, "%s/b", s_dir);
    dm_identity_t *a = NULL, *b = NULL;
    cr_assert_eq(dm_identity_keygen(p1, &a, NULL), DM_OK);
    cr_assert_eq(dm_identity_keygen(p2, &b, NULL), DM_OK);
    cr_assert_neq(memcmp(dm_identity_public(a), dm_identity_public(b), DM_ID_PUBLIC_BYTES), 0);
    dm_identity_destroy(&a);
    dm_identity_destroy(&b);
}

Test(identity_file, load_file_refuses_a_group_readable_file)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/k", s_dir);
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_keygen(path, &a, NULL), DM_OK);
    dm_identity_destroy(&a);
    cr_assert_eq(chmod(path, 0640), 0);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_identity_load_file(path, false, &a, &why), DM_ERR_IO);
    cr_assert_not_null(strstr(why.data, path));
    cr_assert_not_null(strstr(why.data, "chmod 600"));
    dm_buf_free(&why);
}

Test(identity_file, key_hex_and_parse_round_trip)
{
    uint8_t key[DM_ID_PUBLIC_BYTES], back[DM_ID_PUBLIC_BYTES];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 0xa0);
    char hex[DM_ID_HEX_BYTES];
    dm_identity_key_hex(key, hex);
    cr_assert_eq(strlen(hex), 64);
    cr_assert(dm_identity_key_parse(hex, back));
    cr_assert_eq(memcmp(key, back, sizeof key), 0);
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    cr_assert(dm_identity_key_parse(hex, back), "upper case is accepted");
    cr_assert_eq(memcmp(key, back, sizeof key), 0);
}

Test(identity_file, key_parse_refuses_wrong_length_and_non_hex)
{
    uint8_t key[DM_ID_PUBLIC_BYTES];
    char hex[80];
    memset(hex, 'a', 64);
    hex[64] = 0;
    cr_assert(dm_identity_key_parse(hex, key));
    hex[63] = 0;
    cr_assert_not(dm_identity_key_parse(hex, key), "63 digits");
    hex[63] = 'a';
    hex[64] = 'a';
    hex[65] = 0;
    cr_assert_not(dm_identity_key_parse(hex, key), "65 digits");
    hex[64] = 0;
    hex[10] = 'g';
    cr_assert_not(dm_identity_key_parse(hex, key), "non-hex");
    hex[10] = ' ';
    cr_assert_not(dm_identity_key_parse(hex, key), "space");
    cr_assert_not(dm_identity_key_parse("", key));
    cr_assert_not(dm_identity_key_parse(NULL, key));
}
