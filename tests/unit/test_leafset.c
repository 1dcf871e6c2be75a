/* test_leafset.c: the assignment of names to serving leaves: at most 100 names a leaf, the
 * 101st opens a second one, a name stays in its leaf, new names fill the first leaf with room,
 * a change dirties only the leaves it touches, an empty leaf is dropped and its id reused, and
 * a set read back from files (duplicates, overfull leaves) is repaired. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/leafset.h"
#include "testlib.h"

#define MAXN 400

static char g_names[MAXN][32];
static const char *g_want[MAXN];

/* g_want = s<from>.internal .. s<to>.internal, skipping skip (0: none); returns the count. */
static size_t want_range(int from, int to, int skip)
{
    size_t n = 0;

    for (int i = from; i <= to; i++) {
        if (i == skip)
            continue;
        snprintf(g_names[n], sizeof(g_names[n]), "s%d.internal", i);
        g_want[n] = g_names[n];
        n++;
    }
    return n;
}

/* Count of names in leaf index i. */
static size_t count_of(const struct leafset *ls, size_t i)
{
    size_t n;

    leafset_names(ls, i, &n);
    return n;
}

/* Clean every leaf (as the CA service does after reissuing them). */
static void clean_all(struct leafset *ls)
{
    for (size_t i = 0; i < leafset_count(ls); i++)
        leafset_clean(ls, i);
}

static void test_fill(void)
{
    struct leafset *ls = leafset_new();
    const char *const *added, *const *removed;
    size_t n, nadd, nrem;

    CHECK(ls != NULL);
    CHECK_INT(leafset_plan(ls, g_want, want_range(1, 100, 0)), 0);
    CHECK_INT(leafset_count(ls), 1);
    CHECK_INT(leafset_id(ls, 0), 1);
    CHECK_INT(count_of(ls, 0), 100);
    CHECK(leafset_dirty(ls, 0));
    clean_all(ls);

    /* The 101st name opens a second leaf; the first is untouched. */
    CHECK_INT(leafset_plan(ls, g_want, want_range(1, 101, 0)), 0);
    CHECK_INT(leafset_count(ls), 2);
    CHECK(!leafset_dirty(ls, 0));
    CHECK(leafset_dirty(ls, 1));
    CHECK_INT(leafset_id(ls, 1), 2);
    CHECK_INT(leafset_find(ls, "s101.internal"), 1);
    CHECK_INT(leafset_find(ls, "s1.internal"), 0);
    leafset_changes(ls, 1, &added, &nadd, &removed, &nrem);
    CHECK(nadd == 1 && nrem == 0 && !strcmp(added[0], "s101.internal"));
    clean_all(ls);

    /* The same set again changes nothing. */
    CHECK_INT(leafset_plan(ls, g_want, want_range(1, 101, 0)), 0);
    CHECK(!leafset_dirty(ls, 0) && !leafset_dirty(ls, 1));

    /* Removing s50 dirties only the first leaf. */
    CHECK_INT(leafset_plan(ls, g_want, want_range(1, 101, 50)), 0);
    CHECK(leafset_dirty(ls, 0));
    CHECK(!leafset_dirty(ls, 1));
    CHECK_INT(count_of(ls, 0), 99);
    CHECK_INT(leafset_find(ls, "s50.internal"), -1);
    leafset_changes(ls, 0, &added, &nadd, &removed, &nrem);
    CHECK(nadd == 0 && nrem == 1 && !strcmp(removed[0], "s50.internal"));
    clean_all(ls);

    /* A new name fills the room in the first leaf, not the second. */
    n = want_range(1, 102, 50);
    CHECK_INT(leafset_plan(ls, g_want, n), 0);
    CHECK_INT(leafset_find(ls, "s102.internal"), 0);
    CHECK(leafset_dirty(ls, 0) && !leafset_dirty(ls, 1));
    clean_all(ls);

    /* Emptying the first leaf: it stays, dirty, until dropped; its id is then reused. */
    n = want_range(101, 101, 0);
    CHECK_INT(leafset_plan(ls, g_want, n), 0);
    CHECK_INT(count_of(ls, 0), 0);
    CHECK(leafset_dirty(ls, 0) && !leafset_dirty(ls, 1));
    leafset_drop(ls, 0);
    CHECK_INT(leafset_count(ls), 1);
    CHECK_INT(leafset_index(ls, 2), 0);
    CHECK_INT(leafset_plan(ls, g_want, want_range(101, 301, 0)), 0);
    CHECK_INT(leafset_count(ls), 3);
    CHECK_INT(leafset_id(ls, 0), 1);
    CHECK_INT(count_of(ls, 1), 100);            /* leaf 2 filled first (lowest id with room) */
    CHECK_INT(count_of(ls, 0) + count_of(ls, 1) + count_of(ls, 2), 201);
    for (size_t i = 0; i < leafset_count(ls); i++)
        CHECK(count_of(ls, i) <= LEAFSET_NAMES_MAX);
    leafset_free(ls);
}

static void test_load(void)
{
    struct leafset *ls = leafset_new();
    const char *a[] = { "x.internal", "y.internal" };
    const char *b[] = { "y.internal", "z.internal", "z.internal" };

    CHECK_INT(leafset_load(ls, 0, a, 2), -EINVAL);
    CHECK_INT(leafset_load(ls, 3, a, 2), 0);
    CHECK(!leafset_dirty(ls, 0));
    CHECK_INT(leafset_load(ls, 3, a, 2), -EEXIST);
    /* y is already in leaf 3 and z repeats: leaf 1 keeps z only, and must be reissued. */
    CHECK_INT(leafset_load(ls, 1, b, 3), 0);
    CHECK_INT(leafset_id(ls, 0), 1);
    CHECK_INT(count_of(ls, 0), 1);
    CHECK(leafset_dirty(ls, 0));
    CHECK_INT(leafset_find(ls, "y.internal"), 1);
    /* Loaded names stay where they are; a new one goes to leaf 1, the first with room. */
    {
        const char *want[] = { "x.internal", "y.internal", "z.internal", "w.internal" };

        clean_all(ls);
        CHECK_INT(leafset_plan(ls, want, 4), 0);
        CHECK_INT(leafset_find(ls, "w.internal"), 0);
        CHECK_INT(leafset_find(ls, "x.internal"), 1);
        CHECK(leafset_dirty(ls, 0) && !leafset_dirty(ls, 1));
    }
    leafset_free(ls);
}

int main(void)
{
    test_fill();
    test_load();
    return tl_finish();
}
