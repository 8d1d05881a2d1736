/* identity.c: the node's ed25519 key file, signing, the derived CurveZMQ
 * keys and the self-certifying address "<hex node id>@tcp://HOST:PORT".
 *
 * The key file holds libsodium's 64-byte ed25519 secret key (32-byte seed
 * followed by the public key) and nothing else. It is created no-clobber
 * (temp file, fsync, link, directory fsync) so that two processes starting
 * at once never end up with different identities for the same directory.
 * A person's or program's identity file (a client's) has the same format,
 * so dm_identity_load is dm_identity_load_file on DIR/identity.key. */
#include "identity/identity.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/lines.h"
#include "base/log.h"

#define S_SECRET_BYTES crypto_sign_SECRETKEYBYTES /* seed + public key */
#define S_SEED_BYTES crypto_sign_SEEDBYTES
#define S_HEX_DIGITS (2 * DM_ID_PUBLIC_BYTES)
#define S_SCHEME "tcp://"
#define S_HOST_MAX 253 /* longest DNS name */
#define S_PORT_MAX 65535
#define S_FORM "expected <64 hex digits>@tcp://HOST:PORT"

struct dm_identity {
    uint8_t pk[DM_ID_PUBLIC_BYTES];
    uint8_t *sk; /* sodium_malloc'd, S_SECRET_BYTES */
};

/* Initialises libsodium once; returns DM_ERR_CRYPTO, with a line in why,
 * if it cannot. */
static dm_err s_sodium(dm_buf_t *why)
{
    if (sodium_init() < 0) {
        dm_buf_why(why, "identity: sodium_init failed");
        return DM_ERR_CRYPTO;
    }
    return DM_OK;
}

/* Allocates an identity with room for the secret key. NULL on no memory. */
static dm_identity_t *s_alloc(void)
{
    dm_identity_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->sk = sodium_malloc(S_SECRET_BYTES);
    if (!self->sk) {
        free(self);
        return NULL;
    }
    return self;
}

void dm_identity_destroy(dm_identity_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_identity_t *self = *self_p;
    sodium_free(self->sk); /* wipes before freeing */
    sodium_memzero(self, sizeof *self);
    free(self);
    *self_p = NULL;
}

dm_err dm_identity_new_ephemeral(dm_identity_t **out)
{
    *out = NULL;
    dm_err err = s_sodium(NULL);
    if (err)
        return err;
    dm_identity_t *self = s_alloc();
    if (!self)
        return DM_ERR_NOMEM;
    if (crypto_sign_keypair(self->pk, self->sk) != 0) {
        dm_identity_destroy(&self);
        return DM_ERR_CRYPTO;
    }
    *out = self;
    return DM_OK;
}

/* Reads exactly len bytes from fd. Returns 0, or -1 with errno set (EIO for
 * a short file). */
static int s_read_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes exactly len bytes to fd. Returns 0, or -1 with errno set. */
static int s_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsyncs directory dir so that a rename or link in it is durable. */
static int s_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}


/* Reads the key file at path into self. DM_ERR_NOTFOUND (why untouched)
 * if it does not exist; otherwise a line naming path goes to why. */
static dm_err s_read_key(const char *path, dm_identity_t *self, dm_buf_t *why)
{
    dm_err err = DM_OK;
    uint8_t *pk_check = NULL, *sk_check = NULL;
    /* O_NONBLOCK: a FIFO in the key's place must not hang the open. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return DM_ERR_NOTFOUND;
        dm_buf_why(why, "identity: cannot open %s: %s", path, strerror(errno));
        return DM_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        dm_buf_why(why, "identity: cannot stat %s: %s", path, strerror(errno));
        err = DM_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        dm_buf_why(why, "identity: %s is not a regular file", path);
        err = DM_ERR_IO;
        goto out;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        dm_buf_why(why, "identity: cannot read %s: %s", path, strerror(errno));
        err = DM_ERR_IO;
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        dm_buf_why(why, "identity: %s has mode %04o, refusing a secret key readable or writable "
                   "by others; run chmod 600 %s",
                   path, (unsigned)(st.st_mode & 07777), path);
        err = DM_ERR_IO;
        goto out;
    }
    if (st.st_size != S_SECRET_BYTES) {
        dm_buf_why(why, "identity: %s is %lld bytes, expected %d (an ed25519 secret key)", path,
                   (long long)st.st_size, S_SECRET_BYTES);
        err = DM_ERR_CRYPTO;
        goto out;
    }
    if (s_read_all(fd, self->sk, S_SECRET_BYTES) != 0) {
        dm_buf_why(why, "identity: cannot read %s: %s", path, strerror(errno));
        err = DM_ERR_IO;
        goto out;
    }
    /* The stored public half must be the one the seed yields; anything else
     * is a corrupt or hand-edited file that would sign as someone else. */
    pk_check = sodium_malloc(DM_ID_PUBLIC_BYTES);
    sk_check = sodium_malloc(S_SECRET_BYTES);
    if (!pk_check || !sk_check) {
        err = DM_ERR_NOMEM;
        goto out;
    }
    if (crypto_sign_seed_keypair(pk_check, sk_check, self->sk) != 0 ||
        sodium_memcmp(pk_check, self->sk + S_SEED_BYTES, DM_ID_PUBLIC_BYTES) != 0) {
        dm_buf_why(why, "identity: %s is corrupt: its public key does not match its seed", path);
        err = DM_ERR_CRYPTO;
        goto out;
    }
    memcpy(self->pk, pk_check, DM_ID_PUBLIC_BYTES);
out:
    sodium_free(pk_check);
    sodium_free(sk_check);
    close(fd);
    return err;
}

/* Creates the key file at path (in dir) with a fresh key, without ever
 * replacing an existing one. DM_ERR_EXISTS (why untouched) if another
 * process created it first; otherwise a line naming the file goes to why. */
static dm_err s_create_key(const char *dir, const char *path, dm_identity_t *self,
                           dm_buf_t *why)
{
    dm_err err = DM_OK;
    char tmp[DM_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        dm_buf_why(why, "identity: path too long: %s", path);
        return DM_ERR_IO;
    }
    if (crypto_sign_keypair(self->pk, self->sk) != 0) {
        dm_buf_why(why, "identity: key generation failed");
        return DM_ERR_CRYPTO;
    }
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        dm_buf_why(why, "identity: cannot create %s: %s", tmp, strerror(errno));
        return DM_ERR_IO;
    }
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0 || s_write_all(fd, self->sk, S_SECRET_BYTES) != 0 ||
        fsync(fd) != 0) {
        dm_buf_why(why, "identity: cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        err = DM_ERR_IO;
        goto out;
    }
    if (close(fd) != 0) {
        dm_buf_why(why, "identity: cannot write %s: %s", tmp, strerror(errno));
        err = DM_ERR_IO;
        goto out;
    }
    /* link() rather than rename(): it fails instead of replacing a key that
     * a concurrent start wrote in the meantime. */
    if (link(tmp, path) != 0) {
        if (errno == EEXIST) {
            err = DM_ERR_EXISTS;
            goto out;
        }
        if (errno != EPERM && errno != ENOTSUP && errno != EXDEV) {
            dm_buf_why(why, "identity: cannot create %s: %s", path, strerror(errno));
            err = DM_ERR_IO;
            goto out;
        }
        /* The file system has no hard links: fall back to rename. */
        if (rename(tmp, path) != 0) {
            dm_buf_why(why, "identity: cannot rename %s to %s: %s", tmp, path, strerror(errno));
            err = DM_ERR_IO;
            goto out;
        }
    }
    if (s_sync_dir(dir) != 0) {
        dm_buf_why(why, "identity: cannot sync directory %s after creating %s: %s", dir, path,
                   strerror(errno));
        err = DM_ERR_IO;
        goto out;
    }
    dm_log_info("identity: created %s", path);
out:
    unlink(tmp); /* harmless after a successful rename */
    return err;
}

/* Writes the folder part of path into dir ("." for a bare name, "/" for a
 * file at the root). False if it does not fit. */
static bool s_parent(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return snprintf(dir, cap, ".") < (int)cap;
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (len >= cap)
        return false;
    memcpy(dir, path, len);
    dir[len] = 0;
    return true;
}

/* Creates the missing folders of dir (mode 0700: they hold a secret),
 * like mkdir -p. A line naming the folder goes to why on failure. */
static dm_err s_make_dirs(const char *dir, dm_buf_t *why)
{
    char buf[DM_PATH_MAX];
    size_t len = strlen(dir);
    if (len >= sizeof buf) {
        dm_buf_why(why, "identity: folder name too long: %.64s...", dir);
        return DM_ERR_IO;
    }
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        char saved = buf[i];
        buf[i] = 0;
        if (mkdir(buf, S_IRWXU) != 0 && errno != EEXIST) {
            dm_buf_why(why, "identity: cannot create folder %s: %s", buf, strerror(errno));
            return DM_ERR_IO;
        }
        buf[i] = saved;
    }
    return DM_OK;
}

/* Creates path with a fresh key into self, making its folders first.
 * DM_ERR_EXISTS (why untouched) if the file is already there. */
static dm_err s_create_file(const char *path, dm_identity_t *self, dm_buf_t *why)
{
    char dir[DM_PATH_MAX];
    if (!s_parent(path, dir, sizeof dir)) {
        dm_buf_why(why, "identity: path too long: %.64s...", path);
        return DM_ERR_IO;
    }
    dm_err err = s_make_dirs(dir, why);
    return err ? err : s_create_key(dir, path, self, why);
}

dm_err dm_identity_load_file(const char *path, bool create, dm_identity_t **out, dm_buf_t *why)
{
    *out = NULL;
    dm_err err = s_sodium(why);
    if (err)
        return err;
    if (!path || !*path) {
        dm_buf_why(why, "identity: empty file name (expected the path of an identity file)");
        return DM_ERR_IO;
    }
    dm_identity_t *self = s_alloc();
    if (!self)
        return DM_ERR_NOMEM;
    err = s_read_key(path, self, why);
    if (err == DM_ERR_NOTFOUND && !create) {
        dm_buf_why(why, "identity: %s does not exist (create one with keygen %s)", path, path);
    } else if (err == DM_ERR_NOTFOUND) {
        err = s_create_file(path, self, why);
        if (err == DM_ERR_EXISTS) /* lost a race: use the winner's key */
            err = s_read_key(path, self, why);
        if (err == DM_ERR_NOTFOUND) {
            dm_buf_why(why, "identity: %s vanished while being created", path);
            err = DM_ERR_IO;
        }
    }
    if (err) {
        dm_identity_destroy(&self);
        return err;
    }
    *out = self;
    return DM_OK;
}

dm_err dm_identity_load(const char *dir, dm_identity_t **out, dm_buf_t *why)
{
    *out = NULL;
    char path[DM_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, DM_ID_KEY_FILE) >= (int)sizeof path) {
        dm_buf_why(why, "identity: directory name too long: %s", dir);
        return DM_ERR_IO;
    }
    return dm_identity_load_file(path, true, out, why);
}

dm_err dm_identity_keygen(const char *path, dm_identity_t **out, dm_buf_t *why)
{
    *out = NULL;
    dm_err err = s_sodium(why);
    if (err)
        return err;
    struct stat st;
    if (path && lstat(path, &st) == 0) {
        dm_buf_why(why, "identity: %s exists; choose another path or remove it", path);
        return DM_ERR_EXISTS;
    }
    if (!path || !*path) {
        dm_buf_why(why, "identity: empty file name (expected the path of a new identity file)");
        return DM_ERR_IO;
    }
    dm_identity_t *self = s_alloc();
    if (!self)
        return DM_ERR_NOMEM;
    err = s_create_file(path, self, why);
    if (err == DM_ERR_EXISTS) /* created in the meantime: still refuse */
        dm_buf_why(why, "identity: %s exists; choose another path or remove it", path);
    if (err) {
        dm_identity_destroy(&self);
        return err;
    }
    *out = self;
    return DM_OK;
}

bool dm_identity_key_parse(const char *hex, uint8_t key[DM_ID_PUBLIC_BYTES])
{
    if (!hex || strlen(hex) != S_HEX_DIGITS)
        return false;
    for (size_t i = 0; i < S_HEX_DIGITS; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    size_t got = 0;
    return sodium_init() >= 0 &&
           sodium_hex2bin(key, DM_ID_PUBLIC_BYTES, hex, S_HEX_DIGITS, NULL, &got, NULL) == 0 &&
           got == DM_ID_PUBLIC_BYTES;
}

void dm_identity_key_hex(const uint8_t key[DM_ID_PUBLIC_BYTES], char out[DM_ID_HEX_BYTES])
{
    sodium_bin2hex(out, DM_ID_HEX_BYTES, key, DM_ID_PUBLIC_BYTES);
}

const uint8_t *dm_identity_public(const dm_identity_t *self)
{
    return self->pk;
}

void dm_identity_hex(const dm_identity_t *self, char out[DM_ID_HEX_BYTES])
{
    sodium_bin2hex(out, DM_ID_HEX_BYTES, self->pk, DM_ID_PUBLIC_BYTES);
}

dm_err dm_identity_curve_keys(const dm_identity_t *self, uint8_t public_out[DM_ID_CURVE_BYTES],
                              uint8_t secret_out[DM_ID_CURVE_BYTES], dm_buf_t *why)
{
    if (s_sodium(why) != DM_OK ||
        crypto_sign_ed25519_pk_to_curve25519(public_out, self->pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(secret_out, self->sk) != 0) {
        sodium_memzero(public_out, DM_ID_CURVE_BYTES);
        sodium_memzero(secret_out, DM_ID_CURVE_BYTES);
        dm_buf_why(why, "identity: cannot derive the Curve25519 keys");
        return DM_ERR_CRYPTO;
    }
    return DM_OK;
}

dm_err dm_identity_curve_from_id(const uint8_t node_id[DM_ID_PUBLIC_BYTES],
                                    uint8_t curve_out[DM_ID_CURVE_BYTES])
{
    if (s_sodium(NULL) != DM_OK || crypto_sign_ed25519_pk_to_curve25519(curve_out, node_id) != 0) {
        sodium_memzero(curve_out, DM_ID_CURVE_BYTES);
        return DM_ERR_CRYPTO; /* bad input from a peer: the caller reports it */
    }
    return DM_OK;
}

dm_err dm_identity_sign(const dm_identity_t *self, const void *msg, size_t len,
                        uint8_t sig[DM_ID_SIGNATURE_BYTES], dm_buf_t *why)
{
    if (s_sodium(why) != DM_OK || crypto_sign_detached(sig, NULL, msg, len, self->sk) != 0) {
        sodium_memzero(sig, DM_ID_SIGNATURE_BYTES);
        dm_buf_why(why, "identity: signing failed");
        return DM_ERR_CRYPTO;
    }
    return DM_OK;
}

bool dm_identity_verify(const uint8_t node_id[DM_ID_PUBLIC_BYTES], const void *msg, size_t len,
                        const uint8_t sig[DM_ID_SIGNATURE_BYTES])
{
    if (s_sodium(NULL) != DM_OK)
        return false;
    return crypto_sign_verify_detached(sig, msg, len, node_id) == 0;
}

/* ---- addresses ---- */

/* Appends one line to why (if any) and returns DM_ERR_INVALID. */
static dm_err s_bad(dm_buf_t *why, const char *fmt, ...) DM_PRINTF(2, 3);
static dm_err s_bad(dm_buf_t *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_buf_vwhy(why, fmt, ap);
    va_end(ap);
    return DM_ERR_INVALID;
}

static bool s_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
}

/* Checks "tcp://HOST:PORT" of length len (no NUL needed). */
static dm_err s_check_endpoint(const char *ep, size_t len, dm_buf_t *why)
{
    size_t scheme = strlen(S_SCHEME);
    if (len < scheme || memcmp(ep, S_SCHEME, scheme) != 0) {
        const char *sep = memchr(ep, ':', len);
        int shown = sep ? (int)(sep - ep) : (int)len;
        return s_bad(why, "address scheme '%.*s' is not supported: %s", shown, ep,
                     S_FORM);
    }
    const char *h = ep + scheme, *end = ep + len, *colon;
    char host[S_HOST_MAX + 1];
    size_t hlen;
    if (h < end && *h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close)
            return s_bad(why, "address has '[' without ']' around the IPv6 host: %s",
                         S_FORM);
        hlen = (size_t)(close - h - 1);
        if (hlen == 0 || hlen > S_HOST_MAX)
            return s_bad(why, "address has an empty or overlong IPv6 host: %s", S_FORM);
        memcpy(host, h + 1, hlen);
        host[hlen] = 0;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return s_bad(why, "address host [%s] is not an IPv6 address: %s", host,
                         S_FORM);
        colon = close + 1;
        if (colon >= end || *colon != ':')
            return s_bad(why, "address has no ':PORT' after [%s]: %s", host, S_FORM);
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        if (!colon)
            return s_bad(why, "address has no ':PORT': %s", S_FORM);
        if (memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return s_bad(why, "address host has ':' (write IPv6 hosts as [addr]): %s",
                         S_FORM);
        hlen = (size_t)(colon - h);
        if (hlen == 0)
            return s_bad(why, "address has an empty host: %s", S_FORM);
        if (hlen > S_HOST_MAX)
            return s_bad(why, "address host is longer than %d characters: %s",
                         S_HOST_MAX, S_FORM);
        memcpy(host, h, hlen);
        host[hlen] = 0;
        bool numeric = true;
        for (size_t i = 0; i < hlen; i++) {
            if (!s_is_name_char(host[i]))
                return s_bad(why,
                             "address host '%s' has an invalid character '%c' (letters, "
                             "digits, '-' and '.' only): %s",
                             host, host[i], S_FORM);
            if (host[i] != '.' && (host[i] < '0' || host[i] > '9'))
                numeric = false;
        }
        struct in_addr a4;
        if (numeric && inet_pton(AF_INET, host, &a4) != 1)
            return s_bad(why, "address host '%s' is not an IPv4 address: %s", host,
                         S_FORM);
        if (host[0] == '.' || host[0] == '-' || strstr(host, ".."))
            return s_bad(why, "address host '%s' is not a valid name: %s", host,
                         S_FORM);
    }
    const char *p = colon + 1;
    size_t plen = (size_t)(end - p);
    if (plen == 0 || plen > 5)
        return s_bad(why, "address port '%.*s' is not a number from 1 to %d: %s",
                     (int)plen, p, S_PORT_MAX, S_FORM);
    unsigned port = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] < '0' || p[i] > '9')
            return s_bad(why, "address port '%.*s' is not a number from 1 to %d: %s",
                         (int)plen, p, S_PORT_MAX, S_FORM);
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    if (port < 1 || port > S_PORT_MAX)
        return s_bad(why, "address port %u is out of range 1-%d: %s", port, S_PORT_MAX,
                     S_FORM);
    return DM_OK;
}

dm_err dm_identity_address_format(const uint8_t node_id[DM_ID_PUBLIC_BYTES], const char *endpoint,
                         char *out, size_t cap, dm_buf_t *why)
{
    size_t eplen = strlen(endpoint);
    if (why) {
        dm_buf_t reason = DM_BUF_INIT;
        dm_err rc = s_check_endpoint(endpoint, eplen, &reason);
        if (rc != DM_OK)
            dm_buf_why(why, "identity: cannot format an address for endpoint '%s': %s", endpoint,
                       reason.data);
        dm_buf_free(&reason);
        if (rc != DM_OK)
            return rc;
    } else if (s_check_endpoint(endpoint, eplen, NULL) != DM_OK) {
        return DM_ERR_INVALID;
    }
    if (cap < S_HEX_DIGITS + 1 + eplen + 1) {
        dm_buf_why(why, "identity: the address for endpoint '%s' needs %zu bytes, room for %zu",
                   endpoint, S_HEX_DIGITS + 1 + eplen + 1, cap);
        return DM_ERR_TOOBIG;
    }
    sodium_bin2hex(out, S_HEX_DIGITS + 1, node_id, DM_ID_PUBLIC_BYTES);
    out[S_HEX_DIGITS] = '@';
    memcpy(out + S_HEX_DIGITS + 1, endpoint, eplen + 1);
    return DM_OK;
}

dm_err dm_identity_address_parse(const char *addr, uint8_t node_id[DM_ID_PUBLIC_BYTES], char *endpoint,
                        size_t endpoint_cap, dm_buf_t *why)
{
    if (!addr || !*addr)
        return s_bad(why, "address is empty: %s", S_FORM);
    const char *at = strchr(addr, '@');
    if (!at)
        return s_bad(why, "address has no '@' between node id and endpoint: %s",
                     S_FORM);
    size_t idlen = (size_t)(at - addr);
    if (idlen != S_HEX_DIGITS)
        return s_bad(why, "address node id has %zu characters, not %d hex digits: %s",
                     idlen, S_HEX_DIGITS, S_FORM);
    for (size_t i = 0; i < idlen; i++) {
        char c = addr[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex)
            return s_bad(why,
                         "address node id has a non-hex character '%c' at position %zu: %s", c,
                         i + 1, S_FORM);
    }
    uint8_t id[DM_ID_PUBLIC_BYTES];
    size_t got = 0;
    if (sodium_hex2bin(id, sizeof id, addr, idlen, NULL, &got, NULL) != 0 || got != sizeof id)
        return s_bad(why, "address node id is not valid hex: %s", S_FORM);
    const char *ep = at + 1;
    size_t eplen = strlen(ep);
    dm_err rc = s_check_endpoint(ep, eplen, why);
    if (rc)
        return rc;
    if (eplen >= endpoint_cap) {
        s_bad(why, "address endpoint has %zu bytes, room for %zu", eplen,
              endpoint_cap ? endpoint_cap - 1 : 0);
        return DM_ERR_TOOBIG;
    }
    memcpy(node_id, id, sizeof id);
    memcpy(endpoint, ep, eplen + 1);
    return DM_OK;
}
