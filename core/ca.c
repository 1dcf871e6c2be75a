/* ca.c: the internal CA: root generation and loading, leaf issuance, signing (only what the
 * policy of core/capolicy.c allows: every certificate the CA key signs must meet it), archive,
 * renewal, info. The CA key is either held here (ca_open: the signer process, unit tests, tools)
 * or kept in another process (ca_open_remote: the daemon, which then holds only the certificate
 * and asks that process for signatures). */
#include "core/ca.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/capolicy.h"
#include "core/statefile.h"
#include "util/util.h"

#define CA_SERIAL_BYTES 16          /* random serial length; the top byte is 0x40..0x7f */
#define CA_BACKDATE_SECS 300        /* notBefore = now - 5 min, for peers with a slow clock */
#define CA_ROOT_YEARS 10
#define CA_CN_MAX 64                /* ub-common-name */
#define CA_FILE_MAX (1 << 20)       /* largest PEM file read */
#define CA_DAY_SECS 86400
#define CA_CN_PREFIX "QP Conduit Internal CA ("
#define CA_DER_MAX (64 * 1024)      /* largest certificate the policy looks at */

struct ca {
    pthread_mutex_t lock;           /* guards the leaf files and the OpenSSL objects */
    enum ca_key_type type;          /* immutable after ca_open */
    EVP_PKEY *key;                  /* NULL when another process holds it (sign is set) */
    ca_sign_fn sign;
    void *sign_arg;
    X509 *cert;
    char tls_dir[PATH_MAX];
    char archive_dir[PATH_MAX];
};

struct ext_spec {
    int nid;
    const char *value;              /* OpenSSL v3 extension config syntax */
};

/* The one mapping of OpenSSL errors to -errno: takes the first queued error as the reason
 * (written to err after what), then clears the queue. */
static int ossl_errno(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char text[256] = "unknown OpenSSL error";
    int rc = -EIO;

    if (e != 0) {
        ERR_error_string_n(e, text, sizeof(text));
        if (ERR_SYSTEM_ERROR(e) && ERR_GET_REASON(e) > 0)
            rc = -(int)ERR_GET_REASON(e);
        else if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            rc = -ENOMEM;
        else if (ERR_GET_LIB(e) == ERR_LIB_PEM || ERR_GET_LIB(e) == ERR_LIB_ASN1 ||
                 ERR_GET_LIB(e) == ERR_LIB_OSSL_DECODER)
            rc = -EINVAL;               /* unparseable or unsupported input */
    }
    ERR_clear_error();
    state_err(err, errlen, "%s: %s", what, text);
    return rc;
}

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
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
out:
    free_secret(buf, cap);
    close(fd);
    return rc;
}

/* Load a private key from PEM. With secret, a key accessible by group or others is refused.
 * 0 or -errno with a reason in err (which may be NULL). */
static int load_key(const char *path, bool secret, EVP_PKEY **out, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    int rc;

    *out = NULL;
    rc = read_key(path, secret, &data, &len);
    if (rc == -EPERM) {
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
        rc = ossl_errno(err, errlen, path);
        goto out;
    }
    *out = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (!*out)
        rc = ossl_errno(err, errlen, path);
out:
    BIO_free(bio);
    free_secret(data, len);
    return rc;
}

/* Load a certificate from PEM. 0 or -errno with a reason in err (which may be NULL). */
static int load_cert(const char *path, X509 **out, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    int rc;

    *out = NULL;
    rc = read_file(path, &data, &len);
    if (rc < 0) {
        state_err(err, errlen, "reading %s: %s", path, strerror(-rc));
        goto out;
    }
    bio = BIO_new_mem_buf(data, (int)len);
    if (!bio) {
        rc = ossl_errno(err, errlen, path);
        goto out;
    }
    *out = PEM_read_bio_X509(bio, NULL, no_password, NULL);
    if (!*out)
        rc = ossl_errno(err, errlen, path);
out:
    BIO_free(bio);
    free(data);
    return rc;
}

/* Copy the contents of a memory BIO into a malloc'd NUL-terminated string. 0 or -ENOMEM. */
static int bio_string(BIO *bio, char **out)
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
static int cert_pem(X509 *crt, char **out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc;

    *out = NULL;
    if (!bio || PEM_write_bio_X509(bio, crt) != 1) {
        rc = ossl_errno(NULL, 0, "encoding certificate");
        goto out;
    }
    rc = bio_string(bio, out);
out:
    BIO_free(bio);
    return rc;
}

/* Write key as unencrypted PKCS#8 PEM to path, mode 0600 from creation, atomically; the
 * encoding is cleansed afterwards. 0 or -errno with a reason in err. */
static int write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    BUF_MEM *bm = NULL;
    int rc;

    if (!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = ossl_errno(err, errlen, "encoding key");
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
static int write_cert(const char *path, X509 *crt, char *err, size_t errlen)
{
    char *pem = NULL;
    int rc = cert_pem(crt, &pem);

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
static int ensure_dir(const char *path)
{
    struct stat st;
    int rc = state_mkdir(path, 0700);

    if (rc < 0)
        return rc;
    if (lstat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if ((st.st_mode & 077) && chmod(path, 0700) < 0)
        return -errno;
    return 0;
}

/* Remove the temp files an interrupted atomic write left in every directory below dir (one
 * level; below "archive" as well, since archiving moves a leaf directory with what it holds).
 * Leaf writes happen in state/tls/<domain>/, which the gateway's clean-up at mount does not
 * reach, and a leftover temp may hold a private key. 0 or -errno. */
static int clean_leaf_temps(const char *dir, int depth)
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
            rc = clean_leaf_temps(path, 1);
    }
    closedir(d);
    return rc;
}

/* A fresh key of type, or NULL with the OpenSSL error queued. */
static EVP_PKEY *gen_key(enum ca_key_type type)
{
    if (type == CA_KEY_ED25519)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A random positive serial of exactly CA_SERIAL_BYTES bytes. 1 or 0 (error queued). */
static int set_random_serial(X509 *crt)
{
    unsigned char b[CA_SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int ok = 0;

    if (RAND_bytes(b, sizeof(b)) != 1)
        goto out;
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)))
        ok = 1;
out:
    BN_free(bn);
    return ok;
}

/* Serial of crt as lowercase hex. 0, -EINVAL (too long for len) or -ENOMEM. */
static int serial_hex_of(const X509 *crt, char *buf, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(crt), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    int rc = 0;

    if (!hex) {
        rc = -ENOMEM;
        goto out;
    }
    if (strlen(hex) >= len) {
        rc = -EINVAL;
        goto out;
    }
    for (size_t i = 0; hex[i]; i++)
        buf[i] = (hex[i] >= 'A' && hex[i] <= 'F') ? (char)(hex[i] - 'A' + 'a') : hex[i];
    buf[strlen(hex)] = '\0';
out:
    OPENSSL_free(hex);
    BN_free(bn);
    ERR_clear_error();
    return rc;
}

/* t as YYYY-MM-DDTHH:MM:SSZ. 0 or -EINVAL. */
static int format_time(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        ERR_clear_error();
        return -EINVAL;
    }
    return 0;
}

/* Seconds from now until t, negative when t is past. 0 or -EINVAL. */
static int secs_until(const ASN1_TIME *t, int64_t *secs)
{
    int day, sec;

    if (ASN1_TIME_diff(&day, &sec, NULL, t) != 1) {
        ERR_clear_error();
        return -EINVAL;
    }
    *secs = (int64_t)day * CA_DAY_SECS + sec;
    return 0;
}

/* Lowercase hex SHA-256 of the DER of crt, 64 digits, no colons. 0 or -ENOMEM. */
static int fingerprint(const X509 *crt, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (X509_digest(crt, EVP_sha256(), md, &n) != 1 || n != 32) {
        ERR_clear_error();
        return -ENOMEM;
    }
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0xf];
    }
    out[2 * n] = '\0';
    return 0;
}

/* Build and sign a v3 certificate for pub: random serial, valid from now - CA_BACKDATE_SECS to
 * not_after, issued by issuer (NULL: self-issued), whose key is issuer_key (only its public half
 * is used, for the key identifiers), with the extensions exts, signed by sign_key: the issuer's
 * key for the root, the subject's own key for a leaf request (see certify). NULL with the
 * OpenSSL error queued. */
static X509 *build_cert(EVP_PKEY *pub, const X509_NAME *subject, X509 *issuer,
                        EVP_PKEY *issuer_key, EVP_PKEY *sign_key, enum ca_key_type type,
                        time_t not_after, const struct ext_spec *exts, size_t nexts)
{
    X509 *crt = X509_new();
    X509V3_CTX ctx;
    bool ok = false;

    if (!crt || !X509_set_version(crt, X509_VERSION_3) || !set_random_serial(crt) ||
        !X509_gmtime_adj(X509_getm_notBefore(crt), -CA_BACKDATE_SECS) ||
        !ASN1_TIME_set(X509_getm_notAfter(crt), not_after) ||
        !X509_set_subject_name(crt, subject) ||
        !X509_set_issuer_name(crt, issuer ? X509_get_subject_name(issuer) : subject) ||
        !X509_set_pubkey(crt, pub))
        goto out;
    memset(&ctx, 0, sizeof(ctx));          /* no config database: db stays NULL */
    X509V3_set_ctx(&ctx, issuer ? issuer : crt, crt, NULL, NULL, 0);
    if (!X509V3_set_issuer_pkey(&ctx, issuer_key))
        goto out;
    for (size_t i = 0; i < nexts; i++) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        int added = ext && X509_add_ext(crt, ext, -1);

        X509_EXTENSION_free(ext);
        if (!added)
            goto out;
    }
    if (X509_sign(crt, sign_key, type == CA_KEY_ED25519 ? NULL : EVP_sha256()) <= 0)
        goto out;
    ok = true;
out:
    if (!ok) {
        X509_free(crt);
        crt = NULL;
    }
    return crt;
}

/* The root's subject: CN "QP Conduit Internal CA (<host>)", host sanitized to printable ASCII
 * and cut to fit the 64-char CN limit. NULL with the OpenSSL error queued. */
static X509_NAME *root_name(const char *hostname)
{
    char host[256], cn[CA_CN_MAX + 1];
    int room = CA_CN_MAX - (int)strlen(CA_CN_PREFIX ")");
    X509_NAME *name = NULL;
    int n;

    if (hostname && *hostname)
        n = snprintf(host, sizeof(host), "%s", hostname);
    else
        n = gethostname(host, sizeof(host)) == 0 ? 0 : -1;
    host[sizeof(host) - 1] = '\0';
    if (n < 0 || !host[0])
        snprintf(host, sizeof(host), "%s", "localhost");
    for (char *p = host; *p; p++) {
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    }
    n = snprintf(cn, sizeof(cn), CA_CN_PREFIX "%.*s)", room, host);
    if (n < 0 || (size_t)n >= sizeof(cn))
        return NULL;
    name = X509_NAME_new();
    if (name && !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                            (const unsigned char *)cn, -1, -1, 0)) {
        X509_NAME_free(name);
        name = NULL;
    }
    return name;
}

/* Generate, write (key first) and install a new root of type. 0 or -errno with a reason. */
static int generate_root(struct ca *ca, enum ca_key_type type, const char *hostname,
                         const char *key_path, const char *crt_path, char *err, size_t errlen)
{
    static const struct ext_spec exts[] = {
        { NID_basic_constraints, "critical,CA:TRUE" },
        { NID_key_usage, "critical,keyCertSign,cRLSign" },
        { NID_subject_key_identifier, "hash" },
        { NID_authority_key_identifier, "keyid:always" },
    };
    X509_NAME *name = NULL;
    EVP_PKEY *key = NULL;
    X509 *crt = NULL;
    time_t now = time(NULL), not_after;
    struct tm tm;
    int rc = 0;

    gmtime_r(&now, &tm);
    tm.tm_year += CA_ROOT_YEARS;
    not_after = timegm(&tm);
    name = root_name(hostname);
    key = name ? gen_key(type) : NULL;
    crt = key ? build_cert(key, name, NULL, key, key, type, not_after, exts,
                           sizeof(exts) / sizeof(exts[0])) : NULL;
    if (!crt) {
        rc = ossl_errno(err, errlen, "generating the CA");
        goto out;
    }
    rc = write_key(key_path, key, err, errlen);
    if (rc < 0)
        goto out;
    rc = write_cert(crt_path, crt, err, errlen);
    if (rc < 0) {
        /* The key was created just now and certifies nothing: keep "both or neither". */
        state_unlink(key_path);
        goto out;
    }
    ca->type = type;
    ca->key = key;
    ca->cert = crt;
    key = NULL;
    crt = NULL;
out:
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* Load an existing root and check it: key and certificate match, supported key type, a CA
 * certificate self-signed by that key. 0 or -errno with a reason. */
static int load_root(struct ca *ca, const char *key_path, const char *crt_path, char *err,
                     size_t errlen)
{
    EVP_PKEY *key = NULL;
    X509 *crt = NULL;
    EVP_PKEY *pub;
    int rc;

    rc = load_key(key_path, true, &key, err, errlen);
    if (rc < 0)
        goto out;
    rc = load_cert(crt_path, &crt, err, errlen);
    if (rc < 0)
        goto out;
    pub = X509_get0_pubkey(crt);
    if (!pub || EVP_PKEY_eq(pub, key) != 1) {
        rc = -EINVAL;
        state_err(err, errlen, "CA key %s does not match certificate %s; refusing to use or "
                "replace them (restore the matching pair)", key_path, crt_path);
        goto out;
    }
    if (ca_policy_key_type(key, &ca->type) < 0) {
        rc = -EINVAL;
        state_err(err, errlen, "CA key %s is neither ed25519 nor ecdsa-p256", key_path);
        goto out;
    }
    if (X509_check_ca(crt) != 1 || X509_verify(crt, pub) != 1) {
        rc = -EINVAL;
        state_err(err, errlen, "%s is not a self-signed CA certificate", crt_path);
        goto out;
    }
    ca->key = key;
    ca->cert = crt;
    key = NULL;
    crt = NULL;
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* lstat path: 1 exists (anything, even a dangling link), 0 missing, or -errno. */
static int exists(const char *path)
{
    struct stat st;

    if (lstat(path, &st) == 0)
        return 1;
    return errno == ENOENT ? 0 : -errno;
}

int ca_open(const char *state_dir, enum ca_key_type want, const char *hostname, struct ca **out,
            bool *created, char *err, size_t errlen)
{
    char key_path[PATH_MAX], crt_path[PATH_MAX];
    struct ca *ca = NULL;
    bool made = false;
    int rc, have_key, have_crt;

    state_err(err, errlen, "%s", "");
    if (created)
        *created = false;
    if (!state_dir || !out || (want != CA_KEY_ED25519 && want != CA_KEY_ECDSA_P256)) {
        state_err(err, errlen, "ca_open: invalid argument");
        return -EINVAL;
    }
    *out = NULL;
    ca = calloc(1, sizeof(*ca));
    if (!ca) {
        rc = -ENOMEM;
        state_err(err, errlen, "out of memory");
        goto out;
    }
    if (state_path(ca->tls_dir, sizeof(ca->tls_dir), state_dir, "tls") < 0 ||
        state_path(ca->archive_dir, sizeof(ca->archive_dir), ca->tls_dir, "archive") < 0 ||
        state_path(key_path, sizeof(key_path), ca->tls_dir, "ca.key") < 0 ||
        state_path(crt_path, sizeof(crt_path), ca->tls_dir, "ca.crt") < 0) {
        rc = -ENAMETOOLONG;
        state_err(err, errlen, "state directory path too long");
        goto out;
    }
    rc = ensure_dir(ca->tls_dir);
    if (rc < 0) {
        state_err(err, errlen, "creating %s: %s", ca->tls_dir, strerror(-rc));
        goto out;
    }
    rc = clean_leaf_temps(ca->tls_dir, 0);
    if (rc < 0) {
        state_err(err, errlen, "removing temp files under %s: %s", ca->tls_dir, strerror(-rc));
        goto out;
    }
    have_key = exists(key_path);
    have_crt = exists(crt_path);
    if (have_key < 0 || have_crt < 0) {
        rc = have_key < 0 ? have_key : have_crt;
        state_err(err, errlen, "checking %s: %s", have_key < 0 ? key_path : crt_path,
                strerror(-rc));
        goto out;
    }
    if (!have_key && !have_crt) {
        rc = generate_root(ca, want, hostname, key_path, crt_path, err, errlen);
        made = rc == 0;
    } else if (!have_crt || !have_key) {
        rc = -EINVAL;
        state_err(err, errlen, "%s exists without %s; refusing to regenerate the CA over it "
                "(restore the missing file or remove both)", have_key ? key_path : crt_path,
                have_key ? crt_path : key_path);
    } else {
        rc = load_root(ca, key_path, crt_path, err, errlen);
    }
    if (rc < 0)
        goto out;
    rc = -pthread_mutex_init(&ca->lock, NULL);
    if (rc < 0) {
        state_err(err, errlen, "pthread_mutex_init: %s", strerror(-rc));
        goto out;
    }
    if (ca->type != want)
        state_err(err, errlen, "keeping the existing %s CA (requested %s); its leaves are %s",
                ca_key_type_name(ca->type), ca_key_type_name(want), ca_key_type_name(ca->type));
    if (created)
        *created = made;
    *out = ca;
    ca = NULL;
out:
    if (ca) {
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
        free(ca);
    }
    return rc;
}

void ca_close(struct ca *ca)
{
    if (!ca)
        return;
    pthread_mutex_destroy(&ca->lock);
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca);
}

enum ca_key_type ca_key_type_get(const struct ca *ca)
{
    return ca->type;
}

/* state/tls/<domain> and its two files (each buffer PATH_MAX). 0 or -EINVAL/-ENAMETOOLONG. */
static int leaf_paths(const struct ca *ca, const char *domain, char *dir, char *key_path,
                      char *crt_path)
{
    if (!ca_policy_domain_ok(domain))
        return -EINVAL;
    if (state_path(dir, PATH_MAX, ca->tls_dir, domain) < 0 ||
        state_path(key_path, PATH_MAX, dir, "key.pem") < 0 ||
        state_path(crt_path, PATH_MAX, dir, "cert.pem") < 0)
        return -ENAMETOOLONG;
    return 0;
}

/* ca_archive with the lock held. */
static int archive_locked(struct ca *ca, const char *domain)
{
    char dir[PATH_MAX], key_path[PATH_MAX], crt_path[PATH_MAX], dest[PATH_MAX];
    char serial[CA_SERIAL_HEX_MAX], name[NAME_MAX + 1];
    struct stat st;
    X509 *crt = NULL;
    int rc, room, n = -1;

    rc = leaf_paths(ca, domain, dir, key_path, crt_path);
    if (rc < 0)
        return rc;
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (load_cert(crt_path, &crt, NULL, 0) < 0 || serial_hex_of(crt, serial, sizeof(serial)) < 0)
        snprintf(serial, sizeof(serial), "%s", "unknown");
    X509_free(crt);
    rc = ensure_dir(ca->archive_dir);
    if (rc < 0)
        return rc;
    /* Room for the domain in a file name; only a domain near 253 chars is ever cut. */
    room = NAME_MAX - (int)strlen(serial) - (int)strlen(".-999");
    for (int i = 1; i < 1000; i++) {
        if (i == 1)
            n = snprintf(name, sizeof(name), "%.*s.%s", room, domain, serial);
        else
            n = snprintf(name, sizeof(name), "%.*s.%s-%d", room, domain, serial, i);
        if (n < 0 || (size_t)n >= sizeof(name) ||
            state_path(dest, sizeof(dest), ca->archive_dir, name) < 0)
            return -ENAMETOOLONG;
        rc = exists(dest);
        if (rc <= 0)
            break;
    }
    if (rc != 0)
        return rc < 0 ? rc : -EEXIST;
    if (rename(dir, dest) < 0)
        return -errno;
    rc = cu_fsync_dir(ca->tls_dir);
    if (rc == 0)
        rc = cu_fsync_dir(ca->archive_dir);
    return rc;
}

int ca_archive(struct ca *ca, const char *domain)
{
    int rc;

    if (!ca)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = archive_locked(ca, domain);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

/* A certificate as DER in a malloc'd buffer. 0 or -errno. */
static int cert_der(X509 *crt, unsigned char **out, size_t *outlen)
{
    unsigned char *p;
    int n = i2d_X509(crt, NULL);

    *out = NULL;
    *outlen = 0;
    if (n <= 0)
        return ossl_errno(NULL, 0, "encoding certificate");
    *out = malloc((size_t)n);
    if (!*out)
        return -ENOMEM;
    p = *out;
    if (i2d_X509(crt, &p) != n) {
        free(*out);
        *out = NULL;
        return ossl_errno(NULL, 0, "encoding certificate");
    }
    *outlen = (size_t)n;
    return 0;
}

/* Parse exactly one DER certificate of len bytes (nothing after it). NULL when it is not. */
static X509 *parse_der(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *crt;

    if (!der || len == 0 || len > CA_DER_MAX)
        return NULL;
    crt = d2i_X509(NULL, &p, (long)len);
    if (crt && p != der + len) {
        X509_free(crt);
        crt = NULL;
    }
    ERR_clear_error();
    return crt;
}

/* ca_sign_cert with the lock held and the key here. */
static int sign_locked(struct ca *ca, const unsigned char *der, size_t len, unsigned char **out,
                       size_t *outlen, char *err, size_t errlen)
{
    X509 *crt = NULL;
    int rc;

    *out = NULL;
    *outlen = 0;
    if (!ca->key) {
        state_err(err, errlen, "the CA key is not in this process");
        return -ENOKEY;
    }
    crt = parse_der(der, len);
    if (!crt) {
        rc = -EINVAL;
        state_err(err, errlen, "refused: not one DER certificate");
        goto out;
    }
    rc = ca_policy_check_leaf(ca->cert, ca->type, crt, err, errlen);
    if (rc < 0)
        goto out;
    if (X509_sign(crt, ca->key, ca->type == CA_KEY_ED25519 ? NULL : EVP_sha256()) <= 0) {
        rc = ossl_errno(err, errlen, "signing the certificate");
        goto out;
    }
    rc = cert_der(crt, out, outlen);
out:
    X509_free(crt);
    return rc;
}

int ca_sign_cert(struct ca *ca, const unsigned char *der, size_t len, unsigned char **out,
                 size_t *outlen, char *err, size_t errlen)
{
    int rc;

    state_err(err, errlen, "%s", "");
    if (!ca || !out || !outlen)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = sign_locked(ca, der, len, out, outlen, err, errlen);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

/* Have the CA key sign the leaf request *crt (self-signed by key, its subject key; see
 * build_cert): here, or in the process that holds the CA key. What comes back must verify with
 * the CA's public key and carry the request's serial and key; it replaces *crt. With the lock
 * held. 0 or -errno with a reason. */
static int certify(struct ca *ca, X509 **crt, EVP_PKEY *key, char *err, size_t errlen)
{
    unsigned char *req = NULL, *resp = NULL;
    size_t reqlen = 0, resplen = 0;
    X509 *got = NULL;
    int rc;

    rc = cert_der(*crt, &req, &reqlen);
    if (rc < 0) {
        state_err(err, errlen, "encoding the certificate request: %s", strerror(-rc));
        goto out;
    }
    if (ca->sign)
        rc = ca->sign(ca->sign_arg, req, reqlen, &resp, &resplen, err, errlen);
    else
        rc = sign_locked(ca, req, reqlen, &resp, &resplen, err, errlen);
    if (rc < 0)
        goto out;
    got = parse_der(resp, resplen);
    if (!got || X509_verify(got, X509_get0_pubkey(ca->cert)) != 1 ||
        EVP_PKEY_eq(X509_get0_pubkey(got), key) != 1 ||
        ASN1_INTEGER_cmp(X509_get0_serialNumber(got), X509_get0_serialNumber(*crt)) != 0) {
        rc = -EIO;
        state_err(err, errlen, "the signer returned a certificate other than the one requested");
        goto out;
    }
    X509_free(*crt);
    *crt = got;
    got = NULL;
out:
    ERR_clear_error();
    X509_free(got);
    free(req);
    free(resp);
    return rc;
}

int ca_open_remote(const char *state_dir, const unsigned char *root_der, size_t len,
                   ca_sign_fn fn, void *arg, struct ca **out, char *err, size_t errlen)
{
    struct ca *ca = NULL;
    EVP_PKEY *pub;
    int rc = -EINVAL;

    state_err(err, errlen, "%s", "");
    if (!state_dir || !fn || !out) {
        state_err(err, errlen, "ca_open_remote: invalid argument");
        return -EINVAL;
    }
    *out = NULL;
    ca = calloc(1, sizeof(*ca));
    if (!ca) {
        rc = -ENOMEM;
        state_err(err, errlen, "out of memory");
        goto out;
    }
    if (state_path(ca->tls_dir, sizeof(ca->tls_dir), state_dir, "tls") < 0 ||
        state_path(ca->archive_dir, sizeof(ca->archive_dir), ca->tls_dir, "archive") < 0) {
        rc = -ENAMETOOLONG;
        state_err(err, errlen, "state directory path too long");
        goto out;
    }
    ca->cert = parse_der(root_der, len);
    pub = ca->cert ? X509_get0_pubkey(ca->cert) : NULL;
    if (!pub || ca_policy_key_type(pub, &ca->type) < 0 || X509_check_ca(ca->cert) != 1 ||
        X509_verify(ca->cert, pub) != 1) {
        state_err(err, errlen, "the signer's CA certificate is not a self-signed ed25519 or "
                "ecdsa-p256 CA");
        goto out;
    }
    rc = -pthread_mutex_init(&ca->lock, NULL);
    if (rc < 0) {
        state_err(err, errlen, "pthread_mutex_init: %s", strerror(-rc));
        goto out;
    }
    ca->sign = fn;
    ca->sign_arg = arg;
    *out = ca;
    ca = NULL;
out:
    ERR_clear_error();
    if (ca) {
        X509_free(ca->cert);
        free(ca);
    }
    return rc;
}

int ca_root_der(struct ca *ca, unsigned char **der, size_t *len)
{
    int rc;

    pthread_mutex_lock(&ca->lock);
    rc = cert_der(ca->cert, der, len);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

/* A malloc'd subjectAltName value for names[0..n) ("critical," first when critical), or NULL. */
static char *san_value(const char *const *names, size_t n, bool critical)
{
    size_t cap = 16, used = 0;
    char *v;

    for (size_t i = 0; i < n; i++)
        cap += strlen(names[i]) + 5;
    v = malloc(cap);
    if (!v)
        return NULL;
    used = (size_t)snprintf(v, cap, "%s", critical ? "critical," : "");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(v + used, cap - used, "%sDNS:%s", i ? "," : "", names[i]);
    return v;
}

/* Build a fresh key and a leaf for names[0..n), signed by the CA (here or through the signer).
 * The first name is the CN when it fits; otherwise the subject is empty and the SAN critical.
 * With the lock held. 0 or -errno with a reason; on success *key and *crt are the caller's. */
static int make_leaf(struct ca *ca, const char *const *names, size_t n, int leaf_days,
                     EVP_PKEY **key, X509 **crt, char *err, size_t errlen)
{
    char *san = NULL, until[32];
    struct ext_spec exts[] = {
        { NID_basic_constraints, "critical,CA:FALSE" },
        { NID_key_usage, "critical,digitalSignature" },
        { NID_ext_key_usage, "serverAuth" },
        { NID_subject_key_identifier, "hash" },
        { NID_authority_key_identifier, "keyid:always" },
        { NID_subject_alt_name, NULL },
    };
    X509_NAME *name = NULL;
    int64_t ca_left;
    time_t now, not_after;
    bool cn = strlen(names[0]) <= CA_CN_MAX;
    int rc = 0;

    *key = NULL;
    *crt = NULL;
    if (secs_until(X509_get0_notAfter(ca->cert), &ca_left) < 0 || ca_left <= 0) {
        if (format_time(X509_get0_notAfter(ca->cert), until, sizeof(until)) < 0)
            snprintf(until, sizeof(until), "%s", "?");
        state_err(err, errlen, "the CA certificate expired (%s); no leaf can be issued", until);
        return -EKEYEXPIRED;
    }
    san = san_value(names, n, !cn);
    if (!san)
        return -ENOMEM;
    exts[5].value = san;
    now = time(NULL);
    not_after = now + (time_t)leaf_days * CA_DAY_SECS;
    if ((int64_t)leaf_days * CA_DAY_SECS > ca_left)
        not_after = now + (time_t)ca_left;
    name = X509_NAME_new();
    if (name && cn && !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                  (const unsigned char *)names[0], -1, -1, 0)) {
        X509_NAME_free(name);
        name = NULL;
    }
    *key = name ? gen_key(ca->type) : NULL;
    *crt = *key ? build_cert(*key, name, ca->cert, X509_get0_pubkey(ca->cert), *key, ca->type,
                             not_after, exts, sizeof(exts) / sizeof(exts[0])) : NULL;
    if (!*crt) {
        rc = ossl_errno(err, errlen, "issuing the certificate");
        goto out;
    }
    rc = certify(ca, crt, *key, err, errlen);
out:
    if (rc < 0) {
        EVP_PKEY_free(*key);
        X509_free(*crt);
        *key = NULL;
        *crt = NULL;
    }
    X509_NAME_free(name);
    free(san);
    return rc;
}

int ca_issue(struct ca *ca, const char *domain, int leaf_days, char serial_hex[CA_SERIAL_HEX_MAX],
             char *err, size_t errlen)
{
    char dir[PATH_MAX], key_path[PATH_MAX], crt_path[PATH_MAX], serial[CA_SERIAL_HEX_MAX];
    EVP_PKEY *key = NULL;
    X509 *crt = NULL;
    int rc;

    state_err(err, errlen, "%s", "");
    if (serial_hex)
        serial_hex[0] = '\0';
    if (!ca)
        return -EINVAL;
    rc = ca_policy_leaf_days(&leaf_days, err, errlen);
    if (rc < 0)
        return rc;
    rc = leaf_paths(ca, domain, dir, key_path, crt_path);
    if (rc < 0) {
        state_err(err, errlen, "invalid domain for a certificate");
        return rc;
    }
    pthread_mutex_lock(&ca->lock);
    rc = make_leaf(ca, &domain, 1, leaf_days, &key, &crt, err, errlen);
    if (rc < 0)
        goto out;
    rc = serial_hex_of(crt, serial, sizeof(serial));
    if (rc < 0)
        goto out;
    rc = archive_locked(ca, domain);
    if (rc < 0 && rc != -ENOENT) {
        state_err(err, errlen, "archiving the previous pair of %s: %s", domain, strerror(-rc));
        goto out;
    }
    rc = ensure_dir(dir);
    if (rc < 0) {
        state_err(err, errlen, "creating %s: %s", dir, strerror(-rc));
        goto out;
    }
    rc = write_key(key_path, key, err, errlen);
    if (rc < 0)
        goto out;
    rc = write_cert(crt_path, crt, err, errlen);
    if (rc < 0)
        goto out;
    if (serial_hex)
        snprintf(serial_hex, CA_SERIAL_HEX_MAX, "%s", serial);
out:
    pthread_mutex_unlock(&ca->lock);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* ---- serving leaves: one PEM file per leaf (leaf, CA certificate, key) ---- */

/* Check a serving leaf's path: an absolute path of a file whose name ends in ".pem", and its
 * directory into dir (PATH_MAX). 0 or -EINVAL. */
static int bundle_path_ok(const char *path, char *dir)
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
    char serial[CA_SERIAL_HEX_MAX], name[NAME_MAX + 1], dest[PATH_MAX];
    const char *base = strrchr(path, '/') + 1;
    int stem = (int)strlen(base) - 4, rc, n;
    X509 *crt = NULL;

    rc = exists(path);
    if (rc <= 0)
        return rc == 0 ? -ENOENT : rc;
    if (load_cert(path, &crt, NULL, 0) < 0 || serial_hex_of(crt, serial, sizeof(serial)) < 0)
        snprintf(serial, sizeof(serial), "%s", "unknown");
    X509_free(crt);
    rc = ensure_dir(ca->archive_dir);
    if (rc < 0)
        return rc;
    for (int i = 1; i < 1000; i++) {
        if (i == 1)
            n = snprintf(name, sizeof(name), "%.*s.%s.pem", stem, base, serial);
        else
            n = snprintf(name, sizeof(name), "%.*s.%s-%d.pem", stem, base, serial, i);
        if (n < 0 || (size_t)n >= sizeof(name) ||
            state_path(dest, sizeof(dest), ca->archive_dir, name) < 0)
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

    state_err(err, errlen, "%s", "");
    if (serial_hex)
        serial_hex[0] = '\0';
    if (!ca || bundle_path_ok(path, dir) < 0 || ca_policy_names_ok(names, n) < 0) {
        state_err(err, errlen, "invalid path or names for a serving leaf");
        return -EINVAL;
    }
    rc = ca_policy_leaf_days(&leaf_days, err, errlen);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ca->lock);
    rc = make_leaf(ca, names, n, leaf_days, &key, &crt, err, errlen);
    if (rc < 0)
        goto out;
    rc = serial_hex_of(crt, serial, sizeof(serial));
    if (rc < 0)
        goto out;
    bio = bundle_encode(ca, crt, key);
    if (bio)
        BIO_get_mem_ptr(bio, &bm);
    if (!bm) {
        rc = ossl_errno(err, errlen, "encoding the leaf");
        goto out;
    }
    rc = ensure_dir(dir);
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

int ca_bundle_archive(struct ca *ca, const char *path)
{
    char dir[PATH_MAX];
    int rc;

    if (!ca || bundle_path_ok(path, dir) < 0)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = bundle_archive_locked(ca, path);
    if (rc == 0)
        rc = state_unlink(path);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

void ca_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* The DNS names in the SAN of crt. 0, -EINVAL (no SAN, or a name that is not a domain) or
 * -ENOMEM. */
static int san_names(X509 *crt, char ***out, size_t *nout)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(crt, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0, rc = 0;
    char **names = NULL;
    size_t k = 0;

    *out = NULL;
    *nout = 0;
    if (n <= 0 || n > CA_LEAF_NAMES_MAX) {
        rc = -EINVAL;
        goto out;
    }
    names = calloc((size_t)n, sizeof(*names));
    if (!names) {
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        const ASN1_IA5STRING *dns = gn->type == GEN_DNS ? gn->d.dNSName : NULL;
        int len = dns ? ASN1_STRING_length(dns) : -1;

        if (len <= 0 || len > 253) {
            rc = -EINVAL;
            goto out;
        }
        names[k] = strndup((const char *)ASN1_STRING_get0_data(dns), (size_t)len);
        if (!names[k]) {
            rc = -ENOMEM;
            goto out;
        }
        if (!ca_policy_domain_ok(names[k++])) {
            rc = -EINVAL;
            goto out;
        }
    }
    *out = names;
    *nout = k;
    names = NULL;
out:
    ca_names_free(names, k);
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return rc;
}

int ca_bundle_names(struct ca *ca, const char *path, char ***names, size_t *n)
{
    char dir[PATH_MAX];
    X509 *crt = NULL;
    int rc;

    *names = NULL;
    *n = 0;
    if (!ca || bundle_path_ok(path, dir) < 0)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = load_cert(path, &crt, NULL, 0);
    if (rc == 0)
        rc = san_names(crt, names, n);
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
    EVP_PKEY *key = NULL;
    X509 *crt = NULL;
    char **got = NULL;
    size_t ngot = 0;
    int64_t left;
    int rc;

    if (!ca || renew_before_days < 0 || bundle_path_ok(path, dir) < 0 ||
        ca_policy_names_ok(names, n) < 0)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = load_cert(path, &crt, NULL, 0);
    if (rc < 0) {
        rc = rc == -ENOMEM ? -ENOMEM : 1;
        goto out;
    }
    rc = 1;
    if (X509_check_issued(ca->cert, crt) != X509_V_OK ||
        X509_verify(crt, X509_get0_pubkey(ca->cert)) != 1 ||
        san_names(crt, &got, &ngot) < 0 || !same_names(got, ngot, names, n))
        goto out;
    if (load_key(path, true, &key, NULL, 0) < 0 || EVP_PKEY_eq(X509_get0_pubkey(crt), key) != 1)
        goto out;
    if (secs_until(X509_get0_notAfter(crt), &left) < 0)
        goto out;
    rc = left < (int64_t)renew_before_days * CA_DAY_SECS ? 1 : 0;
out:
    ERR_clear_error();
    pthread_mutex_unlock(&ca->lock);
    ca_names_free(got, ngot);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

int ca_needs_renewal(struct ca *ca, const char *domain, int renew_before_days)
{
    char dir[PATH_MAX], key_path[PATH_MAX], crt_path[PATH_MAX];
    EVP_PKEY *key = NULL, *ca_pub;
    X509 *crt = NULL;
    int64_t left;
    int rc;

    if (!ca || renew_before_days < 0)
        return -EINVAL;
    rc = leaf_paths(ca, domain, dir, key_path, crt_path);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ca->lock);
    ca_pub = X509_get0_pubkey(ca->cert);
    rc = load_cert(crt_path, &crt, NULL, 0);
    if (rc < 0) {
        rc = rc == -ENOMEM ? -ENOMEM : 1;
        goto out;
    }
    rc = 1;
    if (X509_check_issued(ca->cert, crt) != X509_V_OK || X509_verify(crt, ca_pub) != 1 ||
        X509_check_host(crt, domain, 0, 0, NULL) != 1)
        goto out;
    if (load_key(key_path, false, &key, NULL, 0) < 0 ||
        EVP_PKEY_eq(X509_get0_pubkey(crt), key) != 1)
        goto out;
    if (secs_until(X509_get0_notAfter(crt), &left) < 0)
        goto out;
    rc = left < (int64_t)renew_before_days * CA_DAY_SECS ? 1 : 0;
out:
    ERR_clear_error();
    pthread_mutex_unlock(&ca->lock);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* Set key to a new value in obj; v NULL or a failed set is -ENOMEM (v is always consumed). */
static int jset(json_t *obj, const char *key, json_t *v)
{
    return (v && json_object_set_new(obj, key, v) == 0) ? 0 : -ENOMEM;
}

/* The fields common to the CA and leaf objects: serial, validity, fingerprint. 0 or -errno. */
static int cert_fields(const X509 *crt, json_t *obj)
{
    char serial[CA_SERIAL_HEX_MAX], from[32], until[32], fp[65];
    int rc;

    if ((rc = serial_hex_of(crt, serial, sizeof(serial))) < 0 ||
        (rc = format_time(X509_get0_notBefore(crt), from, sizeof(from))) < 0 ||
        (rc = format_time(X509_get0_notAfter(crt), until, sizeof(until))) < 0 ||
        (rc = fingerprint(crt, fp)) < 0)
        return rc;
    if (jset(obj, "serial", json_string(serial)) < 0 ||
        jset(obj, "not_before", json_string(from)) < 0 ||
        jset(obj, "not_after", json_string(until)) < 0 ||
        jset(obj, "sha256_fingerprint", json_string(fp)) < 0)
        return -ENOMEM;
    return 0;
}

int ca_info_json(struct ca *ca, json_t **out)
{
    json_t *obj = json_object();
    BIO *bio = BIO_new(BIO_s_mem());
    char *subject = NULL;
    int rc = -ENOMEM;

    *out = NULL;
    pthread_mutex_lock(&ca->lock);
    if (!obj || !bio)
        goto out;
    /* RFC 2253 with non-ASCII escaped: always valid UTF-8 for jansson. */
    if (X509_NAME_print_ex(bio, X509_get_subject_name(ca->cert), 0, XN_FLAG_RFC2253) < 0 ||
        bio_string(bio, &subject) < 0)
        goto out;
    if (jset(obj, "subject", json_string(subject)) < 0 ||
        jset(obj, "key_type", json_string(ca_key_type_name(ca->type))) < 0)
        goto out;
    rc = cert_fields(ca->cert, obj);
    if (rc < 0)
        goto out;
    *out = obj;
    obj = NULL;
out:
    pthread_mutex_unlock(&ca->lock);
    ERR_clear_error();
    json_decref(obj);
    BIO_free(bio);
    free(subject);
    return rc;
}

/* The leaf JSON of the certificate at crt_path for domain, with "names": its SAN. With the
 * lock held. 0 or -errno. */
static int leaf_json_at(const char *crt_path, const char *domain, json_t **out)
{
    enum ca_key_type type;
    json_t *obj = NULL, *arr;
    X509 *crt = NULL;
    char **san = NULL;
    size_t nsan = 0;
    int64_t left;
    int rc;

    *out = NULL;
    rc = load_cert(crt_path, &crt, NULL, 0);
    if (rc < 0)
        goto out;
    rc = secs_until(X509_get0_notAfter(crt), &left);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    obj = json_object();
    if (!obj || jset(obj, "domain", json_string(domain)) < 0)
        goto out;
    rc = cert_fields(crt, obj);
    if (rc < 0)
        goto out;
    /* Whole days, rounded down (so -1 as soon as it expired). */
    left = left >= 0 ? left / CA_DAY_SECS : -((-left + CA_DAY_SECS - 1) / CA_DAY_SECS);
    rc = -ENOMEM;
    if (jset(obj, "days_left", json_integer(left)) < 0 ||
        jset(obj, "key_type", json_string(ca_policy_key_type(X509_get0_pubkey(crt), &type) == 0 ?
                                          ca_key_type_name(type) : "unknown")) < 0)
        goto out;
    rc = san_names(crt, &san, &nsan);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    arr = json_array();
    for (size_t i = 0; arr && i < nsan; i++)
        if (json_array_append_new(arr, json_string(san[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    if (jset(obj, "names", arr) < 0)
        goto out;
    rc = 0;
    *out = obj;
    obj = NULL;
out:
    ERR_clear_error();
    ca_names_free(san, nsan);
    json_decref(obj);
    X509_free(crt);
    return rc;
}

/* The certificate at crt_path (only the first one there) as PEM. With the lock held. */
static int leaf_pem_at(const char *crt_path, char **pem)
{
    X509 *crt = NULL;
    int rc = load_cert(crt_path, &crt, NULL, 0);

    if (rc == 0)
        rc = cert_pem(crt, pem);
    X509_free(crt);
    return rc;
}

int ca_bundle_json(struct ca *ca, const char *path, const char *domain, json_t **out)
{
    char dir[PATH_MAX];
    int rc;

    *out = NULL;
    if (!ca || bundle_path_ok(path, dir) < 0 || !ca_policy_domain_ok(domain))
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = leaf_json_at(path, domain, out);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

int ca_cert_pem(struct ca *ca, char **pem)
{
    int rc;

    pthread_mutex_lock(&ca->lock);
    rc = cert_pem(ca->cert, pem);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

int ca_bundle_pem(struct ca *ca, const char *path, char **pem)
{
    char dir[PATH_MAX];
    int rc;

    *pem = NULL;
    if (!ca || bundle_path_ok(path, dir) < 0)
        return -EINVAL;
    pthread_mutex_lock(&ca->lock);
    rc = leaf_pem_at(path, pem);
    pthread_mutex_unlock(&ca->lock);
    return rc;
}

const char *ca_key_type_name(enum ca_key_type type)
{
    return type == CA_KEY_ECDSA_P256 ? "ecdsa-p256" : "ed25519";
}

int ca_key_type_parse(const char *s, enum ca_key_type *out)
{
    if (s && !strcmp(s, "ed25519")) {
        *out = CA_KEY_ED25519;
        return 0;
    }
    if (s && !strcmp(s, "ecdsa-p256")) {
        *out = CA_KEY_ECDSA_P256;
        return 0;
    }
    return -EINVAL;
}
