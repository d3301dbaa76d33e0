/* Confinement of the configuration reader (daemon/confhelper.c), the small
 * process that stays outside the jail to read the access list and the
 * authorized clients for a reload.  It keeps root's uid (the files are
 * root's, mode 0600 is fine) but only the capabilities to read
 * (CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE where the unit grants it), and a
 * seccomp filter lets it open files read-only and write only to its
 * socket and stderr; any other call fails with EPERM. */
#ifndef KS_READER_H
#define KS_READER_H

#include <stddef.h>

/* Returns 0 or -1 with err.  with_seccomp 0 (seccomp = no) skips the filter. */
int ks_confine_reader(int sock_fd, int with_seccomp, char *err, size_t errlen);

#endif
