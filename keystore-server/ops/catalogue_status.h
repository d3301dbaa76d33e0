/* How this replica stands with the shared catalogue (catalogue = etcd), for
 * `keystorectl status` and `metrics`: whether etcd was read and is watched
 * (changes of the fleet arrive), since when, why not, and how far.  The
 * catalogue thread (daemon/catalogue.c) reports; a status request reads.
 * Nothing is reported with catalogue = embedded, and the reply then carries
 * no catalogue part. */
#ifndef KS_CATALOGUE_STATUS_H
#define KS_CATALOGUE_STATUS_H

#include <stdint.h>

#include "common/arena.h"
#include "wire.h"

/* catalogue = etcd: not in step yet, waiting for the first read */
void ks_catstat_enable(void);
/* the range up to rev was read and the watch starts */
void ks_catstat_in_step(uint64_t rev);
/* a record from etcd (range or watch) at revision rev */
void ks_catstat_record(uint64_t rev);
/* etcd or the agent failed: not in step, for the reason given */
void ks_catstat_problem(const char *why);

/* The reply's part (NULL with catalogue = embedded); *failed set if out
 * of arena memory. */
Keystore__CatalogueStatus *ks_catstat_fill(struct ks_arena *a, int *failed);

#endif
