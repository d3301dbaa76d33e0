/* The one way keystored reads a configuration file named in its config
 * (access list, authorized clients): read-only flags, regular files only,
 * bounded size.  Used at start-up and by the reload reader (confhelper.c). */
#ifndef KS_READFILE_H
#define KS_READFILE_H

#include <stddef.h>

#define KS_CONF_FILE_MAX (1024 * 1024)

/* Whole file, NUL-terminated (malloc'd), or -1 with "PATH: reason" in err. */
int ks_read_conf_file(const char *path, char **out, size_t *len, char *err, size_t errlen);

#endif
