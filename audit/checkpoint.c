/* checkpoint.c: the verified checkpoint in state/audit.checkpoint: its signed text, the SHA-256
 * of the log prefix it covers, and an atomic write. */
#include "audit/checkpoint.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#define CP_NAME "audit.checkpoint"
#define CP_MAGIC "conduitfs-audit-checkpoint-v1"
#define CP_MAX 4096
#define CHUNK 65536

/* The text that is signed: the magic, the fields and the public key, one per line. */
static int signed_text(const struct audit_checkpoint *cp, const char *pubhex, char *buf,
                       size_t len)
{
    int n = snprintf(buf, len, "%s\n%lld\n%s\n%jd\n%s\n%s\n", CP_MAGIC, cp->seq, cp->hash,
                     (intmax_t)cp->log_off, cp->log_sha256, pubhex);

    return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/* What is signed: the 64 lowercase hex chars of the SHA-256 of the signed text. The signer
 * signs nothing but 64 hex chars (capsule hashes); a capsule hash is a SHA3-256, so a checkpoint
 * signature and a capsule signature can stand in for each other only given a hash collision
 * across SHA-256 and SHA3-256. 0 or -EIO. */
static int signed_digest(const char *text, size_t len, char out[AUDIT_SHA256_HEX])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
        return -EIO;
    audit_hex(md, sizeof(md), out);
    return 0;
}

/* Whether sig (hex) is pubhex's Ed25519 signature over msg. 0, -EBADMSG or -ENOMEM. */
static int sig_check(const char *pubhex, const char *sighex, const char *msg, size_t len)
{
    unsigned char sig[AUDIT_SIG_LEN];
    struct audit_key *k = NULL;
    int rc;

    if (audit_unhex(sighex, sig, sizeof(sig)) < 0 || audit_key_from_public(pubhex, &k) < 0)
        return -EBADMSG;
    rc = audit_key_verify(k, (const unsigned char *)msg, len, sig);
    audit_key_free(k);
    return rc == 1 ? 0 : rc == -ENOMEM ? -ENOMEM : -EBADMSG;
}

/* Copy a string member of exactly want - 1 lowercase hex chars into dst. 0 or -EBADMSG. */
static int hex_member(const json_t *o, const char *key, char *dst, size_t want)
{
    const char *v = json_string_value(json_object_get(o, key));

    if (!v || strlen(v) != want - 1 || strspn(v, "0123456789abcdef") != want - 1)
        return -EBADMSG;
    memcpy(dst, v, want);
    return 0;
}

int audit_checkpoint_load(const char *state_dir, const char *pubhex, struct audit_checkpoint *cp,
                          char *why, size_t whylen)
{
    char path[PATH_MAX], buf[CP_MAX], text[CP_MAX], sig[AUDIT_SIG_HEX], key[AUDIT_PUB_HEX];
    char dig[AUDIT_SHA256_HEX];
    json_t *o = NULL, *seq, *off;
    json_error_t jerr;
    ssize_t got;
    int fd, rc, n;

    memset(cp, 0, sizeof(*cp));
    if (snprintf(path, sizeof(path), "%s/%s", state_dir, CP_NAME) >= (int)sizeof(path))
        return cu_errf(-ENAMETOOLONG, why, whylen, "state directory path too long");
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return cu_errf(-errno, why, whylen, "%s: %s", path, strerror(errno));
    do {
        got = read(fd, buf, sizeof(buf) - 1);
    } while (got < 0 && errno == EINTR);
    rc = got < 0 ? -errno : 0;
    close(fd);
    if (rc < 0)
        return cu_errf(rc, why, whylen, "%s: %s", path, strerror(-rc));
    buf[got] = '\0';
    o = json_loads(buf, JSON_REJECT_DUPLICATES, &jerr);
    seq = json_object_get(o, "sequence");
    off = json_object_get(o, "log_offset");
    if (!json_is_object(o) || json_integer_value(json_object_get(o, "version")) != 1 ||
        !json_is_integer(seq) || json_integer_value(seq) < 0 || !json_is_integer(off) ||
        json_integer_value(off) <= 0 ||
        hex_member(o, "hash", cp->hash, sizeof(cp->hash)) < 0 ||
        hex_member(o, "log_sha256", cp->log_sha256, sizeof(cp->log_sha256)) < 0 ||
        hex_member(o, "key", key, sizeof(key)) < 0 ||
        hex_member(o, "signature", sig, sizeof(sig)) < 0) {
        rc = cu_errf(-EBADMSG, why, whylen, "%s is malformed", path);
        goto out;
    }
    cp->seq = json_integer_value(seq);
    cp->log_off = (off_t)json_integer_value(off);
    if (strcmp(key, pubhex) != 0) {
        rc = cu_errf(-EBADMSG, why, whylen, "%s was signed by another key", path);
        goto out;
    }
    n = signed_text(cp, pubhex, text, sizeof(text));
    rc = n < 0 ? n : signed_digest(text, (size_t)n, dig);
    if (rc == 0)
        rc = sig_check(pubhex, sig, dig, AUDIT_SHA256_HEX - 1);
    if (rc < 0)
        cu_errf(rc, why, whylen, "%s: the signature does not verify", path);
out:
    json_decref(o);
    if (rc < 0)
        memset(cp, 0, sizeof(*cp));
    return rc;
}

int audit_checkpoint_save(const char *state_dir, struct audit_store *st,
                          const struct audit_checkpoint *cp)
{
    const char *pubhex = audit_store_pubkey_hex(st);
    char path[PATH_MAX], text[CP_MAX], sighex[AUDIT_SIG_HEX], dig[AUDIT_SHA256_HEX];
    unsigned char sig[AUDIT_SIG_LEN];
    char *out = NULL;
    json_t *o = NULL;
    size_t len = 0;
    int n, rc;

    if (snprintf(path, sizeof(path), "%s/%s", state_dir, CP_NAME) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    n = signed_text(cp, pubhex, text, sizeof(text));
    if (n < 0)
        return n;
    rc = signed_digest(text, (size_t)n, dig);
    if (rc == 0)
        rc = audit_store_sign(st, (const unsigned char *)dig, AUDIT_SHA256_HEX - 1, sig);
    if (rc < 0)
        return rc;
    audit_hex(sig, sizeof(sig), sighex);
    o = json_pack("{s:i, s:I, s:s, s:I, s:s, s:s, s:s}", "version", 1,
                  "sequence", (json_int_t)cp->seq, "hash", cp->hash,
                  "log_offset", (json_int_t)cp->log_off, "log_sha256", cp->log_sha256,
                  "key", pubhex, "signature", sighex);
    out = o ? cu_json_line(o, JSON_COMPACT | JSON_PRESERVE_ORDER, &len) : NULL;
    if (!out) {
        rc = -ENOMEM;
        goto out;
    }
    rc = len >= sizeof(text) ? -ENOSPC : cu_write_atomic(path, out, len, 0600);
out:
    free(out);
    json_decref(o);
    return rc;
}

int audit_checkpoint_digest(int fd, off_t len, char out[AUDIT_SHA256_HEX])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *buf = malloc(CHUNK);
    off_t pos = 0;
    ssize_t got;
    int rc = 0;

    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = -ENOMEM;
        goto out;
    }
    while (pos < len) {
        size_t want = len - pos > CHUNK ? CHUNK : (size_t)(len - pos);

        got = pread(fd, buf, want, pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            goto out;
        }
        if (got == 0) {
            rc = -ESTALE;
            goto out;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1) {
            rc = -EIO;
            goto out;
        }
        pos += got;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof(md)) {
        rc = -EIO;
        goto out;
    }
    audit_hex(md, sizeof(md), out);
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}
