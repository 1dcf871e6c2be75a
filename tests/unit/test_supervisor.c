/* test_supervisor.c: what the supervisor does without starting a daemon: sup_check's search of
 * PATH for caddy and dnsmasq (executables are only looked at, never run) and its one-line
 * reasons, and the calls that answer before sup_start (admin socket, readiness, stop). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/registry.h"
#include "core/supervisor.h"
#include "testlib.h"

static char tmpdir[] = "/tmp/test_supervisor.XXXXXX";
static struct cfs_config cfg;

/* Make the folder tmpdir/name; with progs (NULL-terminated), an empty file of mode mode for
 * each. Its path into dir. */
static void bin_dir(char *dir, size_t len, const char *name, mode_t mode, const char *const *progs)
{
    char path[512];

    tl_path(dir, len, tmpdir, name, NULL);
    CHECK(mkdir(dir, 0700) == 0);
    for (; progs && *progs; progs++) {
        int fd;

        tl_path(path, sizeof(path), dir, *progs, NULL);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        CHECK(fd >= 0);
        if (fd >= 0) {
            CHECK(fchmod(fd, mode) == 0);
            close(fd);
        }
    }
}

/* sup_check with PATH set to path: its result, and its reason in err. */
static int check_with(const char *path, char *err, size_t errlen)
{
    CHECK(setenv("PATH", path, 1) == 0);
    snprintf(err, errlen, "untouched");
    return sup_check(&cfg, err, errlen);
}

/* Whether err is one line that names prog and the way out (--no-manage). */
static int reason_names(const char *err, const char *prog)
{
    return strchr(err, '\n') == NULL && strstr(err, prog) != NULL &&
           strstr(err, "--no-manage") != NULL;
}

static void test_check(void)
{
    static const char *const caddy[] = { "caddy", NULL };
    static const char *const dnsmasq[] = { "dnsmasq", NULL };
    static const char *const both[] = { "caddy", "dnsmasq", NULL };
    char empty[256], c_only[256], d_only[256], all[256], noexec[256], path[1100], err[256];
    char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

    tl_make_cfg(&cfg, tmpdir, NULL);
    bin_dir(empty, sizeof(empty), "empty", 0, NULL);
    bin_dir(c_only, sizeof(c_only), "caddy-only", 0755, caddy);
    bin_dir(d_only, sizeof(d_only), "dnsmasq-only", 0755, dnsmasq);
    bin_dir(all, sizeof(all), "both", 0755, both);
    bin_dir(noexec, sizeof(noexec), "noexec", 0644, both);

    /* neither: caddy is named first */
    CHECK_INT(check_with(empty, err, sizeof(err)), -ENOENT);
    CHECKF(reason_names(err, "caddy") && strstr(err, "dnsmasq") == NULL, "%s", err);
    CHECKF(strstr(err, "apt-get install caddy") != NULL, "%s", err);

    /* caddy only: dnsmasq is missing */
    CHECK_INT(check_with(c_only, err, sizeof(err)), -ENOENT);
    CHECKF(reason_names(err, "dnsmasq"), "%s", err);
    CHECKF(strstr(err, "dnsmasq-base") != NULL, "%s", err);

    /* dnsmasq only: caddy is missing */
    CHECK_INT(check_with(d_only, err, sizeof(err)), -ENOENT);
    CHECKF(reason_names(err, "caddy"), "%s", err);

    /* files that are not executable do not count */
    CHECK_INT(check_with(noexec, err, sizeof(err)), -ENOENT);
    CHECKF(reason_names(err, "caddy"), "%s", err);

    /* both found, each in its own PATH entry, after one that does not exist: 0, err untouched */
    snprintf(path, sizeof(path), "%s/nonexistent:%s:%s", tmpdir, c_only, d_only);
    CHECK_INT(check_with(path, err, sizeof(err)), 0);
    CHECK_STR(err, "untouched");
    CHECK_INT(check_with(all, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s:%s", noexec, all);
    CHECK_INT(check_with(path, err, sizeof(err)), 0);

    /* a short buffer: the reason is cut, still terminated */
    CHECK_INT(check_with(empty, err, 16), -ENOENT);
    CHECK_INT((long)strlen(err), 15);

    if (saved)
        setenv("PATH", saved, 1);
    else
        unsetenv("PATH");
    free(saved);
}

/* Before sup_start: no admin socket, Caddy never ready, sup_stop a no-op. */
static void test_not_started(void)
{
    char buf[64];

    snprintf(buf, sizeof(buf), "junk");
    CHECK_INT(sup_admin_socket(buf, sizeof(buf)), -ENOENT);
    CHECK_STR(buf, "");
    CHECK_INT(sup_admin_socket(buf, 0), -ENOENT);
    CHECK(!sup_caddy_wait_ready(50));
    sup_stop();
    CHECK(!sup_caddy_wait_ready(0));
    CHECK_INT(sup_admin_socket(buf, sizeof(buf)), -ENOENT);
}

int main(void)
{
    static const tl_test_fn tests[] = { test_check, test_not_started, NULL };

    return tl_main_in_dir(tmpdir, tests);
}
