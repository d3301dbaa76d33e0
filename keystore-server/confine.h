/* Confinement of the serving process: seccomp filter, chroot into
 * cfg->jail and dropping to cfg->user (see the config keys user, jail,
 * seccomp).  Called by main() after every file, socket and key is open and
 * loaded, right before serving; after it returns the process must not need
 * the file system (the key directory is reached through an open fd).
 * Returns 0, or -1 after logging (keystored then exits). */
#ifndef KS_CONFINE_H
#define KS_CONFINE_H

#include "config.h"

int ks_confine(const struct ks_config *cfg, int dev_mode);

#endif
