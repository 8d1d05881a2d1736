/* test_identity.c: the node key file, signatures, derived CurveZMQ keys and
 * self-certifying addresses. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "identity/identity.h"
#include "fixture.h"

#define T_DEADLINE_S 10 /* a blocked open would hold the test far longer */

static char s_dir[PATH_MAX];
static char s_key[PATH_MAX + 32];

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_identity"));
    snprintf(s_key, sizeof s_key, "%s/%s", s_dir, DM_ID_KEY_FILE);
}

static void s_teardown(void)
{
    dm_t_rmdir(s_dir);
}

TestSuite(identity, .init = s_setup, .fini = s_teardown);

Test(identity, load_creates_then_reloads_same_key)
{
    dm_identity_t *a = NULL, *b = NULL;
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_OK);
    cr_assert_eq(access(s_key, F_OK), 0);
    cr_assert_eq(dm_identity_load(s_dir, &b, NULL), DM_OK);
    cr_assert_eq(memcmp(dm_identity_public(a), dm_identity_public(b), DM_ID_PUBLIC_BYTES), 0);
    char ha[DM_ID_HEX_BYTES], hb[DM_ID_HEX_BYTES];
    dm_identity_hex(a, ha);
    dm_identity_hex(b, hb);
    cr_assert_str_eq(ha, hb);
    cr_assert_eq(strlen(ha), 64);
    dm_identity_destroy(&a);
    dm_identity_destroy(&b);
    cr_assert_null(a);
}

Test(identity, key_file_has_mode_0600)
{
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_OK);
    struct stat st;
    cr_assert_eq(stat(s_key, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);
    cr_assert_eq(st.st_size, 64);
    dm_identity_destroy(&a);
}

Test(identity, refuses_too_open_permissions)
{
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_OK);
    dm_identity_destroy(&a);
    cr_assert_eq(chmod(s_key, 0644), 0);
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_ERR_IO);
    cr_assert_null(a);
}

Test(identity, load_failure_names_the_file_and_the_fix_in_why)
{
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_OK);
    dm_identity_destroy(&a);
    cr_assert_eq(chmod(s_key, 0640), 0);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_identity_load(s_dir, &a, &why), DM_ERR_IO);
    cr_assert_not_null(strstr(why.data, s_key), "%s", why.data);
    cr_assert_not_null(strstr(why.data, "chmod 600"), "%s", why.data);
    cr_assert_null(strchr(why.data, '\n'), "%s", why.data);
    dm_buf_free(&why);
}

Test(identity, refuses_truncated_key_file)
{
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_OK);
    dm_identity_destroy(&a);
    cr_assert_eq(truncate(s_key, 40), 0);
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_ERR_CRYPTO);
    cr_assert_null(a);
}

Test(identity, refuses_key_whose_public_half_does_not_match)
{
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_OK);
    dm_identity_destroy(&a);
    int fd = open(s_key, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint8_t junk = 0xAA;
    cr_assert_eq(pwrite(fd, &junk, 1, 40), 1);
    close(fd);
    cr_assert_eq(dm_identity_load(s_dir, &a, NULL), DM_ERR_CRYPTO);
}

/* A FIFO with no writer where the key belongs would block open(2): the
 * deadline turns a hang into a failure. */
Test(identity, a_fifo_key_file_is_refused_at_once, .timeout = T_DEADLINE_S)
{
    cr_assert_eq(mkfifo(s_key, 0600), 0);
    dm_identity_t *id = NULL;
    cr_assert_neq(dm_identity_load(s_dir, &id, NULL), DM_OK);
    cr_assert_null(id);
}

Test(identity, sign_verify_and_flipped_bit_fails)
{
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&a), DM_OK);
    const char msg[] = "catalog entry v1";
    uint8_t sig[DM_ID_SIGNATURE_BYTES];
    cr_assert_eq(dm_identity_sign(a, msg, sizeof msg, sig, NULL), DM_OK);
    cr_assert(dm_identity_verify(dm_identity_public(a), msg, sizeof msg, sig));
    char bad[sizeof msg];
    memcpy(bad, msg, sizeof msg);
    bad[3] ^= 0x01;
    cr_assert_not(dm_identity_verify(dm_identity_public(a), bad, sizeof bad, sig));
    sig[10] ^= 0x80;
    cr_assert_not(dm_identity_verify(dm_identity_public(a), msg, sizeof msg, sig));
    dm_identity_destroy(&a);
}

Test(identity, curve_keys_are_consistent)
{
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&a), DM_OK);
    uint8_t pub[32], sec[32], check[32], from_id[32];
    cr_assert_eq(dm_identity_curve_keys(a, pub, sec, NULL), DM_OK);
    cr_assert_eq(crypto_scalarmult_base(check, sec), 0);
    cr_assert_eq(memcmp(check, pub, 32), 0);
    cr_assert_eq(dm_identity_curve_from_id(dm_identity_public(a), from_id), DM_OK);
    cr_assert_eq(memcmp(from_id, pub, 32), 0);
    sodium_memzero(sec, sizeof sec);
    dm_identity_destroy(&a);
}

Test(identity, address_roundtrip)
{
    dm_identity_t *a = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&a), DM_OK);
    const char *eps[] = {"tcp://node1.example.com:7400", "tcp://127.0.0.1:1",
                         "tcp://[::1]:65535", "tcp://localhost:9000"};
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        char addr[DM_ADDRESS_MAX], ep[DM_ADDRESS_MAX];
        dm_buf_t why = DM_BUF_INIT;
        uint8_t id[DM_ID_PUBLIC_BYTES];
        cr_assert_eq(dm_identity_address_format(dm_identity_public(a), eps[i], addr, sizeof addr, NULL), DM_OK);
        cr_assert_eq(dm_identity_address_parse(addr, id, ep, sizeof ep, &why), DM_OK, "%s",
                     why.data);
        cr_assert_eq(why.len, 0);
        cr_assert_eq(memcmp(id, dm_identity_public(a), 32), 0);
        cr_assert_str_eq(ep, eps[i]);
    }
    dm_identity_destroy(&a);
}

/* Parses addr, expects DM_ERR_INVALID and a reason containing needle. */
static void s_rejects(const char *addr, const char *needle)
{
    uint8_t id[DM_ID_PUBLIC_BYTES];
    char ep[DM_ADDRESS_MAX];
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_identity_address_parse(addr, id, ep, sizeof ep, &why), DM_ERR_INVALID,
                 "accepted %s", addr);
    cr_assert_not_null(strstr(why.data, needle), "reason for %s: %s", addr, why.data);
    cr_assert_not_null(strstr(why.data, "tcp://HOST:PORT"), "reason names the form: %s", why.data);
    cr_assert_null(strchr(why.data, '\n'), "one line: %s", why.data);
    dm_buf_free(&why);
}

#define S_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

Test(identity, parse_rejects_bad_hex)
{
    s_rejects("zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff@tcp://h:1",
              "non-hex");
}

Test(identity, parse_rejects_wrong_length)
{
    s_rejects("0011@tcp://h:1", "hex digits");
    s_rejects(S_HEX "00@tcp://h:1", "hex digits");
}

Test(identity, parse_rejects_missing_at)
{
    s_rejects(S_HEX "tcp://h:1", "'@'");
}

Test(identity, parse_rejects_non_tcp_scheme)
{
    s_rejects(S_HEX "@udp://h:1", "scheme");
    s_rejects(S_HEX "@ipc:///tmp/x", "scheme");
}

Test(identity, parse_rejects_bad_port)
{
    s_rejects(S_HEX "@tcp://h:0", "port");
    s_rejects(S_HEX "@tcp://h:65536", "port");
    s_rejects(S_HEX "@tcp://h:12a", "port");
    s_rejects(S_HEX "@tcp://h:", "port");
    s_rejects(S_HEX "@tcp://h", "PORT");
}

Test(identity, parse_rejects_empty_host)
{
    s_rejects(S_HEX "@tcp://:80", "empty host");
    s_rejects(S_HEX "@tcp://[]:80", "IPv6");
}

Test(identity, parse_rejects_bad_hosts)
{
    s_rejects(S_HEX "@tcp://::1:80", "IPv6");
    s_rejects(S_HEX "@tcp://[zz]:80", "IPv6");
    s_rejects(S_HEX "@tcp://300.1.1.1:80", "IPv4");
    s_rejects(S_HEX "@tcp://a_b:80", "invalid character");
}

Test(identity, format_rejects_bad_endpoint)
{
    uint8_t id[DM_ID_PUBLIC_BYTES] = {0};
    char out[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(id, "udp://h:1", out, sizeof out, NULL), DM_ERR_INVALID);
    cr_assert_eq(dm_identity_address_format(id, "tcp://h:1", out, 40, NULL), DM_ERR_TOOBIG);
}

Test(identity, format_failure_names_the_endpoint_in_one_line_of_why)
{
    uint8_t id[DM_ID_PUBLIC_BYTES] = {0};
    char out[DM_ADDRESS_MAX];
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_identity_address_format(id, "tcp://h:70000", out, sizeof out, &why),
                 DM_ERR_INVALID);
    cr_assert_not_null(strstr(why.data, "'tcp://h:70000'"), "%s", why.data);
    cr_assert_not_null(strstr(why.data, "1-65535"), "what would be valid: %s", why.data);
    cr_assert_null(strchr(why.data, '\n'), "%s", why.data);
    dm_buf_reset(&why);
    cr_assert_eq(dm_identity_address_format(id, "tcp://h:1", out, 40, &why), DM_ERR_TOOBIG);
    cr_assert_not_null(strstr(why.data, "room for 40"), "%s", why.data);
    dm_buf_free(&why);
}

Test(identity, format_of_a_valid_endpoint_leaves_why_untouched)
{
    uint8_t id[DM_ID_PUBLIC_BYTES] = {0};
    char out[DM_ADDRESS_MAX];
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_identity_address_format(id, "tcp://h:1", out, sizeof out, &why), DM_OK);
    cr_assert_eq(why.len, 0);
    dm_buf_free(&why);
}
