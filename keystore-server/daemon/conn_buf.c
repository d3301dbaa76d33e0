/* Connection buffers; see conn_buf.h. */
#include "conn_buf.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

void ks_conn_wipe_free(uint8_t **buf, size_t cap)
{
    if (*buf != NULL) {
        sodium_memzero(*buf, cap);
        free(*buf);
        *buf = NULL;
    }
}

uint8_t *ks_conn_out_reserve(struct ks_conn *c, size_t need)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        uint8_t *nb;

        while (cap < c->out_len + need)
            cap *= 2;
        /* not realloc: the old buffer may hold plaintext and must be wiped */
        nb = malloc(cap);
        if (nb == NULL)
            return NULL;
        if (c->out_len > 0)
            memcpy(nb, c->out, c->out_len);
        ks_conn_wipe_free(&c->out, c->out_cap);
        c->out = nb;
        c->out_cap = cap;
    }
    return c->out + c->out_len;
}
