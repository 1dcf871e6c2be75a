/* catypes.c: the CA's key type names and the freeing of a name list (catypes.h). Pure. */
#include "core/catypes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ca_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

const char *ca_key_type_name(enum ca_key_type type)
{
    return type == CA_KEY_ECDSA_P256 ? "ecdsa-p256" : "ed25519";
}

int ca_key_type_parse(const char *s, enum ca_key_type *out)
{
    if (s && !strcmp(s, "ed25519")) {
        *out = CA_KEY_ED25519;
        return 0;
    }
    if (s && !strcmp(s, "ecdsa-p256")) {
        *out = CA_KEY_ECDSA_P256;
        return 0;
    }
    return -EINVAL;
}
