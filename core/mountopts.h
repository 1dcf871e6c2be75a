/* mountopts.h: the options a state directory was mounted with, kept in state/mount.json like a
 * filesystem's superblock (a remount without options uses them), and the check that a mount's
 * options keep every registered service valid. */
#ifndef CONDUIT_MOUNTOPTS_H
#define CONDUIT_MOUNTOPTS_H

#include <stddef.h>

#include <jansson.h>

#include "core/config.h"

/* The options recorded in state_dir/mount.json: a new JSON object of option name (the -o
 * spelling) -> string value, empty when the file does not exist yet. 0, or -EINVAL with a
 * one-line reason in err for a file that is not such a document, or -errno. */
int mopt_load(const char *state_dir, json_t **out, char *err, size_t errlen);

/* Record opts (an object as mopt_load returns) in state_dir/mount.json, atomically; unchanged
 * content is not written again. 0 or -errno. */
int mopt_save(const char *state_dir, const json_t *opts);

/* Whether every live service of state_dir/services.json keeps a valid domain under cfg's
 * suffixes. 0 (also without services.json, or one that does not parse: reg_open reports that),
 * or -EINVAL with one line in err naming --domains and the services it would invalidate. */
int mopt_check_domains(const struct cfs_config *cfg, char *err, size_t errlen);

#endif
