/* test_staging.c: core/staging.c without a registry: create, write at offsets (a gap reads as
 * zeros), truncate, rename (replace and noreplace), list, remove, the caps (file size, files per
 * service, bytes overall), and drop/clear. stg_commit needs the registry: test_replace.sh. */
#include "core/staging.h"
#include "testlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void count_one(const char *name, void *arg)
{
    (void)name;
    (*(int *)arg)++;
}

static int count(const char *svc)
{
    int n = 0;

    stg_list(svc, count_one, &n);
    return n;
}

static void test_files(void)
{
    char buf[16];
    size_t size = 99;

    CHECK_INT(stg_create("a", "x"), 0);
    CHECK_INT(stg_create("a", "x"), 0);      /* exists: nothing happens */
    CHECK_INT(stg_size("a", "x", &size), 0);
    CHECK_INT(size, 0);
    CHECK_INT(stg_size("b", "x", &size), -ENOENT);   /* per service */
    CHECK_INT(stg_write("a", "x", "abc", 3, 4), 3);
    CHECK_INT(stg_size("a", "x", &size), 0);
    CHECK_INT(size, 7);
    CHECK_INT(stg_read("a", "x", buf, sizeof(buf), 0), 7);
    CHECK(memcmp(buf, "\0\0\0\0abc", 7) == 0);
    CHECK_INT(stg_read("a", "x", buf, sizeof(buf), 9), 0);
    CHECK_INT(stg_read("a", "x", buf, 2, -1), -EINVAL);
    CHECK_INT(stg_truncate("a", "x", 5), 0);
    CHECK_INT(stg_read("a", "x", buf, sizeof(buf), 0), 5);
    CHECK_INT(stg_truncate("a", "x", 0), 0);
    CHECK_INT(stg_write("a", "x", "v\n", 2, 0), 2);
    CHECK_INT(stg_create("a", ""), -EINVAL);
    CHECK_INT(stg_create("a", "p/q"), -EINVAL);
    CHECK_INT(stg_write("a", "nope", "v", 1, 0), -ENOENT);

    CHECK_INT(stg_create("a", "y"), 0);
    CHECK_INT(stg_rename("a", "x", "y", true), -EEXIST);
    CHECK_INT(stg_rename("a", "x", "y", false), 0);      /* replaces y */
    CHECK_INT(count("a"), 1);
    CHECK_INT(stg_read("a", "y", buf, sizeof(buf), 0), 2);
    CHECK_INT(stg_rename("a", "x", "z", false), -ENOENT);
    CHECK_INT(stg_remove("a", "y"), 0);
    CHECK_INT(stg_remove("a", "y"), -ENOENT);
    CHECK_INT(count("a"), 0);
}

static void test_caps(void)
{
    char name[16];
    char *big = calloc(1, STG_FILE_MAX + 1);
    int made = 0;

    for (int i = 0; i < STG_PER_SERVICE; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        made += stg_create("c", name) == 0;
    }
    CHECK_INT(made, STG_PER_SERVICE);
    CHECK_INT(stg_create("c", "one-more"), -ENOSPC);
    CHECK_INT(stg_create("d", "other-service"), 0);
    CHECK_INT(stg_write("c", "t0", big, STG_FILE_MAX + 1, 0), -EFBIG);
    CHECK_INT(stg_write("c", "t0", big, 1, STG_FILE_MAX), -EFBIG);
    CHECK_INT(stg_truncate("c", "t0", STG_FILE_MAX + 1), -EFBIG);
    /* bytes overall: fill files of full size until the total cap refuses one */
    {
        int rc = 0, n = 0;

        for (int i = 0; i < STG_PER_SERVICE && rc >= 0; i++) {
            snprintf(name, sizeof(name), "t%d", i);
            rc = stg_write("c", name, big, STG_FILE_MAX, 0);
            n += rc > 0;
        }
        for (int s = 0; rc >= 0 && s < 64; s++) {
            char svc[16];

            snprintf(svc, sizeof(svc), "s%d", s);
            for (int i = 0; i < STG_PER_SERVICE && rc >= 0; i++) {
                snprintf(name, sizeof(name), "t%d", i);
                rc = stg_create(svc, name);
                if (rc == 0)
                    rc = stg_write(svc, name, big, STG_FILE_MAX, 0);
                n += rc > 0;
            }
        }
        CHECK_INT(rc, -ENOSPC);
        CHECK_INT(n, STG_TOTAL_MAX / STG_FILE_MAX);
    }
    stg_drop("c");
    CHECK_INT(count("c"), 0);
    CHECK_INT(count("d"), 1);
    CHECK_INT(stg_write("d", "other-service", big, STG_FILE_MAX, 0), STG_FILE_MAX);
    stg_clear();
    CHECK_INT(count("d"), 0);
    CHECK_INT(count("s0"), 0);
    free(big);
}

int main(void)
{
    test_files();
    test_caps();
    return tl_finish();
}
