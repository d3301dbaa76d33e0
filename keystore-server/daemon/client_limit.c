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

int ks_limit_full(const char *id, int max)
{
    struct entry *e;
    int full;

    if (max <= 0)
        return 0;
    pthread_mutex_lock(&lock);
    e = find(id);
    full = e != NULL && e->count >= max;
    pthread_mutex_unlock(&lock);
    return full;
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

/* Unauthenticated TCP connections per source address: a second table, so a
 * flood from one address never touches the identities' counts. */
struct addr_entry {
    char addr[KS_LIMIT_ADDR_MAX];
    int count;
};

static pthread_mutex_t addr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addr_entry *addrs;
static size_t naddrs, addr_cap;

int ks_limit_addr_acquire(const char *addr, int max)
{
    struct addr_entry *e = NULL;
    size_t i;
    int rc = -1;

    if (strlen(addr) >= KS_LIMIT_ADDR_MAX)
        return -1;
    pthread_mutex_lock(&addr_lock);
    for (i = 0; i < naddrs; i++)
        if (strcmp(addrs[i].addr, addr) == 0)
            e = &addrs[i];
    if (e == NULL) {
        if (naddrs == addr_cap) {
            size_t ncap = addr_cap ? addr_cap * 2 : 64;
            struct addr_entry *n = realloc(addrs, ncap * sizeof(*n));

            if (n == NULL)
                goto out;
            addrs = n;
            addr_cap = ncap;
        }
        e = &addrs[naddrs++];
        strcpy(e->addr, addr);
        e->count = 0;
    }
    if (e->count < max) {
        e->count++;
        rc = 0;
    } else if (e->count == 0) {
        *e = addrs[--naddrs];
    }
out:
    pthread_mutex_unlock(&addr_lock);
    return rc;
}

void ks_limit_addr_release(const char *addr)
{
    size_t i;

    pthread_mutex_lock(&addr_lock);
    for (i = 0; i < naddrs; i++) {
        if (strcmp(addrs[i].addr, addr) == 0) {
            if (--addrs[i].count <= 0)
                addrs[i] = addrs[--naddrs];
            break;
        }
    }
    pthread_mutex_unlock(&addr_lock);
}
