/* Placeholder: seccomp, chroot and privilege drop are implemented
 * separately (see confine.h for the contract). */
#include "confine.h"

#include "log.h"

int ks_confined(void)
{
    return 0;
}

int ks_confine(const struct ks_config *cfg, int dev_mode)
{
    (void)cfg;
    (void)dev_mode;
    ks_log("confinement: not yet implemented");
    return 0;
}
