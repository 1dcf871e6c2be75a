/* ca.c: the ca/ tree: ca.crt and ca.json, certs/<domain>.pem and .json for each active domain
 * (the certificate that serves it), and trust/ instructions. Read-only, except that unlinking
 * certs/<domain>.pem rotates the leaf that carries the domain.
 * Only maps paths onto core/casvc, which makes every text (and never shows a private key). */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/casvc.h"

enum ca_node {
    CA_NONE,                        /* no such path */
    CA_DIR_TOP,                     /* ca/ */
    CA_ROOT_PEM,                    /* ca.crt */
    CA_ROOT_JSON,                   /* ca.json */
    CA_DIR_CERTS,                   /* certs/ */
    CA_LEAF_PEM,                    /* certs/<domain>.pem */
    CA_LEAF_JSON,                   /* certs/<domain>.json */
    CA_DIR_TRUST,                   /* trust/ */
    CA_TRUST_FILE,                  /* trust/<name> */
};

/* A parsed path below ca/: its kind and, for leaves and trust files, the domain or name. */
struct ca_path {
    enum ca_node kind;
    char arg[NAME_MAX + 1];
};

/* True (and the part before it in out) when name ends in suffix after a non-empty stem. */
static bool strip_suffix(const char *name, const char *suffix, char *out, size_t len)
{
    size_t n = strlen(name), s = strlen(suffix);

    if (n <= s || strcmp(name + n - s, suffix) != 0 || n - s >= len)
        return false;
    memcpy(out, name, n - s);
    out[n - s] = '\0';
    return true;
}

/* The entries of ca/ itself. */
static const struct {
    const char *name;
    enum ca_node kind;
} top_nodes[] = {
    { "ca.crt", CA_ROOT_PEM }, { "ca.json", CA_ROOT_JSON }, { "certs", CA_DIR_CERTS },
    { "trust", CA_DIR_TRUST },
};

static void parse(const char *rel, struct ca_path *p)
{
    char top[16], name[NAME_MAX + 1];
    const char *rest;

    memset(p, 0, sizeof(*p));
    if (*rel == '\0') {
        p->kind = CA_DIR_TOP;
        return;
    }
    rest = fs_split(rel, top, sizeof(top));
    if (!rest)
        return;
    if (*rest == '\0') {
        for (size_t i = 0; i < sizeof(top_nodes) / sizeof(top_nodes[0]); i++)
            if (strcmp(top, top_nodes[i].name) == 0)
                p->kind = top_nodes[i].kind;
        return;
    }
    rest = fs_split(rest, name, sizeof(name));
    if (!rest || *rest)
        return;
    if (strcmp(top, "certs") == 0) {
        if (strip_suffix(name, ".pem", p->arg, sizeof(p->arg)))
            p->kind = CA_LEAF_PEM;
        else if (strip_suffix(name, ".json", p->arg, sizeof(p->arg)))
            p->kind = CA_LEAF_JSON;
    } else if (strcmp(top, "trust") == 0) {
        memcpy(p->arg, name, strlen(name) + 1);
        p->kind = CA_TRUST_FILE;
    }
}

static bool is_dir(enum ca_node k)
{
    return k == CA_DIR_TOP || k == CA_DIR_CERTS || k == CA_DIR_TRUST;
}

/* The current content of a file node (malloc'd). 0, -ENOENT or -ENOMEM. */
static int content(const struct ca_path *p, char **out, size_t *len)
{
    switch (p->kind) {
    case CA_ROOT_PEM: return ca_service_root_pem(out, len);
    case CA_ROOT_JSON: return ca_service_root_json(out, len);
    case CA_LEAF_PEM: return ca_service_leaf_pem(p->arg, out, len);
    case CA_LEAF_JSON: return ca_service_leaf_json(p->arg, out, len);
    case CA_TRUST_FILE: return ca_service_trust(p->arg, out, len);
    default: return -ENOENT;
    }
}

/* The node at rel: 1 for a directory; for a file, 0 with its current content in *out
 * (malloc'd); -ENOENT or -ENOMEM. */
static int node(const char *rel, char **out, size_t *len)
{
    struct ca_path p;

    parse(rel, &p);
    return is_dir(p.kind) ? 1 : content(&p, out, len);
}

static int tree_getattr(const char *rel, struct stat *st)
{
    char *data = NULL;
    size_t len = 0;
    int rc = node(rel, &data, &len);

    if (rc == 1) {
        fs_stat_dir(st);
        return 0;
    }
    /* The size is the real one: cp and friends read no further than st_size. */
    if (rc == 0)
        fs_stat_file(st, 0444, len);
    free(data);
    return rc;
}

/* readdir's callback for each live leaf (arg: a struct fs_filler): its two files (names beyond
 * NAME_MAX are left out). */
static void fill_leaf(const char *domain, void *arg)
{
    char name[NAME_MAX + 1];
    int n;

    n = snprintf(name, sizeof(name), "%s.pem", domain);
    if (n > 0 && (size_t)n < sizeof(name))
        fs_fill_name(name, arg);
    n = snprintf(name, sizeof(name), "%s.json", domain);
    if (n > 0 && (size_t)n < sizeof(name))
        fs_fill_name(name, arg);
}

static int tree_readdir(const char *rel, void *buf, fuse_fill_dir_t fill)
{
    struct ca_path p;
    struct fs_filler c = { .buf = buf, .fill = fill };
    const char *name;

    parse(rel, &p);
    switch (p.kind) {
    case CA_DIR_TOP:
        fill(buf, "ca.crt", NULL, 0, 0);
        fill(buf, "ca.json", NULL, 0, 0);
        fill(buf, "certs", NULL, 0, 0);
        fill(buf, "trust", NULL, 0, 0);
        return 0;
    case CA_DIR_CERTS:
        ca_service_foreach_leaf(fill_leaf, &c);
        return 0;
    case CA_DIR_TRUST:
        for (size_t i = 0; (name = ca_service_trust_name(i)); i++)
            fill(buf, name, NULL, 0, 0);
        return 0;
    case CA_NONE:
        return -ENOENT;
    default:
        return -ENOTDIR;
    }
}

static int tree_open(const char *rel, struct fuse_file_info *fi)
{
    char *data = NULL;
    size_t len = 0;
    int rc = node(rel, &data, &len);

    if (rc == 1)
        return -EISDIR;
    if (rc == 0 && (fi->flags & O_ACCMODE) != O_RDONLY)
        rc = -EPERM;
    if (rc == 0)
        rc = fs_fh_set(fi, data, len);
    free(data);
    return rc;
}

static int tree_unlink(const char *rel)
{
    struct ca_path p;
    char who[64];

    parse(rel, &p);
    if (p.kind == CA_NONE)
        return -ENOENT;
    if (p.kind != CA_LEAF_PEM)
        return -EPERM;
    fs_caller(who, sizeof(who));
    return ca_service_rotate(p.arg, who);
}

/* create, write, truncate, mkdir and rmdir stay NULL: EPERM everywhere below ca/. */
const struct fs_tree fs_ca_tree = {
    .name = "ca",
    .getattr = tree_getattr,
    .readdir = tree_readdir,
    .open = tree_open,
    .unlink = tree_unlink,
};
