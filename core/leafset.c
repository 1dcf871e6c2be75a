/* leafset.c: the assignment of DNS names to serving leaves (see leafset.h): leaves in id order,
 * and an open-addressing hash from each name to its leaf, so that a change costs what it
 * touches plus one pass over the wanted names. */
#include "core/leafset.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strlist {
    char **v;
    size_t n, cap;
};

struct leaf {
    unsigned id;
    bool dirty;
    struct strlist names;           /* owned; the hash points at these strings */
    struct strlist added, removed;  /* owned copies, since the last leafset_clean */
};

struct slot {
    const char *key;                /* NULL: empty; TOMB: deleted */
    struct leaf *leaf;
};

struct leafset {
    struct leaf **leaves;           /* sorted by id */
    size_t n, cap;
    struct slot *tab;
    size_t tabcap, used;            /* used counts live keys and tombstones */
};

static const char tomb_mark;
#define TOMB (&tomb_mark)

/* FNV-1a of s. */
static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of key, or NULL. */
static struct slot *tab_find(const struct leafset *ls, const char *key)
{
    size_t mask = ls->tabcap - 1, i;

    if (!ls->tabcap)
        return NULL;
    for (i = hash_of(key) & mask;; i = (i + 1) & mask) {
        struct slot *s = &ls->tab[i];

        if (!s->key)
            return NULL;
        if (s->key != TOMB && strcmp(s->key, key) == 0)
            return s;
    }
}

/* Insert key (not present) into a table with room. */
static void tab_put_raw(struct slot *tab, size_t cap, const char *key, struct leaf *leaf)
{
    size_t mask = cap - 1, i;

    for (i = hash_of(key) & mask; tab[i].key && tab[i].key != TOMB; i = (i + 1) & mask)
        ;
    tab[i].key = key;
    tab[i].leaf = leaf;
}

/* Keep the table at most half full (tombstones included). 0 or -ENOMEM. */
static int tab_reserve(struct leafset *ls, size_t more)
{
    size_t live = 0, cap = ls->tabcap ? ls->tabcap : 64;
    struct slot *tab;

    if ((ls->used + more) * 2 <= ls->tabcap)
        return 0;
    for (size_t i = 0; i < ls->tabcap; i++)
        live += ls->tab[i].key && ls->tab[i].key != TOMB;
    while ((live + more) * 2 > cap)
        cap *= 2;
    tab = calloc(cap, sizeof(*tab));
    if (!tab)
        return -ENOMEM;
    for (size_t i = 0; i < ls->tabcap; i++)
        if (ls->tab[i].key && ls->tab[i].key != TOMB)
            tab_put_raw(tab, cap, ls->tab[i].key, ls->tab[i].leaf);
    free(ls->tab);
    ls->tab = tab;
    ls->tabcap = cap;
    ls->used = live;
    return 0;
}

/* Append a copy of s to l. 0 or -ENOMEM. */
static int sl_add(struct strlist *l, const char *s)
{
    char *c;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        char **v = realloc(l->v, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    c = strdup(s);
    if (!c)
        return -ENOMEM;
    l->v[l->n++] = c;
    return 0;
}

static void sl_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static void sl_clear(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

struct leafset *leafset_new(void)
{
    return calloc(1, sizeof(struct leafset));
}

void leafset_free(struct leafset *ls)
{
    if (!ls)
        return;
    for (size_t i = 0; i < ls->n; i++) {
        sl_free(&ls->leaves[i]->names);
        sl_free(&ls->leaves[i]->added);
        sl_free(&ls->leaves[i]->removed);
        free(ls->leaves[i]);
    }
    free(ls->leaves);
    free(ls->tab);
    free(ls);
}

/* A new empty leaf with id, inserted in id order. NULL on -ENOMEM. */
static struct leaf *leaf_insert(struct leafset *ls, unsigned id)
{
    struct leaf *lf;
    size_t at = 0;

    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 8;
        struct leaf **v = realloc(ls->leaves, cap * sizeof(*v));

        if (!v)
            return NULL;
        ls->leaves = v;
        ls->cap = cap;
    }
    lf = calloc(1, sizeof(*lf));
    if (!lf)
        return NULL;
    lf->id = id;
    while (at < ls->n && ls->leaves[at]->id < id)
        at++;
    memmove(&ls->leaves[at + 1], &ls->leaves[at], (ls->n - at) * sizeof(*ls->leaves));
    ls->leaves[at] = lf;
    ls->n++;
    return lf;
}

/* Put name into lf (not held anywhere, lf has room). 0 or -ENOMEM. */
static int leaf_add_name(struct leafset *ls, struct leaf *lf, const char *name, bool record)
{
    int rc = tab_reserve(ls, 1);

    if (rc == 0)
        rc = sl_add(&lf->names, name);
    if (rc == 0 && record && (rc = sl_add(&lf->added, name)) < 0) {
        free(lf->names.v[--lf->names.n]);
        return rc;
    }
    if (rc < 0)
        return rc;
    tab_put_raw(ls->tab, ls->tabcap, lf->names.v[lf->names.n - 1], lf);
    ls->used++;
    lf->dirty = lf->dirty || record;
    return 0;
}

int leafset_load(struct leafset *ls, unsigned id, const char *const *names, size_t n)
{
    struct leaf *lf;
    int rc;

    if (id == 0)
        return -EINVAL;
    if (leafset_index(ls, id) >= 0)
        return -EEXIST;
    lf = leaf_insert(ls, id);
    if (!lf)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (lf->names.n >= LEAFSET_NAMES_MAX || tab_find(ls, names[i])) {
            lf->dirty = true;
            continue;
        }
        rc = leaf_add_name(ls, lf, names[i], false);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Take name (held by lf at index k) out of lf, recording it as removed. 0 or -ENOMEM. */
static int leaf_remove_at(struct leafset *ls, struct leaf *lf, size_t k)
{
    struct slot *s = tab_find(ls, lf->names.v[k]);
    int rc = sl_add(&lf->removed, lf->names.v[k]);

    if (rc < 0)
        return rc;
    if (s)
        s->key = TOMB;
    free(lf->names.v[k]);
    memmove(&lf->names.v[k], &lf->names.v[k + 1], (lf->names.n - k - 1) * sizeof(char *));
    lf->names.n--;
    lf->dirty = true;
    return 0;
}

/* The lowest id no leaf has. */
static unsigned free_id(const struct leafset *ls)
{
    unsigned id = 1;

    for (size_t i = 0; i < ls->n && ls->leaves[i]->id == id; i++)
        id++;
    return id;
}

int leafset_plan(struct leafset *ls, const char *const *want, size_t n)
{
    struct leafset wanted = {0};
    size_t first = 0;
    int rc = 0;

    /* The wanted names as a set (the strings stay the caller's). */
    rc = tab_reserve(&wanted, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!tab_find(&wanted, want[i])) {
            tab_put_raw(wanted.tab, wanted.tabcap, want[i], NULL);
            wanted.used++;
        }
    }
    /* Names no longer wanted leave their leaf. */
    for (size_t i = 0; rc == 0 && i < ls->n; i++) {
        struct leaf *lf = ls->leaves[i];

        for (size_t k = 0; rc == 0 && k < lf->names.n;) {
            if (tab_find(&wanted, lf->names.v[k]))
                k++;
            else
                rc = leaf_remove_at(ls, lf, k);
        }
    }
    /* New names fill the first leaf with room. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct leaf *lf = NULL;

        if (tab_find(ls, want[i]))
            continue;
        while (first < ls->n && ls->leaves[first]->names.n >= LEAFSET_NAMES_MAX)
            first++;
        if (first < ls->n) {
            lf = ls->leaves[first];
        } else {
            lf = leaf_insert(ls, free_id(ls));
            first = 0;      /* the new leaf may sort before full ones */
            if (!lf)
                rc = -ENOMEM;
        }
        if (lf)
            rc = leaf_add_name(ls, lf, want[i], true);
    }
    free(wanted.tab);
    return rc;
}

size_t leafset_count(const struct leafset *ls)
{
    return ls->n;
}

unsigned leafset_id(const struct leafset *ls, size_t i)
{
    return ls->leaves[i]->id;
}

const char *const *leafset_names(const struct leafset *ls, size_t i, size_t *n)
{
    *n = ls->leaves[i]->names.n;
    return (const char *const *)ls->leaves[i]->names.v;
}

bool leafset_dirty(const struct leafset *ls, size_t i)
{
    return ls->leaves[i]->dirty;
}

void leafset_touch(struct leafset *ls, size_t i)
{
    ls->leaves[i]->dirty = true;
}

void leafset_clean(struct leafset *ls, size_t i)
{
    ls->leaves[i]->dirty = false;
    sl_clear(&ls->leaves[i]->added);
    sl_clear(&ls->leaves[i]->removed);
}

void leafset_changes(const struct leafset *ls, size_t i, const char *const **added,
                     size_t *nadded, const char *const **removed, size_t *nremoved)
{
    *added = (const char *const *)ls->leaves[i]->added.v;
    *nadded = ls->leaves[i]->added.n;
    *removed = (const char *const *)ls->leaves[i]->removed.v;
    *nremoved = ls->leaves[i]->removed.n;
}

void leafset_drop(struct leafset *ls, size_t i)
{
    struct leaf *lf = ls->leaves[i];

    while (lf->names.n)
        if (leaf_remove_at(ls, lf, lf->names.n - 1) < 0)
            break;
    sl_free(&lf->names);
    sl_free(&lf->added);
    sl_free(&lf->removed);
    free(lf);
    memmove(&ls->leaves[i], &ls->leaves[i + 1], (ls->n - i - 1) * sizeof(*ls->leaves));
    ls->n--;
}

long leafset_find(const struct leafset *ls, const char *name)
{
    const struct slot *s = tab_find(ls, name);

    if (!s)
        return -1;
    for (size_t i = 0; i < ls->n; i++)
        if (ls->leaves[i] == s->leaf)
            return (long)i;
    return -1;
}

long leafset_index(const struct leafset *ls, unsigned id)
{
    size_t lo = 0, hi = ls->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (ls->leaves[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ls->n && ls->leaves[lo]->id == id ? (long)lo : -1;
}
