/* How a session names its peer in messages and logs; see session.h. */
#include "session.h"

#include <stdio.h>

void ks_session_identity(const struct ks_session *s, char *out, size_t outlen)
{
    if (s->is_tcp)
        snprintf(out, outlen, "tcp client '%s'", s->tcp_client);
    else
        snprintf(out, outlen, "uid %u", (unsigned)s->uid);
}

void ks_session_describe(const struct ks_session *s, char *out, size_t outlen)
{
    if (s->is_tcp)
        snprintf(out, outlen, "tcp client '%s' from %s", s->tcp_client, s->peer);
    else
        snprintf(out, outlen, "uid %u pid %d", (unsigned)s->uid, (int)s->pid);
}
