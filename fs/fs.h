/* fs.h: what the FUSE face shares between its files: the per-tree operation tables, the live
 * file handle (snapshot at open, served with direct_io), and who is calling. */
#ifndef CONDUIT_FS_H
#define CONDUIT_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <fuse.h>

#include "core/config.h"

/* One top-level tree (services/, ca/, monitor/, audit/). Each operation gets the path below the
 * tree: "" for the tree's own directory, "core" or "core/upstream" below it. A NULL operation
 * means ENOENT for lookups and EPERM for changes. Every operation returns 0 (or a byte count)
 * or -errno. The dispatcher fills st's owner and times before getattr is called. A handle whose
 * node was removed while open never reaches a tree: the dispatcher serves its reads from the
 * snapshot and answers everything else with ESTALE. */
struct fs_tree {
    const char *name;
    int (*getattr)(const char *rel, struct stat *st);
    int (*readdir)(const char *rel, void *buf, fuse_fill_dir_t fill);
    int (*open)(const char *rel, struct fuse_file_info *fi);
    int (*create)(const char *rel, struct fuse_file_info *fi);
    int (*write)(const char *rel, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi);
    int (*truncate)(const char *rel, off_t size);
    int (*unlink)(const char *rel);
    int (*mkdir)(const char *rel);
    int (*rmdir)(const char *rel);
    /* Serve a read itself (a file that grows while open); NULL: from the handle's snapshot. */
    int (*read)(const char *rel, char *buf, size_t size, off_t off, struct fuse_file_info *fi);
    /* Rename from to to, both below this tree (a rename between trees is EPERM); flags are
     * rename(2)'s RENAME_* flags. */
    int (*rename)(const char *from, const char *to, unsigned int flags);
    /* chmod and chown, which change nothing anywhere: 0 where the tree accepts them. */
    int (*chmod)(const char *rel, mode_t mode);
    int (*chown)(const char *rel, uid_t uid, gid_t gid);
    /* A close of a handle of rel (flush: once per close(2) of each descriptor); NULL: 0. Its
     * error is close(2)'s. */
    int (*flush)(const char *rel);
};

extern const struct fs_tree fs_services_tree;
extern const struct fs_tree fs_ca_tree;
extern const struct fs_tree fs_monitor_tree;
extern const struct fs_tree fs_audit_tree;

/* Attach a snapshot of len bytes of data to an open file (copied), with direct_io, so every read
 * of this handle sees the same bytes. 0 or -ENOMEM. The dispatcher serves reads and frees it. */
int fs_fh_set(struct fuse_file_info *fi, const char *data, size_t len);

/* Serve a read from the handle's snapshot; free the snapshot (release). */
int fs_fh_read(struct fuse_file_info *fi, char *buf, size_t size, off_t off);
void fs_fh_free(struct fuse_file_info *fi);

/* Fill st as a directory (0755) or a regular file of size bytes with mode perm. */
void fs_stat_dir(struct stat *st);
void fs_stat_file(struct stat *st, mode_t perm, size_t size);

/* A readdir buffer and its filler, for the callbacks of the name listers (fs_fill_name). */
struct fs_filler {
    void *buf;
    fuse_fill_dir_t fill;
};

/* A name lister's callback: add name to the readdir buffer of ctx (a struct fs_filler). */
void fs_fill_name(const char *name, void *ctx);

/* The caller's user name (from fuse_get_context), or its uid in decimal. */
void fs_caller(char *buf, size_t len);

/* The caller's pid, 0 outside a request. */
pid_t fs_caller_pid(void);

/* Split "a/b" into its first component (into buf) and the rest (returned, "" if none).
 * NULL when the component does not fit buf or is empty. */
const char *fs_split(const char *rel, char *buf, size_t len);

/* The depth of a path inside a two-level tree: 0 for "", 1 for "NAME" (into name), 2 for
 * "NAME/LEAF" (both filled); -1 for anything deeper, empty components, or ones too long. */
int fs_split2(const char *rel, char *name, size_t nlen, char *leaf, size_t llen);

/* Configuration shared with the operations (set by main before the loop). */
extern struct cfs_config fs_cfg;

/* Prepare the operations (clock for timestamps); called by main once, before the loop. */
void fs_ops_start(void);

/* The operations table. */
extern const struct fuse_operations fs_ops;

#endif
