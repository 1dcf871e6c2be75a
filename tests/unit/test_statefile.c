/* test_statefile.c: core/statefile.c: the state directory (created 0700 with its parents, an
 * existing one made 0700, emptiness), atomic writes and reads, leftover temp files, durable
 * unlink, and the copy kept beside a corrupt file, also when it cannot be written. */
#include "core/statefile.h"
#include "testlib.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_statefile.XXXXXX";

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");

    CHECK(f != NULL);
    if (f)
        fclose(f);
}

static void test_dir_init(void)
{
    char dir[256], file[256];
    struct stat st;
    bool created = false;

    tl_path(dir, sizeof(dir), tmpdir, "a", "b", "state", NULL);
    CHECK_INT(state_dir_init(dir, &created), 0);
    CHECK(created);
    CHECK_INT(stat(dir, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0700);
    CHECK_INT(state_dir_init(dir, &created), 0);      /* there and empty: still new */
    CHECK(created);
    tl_path(file, sizeof(file), dir, "services.json", NULL);
    touch(file);
    CHECK_INT(chmod(dir, 0755), 0);
    CHECK_INT(state_dir_init(dir, &created), 0);
    CHECK(!created);
    CHECK_INT(stat(dir, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0700);               /* made private again */
    CHECK_INT(state_dir_init(file, &created), -ENOTDIR);
    CHECK_INT(state_mkdir(file, 0700), -ENOTDIR);
}

static void test_write_read(void)
{
    char dir[256], file[256], tmp[256], keep[256], *data = NULL;
    size_t len = 0;
    struct stat st;

    tl_path(dir, sizeof(dir), tmpdir, "w", NULL);
    CHECK_INT(state_mkdir(dir, 0700), 0);
    CHECK_INT(state_path(file, sizeof(file), dir, "targets.json"), 0);
    CHECK_INT(state_write_atomic(file, "{}\n", 3, 0600), 0);
    CHECK_INT(state_read_file(file, &data, &len), 0);
    CHECK_INT(len, 3);
    CHECK(data && strcmp(data, "{}\n") == 0);
    free(data);
    CHECK_INT(stat(file, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);

    /* what a crash leaves: the temp files go, other files stay */
    tl_path(tmp, sizeof(tmp), dir, ".targets.json.tmp.4242", NULL);
    tl_path(keep, sizeof(keep), dir, "notes.tmp.1", NULL);
    touch(tmp);
    touch(keep);
    CHECK_INT(state_clean_temps(dir), 0);
    CHECK_INT(access(tmp, F_OK), -1);
    CHECK_INT(access(keep, F_OK), 0);
    CHECK_INT(access(file, F_OK), 0);
    CHECK_INT(state_clean_temps("/nonexistent/conduit-dir"), 0);

    CHECK_INT(state_unlink(file), 0);
    CHECK_INT(access(file, F_OK), -1);
    CHECK_INT(state_unlink(file), 0);                 /* missing: success */
    CHECK_INT(state_read_file(file, &data, &len), -ENOENT);
    CHECK(data == NULL);
    CHECK_INT(state_path(tmp, 8, dir, "x"), -ENAMETOOLONG);
}

static void test_keep_corrupt(void)
{
    char dir[256], file[256], aside[PATH_MAX + 64], blocker[PATH_MAX], *data = NULL;
    size_t len = 0;
    time_t now;

    tl_path(dir, sizeof(dir), tmpdir, "c", NULL);
    CHECK_INT(state_mkdir(dir, 0700), 0);
    tl_path(file, sizeof(file), dir, "targets.json", NULL);
    CHECK_INT(state_write_atomic(file, "{bad", 4, 0600), 0);

    CHECK_INT(state_keep_corrupt(file, "{bad", 4, aside, sizeof(aside)), 0);
    CHECK(strncmp(aside, file, strlen(file)) == 0);
    CHECK(strstr(aside, ".corrupt-") != NULL);
    CHECK_INT(state_read_file(aside, &data, &len), 0);
    CHECK(len == 4 && data && memcmp(data, "{bad", 4) == 0);
    free(data);
    CHECK_INT(access(file, F_OK), 0);                 /* the file itself stays */

    /* a name that does not fit: no copy, and aside says so */
    CHECK_INT(state_keep_corrupt(file, "{bad", 4, aside, 10), -ENAMETOOLONG);
    CHECK_STR(aside, "");

    /* a copy that cannot be written (a directory holds each name it could take) */
    tl_path(file, sizeof(file), dir, "services.json", NULL);
    now = time(NULL);
    for (time_t t = now; t < now + 30; t++) {
        struct tm tm;
        char when[32];

        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(blocker, sizeof(blocker), "%s.corrupt-%s", file, when);
        mkdir(blocker, 0700);
    }
    CHECK(state_keep_corrupt(file, "{bad", 4, aside, sizeof(aside)) < 0);
    CHECK_STR(aside, "");
}

static void test_err(void)
{
    char buf[16] = "x", ts[32];

    state_err(NULL, 0, "nothing");
    state_err(buf, sizeof(buf), "code %d", 7);
    CHECK_STR(buf, "code 7");
    state_now_iso(ts, sizeof(ts));
    CHECK_INT(strlen(ts), 20);
}

int main(void)
{
    static const tl_test_fn tests[] = {
        test_dir_init, test_write_read, test_keep_corrupt, test_err, NULL,
    };

    return tl_main_in_dir(tmpdir, tests);
}
