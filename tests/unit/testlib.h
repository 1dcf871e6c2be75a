/* testlib.h: a tiny assertion harness shared by the unit-test binaries. */
#ifndef CONDUIT_TESTLIB_H
#define CONDUIT_TESTLIB_H

#include <stdio.h>
#include <string.h>

static int tl_passed, tl_failed;

/* Record one check; print the failing expression with its location. */
#define CHECK(cond) do { \
        if (cond) { tl_passed++; } \
        else { tl_failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

/* Like CHECK, with a printf-style note on failure. */
#define CHECKF(cond, ...) do { \
        if (cond) { tl_passed++; } \
        else { tl_failed++; fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
               fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
    } while (0)

#define CHECK_INT(got, want) CHECKF((got) == (want), "got %ld want %ld", \
                                    (long)(got), (long)(want))
#define CHECK_STR(got, want) CHECKF(strcmp((got), (want)) == 0, "got \"%s\" want \"%s\"", \
                                    (got), (want))

/* Print the closing line ctest logs and return the exit status for main. */
static inline int tl_finish(void)
{
    printf("%d passed, %d failed\n", tl_passed, tl_failed);
    return tl_failed ? 1 : 0;
}

#endif
