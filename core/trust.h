/* trust.h: short instructions, one file per platform, for installing the internal CA's
 * certificate as a trusted root. */
#ifndef CONDUIT_TRUST_H
#define CONDUIT_TRUST_H

#include <stddef.h>

/* The name of the i-th instruction file ("debian.sh", "rhel.sh", "macos.sh", "windows.ps1",
 * "firefox.md", "docker.md"), or NULL past the last. */
const char *ca_trust_name(size_t i);

/* The instruction file name for the CA certificate at ca_path (absolute) on the gateway host
 * hostname (names the installed file and the copy command), whose SHA-256 fingerprint is
 * fingerprint (lowercase hex, checked by the scripts), as a malloc'd NUL-terminated string in
 * *out, its length in *len. 0, -ENOENT (unknown name) or -ENOMEM. */
int ca_trust_text(const char *name, const char *ca_path, const char *hostname,
                  const char *fingerprint, char **out, size_t *len);

#endif
