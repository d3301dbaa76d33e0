/* Connections to keystored.
 *
 * A connection is never shared between threads (a pthread key gives each
 * thread its own) nor between processes: each records the pid that opened
 * it, and a forked child that finds a parent's connection closes its copy of
 * the descriptor (close only, never shutdown, which would cut the parent's
 * conversation too) and connects anew.  That check happens on use, not in an
 * atfork handler.
 *
 * With several servers (servers.c) a thread's connection goes to one of
 * them at a time: the first usable one from the thread's "home" in the
 * rotation, so threads and processes spread over the servers and a thread
 * goes back home once its server answers again. */
#include "client.h"
#include "errors.h"
#include "key.h"
#include "servers.h"

#include "channel.h"
#include "selfpid.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ks_conn {
    KS_PROVCTX *pc;
    struct ks_chan *ch;     /* NULL when not connected */
    int srv;                /* the server ch goes to (servers.h), -1 none */
    int home;               /* where this connection's search for a server starts */
    pid_t pid;              /* process that owns ch */
    size_t max_frame;       /* from the server's HelloReply */
    uint64_t next_id;
    struct ks_conn *next, *prev;
};

/* snprintf for messages that may be cut short (they are bounded on purpose). */
static void msgf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msgf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Closes only our descriptor (never shutdown) and wipes the session keys,
 * so it is also right for a connection inherited across fork. */
static void conn_close(struct ks_conn *c)
{
    ks_chan_close(c->ch);
    c->ch = NULL;
    c->srv = -1;
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
        if (c->pid != ks_self_pid()) {
            /* Inherited across fork: drop our copy of the descriptor only. */
            conn_close(c);
            c->pid = ks_self_pid();
            c->home = ks_servers_home(pc);   /* children spread too */
        }
        return c;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "out of memory for a keystore connection");
        return NULL;
    }
    c->pc = pc;
    c->ch = NULL;
    c->pid = ks_self_pid();
    c->srv = -1;
    c->home = ks_servers_home(pc);
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

/* Connecting (and the TCP handshake, and Hello) spend the operation's time
 * too.  Returns the new channel, or NULL with *reason (KS_R_*) and msg. */
static struct ks_chan *conn_connect(KS_PROVCTX *pc, int s, size_t *max_frame, int *reason,
                                    char *msg, size_t msglen)
{
    char err[KS_ERRLEN], name[96];
    const char *addr = ks_servers_addr(pc, s);
    struct ks_chan_opts opts = { ks_servers_pubkey(pc, s), pc->client_key, pc->shm };
    struct ks_chan *ch;
    enum ks_chan_failure why;
    int ms = ks_io_remaining_ms(pc->timeout_ms);

    *reason = KS_R_SERVER_UNREACHABLE;
    if (ms == 0) {
        msgf(msg, msglen, "keystore server at %s: timed out waiting for the server (the "
                 "provider's timeout of %d s covers the whole operation)", addr,
                 pc->timeout_ms / 1000);
        return NULL;
    }
    ch = ks_chan_connect_ex(addr, &opts, ms, &why, err, sizeof(err));
    if (ch == NULL) {
        /* err names the server and what to fix; the reason says which kind:
         * "unreachable" only when it really could not be reached */
        static const int reasons[] = {
            [KS_CHAN_UNREACHABLE] = KS_R_SERVER_UNREACHABLE,
            [KS_CHAN_CONFIG] = KS_R_BAD_SETTING,
            [KS_CHAN_REFUSED] = KS_R_SERVER_REFUSED,
            [KS_CHAN_AUTH] = KS_R_SERVER_NOT_AUTHENTIC,
            [KS_CHAN_PROTOCOL] = KS_R_PROTOCOL,
        };

        if ((unsigned)why < sizeof(reasons) / sizeof(reasons[0]))
            *reason = reasons[why];
        msgf(msg, msglen, "%s", err);
        return NULL;
    }
    snprintf(name, sizeof(name), "keystore provider %s pid %ld", KEYSTORE_VERSION, (long)ks_self_pid());
    *max_frame = KS_DEFAULT_MAX_FRAME;
    if (ks_chan_hello(ch, name, max_frame, err, sizeof(err)) != 0) {
        ks_chan_close(ch);
        msgf(msg, msglen, "keystore server at %s: %s", addr, err);
        return NULL;
    }
    return ch;
}

/* The provider's `timeout` is one deadline for a whole operation: connect,
 * handshake, Hello, the request, the retry on a fresh connection, and the
 * other servers it fails over to. */
static long long op_begin(KS_PROVCTX *pc)
{
    long long deadline = ks_mono_us() + (long long)pc->timeout_ms * 1000;

    ks_io_set_deadline(deadline);
    return deadline;
}

static void op_end(void)
{
    ks_io_set_deadline(0);
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

static void raise_server_error(KS_PROVCTX *pc, const char *addr, const Keystore__Error *e,
                               const char *op, const char *keyname)
{
    Keystore__ErrorCode code = e != NULL ? e->code : KEYSTORE__ERROR_CODE__ERROR_INTERNAL;
    const char *msg = e != NULL && e->message != NULL && e->message[0] != '\0'
                      ? e->message : ks_error_code_name(code);

    if (keyname == NULL)
        keyname = "";
    switch (code) {
    case KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY:
        KS_RAISE(pc, KS_R_NO_SUCH_KEY, "no key named '%s' in the keystore at %s (keystore server: %.200s)",
                 keyname, addr, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED:
        KS_RAISE(pc, KS_R_PERMISSION_DENIED, "keystore server at %s refused to %s with key '%s': %.200s",
                 addr, op, keyname, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_WRONG_KEY_TYPE:
        KS_RAISE(pc, KS_R_WRONG_KEY_TYPE, "keystore server: cannot %s with key '%s': %.200s",
                 op, keyname, msg);
        break;
    case KEYSTORE__ERROR_CODE__ERROR_WRONG_USAGE:
        KS_RAISE(pc, KS_R_WRONG_USAGE, "keystore server at %s refused to %s with key '%s': %.200s",
                 addr, op, keyname, msg);
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


/* A transport failure of one server during an operation, raised only if
 * no server answers in the end (an answer from another one is no error). */
struct fo_fail {
    int reason;
    char msg[KS_ERRLEN];
};

/* One request and its reply on c, 0 or -1 with err (transport). */
static int conn_send(KS_PROVCTX *pc, struct ks_conn *c, Keystore__Request *req,
                     Keystore__Response **r, char *err, size_t errlen)
{
    req->id = c->next_id++;
    (void)pc;
    return ks_chan_call(c->ch, c->max_frame, req, r, err, errlen);
}

/* Before key k is used on server s (not the one it was loaded from): does
 * s hold the same key under that name?  GetKey there, once per key and
 * server.  A handle never silently switches to a different key.
 * 1 yes, -1 no (reason and msg), 0 transport failure (msg). */
static int key_check(KS_PROVCTX *pc, struct ks_conn *c, KS_KEY *k, int s, int *reason,
                     char *msg, size_t msglen)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__GetKeyRequest gk = KEYSTORE__GET_KEY_REQUEST__INIT;
    Keystore__Response *r = NULL;
    char err[KS_ERRLEN];
    int st = ks_servers_key_state(pc, k, s, reason, msg, msglen), verdict;

    if (st != 0)
        return st;
    gk.name = k->name;
    gk.version = k->version;   /* the same version there, not whatever is current */
    req.body_case = KEYSTORE__REQUEST__BODY_GET_KEY;
    req.get_key = &gk;
    if (conn_send(pc, c, &req, &r, err, sizeof(err)) != 0) {
        msgf(msg, msglen, "keystore server at %s: %s", ks_servers_addr(pc, s), err);
        return 0;
    }
    if (r->body_case != KEYSTORE__RESPONSE__BODY_KEY || r->key == NULL)
        verdict = KS_KEYCHK_ABSENT;      /* no such key for us there (or refused) */
    else if ((int)r->key->type == k->type && r->key->public_key_der.len == k->pub_der_len
             && k->pub_der != NULL
             && memcmp(r->key->public_key_der.data, k->pub_der, k->pub_der_len) == 0)
        verdict = KS_KEYCHK_SAME;
    else
        verdict = KS_KEYCHK_DIFFERENT;
    ks_client_free_response(r);
    return ks_servers_key_checked(pc, k, s, verdict, reason, msg, msglen);
}

/* Which failures go to another server: only the transport's.  A server's
 * answer (permission denied, no such key, wrong usage, bad padding...) is
 * final and is never asked again elsewhere: re-asking a decrypt whose
 * answer was an error on every server would multiply what a padding-oracle
 * attacker learns per query, and a refusal is policy, not an outage.  A
 * request that was sent but got no answer (reset, EOF, timeout) may be sent
 * again, to the same server on a fresh connection or to another: GetKey,
 * ListKeys, Sign, Decrypt and Derive change nothing in the server, so doing
 * one twice is harmless (two valid signatures, the same plaintext or
 * secret; the client sees one).  GenerateKey does change the server: once
 * sent, it is never sent to another server (that could make two different
 * keys of one name), only retried where it went, where a repeat finds the
 * name taken.  req NULL: only connect (ks_client_max_frame). */
static int client_call(KS_PROVCTX *pc, long long deadline, KS_KEY *key, Keystore__Request *req,
                       Keystore__Response__BodyCase expect, const char *op,
                       const char *keyname, Keystore__Response **resp,
                       Keystore__ErrorCode *server_code)
{
    struct ks_conn *c = conn_get(pc);
    Keystore__Response *r = NULL;
    struct fo_fail fails[KS_MAX_SERVERS];
    unsigned tried = 0, i, nfail = 0;
    int retried = 0, s = -1, generate;
    char err[KS_ERRLEN];

    if (resp != NULL)
        *resp = NULL;
    if (server_code != NULL)
        *server_code = KEYSTORE__ERROR_CODE__ERROR_NONE;
    if (c == NULL)
        return 0;
    generate = req != NULL && req->body_case == KEYSTORE__REQUEST__BODY_GENERATE_KEY;
    for (;;) {
        int usable, fresh = 0, reason = KS_R_SERVER_UNREACHABLE, timed_out;
        long long now;

        if ((s = ks_servers_pick(pc, c->home, tried, &usable)) < 0)
            goto failed;
        /* a hung server may take only its share of the time left, so
         * that the others can still be tried within the deadline */
        now = ks_mono_us();
        ks_io_set_deadline(usable > 1 && deadline > now ? now + (deadline - now) / usable
                                                         : deadline);
        if (c->ch == NULL || c->srv != s) {
            size_t mf = KS_DEFAULT_MAX_FRAME;
            struct ks_chan *ch = conn_connect(pc, s, &mf, &reason, fails[nfail].msg,
                                              sizeof(fails[nfail].msg));

            if (ch == NULL) {
                ks_servers_failed(pc, s, reason, fails[nfail].msg);
                fails[nfail++].reason = reason;
                tried |= 1u << s;
                continue;
            }
            /* the old connection goes only once the new one works */
            conn_close(c);
            c->ch = ch;
            c->srv = s;
            c->max_frame = mf;
            c->pid = ks_self_pid();
            fresh = 1;
            ks_servers_ok(pc, s);
        }
        if (req == NULL)
            break;
        if (key != NULL) {
            int k = key_check(pc, c, key, s, &reason, fails[nfail].msg, sizeof(fails[nfail].msg));

            if (k < 0) {                 /* the server is fine, the key is not */
                fails[nfail++].reason = reason;
                tried |= 1u << s;
                continue;
            }
            if (k == 0) {
                msgf(err, sizeof(err), "%s", fails[nfail].msg);
                goto transport;
            }
        }
        {
            size_t len = keystore__request__get_packed_size(req);

            if (len > c->max_frame) {
                ks_io_set_deadline(deadline);
                KS_RAISE(pc, KS_R_TOO_LARGE, "%s request of %zu bytes exceeds the frame limit of "
                         "%zu bytes of the keystore server at %s", op, len, c->max_frame,
                         ks_servers_addr(pc, s));
                return 0;
            }
        }
        if (conn_send(pc, c, req, &r, err, sizeof(err)) == 0)
            break;
        {
            char tmp[KS_ERRLEN];

            msgf(tmp, sizeof(tmp), "keystore server at %s: %s", ks_servers_addr(pc, s), err);
            msgf(err, sizeof(err), "%s", tmp);
        }
transport:
        conn_close(c);
        timed_out = ks_io_remaining_ms(1) == 0;
        /* a reused connection may just be stale (the server restarted):
         * once per operation, a fresh one to the same server */
        if (!fresh && !timed_out && !retried) {
            retried = 1;
            continue;
        }
        if (timed_out) {
            /* a server that does not answer in time is treated as down */
            msgf(fails[nfail].msg, sizeof(fails[nfail].msg), "%s (the provider's timeout "
                     "of %d s covers the whole operation%s)", err, pc->timeout_ms / 1000,
                     usable > 1 ? "; a server gets its share of it, then the next is tried" : "");
            ks_servers_failed(pc, s, KS_R_SERVER_UNREACHABLE, fails[nfail].msg);
        } else {
            msgf(fails[nfail].msg, sizeof(fails[nfail].msg), "%s", err);
        }
        fails[nfail++].reason = KS_R_SERVER_UNREACHABLE;
        tried |= 1u << s;
        if (generate)
            goto failed;
    }
    ks_io_set_deadline(deadline);
    ks_servers_ok(pc, s);
    if (req == NULL)
        return 1;
    if (r->body_case == KEYSTORE__RESPONSE__BODY_ERROR) {
        if (server_code != NULL && r->error != NULL)
            *server_code = r->error->code;
        raise_server_error(pc, ks_servers_addr(pc, s), r->error, op, keyname);
        ks_client_free_response(r);
        return 0;
    }
    if (r->body_case != expect) {
        KS_RAISE(pc, KS_R_PROTOCOL, "keystore server at %s answered a %s request with the wrong "
                 "message type", ks_servers_addr(pc, s), op);
        ks_client_free_response(r);
        /* The stream may be out of step; start over next time. */
        conn_close(c);
        return 0;
    }
    *resp = r;
    return 1;
failed:
    ks_io_set_deadline(deadline);
    for (i = 0; i < nfail; i++)
        KS_RAISE(pc, fails[i].reason, "%s", fails[i].msg);
    if (ks_servers_raise_skipped(pc, tried) == 0 && nfail == 0)
        KS_RAISE(pc, KS_R_SERVER_UNREACHABLE, "no keystore server of '%.200s' could be tried",
                 pc->server);
    return 0;
}

int ks_client_call(KS_PROVCTX *pc, Keystore__Request *req,
                   Keystore__Response__BodyCase expect, const char *op,
                   const char *keyname, Keystore__Response **resp,
                   Keystore__ErrorCode *server_code)
{
    int ok = client_call(pc, op_begin(pc), NULL, req, expect, op, keyname, resp, server_code);

    op_end();
    return ok;
}

int ks_client_call_key(KS_PROVCTX *pc, KS_KEY *k, Keystore__Request *req,
                       Keystore__Response__BodyCase expect, const char *op,
                       Keystore__Response **resp, Keystore__ErrorCode *server_code)
{
    int ok = client_call(pc, op_begin(pc), k, req, expect, op, k->name, resp, server_code);

    op_end();
    return ok;
}

size_t ks_client_max_frame(KS_PROVCTX *pc)
{
    struct ks_conn *c = conn_get(pc);
    int ok;

    if (c == NULL)
        return 0;
    if (c->ch != NULL)
        return c->max_frame;
    ok = client_call(pc, op_begin(pc), NULL, NULL, 0, "connect", NULL, NULL, NULL);
    op_end();
    return ok ? c->max_frame : 0;
}

int ks_client_server(KS_PROVCTX *pc)
{
    struct ks_conn *c = pthread_getspecific(pc->conn_key);

    return c != NULL && c->ch != NULL && c->pid == ks_self_pid() ? c->srv : -1;
}
