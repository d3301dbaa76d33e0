/* Connections to keystored.
 *
 * A connection is never shared between threads (a pthread key gives each
 * thread its own) nor between processes: each records the pid that opened
 * it, and a forked child that finds a parent's connection closes its copy of
 * the descriptor (close only, never shutdown, which would cut the parent's
 * conversation too) and connects anew.  That check happens on use, not in an
 * atfork handler. */
#include "client.h"
#include "errors.h"

#include "channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ks_conn {
    KS_PROVCTX *pc;
    struct ks_chan *ch;     /* NULL when not connected */
    pid_t pid;              /* process that owns ch */
    size_t max_frame;       /* from the server's HelloReply */
    uint64_t next_id;
    struct ks_conn *next, *prev;
};

/* Closes only our descriptor (never shutdown) and wipes the session keys,
 * so it is also right for a connection inherited across fork. */
static void conn_close(struct ks_conn *c)
{
    ks_chan_close(c->ch);
    c->ch = NULL;
}

/* Thread exit: forget this thread's connection. */
static void conn_destructor(void *arg)
{
    struct ks_conn *c = arg;
    KS_PROVCTX *pc = c->pc;

    if (pthread_mutex_lock(&pc->conn_lock) != 0)
        return; /* leaking one connection beats touching a broken list */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        pc->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    (void)pthread_mutex_unlock(&pc->conn_lock);
    conn_close(c);
    free(c);
}

int ks_client_init(KS_PROVCTX *pc)
{
    int e;

    pc->conns = NULL;
    if ((e = pthread_mutex_init(&pc->conn_lock, NULL)) != 0) {
        KS_RAISE(pc, KS_R_INTERNAL, "pthread_mutex_init: %s", strerror(e));
        return 0;
    }
    if ((e = pthread_key_create(&pc->conn_key, conn_destructor)) != 0) {
        KS_RAISE(pc, KS_R_INTERNAL, "pthread_key_create: %s", strerror(e));
        (void)pthread_mutex_destroy(&pc->conn_lock);
        return 0;
    }
    pc->conn_key_set = 1;
    return 1;
}

void ks_client_cleanup(KS_PROVCTX *pc)
{
    struct ks_conn *c, *next;

    if (!pc->conn_key_set)
        return;
    /* After this no destructor runs, so the list is ours alone. */
    (void)pthread_key_delete(pc->conn_key);
    pc->conn_key_set = 0;
    if (pthread_mutex_lock(&pc->conn_lock) != 0)
        return;
    for (c = pc->conns; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
        free(c);
    }
    pc->conns = NULL;
    (void)pthread_mutex_unlock(&pc->conn_lock);
    (void)pthread_mutex_destroy(&pc->conn_lock);
}

/* This thread's connection object (not necessarily connected). */
static struct ks_conn *conn_get(KS_PROVCTX *pc)
{
    struct ks_conn *c = pthread_getspecific(pc->conn_key);
    int e;

    if (c != NULL) {
        if (c->pid != getpid()) {
            /* Inherited across fork: drop our copy of the descriptor only. */
            conn_close(c);
            c->pid = getpid();
        }
        return c;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "out of memory for a keystore connection");
        return NULL;
    }
    c->pc = pc;
    c->ch = NULL;
    c->pid = getpid();
    c->next_id = 2; /* ks_hello uses id 1 */
    if ((e = pthread_mutex_lock(&pc->conn_lock)) != 0) {
        KS_RAISE(pc, KS_R_INTERNAL, "pthread_mutex_lock: %s", strerror(e));
        free(c);
        return NULL;
    }
    c->next = pc->conns;
    if (pc->conns != NULL)
        pc->conns->prev = c;
    pc->conns = c;
    (void)pthread_mutex_unlock(&pc->conn_lock);
    if ((e = pthread_setspecific(pc->conn_key, c)) != 0) {
        KS_RAISE(pc, KS_R_INTERNAL, "pthread_setspecific: %s", strerror(e));
        conn_destructor(c);
        return NULL;
    }
    return c;
}

/* Connecting (and the TCP handshake, and Hello) spend the operation's time too. */
static int conn_open(KS_PROVCTX *pc, struct ks_conn *c)
{
    char err[KS_ERRLEN], name[96];
    size_t mf = KS_DEFAULT_MAX_FRAME;
    struct ks_chan_opts opts = { pc->server_pubkey, pc->client_key, pc->shm };
    struct ks_chan *ch;
    enum ks_chan_failure why;
    int ms = ks_io_remaining_ms(pc->timeout_ms);

    if (ms == 0) {
        KS_RAISE(pc, KS_R_SERVER_UNREACHABLE, "keystore server at %s: timed out waiting for the "
                 "server (the provider's timeout of %d s covers the whole operation)",
                 pc->server, pc->timeout_ms / 1000);
        return 0;
    }
    ch = ks_chan_connect_ex(pc->server, &opts, ms, &why, err, sizeof(err));
    if (ch == NULL) {
        /* err names the server and what to fix; the reason says which kind:
         * "unreachable" only when it really could not be reached */
        static const int reason[] = {
            [KS_CHAN_UNREACHABLE] = KS_R_SERVER_UNREACHABLE,
            [KS_CHAN_CONFIG] = KS_R_BAD_SETTING,
            [KS_CHAN_REFUSED] = KS_R_SERVER_REFUSED,
            [KS_CHAN_AUTH] = KS_R_SERVER_NOT_AUTHENTIC,
            [KS_CHAN_PROTOCOL] = KS_R_PROTOCOL,
        };

        KS_RAISE(pc, (unsigned)why < sizeof(reason) / sizeof(reason[0]) ? reason[why]
                                                                       : KS_R_SERVER_UNREACHABLE,
                 "%s", err);
        return 0;
    }
    snprintf(name, sizeof(name), "keystore provider %s pid %ld", KEYSTORE_VERSION, (long)getpid());
    if (ks_chan_hello(ch, name, &mf, err, sizeof(err)) != 0) {
        ks_chan_close(ch);
        KS_RAISE(pc, KS_R_SERVER_UNREACHABLE, "keystore server at %s: %s", pc->server, err);
        return 0;
    }
    c->ch = ch;
    c->max_frame = mf;
    c->pid = getpid();
    return 1;
}

/* The provider's `timeout` is one deadline for a whole operation: connect,
 * handshake, Hello, the request, and the retry on a fresh connection. */
static void op_begin(KS_PROVCTX *pc)
{
    ks_io_set_deadline(ks_mono_us() + (long long)pc->timeout_ms * 1000);
}

static void op_end(void)
{
    ks_io_set_deadline(0);
}

size_t ks_client_max_frame(KS_PROVCTX *pc)
{
    struct ks_conn *c = conn_get(pc);
    int ok;

    if (c == NULL)
        return 0;
    op_begin(pc);
    ok = c->ch != NULL || conn_open(pc, c);
    op_end();
    return ok ? c->max_frame : 0;
}

void ks_client_free_response(Keystore__Response *resp)
{
    if (resp == NULL)
        return;
    if (resp->body_case == KEYSTORE__RESPONSE__BODY_DECRYPT && resp->decrypt != NULL
        && resp->decrypt->plaintext.data != NULL)
        OPENSSL_cleanse(resp->decrypt->plaintext.data, resp->decrypt->plaintext.len);
    if (resp->body_case == KEYSTORE__RESPONSE__BODY_DERIVE && resp->derive != NULL
        && resp->derive->secret.data != NULL)
        OPENSSL_cleanse(resp->derive->secret.data, resp->derive->secret.len);
    keystore__response__free_unpacked(resp, NULL);
}

static void raise_server_error(KS_PROVCTX *pc, const Keystore__Error *e, const char *op,
                               const char *keyname)
{
    Keystore__ErrorCode code = e != NULL ? e->code : KEYSTORE__ERROR_CODE__ERROR_INTERNAL;
    const char *msg = e != NULL && e->message != NULL && e->message[0] != '\0'
                      ? e->message : ks_error_code_name(code);

    if (keyname == NULL)
        keyname = "";
    switch (code) {
    case KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY:
        KS_RAISE(pc, KS_R_NO_SUCH_KEY, "no key named '%s' in the keystore at %s (keystore server: %.200s)",
                 keyname, pc->server, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED:
        KS_RAISE(pc, KS_R_PERMISSION_DENIED, "keystore server at %s refused to %s with key '%s': %.200s",
                 pc->server, op, keyname, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_WRONG_KEY_TYPE:
        KS_RAISE(pc, KS_R_WRONG_KEY_TYPE, "keystore server: cannot %s with key '%s': %.200s",
                 op, keyname, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_WRONG_USAGE:
        KS_RAISE(pc, KS_R_WRONG_USAGE, "keystore server at %s refused to %s with key '%s': %.200s",
                 pc->server, op, keyname, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER:
        KS_RAISE(pc, KS_R_INVALID_PARAMETER, "keystore server: bad parameter to %s with key '%s': %.200s",
                 op, keyname, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_TOO_LARGE:
        KS_RAISE(pc, KS_R_TOO_LARGE, "keystore server: input to %s with key '%s' too large: %.200s",
                 op, keyname, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_OPERATION_FAILED:
        KS_RAISE(pc, KS_R_OPERATION_FAILED, "keystore server could not %s with key '%s': %.200s",
                 op, keyname, msg);
        break;
    default:
        KS_RAISE(pc, KS_R_SERVER_ERROR, "keystore server: %s with key '%s' failed: %.200s (%s)",
                 op, keyname, msg, ks_error_code_name(code));
        break;
    }
}

static int client_call(KS_PROVCTX *pc, Keystore__Request *req,
                       Keystore__Response__BodyCase expect, const char *op,
                       const char *keyname, Keystore__Response **resp,
                       Keystore__ErrorCode *server_code)
{
    struct ks_conn *c = conn_get(pc);
    Keystore__Response *r = NULL;
    char err[KS_ERRLEN];
    int attempt;

    *resp = NULL;
    if (server_code != NULL)
        *server_code = KEYSTORE__ERROR_CODE__ERROR_NONE;
    if (c == NULL)
        return 0;
    /* Every request we send (get key, sign, decrypt) is idempotent, so one
     * retry on a fresh connection covers a restarted server, if the
     * operation's deadline leaves time for it (a hung server does not get
     * a second full timeout). */
    for (attempt = 0; ; attempt++) {
        size_t len;

        if (c->ch == NULL && !conn_open(pc, c))
            return 0;
        req->id = c->next_id++;
        len = keystore__request__get_packed_size(req);
        if (len > c->max_frame) {
            KS_RAISE(pc, KS_R_TOO_LARGE,
                     "%s request of %zu bytes exceeds the frame limit of %zu bytes of the keystore server at %s",
                     op, len, c->max_frame, pc->server);
            return 0;
        }
        if (ks_chan_call(c->ch, c->max_frame, req, &r, err, sizeof(err)) == 0)
            break;
        conn_close(c);
        if (attempt == 0 && ks_io_remaining_ms(1) > 0)
            continue;
        if (ks_io_remaining_ms(1) == 0)
            KS_RAISE(pc, KS_R_SERVER_UNREACHABLE, "keystore server at %s: %s (the provider's "
                     "timeout of %d s covers the whole operation)", pc->server, err,
                     pc->timeout_ms / 1000);
        else
            KS_RAISE(pc, KS_R_SERVER_UNREACHABLE, "keystore server at %s: %s", pc->server, err);
        return 0;
    }
    if (r->body_case == KEYSTORE__RESPONSE__BODY_ERROR) {
        if (server_code != NULL && r->error != NULL)
            *server_code = r->error->code;
        raise_server_error(pc, r->error, op, keyname);
        ks_client_free_response(r);
        return 0;
    }
    if (r->body_case != expect) {
        KS_RAISE(pc, KS_R_PROTOCOL, "keystore server at %s answered a %s request with the wrong message type",
                 pc->server, op);
        ks_client_free_response(r);
        /* The stream may be out of step; start over next time. */
        conn_close(c);
        return 0;
    }
    *resp = r;
    return 1;
}

int ks_client_call(KS_PROVCTX *pc, Keystore__Request *req,
                   Keystore__Response__BodyCase expect, const char *op,
                   const char *keyname, Keystore__Response **resp,
                   Keystore__ErrorCode *server_code)
{
    int ok;

    op_begin(pc);
    ok = client_call(pc, req, expect, op, keyname, resp, server_code);
    op_end();
    return ok;
}
