/* leafset.h: which serving leaf carries which DNS name (pure: no files, no keys). Each leaf has
 * a numeric id and at most LEAFSET_NAMES_MAX names; a name stays in its leaf while it is wanted,
 * and a new name goes into the first leaf (lowest id) with room, or a new one. A change marks
 * only the leaves it touches as dirty, which the CA service then reissues. Not thread-safe: the
 * caller serializes. */
#ifndef CONDUIT_LEAFSET_H
#define CONDUIT_LEAFSET_H

#include <stdbool.h>
#include <stddef.h>

/* The most DNS names one serving leaf carries. */
#define LEAFSET_NAMES_MAX 100

struct leafset;

/* A new empty set, or NULL (out of memory). */
struct leafset *leafset_new(void);

/* Free the set and every name it holds. NULL is ignored. */
void leafset_free(struct leafset *ls);

/* Add an existing leaf (read back from its file) with id and names[0..n). Names beyond
 * LEAFSET_NAMES_MAX or already held by another leaf, and duplicates, are dropped, and the leaf
 * is then marked dirty (its certificate no longer matches). 0, -EEXIST (id taken), -EINVAL
 * (id 0) or -ENOMEM. */
int leafset_load(struct leafset *ls, unsigned id, const char *const *names, size_t n);

/* Make the set hold exactly want[0..n) (duplicates count once): names no longer wanted leave
 * their leaf, new ones fill the first leaf with room (lowest id), opening a leaf with the lowest
 * free id when none has room. Every leaf that gained or lost a name is marked dirty; the others
 * are untouched. A leaf left empty stays (dirty, no names) until leafset_drop. 0 or -ENOMEM (the
 * set is then consistent but may hold only part of the change). */
int leafset_plan(struct leafset *ls, const char *const *want, size_t n);

/* Number of leaves, in increasing id order; i below is an index in that order. */
size_t leafset_count(const struct leafset *ls);

/* The id of leaf i. */
unsigned leafset_id(const struct leafset *ls, size_t i);

/* The names of leaf i (in the order they joined it), their count in *n. Valid until the next
 * change of the set. */
const char *const *leafset_names(const struct leafset *ls, size_t i, size_t *n);

/* Whether leaf i must be reissued (or removed when it has no name). */
bool leafset_dirty(const struct leafset *ls, size_t i);

/* Mark leaf i dirty (rotation, renewal, a failed issuance to retry). */
void leafset_touch(struct leafset *ls, size_t i);

/* Leaf i was reissued for its current names: clear its dirty mark and its change lists. */
void leafset_clean(struct leafset *ls, size_t i);

/* The names leaf i gained (*added, *nadded) and lost (*removed, *nremoved) since its last
 * leafset_clean. Valid until the next change of the set. */
void leafset_changes(const struct leafset *ls, size_t i, const char *const **added,
                     size_t *nadded, const char *const **removed, size_t *nremoved);

/* Remove leaf i (it must have no name). */
void leafset_drop(struct leafset *ls, size_t i);

/* The index of the leaf that holds name, or -1. */
long leafset_find(const struct leafset *ls, const char *name);

/* The index of the leaf with id, or -1. */
long leafset_index(const struct leafset *ls, unsigned id);

#endif
