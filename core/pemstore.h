/* pemstore.h: the CA's PEM file store (prefix pem_): reading keys and certificates with the
 * checks the CA wants (regular files of bounded size, keys not readable by group or others),
 * writing them atomically 0600, and the 0700 directories of state/tls. Internal to the CA
 * files (core/ca.c, core/cabundle.c, core/caview.c); nothing else includes it. */
#ifndef CONDUIT_PEMSTORE_H
#define CONDUIT_PEMSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <openssl/types.h>

/* Load a private key from the PEM file at path (no password; nothing prompts). With secret, a
 * key file that group or others may access is refused. 0, -EPERM (accessible key), -EINVAL (not
 * a regular file, or no parseable key), -EFBIG (over 1 MiB), -ENOMEM or -errno, with a reason in
 * err (which may be NULL). The file's contents are cleansed from memory afterwards. */
int pem_load_key(const char *path, bool secret, EVP_PKEY **out, char *err, size_t errlen);

/* Load the first certificate of the PEM file at path. 0, -EINVAL (not a regular file, or no
 * parseable certificate), -EFBIG, -ENOMEM or -errno, with a reason in err (may be NULL). */
int pem_load_cert(const char *path, X509 **out, char *err, size_t errlen);

/* Copy the contents of a memory BIO into a malloc'd NUL-terminated string. 0 or -ENOMEM. */
int pem_bio_string(BIO *bio, char **out);

/* crt as PEM in a malloc'd NUL-terminated string. 0 or -errno (-ENOMEM). */
int pem_encode_cert(X509 *crt, char **out);

/* Write key as unencrypted PKCS#8 PEM to path, mode 0600 from creation, atomically; the
 * encoding is cleansed afterwards. 0 or -errno (-ENOMEM, -ENOSPC, -EIO...) with a reason in err. */
int pem_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen);

/* Write crt as PEM to path, mode 0600, atomically. 0 or -errno with a reason in err. */
int pem_write_cert(const char *path, X509 *crt, char *err, size_t errlen);

/* lstat path into st: 0 for a directory (not a link to one), -ENOTDIR for anything else, or
 * -errno. */
int pem_lstat_dir(const char *path, struct stat *st);

/* Create path as a 0700 directory if missing; tighten an existing one to 0700. 0, -ENOTDIR (a
 * non-directory is there) or -errno. */
int pem_ensure_dir(const char *path);

/* Remove the temp files an interrupted atomic write left in every directory below dir (one
 * level, and below its "archive" as well when depth is 0). 0 (also when dir is missing) or
 * -errno. */
int pem_clean_leaf_temps(const char *dir, int depth);

/* lstat path: 1 exists (anything, even a dangling link), 0 missing, or -errno. */
int pem_exists(const char *path);

#endif
