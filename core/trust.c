/* trust.c: the text of ca/trust/: how to install the internal CA as a trusted root on Debian,
 * RHEL, macOS, Windows, in Firefox (NSS) and in Docker images, with the real certificate path. */
#include "core/trust.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRUST_HOST_MAX 63           /* of the gateway name used in installed file names */

/* What a template is given: the certificate path and names derived from the host. */
struct trust_ctx {
    const char *name;               /* this file's own name, for its usage line */
    const char *path;               /* absolute path of ca.crt on the gateway */
    const char *fp;                 /* its SHA-256 fingerprint, lowercase hex */
    char host[TRUST_HOST_MAX + 1];  /* the gateway's name, reduced to [A-Za-z0-9.-] */
    char file[TRUST_HOST_MAX + 32]; /* installed file name: qp-conduit-<host>.crt */
};

/* s as one shell word: single quotes, each ' written as '\''. */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* s as the inside of a JSON string: " and \\ escaped, control characters dropped. */
static void json_inner(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
}

/* s as a PowerShell single-quoted string: each ' written as ''. */
static void ps_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The comment lines shared by the shell scripts: where the certificate is, how to copy it. */
static void sh_header(FILE *f, const struct trust_ctx *c, const char *what)
{
    fprintf(f, "#!/bin/sh\n# %s\n", what);
    fprintf(f, "# The certificate is the file below on the gateway %s. On another machine, copy "
            "it first\n# and give the copy as the argument:\n#   scp %s:", c->host, c->host);
    sh_quote(f, c->path);
    fprintf(f, " /tmp/%s && sh %s /tmp/%s\nset -eu\nCA=${1:-", c->file, c->name, c->file);
    sh_quote(f, c->path);
    fprintf(f, "}\nFP=%s\n"
            "if command -v openssl >/dev/null 2>&1; then\n"
            "    got=$(openssl x509 -noout -fingerprint -sha256 -in \"$CA\" | "
            "sed 's/.*=//; s/://g' | tr A-F a-f)\n"
            "    [ \"$got\" = \"$FP\" ] || { echo \"$CA is not the CA of %s\" >&2; exit 1; }\n"
            "fi\n", c->fp, c->host);
}

static void t_debian(FILE *f, const struct trust_ctx *c)
{
    sh_header(f, c, "Trust the QP Conduit internal CA system-wide on Debian or Ubuntu. Run as "
              "root; needs the\n# ca-certificates package.");
    fprintf(f, "install -m 0644 \"$CA\" /usr/local/share/ca-certificates/%s\n"
            "update-ca-certificates\n", c->file);
}

static void t_rhel(FILE *f, const struct trust_ctx *c)
{
    sh_header(f, c, "Trust the QP Conduit internal CA system-wide on RHEL, CentOS, Rocky, Alma "
              "or Fedora.\n# Run as root; needs the ca-certificates package.");
    fprintf(f, "install -m 0644 \"$CA\" /etc/pki/ca-trust/source/anchors/%s\n"
            "update-ca-trust extract\n", c->file);
}

static void t_macos(FILE *f, const struct trust_ctx *c)
{
    sh_header(f, c, "Trust the QP Conduit internal CA for all users of a Mac (System keychain). "
              "Run with sudo.");
    fputs("security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "
          "\"$CA\"\n", f);
}

static void t_windows(FILE *f, const struct trust_ctx *c)
{
    fputs("# Trust the QP Conduit internal CA for all users of a Windows machine (Local Machine\n"
          "# root store). Run in an elevated PowerShell. The certificate is the default of "
          "-CaFile\n", f);
    fprintf(f, "# below, on the gateway %s: copy it here first and give the copy, e.g.\n"
            "#   scp %s:", c->host, c->host);
    sh_quote(f, c->path);
    fprintf(f, " $env:USERPROFILE\\%s\n"
            "#   powershell -ExecutionPolicy Bypass -File windows.ps1 -CaFile "
            "$env:USERPROFILE\\%s\nparam([string]$CaFile = ", c->file, c->file);
    ps_quote(f, c->path);
    fprintf(f, ")\n# Its SHA-256 fingerprint: %s\n", c->fp);
    fputs("$ErrorActionPreference = 'Stop'\n"
          "Import-Certificate -FilePath $CaFile -CertStoreLocation Cert:\\LocalMachine\\Root\n",
          f);
}

static void t_firefox(FILE *f, const struct trust_ctx *c)
{
    char nick[TRUST_HOST_MAX + 32];

    snprintf(nick, sizeof(nick), "QP Conduit Internal CA (%s)", c->host);
    fputs("# Trust the QP Conduit internal CA in Firefox\n\n"
          "Firefox keeps its own certificate store (NSS) in each profile. Close Firefox, then "
          "import\nthe CA into every profile with NSS `certutil` (Debian: `apt install "
          "libnss3-tools`;\nRHEL: `dnf install nss-tools`; macOS: `brew install nss`):\n\n"
          "```sh\nCA=", f);
    sh_quote(f, c->path);
    fputs("\nfor db in ~/.mozilla/firefox/*/cert9.db; do\n"
          "    certutil -A -d \"sql:$(dirname \"$db\")\" -t 'C,,' -n ", f);
    sh_quote(f, nick);
    fprintf(f, " -i \"$CA\"\ndone\n```\n\n"
            "The certificate is that file on the gateway %s; on another machine copy it first "
            "and\nset CA to the copy (its SHA-256 fingerprint is\n%s).\n\n"
            "Profiles live in `~/snap/firefox/common/.mozilla/firefox/` for the snap, and\n"
            "`~/Library/Application Support/Firefox/Profiles/` on macOS. `certutil -L -d "
            "sql:PROFILE`\nlists the CA with trust `C,,` (trusted to issue server "
            "certificates).\n\n"
            "For every profile at once, an enterprise policy (`policies.json` in Firefox's "
            "`distribution/`\ndirectory) can install it instead:\n"
            "`{\"policies\": {\"Certificates\": {\"Install\": [\"", c->host, c->fp);
    json_inner(f, c->path);
    fputs("\"]}}}`\n", f);
}

static void t_docker(FILE *f, const struct trust_ctx *c)
{
    fputs("# Trust the QP Conduit internal CA in a Docker container\n\n"
          "Mount the certificate into the image's CA directory and refresh the trust store "
          "when the\ncontainer starts (Debian, Ubuntu or Alpine images with the "
          "`ca-certificates` package,\nrunning as root):\n\n```sh\ndocker run --rm -v ", f);
    sh_quote(f, c->path);
    fprintf(f, ":/usr/local/share/ca-certificates/%s:ro \\\n"
            "    IMAGE sh -c 'update-ca-certificates && exec COMMAND'\n```\n\n"
            "Or build it into the image: `cp ", c->file);
    sh_quote(f, c->path);
    fprintf(f, " ./%s` into the build context, then\n\n```dockerfile\n"
            "COPY %s /usr/local/share/ca-certificates/%s\nRUN update-ca-certificates\n```\n\n"
            "Its SHA-256 fingerprint is %s.\n"
            "RHEL-based images use `/etc/pki/ca-trust/source/anchors/` and "
            "`update-ca-trust extract`.\nRuntimes with their own bundle need it named: "
            "`NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/%s`,\n"
            "`REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt` (Python requests).\n",
            c->file, c->file, c->file, c->fp, c->file);
}

static const struct {
    const char *name;
    void (*write)(FILE *f, const struct trust_ctx *c);
} templates[] = {
    { "debian.sh", t_debian },
    { "rhel.sh", t_rhel },
    { "macos.sh", t_macos },
    { "windows.ps1", t_windows },
    { "firefox.md", t_firefox },
    { "docker.md", t_docker },
};
#define NTEMPLATES (sizeof(templates) / sizeof(templates[0]))

const char *ca_trust_name(size_t i)
{
    return i < NTEMPLATES ? templates[i].name : NULL;
}

/* host reduced to [A-Za-z0-9.-] (others become '-'), cut, "gateway" when empty, into ctx;
 * and the installed file name qp-conduit-<host, lowercase>.crt. */
static void set_names(struct trust_ctx *c, const char *host)
{
    char lower[TRUST_HOST_MAX + 1];
    size_t n = 0;

    for (; host && host[n] && n < TRUST_HOST_MAX; n++) {
        char ch = host[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';

        c->host[n] = ok ? ch : '-';
        lower[n] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : c->host[n];
    }
    c->host[n] = lower[n] = '\0';
    if (n == 0) {
        snprintf(c->host, sizeof(c->host), "%s", "gateway");
        snprintf(lower, sizeof(lower), "%s", "gateway");
    }
    snprintf(c->file, sizeof(c->file), "qp-conduit-%s.crt", lower);
}

int ca_trust_text(const char *name, const char *ca_path, const char *hostname,
                  const char *fingerprint, char **out, size_t *len)
{
    struct trust_ctx c = { .name = name, .path = ca_path, .fp = fingerprint };
    char *buf = NULL;
    size_t size = 0;
    FILE *f = NULL;
    int rc = -ENOENT;
    size_t i;

    *out = NULL;
    *len = 0;
    for (i = 0; i < NTEMPLATES && strcmp(templates[i].name, name) != 0; i++)
        ;
    if (i == NTEMPLATES)
        goto out;
    rc = -ENOMEM;
    set_names(&c, hostname);
    f = open_memstream(&buf, &size);
    if (!f)
        goto out;
    templates[i].write(f, &c);
    if (fclose(f) != 0) {
        f = NULL;
        goto out;
    }
    f = NULL;
    *out = buf;
    *len = size;
    buf = NULL;
    rc = 0;
out:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}
