/* ca.c: the ca/ tree (an empty directory until its issue lands). */
#include "fs/fs.h"

const struct fs_tree fs_ca_tree = {
    .name = "ca",
};
