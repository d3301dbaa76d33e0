/* Status and Reload requests (admin socket only; dispatch.c checks). */
#include "control.h"

#include <stdio.h>

#include "catalogue_status.h"
#include "handlers.h"
#include "stats.h"

static ks_reload_fn reloader;
static unsigned nworkers;

void ks_control_set_reloader(ks_reload_fn fn)
{
    reloader = fn;
}

void ks_control_set_workers(unsigned n)
{
    nworkers = n;
}

void ks_op_status(struct ks_op *op, const Keystore__StatusRequest *r)
{
    Keystore__StatusResponse *st = ks_arena_alloc(op->arena, sizeof(*st));
    int failed;

    (void)r;
    if (st == NULL)
        return;   /* arena->failed: ks_handle_frame turns this into an error */
    keystore__status_response__init(st);
    if (ks_stats_fill(op->arena, st, ks_store_count(), nworkers) != 0)
        return;
    st->catalogue = ks_catstat_fill(op->arena, &failed);
    if (failed)
        return;
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_STATUS;
    op->resp->status = st;
}

void ks_op_reload(struct ks_op *op, const Keystore__ReloadRequest *r)
{
    char msg[1024];
    Keystore__ReloadResponse *rr;

    (void)r;
    if (reloader == NULL) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_INTERNAL, "this server cannot reload");
        return;
    }
    if (reloader("keystorectl reload", msg, sizeof(msg)) != 0) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_RELOAD_REFUSED,
                    "%s; the previous configuration stays in force", msg);
        return;
    }
    rr = ks_arena_alloc(op->arena, sizeof(*rr));
    if (rr == NULL)
        return;
    keystore__reload_response__init(rr);
    rr->message = ks_arena_printf(op->arena, "%s", msg);
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_RELOAD;
    op->resp->reload = rr;
}
