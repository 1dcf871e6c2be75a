/* audit.c: the audit/ tree (an empty directory until its issue lands). */
#include "fs/fs.h"

const struct fs_tree fs_audit_tree = {
    .name = "audit",
};
