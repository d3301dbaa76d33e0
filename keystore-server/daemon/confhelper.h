/* The configuration reader: a small process forked at start-up, before
 * any secret exists, that stays outside the jail (privilege separation,
 * as OpenBSD daemons do).  The confined server cannot open /etc/... or ask
 * the name service after chroot and seccomp; on each reload it asks this
 * process, which reads the access list and the authorized clients (paths
 * fixed at fork: the server cannot name other files), resolves the user
 * and group names in the access list, and sends the bytes back over a
 * socketpair.  Parsing stays in the server (ops/acl.c, tcp_identity.c).
 * The reader is confined too (sandbox/reader.c) and exits with keystored. */
#ifndef KS_CONFHELPER_H
#define KS_CONFHELPER_H

#include <stddef.h>

#include "common/config.h"

enum { KS_CONF_OK = 0, KS_CONF_ERROR = 1, KS_CONF_UNSET = 2 };

struct ks_conf_file {
    int status;        /* KS_CONF_*; on ERROR data holds the reason */
    char *data;        /* NUL-terminated (malloc'd) */
    size_t len;
};

struct ks_conf_files {
    struct ks_conf_file acl, clients, names;   /* names: "u NAME ID" lines (acl.h) */
};

/* Fork the reader (single-threaded, before the master key is loaded).
 * Returns 0 or -1 after logging. */
int ks_confhelper_start(const struct ks_config *cfg);

/* Ask the reader for the current files.  Returns 0, or -1 with err (the
 * reader is gone or did not answer in time). */
int ks_confhelper_fetch(struct ks_conf_files *out, char *err, size_t errlen);
void ks_conf_files_free(struct ks_conf_files *f);

void ks_confhelper_stop(void);

#endif
