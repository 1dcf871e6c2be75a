/* monitor.c: the monitor/ tree (an empty directory until its issue lands). */
#include "fs/fs.h"

const struct fs_tree fs_monitor_tree = {
    .name = "monitor",
};
