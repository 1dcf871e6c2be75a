/* casvc.c: STUB until the CA issue lands. */
#include "core/casvc.h"

int ca_service_open(const struct reg_config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    (void)err;
    (void)errlen;
    return 0;
}

int ca_service_start(void)
{
    return 0;
}

void ca_service_close(void)
{
}
