/* key.c: the Ed25519 key that seals the capsule chain: created and loaded from its 32-byte seed
 * file, made from a public key alone or around a signer that holds the private half elsewhere;
 * sign and verify; and the hex text keys, hashes and signatures are written in. What a capsule
 * is, and sealing one, is capsule.c's. */
#include "audit/keyint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/util.h"

#define SEED_LEN 32
#define PUB_LEN 32
#define SIG_LEN AUDIT_SIG_LEN

void audit_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int audit_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int audit_unhex(const char *s, unsigned char *out, size_t n)
{
    if (!s || strlen(s) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = audit_hex_digit(s[2 * i]), lo = audit_hex_digit(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int audit_ossl_errno(int fallback)
{
    unsigned long e;
    int rc = fallback;

    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            rc = -ENOMEM;
    return rc;
}

/* Finish a key object from its EVP_PKEY: public hex and id. 0 or -EIO. */
static int key_finish(struct audit_key *k)
{
    unsigned char pub[PUB_LEN];
    size_t publen = sizeof(pub);

    if (EVP_PKEY_get_raw_public_key(k->pkey, pub, &publen) != 1)
        return audit_ossl_errno(-EIO);
    if (publen != PUB_LEN)
        return -EIO;
    audit_hex(pub, PUB_LEN, k->pubhex);
    memcpy(k->id, k->pubhex, AUDIT_KEYID_HEX - 1);
    k->id[AUDIT_KEYID_HEX - 1] = '\0';
    return 0;
}

/* Create path with a fresh random seed unless it exists. 0 (created or already there) or
 * -errno. The seed goes to a temp file first and is linked in, so path never holds a partial
 * key. */
static int key_create(const char *path, char *err, size_t errlen)
{
    unsigned char seed[SEED_LEN];
    char tmp[PATH_MAX];
    int fd = -1, rc = 0, n;

    n = snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return cu_errf(-ENAMETOOLONG, err, errlen, "key path %s is too long", path);
    if (RAND_priv_bytes(seed, sizeof(seed)) != 1) {
        rc = cu_errf(audit_ossl_errno(-EIO), err, errlen, "no randomness for a new key");
        goto out;
    }
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = cu_errf(-errno, err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    errno = 0;
    if (fchmod(fd, 0600) < 0 || write(fd, seed, sizeof(seed)) != (ssize_t)sizeof(seed) ||
        fsync(fd) < 0) {
        rc = errno ? -errno : -EIO;
        cu_errf(rc, err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = cu_errf(-errno, err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (link(tmp, path) < 0 && errno != EEXIST) {
        rc = cu_errf(-errno, err, errlen, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    rc = cu_fsync_parent(path);
    if (rc < 0)
        cu_errf(rc, err, errlen, "cannot sync the directory of %s: %s", path, strerror(-rc));
out:
    OPENSSL_cleanse(seed, sizeof(seed));
    if (fd >= 0)
        close(fd);
    (void)unlink(tmp);
    return rc;
}

/* Load the key at path. signer: create it when missing, insist on owner and mode 0600, and keep
 * the signing half; otherwise only the public half of an existing seed file is kept. */
static int key_load(const char *path, int signer, struct audit_key **out, char *err,
                    size_t errlen)
{
    unsigned char seed[SEED_LEN + 1];
    struct audit_key *k = NULL;
    struct stat st;
    ssize_t got;
    size_t have = 0;
    int fd = -1, rc = 0;

    *out = NULL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && signer) {
        rc = key_create(path, err, errlen);
        if (rc < 0)
            goto out;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        rc = cu_errf(-errno, err, errlen, "cannot open key %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = cu_errf(-errno, err, errlen, "cannot stat key %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cu_errf(-EINVAL, err, errlen, "key %s is not a regular file", path);
        goto out;
    }
    if (signer && st.st_uid != geteuid()) {
        rc = cu_errf(-EACCES, err, errlen, "key %s is owned by uid %ld, not by uid %ld", path,
                     (long)st.st_uid, (long)geteuid());
        goto out;
    }
    if (signer && (st.st_mode & 077)) {
        rc = cu_errf(-EACCES, err, errlen, "key %s has mode %04o; it must be 0600", path,
                     (unsigned)(st.st_mode & 07777));
        goto out;
    }
    while (have < sizeof(seed)) {
        got = read(fd, seed + have, sizeof(seed) - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cu_errf(-errno, err, errlen, "cannot read key %s: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        have += (size_t)got;
    }
    if (have != SEED_LEN) {
        rc = cu_errf(-EINVAL, err, errlen, "key %s holds %s%zu bytes; an Ed25519 seed is %d",
                     path, have > SEED_LEN ? "more than " : "",
                     have > SEED_LEN ? (size_t)SEED_LEN : have, SEED_LEN);
        goto out;
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        rc = cu_errf(-ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SEED_LEN);
    if (!k->pkey) {
        rc = cu_errf(audit_ossl_errno(-EIO), err, errlen, "OpenSSL refused the Ed25519 seed in %s",
                     path);
        goto out;
    }
    k->can_sign = 1;
    rc = key_finish(k);
    if (rc < 0) {
        cu_errf(rc, err, errlen, "cannot derive the public key of %s", path);
        goto out;
    }
    if (!signer) {
        rc = audit_key_from_public(k->pubhex, out);
        if (rc < 0)
            cu_errf(rc, err, errlen, "cannot derive the public key of %s", path);
        goto out;
    }
    *out = k;
    k = NULL;
out:
    OPENSSL_cleanse(seed, sizeof(seed));
    if (fd >= 0)
        close(fd);
    audit_key_free(k);
    return rc;
}

int audit_key_load(const char *path, struct audit_key **out, char *err, size_t errlen)
{
    return key_load(path, 1, out, err, errlen);
}

int audit_key_load_public(const char *path, struct audit_key **out, char *err, size_t errlen)
{
    return key_load(path, 0, out, err, errlen);
}

int audit_key_from_public(const char *pubhex, struct audit_key **out)
{
    unsigned char pub[PUB_LEN];
    struct audit_key *k;
    int rc;

    *out = NULL;
    if (audit_unhex(pubhex, pub, sizeof(pub)) < 0)
        return -EINVAL;
    k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof(pub));
    if (!k->pkey) {
        rc = audit_ossl_errno(-EINVAL);
        goto out;
    }
    rc = key_finish(k);
    if (rc == 0) {
        *out = k;
        k = NULL;
    }
out:
    audit_key_free(k);
    return rc;
}

int audit_key_from_signer(const char *pubhex, audit_sign_fn fn, void *arg,
                          struct audit_key **out)
{
    int rc;

    *out = NULL;
    if (!fn)
        return -EINVAL;
    rc = audit_key_from_public(pubhex, out);
    if (rc < 0)
        return rc;
    (*out)->sign = fn;
    (*out)->sign_arg = arg;
    (*out)->can_sign = 1;
    return 0;
}

int audit_key_verify(const struct audit_key *k, const unsigned char *msg, size_t len,
                      const unsigned char sig[AUDIT_SIG_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc;

    if (!ctx)
        return audit_ossl_errno(-ENOMEM);
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1)
        rc = audit_ossl_errno(-EIO);
    else if (EVP_DigestVerify(ctx, sig, AUDIT_SIG_LEN, msg, len) == 1)
        rc = 1;
    else
        rc = audit_ossl_errno(0);     /* 0: a signature that does not verify */
    EVP_MD_CTX_free(ctx);
    return rc;
}

int audit_key_sign(const struct audit_key *k, const unsigned char *msg, size_t len,
                   unsigned char sig[AUDIT_SIG_LEN])
{
    size_t siglen = AUDIT_SIG_LEN;
    EVP_MD_CTX *ctx = NULL;
    int rc;

    if (!k || !k->can_sign)
        return -EINVAL;
    if (k->sign) {
        /* Another process signs: take nothing back that this public key does not verify. */
        rc = k->sign(k->sign_arg, msg, len, sig);
        if (rc == 0) {
            rc = audit_key_verify(k, msg, len, sig);
            rc = rc == 1 ? 0 : rc == 0 ? -EIO : rc;
        }
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
        rc = audit_ossl_errno(-ENOMEM);
        goto out;
    }
    rc = 0;
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, msg, len) != 1)
        rc = audit_ossl_errno(-EIO);
    else if (siglen != AUDIT_SIG_LEN)
        rc = -EIO;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

const char *audit_key_public_hex(const struct audit_key *k)
{
    return k->pubhex;
}

const char *audit_key_id(const struct audit_key *k)
{
    return k->id;
}

void audit_key_free(struct audit_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}
