/* Per-identity connection counts; see client_limit.h.  A small array under
 * one mutex: identities with open connections are few, and this runs once
 * per connection, not per request. */
#include "client_limit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char id[80];
    int count;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *entries;
static size_t nentries, cap;

static struct entry *find(const char *id)
{
    size_t i;

    for (i = 0; i < nentries; i++)
        if (strcmp(entries[i].id, id) == 0)
            return &entries[i];
    return NULL;
}

int ks_limit_acquire(struct ks_session *s, const char *id, int max)
{
    struct entry *e;
    int rc = -1;

    if (max <= 0 || strlen(id) >= sizeof(entries[0].id))
        return 0;
    pthread_mutex_lock(&lock);
    e = find(id);
    if (e == NULL) {
        if (nentries == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct entry *n = realloc(entries, ncap * sizeof(*n));

            if (n == NULL)
                goto out;   /* out of memory: refuse rather than not count */
            entries = n;
            cap = ncap;
        }
        e = &entries[nentries++];
        strcpy(e->id, id);
        e->count = 0;
    }
    if (e->count < max) {
        e->count++;
        strcpy(s->limit_id, id);
        rc = 0;
    }
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

void ks_limit_release(struct ks_session *s)
{
    struct entry *e;

    if (s->limit_id[0] == '\0')
        return;
    pthread_mutex_lock(&lock);
    e = find(s->limit_id);
    if (e != NULL && --e->count == 0) {
        *e = entries[nentries - 1];   /* drop the entry; order does not matter */
        nentries--;
    }
    pthread_mutex_unlock(&lock);
    s->limit_id[0] = '\0';
}
