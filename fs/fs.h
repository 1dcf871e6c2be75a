/* fs.h: what the FUSE face shares between its files: path routing and the operations table. */
#ifndef CONDUIT_FS_H
#define CONDUIT_FS_H

#include <stddef.h>
#include <fuse.h>

#include "core/registry.h"

/* What a path names. */
enum fs_kind {
    FS_NONE,        /* nothing: ENOENT */
    FS_ROOT,        /* / */
    FS_TOP,         /* /services, /ca, /monitor, /audit */
    FS_SVC_DIR,     /* /services/NAME */
    FS_SVC_ATTR,    /* /services/NAME/ATTR */
    FS_SVC_OTHER,   /* /services/NAME/anything-else, or deeper */
};

struct fs_node {
    enum fs_kind kind;
    char top[16];       /* FS_TOP and below: "services", ... */
    char name[256];     /* FS_SVC_*: the service name as written (not yet validated) */
    int attr;           /* FS_SVC_ATTR: enum reg_attr */
};

/* Split path into a node. Never fails: unknown shapes give FS_NONE or FS_SVC_OTHER. */
void fs_route(const char *path, struct fs_node *node);

/* The caller's user name (from fuse_get_context), or its uid in decimal. */
void fs_caller(char *buf, size_t len);

/* Configuration shared with the operations (set by main before the loop). */
extern struct reg_config fs_cfg;

/* Prepare the operations (clock for timestamps); called by main once, before the loop. */
void fs_ops_start(void);

/* The operations table. */
extern const struct fuse_operations fs_ops;

#endif
