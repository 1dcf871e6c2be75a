/* node.c: path -> node routing, and who is calling. */
#include "fs/fs.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const tops[] = { "services", "ca", "monitor", "audit" };

/* Copy the next component of *p into buf; advance *p. 0, or -1 when too long or empty. */
static int next_comp(const char **p, char *buf, size_t len)
{
    const char *s = *p, *e;
    size_t n;

    while (*s == '/')
        s++;
    e = strchr(s, '/');
    n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0 || n >= len)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *p = s + n;
    return 0;
}

void fs_route(const char *path, struct fs_node *node)
{
    const char *p = path;
    char comp[256];
    size_t i;

    memset(node, 0, sizeof(*node));
    node->kind = FS_NONE;
    if (strcmp(path, "/") == 0) {
        node->kind = FS_ROOT;
        return;
    }
    if (next_comp(&p, comp, sizeof(comp)) < 0)
        return;
    for (i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
        if (strcmp(comp, tops[i]) == 0)
            break;
    if (i == sizeof(tops) / sizeof(tops[0]))
        return;
    snprintf(node->top, sizeof(node->top), "%s", tops[i]);
    if (*p == '\0') {
        node->kind = FS_TOP;
        return;
    }
    if (i != 0 || next_comp(&p, node->name, sizeof(node->name)) < 0)
        return;
    if (*p == '\0') {
        node->kind = FS_SVC_DIR;
        return;
    }
    node->kind = FS_SVC_OTHER;
    if (next_comp(&p, comp, sizeof(comp)) < 0 || *p != '\0')
        return;
    node->attr = reg_attr_from_name(comp);
    if (node->attr >= 0)
        node->kind = FS_SVC_ATTR;
}

void fs_caller(char *buf, size_t len)
{
    struct fuse_context *ctx = fuse_get_context();
    uid_t uid = ctx ? ctx->uid : getuid();
    struct passwd pw, *res = NULL;
    char tmp[1024];

    if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
        snprintf(buf, len, "%s", res->pw_name);
    else
        snprintf(buf, len, "%u", (unsigned)uid);
}
