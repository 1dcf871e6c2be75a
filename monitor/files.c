/* files.c: the tables of the files a directory below monitor/ may hold: their names and the
 * "type" of their probe documents. A leaf: it calls nothing of the module. */
#include "monitor/files.h"

#include <string.h>

static const char *const file_names[MON_NFILES] = {
    "server.json", "gpu.json", "containers.json", "container.json", "target.json",
};
static const char *const file_types[MON_NFILES] = {
    "server", "gpu", "containers", "container", NULL,
};

/* "server.json", ... for f; NULL past the end. */
const char *mon_file_name(enum mon_file f)
{
    return f < MON_NFILES ? file_names[f] : NULL;
}

/* The enum mon_file of a file name, -1 when unknown. */
int mon_file_from_name(const char *name)
{
    for (int f = 0; f < MON_NFILES; f++)
        if (strcmp(file_names[f], name) == 0)
            return f;
    return -1;
}

/* The document "type" of a probe file, NULL for target.json. */
const char *mon_file_type(enum mon_file f)
{
    return f < MON_NFILES ? file_types[f] : NULL;
}
