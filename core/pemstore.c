/* pemstore.c: the CA's PEM file store: reads the CA's keys and certificates (bounded regular
 * files; secret keys never readable by group or others, and cleansed from memory after use),
 * writes them atomically with mode 0600, and keeps the 0700 directories of state/tls and the
 * temp files an interrupted write leaves there. See core/pemstore.h. */
#include "core/pemstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/statefile.h"
#include "core/x509b.h"
#include "util/util.h"

#define CA_FILE_MAX (1 << 20)       /* largest PEM file read */

/* Clear and free a buffer that held key material. */
static void free_secret(char *buf, size_t len)
{
    if (!buf)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}

/* PEM password callback: keys here are never encrypted, and nothing may prompt on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Whether st is a file the CA reads: a regular file (else -EINVAL) of at most CA_FILE_MAX
 * bytes (else -EFBIG) that, with secret, group and others may not access (else -EPERM). */
static int file_ok(const struct stat *st, bool secret)
{
    if (!S_ISREG(st->st_mode))
        return -EINVAL;
    if (secret && (st->st_mode & (S_IRWXG | S_IRWXO)))
        return -EPERM;
    return st->st_size > CA_FILE_MAX ? -EFBIG : 0;
}

/* Read a PEM file for its certificates (file_ok without secret) into a NUL-terminated malloc'd
 * buffer, with the util layer's cu_read_all; free it with free. 0 or -errno. */
static int read_file(const char *path, char **data, size_t *len)
{
    struct stat st;
    int rc;

    *data = NULL;
    *len = 0;
    if (stat(path, &st) < 0)
        return -errno;
    rc = file_ok(&st, false);
    return rc < 0 ? rc : cu_read_all(path, CA_FILE_MAX, data, len);
}

/* Read a key file (file_ok; with secret, refuse -EPERM a file that group or others may access)
 * into a NUL-terminated malloc'd buffer of its exact size, to free with free_secret. Not
 * cu_read_all: that one grows its buffer with realloc, which would leave a copy of the key in
 * freed memory uncleansed. The checks are of the open file, not of a name that may change.
 * 0 or -errno. */
static int read_key(const char *path, bool secret, char **data, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t cap = 0, got = 0;
    ssize_t n;
    int fd, rc = 0;

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    rc = file_ok(&st, secret);
    if (rc < 0)
        goto out;
    cap = (size_t)st.st_size + 1;
    buf = malloc(cap);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    n = cu_read_fd(fd, buf, cap - 1);
    if (n < 0) {
        rc = (int)n;
        goto out;
    }
    got = (size_t)n;
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
out:
    free_secret(buf, cap);
    close(fd);
    return rc;
}

/* Load the PEM file at path: a private key into *key when key is given (read_key with secret),
 * else a certificate into *crt (read_file). The file's contents are cleansed and freed after
 * parsing. 0 or -errno with a reason in err (which may be NULL). */
static int load_pem(const char *path, bool secret, EVP_PKEY **key, X509 **crt, char *err,
                    size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    int rc;

    rc = key ? read_key(path, secret, &data, &len) : read_file(path, &data, &len);
    if (key && rc == -EPERM) {
        state_err(err, errlen, "%s is accessible by group or others; refusing it (chmod 600)",
                path);
        goto out;
    }
    if (rc < 0) {
        state_err(err, errlen, "reading %s: %s", path, strerror(-rc));
        goto out;
    }
    bio = BIO_new_mem_buf(data, (int)len);
    if (!bio) {
        rc = x509b_ossl_errno(err, errlen, path);
        goto out;
    }
    if (key ? !(*key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL))
            : !(*crt = PEM_read_bio_X509(bio, NULL, no_password, NULL)))
        rc = x509b_ossl_errno(err, errlen, path);
out:
    BIO_free(bio);
    free_secret(data, len);
    return rc;
}

int pem_load_key(const char *path, bool secret, EVP_PKEY **out, char *err, size_t errlen)
{
    *out = NULL;
    return load_pem(path, secret, out, NULL, err, errlen);
}

int pem_load_cert(const char *path, X509 **out, char *err, size_t errlen)
{
    *out = NULL;
    return load_pem(path, false, NULL, out, err, errlen);
}

/* Copy the contents of a memory BIO into a malloc'd NUL-terminated string. 0 or -ENOMEM. */
int pem_bio_string(BIO *bio, char **out)
{
    BUF_MEM *bm = NULL;

    *out = NULL;
    BIO_get_mem_ptr(bio, &bm);
    if (!bm)
        return -ENOMEM;
    *out = malloc(bm->length + 1);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, bm->data, bm->length);
    (*out)[bm->length] = '\0';
    return 0;
}

/* Certificate as PEM into a malloc'd string. 0 or -errno. */
int pem_encode_cert(X509 *crt, char **out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc;

    *out = NULL;
    if (!bio || PEM_write_bio_X509(bio, crt) != 1) {
        rc = x509b_ossl_errno(NULL, 0, "encoding certificate");
        goto out;
    }
    rc = pem_bio_string(bio, out);
out:
    BIO_free(bio);
    return rc;
}

/* Write key as unencrypted PKCS#8 PEM to path, mode 0600 from creation, atomically; the
 * encoding is cleansed afterwards. 0 or -errno with a reason in err. */
int pem_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    BUF_MEM *bm = NULL;
    int rc;

    if (!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = x509b_ossl_errno(err, errlen, "encoding key");
        goto out;
    }
    BIO_get_mem_ptr(bio, &bm);
    if (!bm) {
        rc = -ENOMEM;
        goto out;
    }
    rc = state_write_atomic(path, bm->data, bm->length, 0600);
    if (rc < 0)
        state_err(err, errlen, "writing %s: %s", path, strerror(-rc));
out:
    if (bm)
        OPENSSL_cleanse(bm->data, bm->max);
    BIO_free(bio);
    return rc;
}

/* Write crt as PEM to path, mode 0600 like every state file (the daemon and the proxy it runs
 * read it; others get the CA certificate from the mount), atomically. 0 or -errno with a reason
 * in err. */
int pem_write_cert(const char *path, X509 *crt, char *err, size_t errlen)
{
    char *pem = NULL;
    int rc = pem_encode_cert(crt, &pem);

    if (rc < 0) {
        state_err(err, errlen, "encoding %s: %s", path, strerror(-rc));
        goto out;
    }
    rc = state_write_atomic(path, pem, strlen(pem), 0600);
    if (rc < 0)
        state_err(err, errlen, "writing %s: %s", path, strerror(-rc));
out:
    free(pem);
    return rc;
}

/* Create path as a 0700 directory if missing; tighten an existing one to 0700. 0 or -errno. */
int pem_lstat_dir(const char *path, struct stat *st)
{
    if (lstat(path, st) < 0)
        return -errno;
    return S_ISDIR(st->st_mode) ? 0 : -ENOTDIR;
}

int pem_ensure_dir(const char *path)
{
    struct stat st;
    int rc = state_mkdir(path, 0700);

    if (rc == 0)
        rc = pem_lstat_dir(path, &st);
    if (rc < 0)
        return rc;
    if ((st.st_mode & 077) && chmod(path, 0700) < 0)
        return -errno;
    return 0;
}

/* Remove the temp files an interrupted atomic write left in every directory below dir (one
 * level; below "archive" as well, since archiving moves a leaf directory with what it holds).
 * Leaf writes happen in state/tls/<domain>/, which the gateway's clean-up at mount does not
 * reach, and a leftover temp may hold a private key. 0 or -errno. */
int pem_clean_leaf_temps(const char *dir, int depth)
{
    char path[PATH_MAX];
    struct dirent *de;
    struct stat st;
    DIR *d = opendir(dir);
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || state_path(path, sizeof(path), dir, de->d_name) < 0 ||
            lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        rc = state_clean_temps(path);
        if (rc == 0 && depth == 0 && strcmp(de->d_name, "archive") == 0)
            rc = pem_clean_leaf_temps(path, 1);
    }
    closedir(d);
    return rc;
}

/* lstat path: 1 exists (anything, even a dangling link), 0 missing, or -errno. */
int pem_exists(const char *path)
{
    struct stat st;

    if (lstat(path, &st) == 0)
        return 1;
    return errno == ENOENT ? 0 : -errno;
}
