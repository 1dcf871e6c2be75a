/* cabundle.c: the serving leaves of the internal CA: each one PEM file (the leaf, the CA
 * certificate, the leaf's key), issued, archived, read for its names and checked for renewal.
 * The public functions are declared in core/ca.h; the leaf itself is built and signed by
 * cai_make_leaf (core/ca.c). */
#include "core/ca.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/ca_int.h"
#include "core/capolicy.h"
#include "core/pemstore.h"
#include "core/statefile.h"
#include "core/x509b.h"
#include "util/util.h"

/* Check a serving leaf's path: an absolute path of a file whose name ends in ".pem", and its
 * directory into dir (PATH_MAX). 0 or -EINVAL. */
int cai_bundle_path_ok(const char *path, char *dir)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    size_t len;

    if (!base || path[0] != '/' || strlen(path) >= PATH_MAX)
        return -EINVAL;
    len = strlen(base + 1);
    if (len <= 4 || strcmp(base + 1 + len - 4, ".pem") != 0 || base[1] == '.')
        return -EINVAL;
    memcpy(dir, path, (size_t)(base - path));
    dir[base - path] = '\0';
    return 0;
}

/* Hard-link the file at path into the archive as <name without .pem>.<serial>.pem ("-2"...
 * on a clash), serial read from it ("unknown" when unreadable). With the lock held.
 * 0, -ENOENT (no file) or -errno. */
static int bundle_archive_locked(struct ca *ca, const char *path)
{
    char serial[CA_SERIAL_HEX_MAX], dest[PATH_MAX];
    const char *base = strrchr(path, '/') + 1;
    int stem = (int)strlen(base) - 4, rc;

    rc = pem_exists(path);
    if (rc <= 0)
        return rc == 0 ? -ENOENT : rc;
    rc = cai_archive_prep(ca, path, serial);
    if (rc < 0)
        return rc;
    for (int i = 1; i < 1000; i++) {
        if (cai_archive_dest(ca, base, stem, serial, ".pem", i, dest) < 0)
            return -ENAMETOOLONG;
        if (link(path, dest) == 0)
            return cu_fsync_dir(ca->archive_dir);
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* The PEM of leaf, the CA certificate and key, in a secure-heap BIO. NULL on failure. */
static BIO *bundle_encode(struct ca *ca, X509 *leaf, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_secmem());

    if (bio && PEM_write_bio_X509(bio, leaf) == 1 && PEM_write_bio_X509(bio, ca->cert) == 1 &&
        PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1)
        return bio;
    BIO_free(bio);
    return NULL;
}

int ca_issue_bundle(struct ca *ca, const char *path, const char *const *names, size_t n,
                    int leaf_days, char serial_hex[CA_SERIAL_HEX_MAX], char *err, size_t errlen)
{
    char dir[PATH_MAX], serial[CA_SERIAL_HEX_MAX];
    EVP_PKEY *key = NULL;
    X509 *crt = NULL;
    BIO *bio = NULL;
    BUF_MEM *bm = NULL;
    int rc;

    cai_issue_begin(serial_hex, err, errlen);
    if (!ca || cai_bundle_path_ok(path, dir) < 0 || ca_policy_names_ok(names, n) < 0) {
        state_err(err, errlen, "invalid path or names for a serving leaf");
        return -EINVAL;
    }
    rc = ca_policy_leaf_days(&leaf_days, err, errlen);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ca->lock);
    rc = cai_make_leaf(ca, names, n, leaf_days, &key, &crt, err, errlen);
    if (rc < 0)
        goto out;
    rc = x509b_serial_hex(crt, serial, sizeof(serial));
    if (rc < 0)
        goto out;
    bio = bundle_encode(ca, crt, key);
    if (bio)
        BIO_get_mem_ptr(bio, &bm);
    if (!bm) {
        rc = x509b_ossl_errno(err, errlen, "encoding the leaf");
        goto out;
    }
    rc = pem_ensure_dir(dir);
    if (rc < 0) {
        state_err(err, errlen, "creating %s: %s", dir, strerror(-rc));
        goto out;
    }
    rc = bundle_archive_locked(ca, path);
    if (rc < 0 && rc != -ENOENT) {
        state_err(err, errlen, "archiving the previous leaf %s: %s", path, strerror(-rc));
        goto out;
    }
    rc = state_write_atomic(path, bm->data, bm->length, 0600);
    if (rc < 0) {
        state_err(err, errlen, "writing %s: %s", path, strerror(-rc));
        goto out;
    }
    if (serial_hex)
        snprintf(serial_hex, CA_SERIAL_HEX_MAX, "%s", serial);
out:
    pthread_mutex_unlock(&ca->lock);
    if (bm)
        OPENSSL_cleanse(bm->data, bm->max);
    BIO_free(bio);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

int cai_lock_bundle(struct ca *ca, const char *path)
{
    char dir[PATH_MAX];

    if (!ca || cai_bundle_path_ok(path, dir) < 0)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    return 0;
}

int ca_bundle_archive(struct ca *ca, const char *path)
{
    int rc;

    rc = cai_lock_bundle(ca, path);
    if (rc < 0)
        return rc;
    rc = bundle_archive_locked(ca, path);
    if (rc == 0)
        rc = state_unlink(path);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

int ca_bundle_names(struct ca *ca, const char *path, char ***names, size_t *n)
{
    X509 *crt = NULL;
    int rc;

    *names = NULL;
    *n = 0;
    rc = cai_lock_bundle(ca, path);
    if (rc < 0)
        return rc;
    rc = pem_load_cert(path, &crt, NULL, 0);
    if (rc == 0)
        rc = cai_san_names(crt, names, n);
    pthread_mutex_unlock(&ca->lock);
    X509_free(crt);
    return rc == -ENOENT || rc == -ENOMEM ? rc : (rc < 0 ? -EINVAL : 0);
}

/* Whether got[0..ngot) and want[0..nwant) hold the same names (each list without repeats). */
static bool same_names(char *const *got, size_t ngot, const char *const *want, size_t nwant)
{
    if (ngot != nwant)
        return false;
    for (size_t i = 0; i < nwant; i++) {
        size_t k = 0;

        while (k < ngot && strcmp(got[k], want[i]) != 0)
            k++;
        if (k == ngot)
            return false;
    }
    return true;
}

int ca_bundle_needs_renewal(struct ca *ca, const char *path, const char *const *names, size_t n,
                            int renew_before_days)
{
    char dir[PATH_MAX];
    X509 *crt = NULL;
    char **got = NULL;
    size_t ngot = 0;
    int rc;

    if (!ca || renew_before_days < 0 || cai_bundle_path_ok(path, dir) < 0 ||
        ca_policy_names_ok(names, n) < 0)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = pem_load_cert(path, &crt, NULL, 0);
    if (rc < 0)
        rc = rc == -ENOMEM ? -ENOMEM : 1;
    else if (cai_san_names(crt, &got, &ngot) < 0 || !same_names(got, ngot, names, n))
        rc = 1;
    else
        rc = cai_leaf_due(ca, crt, path, true, renew_before_days);
    ERR_clear_error();
    pthread_mutex_unlock(&ca->lock);
    ca_names_free(got, ngot);
    X509_free(crt);
    return rc;
}
