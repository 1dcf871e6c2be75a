/* json.c: JSON text (and any text) with one trailing newline, as files and live reads serve
 * it, and the growth of the buffers text is built in (util layer, see util.h). */
#include "util/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

char *cu_text_line(const char *text, size_t *len)
{
    size_t n = strlen(text);
    char *out = malloc(n + 2);

    if (!out)
        return NULL;
    memcpy(out, text, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    if (len)
        *len = n + 1;
    return out;
}

char *cu_json_line(const json_t *j, size_t flags, size_t *len)
{
    char *text = j ? json_dumps(j, flags) : NULL;
    char *out;

    if (!text)
        return NULL;
    out = cu_text_line(text, len);
    free(text);
    return out;
}

int cu_grow(char **p, size_t *cap, size_t need)
{
    size_t ncap = *cap ? *cap : 1024;
    char *np;

    if (need <= *cap)
        return 0;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -ENOMEM;
        ncap *= 2;
    }
    np = realloc(*p, ncap);
    if (!np)
        return -ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}
