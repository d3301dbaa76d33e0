/* The catalogue's standing for status requests; see catalogue_status.h. */
#include "catalogue_status.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int enabled, in_step;
static uint64_t revision, records;
static time_t since;
static char problem[512];

static void set_step(int step, const char *why)
{
    if (step != in_step || since == 0)
        since = time(NULL);
    in_step = step;
    snprintf(problem, sizeof(problem), "%s", why);
}

void ks_catstat_enable(void)
{
    pthread_mutex_lock(&lock);
    enabled = 1;
    since = 0;
    set_step(0, "etcd not read yet (keystored is starting)");
    pthread_mutex_unlock(&lock);
}

void ks_catstat_in_step(uint64_t rev)
{
    pthread_mutex_lock(&lock);
    set_step(1, "");
    if (rev > revision)
        revision = rev;
    pthread_mutex_unlock(&lock);
}

void ks_catstat_record(uint64_t rev)
{
    pthread_mutex_lock(&lock);
    records++;
    if (rev > revision)
        revision = rev;
    pthread_mutex_unlock(&lock);
}

void ks_catstat_problem(const char *why)
{
    pthread_mutex_lock(&lock);
    set_step(0, why);
    pthread_mutex_unlock(&lock);
}

Keystore__CatalogueStatus *ks_catstat_fill(struct ks_arena *a, int *failed)
{
    Keystore__CatalogueStatus *c = NULL;

    pthread_mutex_lock(&lock);
    if (enabled && (c = ks_arena_alloc(a, sizeof(*c))) != NULL) {
        keystore__catalogue_status__init(c);
        c->in_step = in_step;
        c->revision = revision;
        c->since = (uint64_t)since;
        c->records_applied = records;
        if ((c->problem = ks_arena_printf(a, "%s", problem)) == NULL)
            c = NULL;
    }
    pthread_mutex_unlock(&lock);
    *failed = enabled && c == NULL;
    return c;
}
