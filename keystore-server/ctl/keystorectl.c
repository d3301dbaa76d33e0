/* keystorectl: administer a keystored server over its admin socket. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "channel.h"
#include "ctl.h"
#include "store/masterkey_gen.h"

static const char *server_addr;
static int json_out;
static int assume_yes;       /* --yes: do not ask before delete */
static struct ks_chan *conn;
static size_t server_max_frame = KS_DEFAULT_MAX_FRAME;
static uint64_t next_id = 2;   /* 1 is the Hello */

static void usage(FILE *f)
{
    fprintf(f,
"usage: keystorectl [-s ADDR] [--json] COMMAND [ARGS...]\n"
"\n"
"Commands (each takes --help):\n"
"  generate NAME --type rsa|rsa-pss|ec|ed25519|ed448|x25519|x448\n"
"                [--bits 2048|3072|4096] [--curve CURVE] [--usage sign|decrypt|sign,decrypt]\n"
"                                                 create a key in the server\n"
"  import NAME FILE [--passin pass:TEXT|env:VAR|file:PATH] [--usage USAGE]\n"
"                                                 store a PEM/DER private key\n"
"  list [--expiring 30d]                          list keys (and their certificates)\n"
"  info NAME [--version N]                        show one key and its versions\n"
"  pubkey NAME [-o FILE] [--version N]            print the public key (PEM)\n"
"  delete NAME [--yes]                            delete a key (asks on a terminal)\n"
"  attach-cert NAME CERT.pem [CHAIN.pem] [--no-chain-check] [--version N]\n"
"                                                 attach a certificate chain\n"
"  rotate NAME|--all [--type T] [--bits N] [--curve C] [--usage U]\n"
"                                                 make a new current version of a key\n"
"  retire NAME --version N                        destroy an old version of a key\n"
"  gen-master-key PATH                            create a master key file (local)\n"
"  client-keygen NAME -o FILE                     create a TCP client key (local)\n"
"  server-pubkey KEYFILE                          print a server key's public key (local)\n"
"  status                                         uptime, keys, connections, operations, latency\n"
"  metrics                                        the same in the Prometheus text format\n"
"  reload                                         re-read the access list, TCP clients; check certificates\n"
"\n"
"Options:\n"
"  -s, --socket ADDR  admin socket (default: $KEYSTORE_ADMIN, else %s);\n"
"                     tcp:HOST:PORT reaches a remote server's client side (list,\n"
"                     info, pubkey) with $KEYSTORE_SERVER_PUBKEY and $KEYSTORE_CLIENT_KEY\n"
"      --json         machine-readable output\n"
"  -h, --help         this help\n"
"      --version      print keystorectl's version\n"
"\n"
"Exit codes:\n"
"  0  success\n"
"  1  usage error\n"
"  2  server unreachable or protocol error\n"
"  3  the server refused the request (its error code and message are printed)\n"
"  4  local input error (unreadable file, bad PEM, wrong passphrase)\n"
"  5  list --expiring: no key's certificate expires within that time\n",
            KS_DEFAULT_ADMIN_SOCKET);
}

/* ---- server connection ----------------------------------------------- */

/* A Unix admin socket must be served by root, by keystored's user
 * ($KEYSTORE_SERVER_USER, default "keystored") or by ourselves: otherwise
 * whoever bound the path first (a local user, before keystored started)
 * would receive imported private keys.  Checked with SO_PEERCRED, the
 * credentials of the process that created the listening socket, before
 * anything is sent. */
static int check_admin_peer(int fd, const char *addr)
{
    const char *user = getenv("KEYSTORE_SERVER_USER");
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct passwd *pw, *owner;
    char owner_name[64];

    if (user == NULL || user[0] == '\0')
        user = "keystored";
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ctl_err("cannot tell who serves the admin socket at %s (SO_PEERCRED: %s); refusing",
                addr, strerror(errno));
        return -1;
    }
    if (cred.uid == 0 || cred.uid == geteuid())
        return 0;
    pw = getpwnam(user);
    if (pw != NULL && pw->pw_uid == cred.uid)
        return 0;
    owner = getpwuid(cred.uid);
    snprintf(owner_name, sizeof(owner_name), "%s", owner != NULL ? owner->pw_name : "no such user");
    ctl_err("refusing to talk to the admin socket at %s: it is served by uid %u (%s), not by "
            "root or the server's user '%s'; another local user may be impersonating keystored "
            "(if keystored runs as another user, set KEYSTORE_SERVER_USER)",
            addr, (unsigned)cred.uid, owner_name, user);
    return -1;
}

static int ctl_connect(void)
{
    char err[KS_ERRLEN], name[64];
    char addr[4200];

    struct ks_chan_opts opts = { getenv("KEYSTORE_SERVER_PUBKEY"), getenv("KEYSTORE_CLIENT_KEY") };

    if (conn != NULL)
        return CTL_OK;
    /* accept a bare path for convenience */
    snprintf(addr, sizeof(addr), "%s%s", server_addr[0] == '/' ? "unix:" : "", server_addr);
    conn = ks_chan_connect(addr, &opts, KS_IO_TIMEOUT_MS, err, sizeof(err));
    if (conn == NULL) {
        ctl_err("%s", err);
        return CTL_UNREACHABLE;
    }
    if (!ks_addr_is_tcp(addr) && check_admin_peer(conn->fd, addr) != 0) {
        ks_chan_close(conn);
        conn = NULL;
        return CTL_UNREACHABLE;
    }
    snprintf(name, sizeof(name), "keystorectl pid %d", (int)getpid());
    if (ks_chan_hello(conn, name, &server_max_frame, err, sizeof(err)) != 0) {
        ctl_err("%s", err);
        ks_chan_close(conn);
        conn = NULL;
        return CTL_UNREACHABLE;
    }
    return CTL_OK;
}

/* Send req; on success *resp holds a non-error reply of type `want`. */
static int ctl_call(Keystore__Request *req, Keystore__Response__BodyCase want,
                    Keystore__Response **resp)
{
    char err[KS_ERRLEN];
    int rc = ctl_connect();

    *resp = NULL;
    if (rc != CTL_OK)
        return rc;
    req->id = next_id++;
    if (ks_chan_call(conn, server_max_frame, req, resp, err, sizeof(err)) != 0) {
        ctl_err("%s", err);
        return CTL_UNREACHABLE;
    }
    if ((*resp)->body_case == KEYSTORE__RESPONSE__BODY_ERROR && (*resp)->error != NULL) {
        ctl_err("%s: %s", ks_error_code_name((*resp)->error->code), (*resp)->error->message);
        keystore__response__free_unpacked(*resp, NULL);
        *resp = NULL;
        return CTL_REFUSED;
    }
    if ((*resp)->body_case != want || (*resp)->key == NULL) {
        ctl_err("the server sent an unexpected kind of reply: protocol error");
        keystore__response__free_unpacked(*resp, NULL);
        *resp = NULL;
        return CTL_UNREACHABLE;
    }
    return CTL_OK;
}

/* ---- argument helpers ------------------------------------------------ */

/* Per-command getopt: returns 1 if --help was printed, -1 on a usage error. */
struct cmd {
    const char *name;
    const char *synopsis;   /* after "keystorectl NAME " */
    const char *help;
    int nargs_min, nargs_max;
    int (*run)(char **args, int nargs, const char **opts);
    const char *const *optnames;   /* long options taking a value, NULL-terminated;
                                    * "!--flag" is one without a value (set to "yes") */
};

static int parse_cmd(const struct cmd *c, int argc, char **argv, char **args, int *nargs,
                     const char **opts)
{
    int i, j, n = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: keystorectl %s %s\n\n%s", c->name, c->synopsis, c->help);
            return 1;
        }
        if (strcmp(a, "--json") == 0) {
            json_out = 1;
            continue;
        }
        if (strcmp(a, "--yes") == 0 || strcmp(a, "-y") == 0) {
            assume_yes = 1;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                if (n < 8)
                    args[n++] = argv[i];
            break;
        }
        if (a[0] == '-' && a[1] != '\0') {
            const char *eq = strchr(a, '=');
            size_t klen = eq != NULL ? (size_t)(eq - a) : strlen(a);

            const char *on = NULL;

            for (j = 0; c->optnames != NULL && (on = c->optnames[j]) != NULL; j++) {
                on += on[0] == '!';
                if (strlen(on) == klen && strncmp(on, a, klen) == 0)
                    break;
            }
            if (c->optnames == NULL || c->optnames[j] == NULL) {
                ctl_err("%s: unknown option %s (see keystorectl %s --help)", c->name, a, c->name);
                return -1;
            }
            if (c->optnames[j][0] == '!') {
                if (eq != NULL) {
                    ctl_err("%s: option %s takes no value", c->name, on);
                    return -1;
                }
                opts[j] = "yes";
            } else if (eq != NULL) {
                opts[j] = eq + 1;
            } else if (i + 1 < argc) {
                opts[j] = argv[++i];
            } else {
                ctl_err("%s: option %s needs a value", c->name, a);
                return -1;
            }
            continue;
        }
        if (n >= 8) {
            ctl_err("%s: too many arguments", c->name);
            return -1;
        }
        args[n++] = argv[i];
    }
    if (n < c->nargs_min || n > c->nargs_max) {
        ctl_err("%s: expected %s%s (see keystorectl %s --help)", c->name,
                n < c->nargs_min ? "more arguments: " : "fewer arguments: ", c->synopsis,
                c->name);
        return -1;
    }
    *nargs = n;
    return 0;
}

static int check_name(const char *name)
{
    if (!ks_valid_key_name(name)) {
        ctl_err("'%s' is not a valid key name: use 1-%d characters of A-Z a-z 0-9 . _ - "
                "not starting with '.'", name, KS_MAX_KEY_NAME);
        return -1;
    }
    return 0;
}

static int print_key_reply(Keystore__Request *req, const char *verb)
{
    Keystore__Response *resp;
    int rc = ctl_call(req, KEYSTORE__RESPONSE__BODY_KEY, &resp);

    if (rc != CTL_OK)
        return rc;
    ctl_print_key(resp->key, json_out, verb);
    keystore__response__free_unpacked(resp, NULL);
    return CTL_OK;
}

/* ---- commands -------------------------------------------------------- */

/* --usage: a key's usage is fixed when it is made; the server's default is sign. */
static int parse_usage(const char *cmd, const char *text, uint32_t *usage)
{
    char err[160];

    *usage = 0;
    if (text == NULL)
        return 0;
    if (ks_usage_parse(text, usage, err, sizeof(err)) != 0) {
        ctl_err("%s: --usage: %s", cmd, err);
        return -1;
    }
    return 0;
}

static const char *const generate_opts[] = { "--type", "--bits", "--curve", "--usage", NULL };

/* --version N: 1..999999999; 0 (the current one) if absent. */
static int parse_version(const char *cmd, const char *text, uint32_t *v)
{
    char *end;
    unsigned long n;

    *v = 0;
    if (text == NULL)
        return 0;
    n = strtoul(text, &end, 10);
    if (text[0] < '1' || text[0] > '9' || *end != '\0' || n > 999999999UL) {
        ctl_err("%s: --version takes a version number (1, 2, ...), not '%s'", cmd, text);
        return -1;
    }
    *v = (uint32_t)n;
    return 0;
}

/* --type/--bits/--curve: generate (defaults filled in) and rotate (type 0 =
 * the current version's, so no defaults). */
static int key_params(const char *cmd, const char *type, const char *bits, const char *curve,
                      int defaults, Keystore__KeyType *t, uint32_t *b, char **group)
{
    static const struct { const char *name; Keystore__KeyType t; } types[] = {
        { "rsa", KEYSTORE__KEY_TYPE__KEY_TYPE_RSA },
        { "rsa-pss", KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS },
        { "ec", KEYSTORE__KEY_TYPE__KEY_TYPE_EC },
        { "ed25519", KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519 },
        { "ed448", KEYSTORE__KEY_TYPE__KEY_TYPE_ED448 },
        { "x25519", KEYSTORE__KEY_TYPE__KEY_TYPE_X25519 },
        { "x448", KEYSTORE__KEY_TYPE__KEY_TYPE_X448 },
    };
    int rsa, any = type == NULL;
    char *end;
    size_t i;

    *t = KEYSTORE__KEY_TYPE__KEY_TYPE_UNSPECIFIED;
    for (i = 0; type != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(type, types[i].name) == 0)
            *t = types[i].t;
    if (type != NULL && *t == KEYSTORE__KEY_TYPE__KEY_TYPE_UNSPECIFIED) {
        ctl_err("%s: unknown --type '%s' (use rsa, rsa-pss, ec, ed25519, ed448, x25519 "
                "or x448)", cmd, type);
        return -1;
    }
    rsa = *t == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA || *t == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS;
    if (bits != NULL) {
        unsigned long v = strtoul(bits, &end, 10);

        if (!rsa && !any) {
            ctl_err("%s: --bits only applies to rsa and rsa-pss keys", cmd);
            return -1;
        }
        if (*bits == '\0' || *end != '\0' || (v != 2048 && v != 3072 && v != 4096)) {
            ctl_err("%s: --bits must be 2048, 3072 or 4096, not '%s'", cmd, bits);
            return -1;
        }
        *b = (uint32_t)v;
    } else if (rsa && defaults) {
        *b = 2048;
    }
    if (curve != NULL) {
        if (*t != KEYSTORE__KEY_TYPE__KEY_TYPE_EC && !any) {
            ctl_err("%s: --curve only applies to ec keys", cmd);
            return -1;
        }
        *group = (char *)curve;   /* the server validates and canonicalizes it */
    } else if (*t == KEYSTORE__KEY_TYPE__KEY_TYPE_EC && defaults) {
        *group = (char *)"P-256";
    }
    return 0;
}

static int cmd_generate(char **args, int nargs, const char **opts)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__GenerateKeyRequest g = KEYSTORE__GENERATE_KEY_REQUEST__INIT;

    (void)nargs;
    if (check_name(args[0]) != 0 || parse_usage("generate", opts[3], &g.usage) != 0)
        return CTL_USAGE;
    if (opts[0] == NULL) {
        ctl_err("generate: --type is required (rsa, rsa-pss, ec, ed25519, ed448, x25519 or x448)");
        return CTL_USAGE;
    }
    if (key_params("generate", opts[0], opts[1], opts[2], 1, &g.type, &g.bits, &g.group) != 0)
        return CTL_USAGE;
    g.name = args[0];
    req.body_case = KEYSTORE__REQUEST__BODY_GENERATE_KEY;
    req.generate_key = &g;
    return print_key_reply(&req, "generated");
}

static const char *const import_opts[] = { "--passin", "--usage", NULL };

static int cmd_import(char **args, int nargs, const char **opts)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__ImportKeyRequest im = KEYSTORE__IMPORT_KEY_REQUEST__INIT;
    EVP_PKEY *pkey;
    uint8_t *der;
    size_t len;
    int rc;

    (void)nargs;
    if (check_name(args[0]) != 0 || parse_usage("import", opts[1], &im.usage) != 0)
        return CTL_USAGE;
    pkey = ctl_read_private_key(args[1], opts[0], &rc);
    if (pkey == NULL)
        return rc;
    rc = ctl_pkcs8_der(pkey, &der, &len);
    EVP_PKEY_free(pkey);
    if (rc != 0) {
        ctl_err("cannot encode the key in %s as PKCS#8", args[1]);
        return CTL_INPUT;
    }
    im.name = args[0];
    im.private_key_der.data = der;
    im.private_key_der.len = len;
    req.body_case = KEYSTORE__REQUEST__BODY_IMPORT_KEY;
    req.import_key = &im;
    rc = print_key_reply(&req, "imported");   /* ks_call wipes its copies */
    sodium_free(der);
    return rc;
}

/* "30d", "12h", "90m", "3600s", "2w" -> seconds; -1 if malformed. */
static long long parse_duration(const char *s)
{
    static const struct { char unit; long long secs; } units[] = {
        { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
    };
    char *end;
    unsigned long long v;
    size_t i;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    v = strtoull(s, &end, 10);
    if (end[0] == '\0' || end[1] != '\0' || v > 100ULL * 366 * 86400)
        return -1;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (end[0] == units[i].unit)
            return (long long)v * units[i].secs <= 100LL * 366 * 86400 ? (long long)v * units[i].secs : -1;
    return -1;
}

static const char *const list_opts[] = { "--expiring", NULL };

static int cmd_list(char **args, int nargs, const char **opts)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__ListKeysRequest l = KEYSTORE__LIST_KEYS_REQUEST__INIT;
    Keystore__Response *resp;
    Keystore__KeyInfo **keys;
    long long within = -1;
    size_t i, n;
    time_t t;
    int rc;

    (void)args;
    (void)nargs;
    if (opts[0] != NULL && (within = parse_duration(opts[0])) < 0) {
        ctl_err("list: --expiring takes a duration such as 30d, 12h, 90m or 2w, not '%s'", opts[0]);
        return CTL_USAGE;
    }
    req.body_case = KEYSTORE__REQUEST__BODY_LIST_KEYS;
    req.list_keys = &l;
    rc = ctl_call(&req, KEYSTORE__RESPONSE__BODY_LIST_KEYS, &resp);
    if (rc != CTL_OK)
        return rc;
    /* a copy of the pointers: printing sorts them, and the filter drops some */
    n = resp->list_keys->n_keys;
    keys = calloc(n > 0 ? n : 1, sizeof(*keys));
    if (keys == NULL) {
        ctl_err("out of memory");
        keystore__response__free_unpacked(resp, NULL);
        return CTL_INPUT;
    }
    if (within >= 0) {
        /* the keys whose leaf expires by now + within (or has expired) */
        time_t cutoff = time(NULL) + (time_t)within;

        for (i = 0, n = 0; i < resp->list_keys->n_keys; i++)
            if (ctl_leaf_not_after(resp->list_keys->keys[i], &t) == 0 && t <= cutoff)
                keys[n++] = resp->list_keys->keys[i];
    } else {
        for (i = 0; i < n; i++)
            keys[i] = resp->list_keys->keys[i];
    }
    ctl_print_list(keys, n, json_out);
    free(keys);
    keystore__response__free_unpacked(resp, NULL);
    return within >= 0 && n == 0 ? CTL_NONE_EXPIRING : CTL_OK;
}

static int get_key(const char *name, uint32_t version, Keystore__Response **resp)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__GetKeyRequest g = KEYSTORE__GET_KEY_REQUEST__INIT;

    g.name = (char *)name;
    g.version = version;
    req.body_case = KEYSTORE__REQUEST__BODY_GET_KEY;
    req.get_key = &g;
    return ctl_call(&req, KEYSTORE__RESPONSE__BODY_KEY, resp);
}

static const char *const info_opts[] = { "--version", NULL };

static int cmd_info(char **args, int nargs, const char **opts)
{
    Keystore__Response *resp;
    uint32_t version;
    int rc;

    (void)nargs;
    if (check_name(args[0]) != 0 || parse_version("info", opts[0], &version) != 0)
        return CTL_USAGE;
    rc = get_key(args[0], version, &resp);
    if (rc != CTL_OK)
        return rc;
    ctl_print_key(resp->key, json_out, "");
    keystore__response__free_unpacked(resp, NULL);
    return CTL_OK;
}

static const char *const pubkey_opts[] = { "-o", "--version", NULL };

static int cmd_pubkey(char **args, int nargs, const char **opts)
{
    Keystore__Response *resp;
    uint32_t version;
    int rc;

    (void)nargs;
    if (check_name(args[0]) != 0 || parse_version("pubkey", opts[1], &version) != 0)
        return CTL_USAGE;
    rc = get_key(args[0], version, &resp);
    if (rc != CTL_OK)
        return rc;
    rc = ctl_write_pubkey_as(resp->key->public_key_der.data, resp->key->public_key_der.len,
                             opts[0], json_out ? args[0] : NULL);
    keystore__response__free_unpacked(resp, NULL);
    return rc == 0 ? CTL_OK : rc == -2 ? CTL_UNREACHABLE : CTL_INPUT;
}

/* On a terminal, deleting asks first (a key cannot be brought back);
 * scripts (no terminal on stdin) and --yes do not. */
static int confirm_delete(const char *name)
{
    char line[16];

    if (assume_yes || !isatty(STDIN_FILENO))
        return 1;
    fprintf(stderr, "keystorectl: delete key '%s' and its certificates from the server? "
            "This cannot be undone. [y/N] ", name);
    fflush(stderr);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 0;
    return strcasecmp(line, "y\n") == 0 || strcasecmp(line, "yes\n") == 0;
}

static int cmd_delete(char **args, int nargs, const char **opts)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__DeleteKeyRequest d = KEYSTORE__DELETE_KEY_REQUEST__INIT;
    Keystore__Response *resp;
    int rc;

    (void)nargs;
    (void)opts;
    if (check_name(args[0]) != 0)
        return CTL_USAGE;
    if (!confirm_delete(args[0])) {
        ctl_err("delete: key '%s' not deleted (answer y, or pass --yes)", args[0]);
        return CTL_USAGE;
    }
    d.name = args[0];
    req.body_case = KEYSTORE__REQUEST__BODY_DELETE_KEY;
    req.delete_key = &d;
    rc = ctl_call(&req, KEYSTORE__RESPONSE__BODY_DELETED, &resp);
    if (rc != CTL_OK)
        return rc;
    keystore__response__free_unpacked(resp, NULL);
    if (json_out) {
        printf("{\"deleted\": ");
        ctl_json_string(args[0]);
        printf("}\n");
    } else {
        printf("deleted key %s\n", args[0]);
    }
    return CTL_OK;
}

static int rotate_one(const char *name, const char **opts, int *failed)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__RotateKeyRequest r = KEYSTORE__ROTATE_KEY_REQUEST__INIT;
    int rc;

    if (key_params("rotate", opts[0], opts[1], opts[2], 0, &r.type, &r.bits, &r.group) != 0 ||
        parse_usage("rotate", opts[3], &r.usage) != 0)
        return CTL_USAGE;
    r.name = (char *)name;
    req.body_case = KEYSTORE__REQUEST__BODY_ROTATE;
    req.rotate = &r;
    rc = print_key_reply(&req, "rotated");
    if (rc != CTL_OK)
        *failed = rc;
    return rc;
}

static const char *const rotate_opts[] = { "--type", "--bits", "--curve", "--usage", "!--all",
                                           NULL };

static int cmd_rotate(char **args, int nargs, const char **opts)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__ListKeysRequest l = KEYSTORE__LIST_KEYS_REQUEST__INIT;
    Keystore__Response *resp;
    int failed = 0, rc;
    size_t i;

    if ((nargs == 1) == (opts[4] != NULL)) {
        ctl_err("rotate: name one key, or pass --all (every key)");
        return CTL_USAGE;
    }
    if (nargs == 1) {
        if (check_name(args[0]) != 0)
            return CTL_USAGE;
        return rotate_one(args[0], opts, &failed);
    }
    req.body_case = KEYSTORE__REQUEST__BODY_LIST_KEYS;
    req.list_keys = &l;
    rc = ctl_call(&req, KEYSTORE__RESPONSE__BODY_LIST_KEYS, &resp);
    if (rc != CTL_OK)
        return rc;
    /* every key, even after one fails: the exit status says something did */
    for (i = 0; i < resp->list_keys->n_keys; i++)
        if (rotate_one(resp->list_keys->keys[i]->name, opts, &failed) == CTL_USAGE)
            break;
    keystore__response__free_unpacked(resp, NULL);
    return failed;
}

static const char *const retire_opts[] = { "--version", NULL };

static int cmd_retire(char **args, int nargs, const char **opts)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__RetireKeyRequest r = KEYSTORE__RETIRE_KEY_REQUEST__INIT;

    (void)nargs;
    if (check_name(args[0]) != 0 || parse_version("retire", opts[0], &r.version) != 0)
        return CTL_USAGE;
    if (r.version == 0) {
        ctl_err("retire: --version N is required (keystorectl info %s lists the versions)",
                args[0]);
        return CTL_USAGE;
    }
    r.name = args[0];
    req.body_case = KEYSTORE__REQUEST__BODY_RETIRE;
    req.retire = &r;
    return print_key_reply(&req, "retired a version of");
}

static const char *const attach_opts[] = { "!--no-chain-check", "--version", NULL };

static int cmd_attach_cert(char **args, int nargs, const char **opts)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__AttachCertRequest a = KEYSTORE__ATTACH_CERT_REQUEST__INIT;
    uint8_t **ders = NULL;
    size_t *lens = NULL, n = 0, i;
    int rc = CTL_INPUT;

    if (check_name(args[0]) != 0 || parse_version("attach-cert", opts[1], &a.version) != 0)
        return CTL_USAGE;
    a.no_chain_check = opts[0] != NULL;
    if (ctl_read_certs(args[1], &ders, &lens, &n) != 0 ||
        (nargs > 2 && ctl_read_certs(args[2], &ders, &lens, &n) != 0))
        goto out;
    a.cert_chain_der = calloc(n, sizeof(*a.cert_chain_der));
    if (a.cert_chain_der == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        a.cert_chain_der[i].data = ders[i];
        a.cert_chain_der[i].len = lens[i];
    }
    a.n_cert_chain_der = n;
    a.name = args[0];
    req.body_case = KEYSTORE__REQUEST__BODY_ATTACH_CERT;
    req.attach_cert = &a;
    rc = print_key_reply(&req, "attached certificates to");
out:
    free(a.cert_chain_der);
    for (i = 0; i < n; i++)
        OPENSSL_free(ders[i]);
    free(ders);
    free(lens);
    return rc;
}

static int cmd_gen_master_key(char **args, int nargs, const char **opts)
{
    char err[512];

    (void)nargs;
    (void)opts;
    if (ks_master_key_generate(args[0], err, sizeof(err)) != 0) {
        ctl_err("%s", err);
        return CTL_INPUT;
    }
    if (json_out) {
        printf("{\"master_key\": ");
        ctl_json_string(args[0]);
        printf("}\n");
    } else {
        printf("wrote a new master key to %s (mode 0600); back it up\n", args[0]);
    }
    return CTL_OK;
}

static const char *const keygen_opts[] = { "-o", NULL };

/* A TCP client identity: private key file plus the authorized-clients line. */
static int cmd_client_keygen(char **args, int nargs, const char **opts)
{
    char err[512], pk64[KS_PUBKEY_B64_LEN + 1], comment[128];
    uint8_t pk[32];
    size_t i;

    (void)nargs;
    for (i = 0; args[0][i] != '\0'; i++)
        if (!((args[0][i] >= 'a' && args[0][i] <= 'z') || (args[0][i] >= 'A' && args[0][i] <= 'Z') ||
              (args[0][i] >= '0' && args[0][i] <= '9') || strchr("._-@", args[0][i]) != NULL))
            break;
    if (args[0][i] != '\0' || i == 0 || i > 64) {
        ctl_err("client-keygen: NAME must be 1-64 characters of A-Z a-z 0-9 . _ - @");
        return CTL_USAGE;
    }
    if (opts[0] == NULL) {
        ctl_err("client-keygen: -o FILE is required (the private key is written there, mode 0600)");
        return CTL_USAGE;
    }
    snprintf(comment, sizeof(comment), "keystore client %s", args[0]);
    if (ks_keyfile_generate(opts[0], comment, pk, err, sizeof(err)) != 0) {
        ctl_err("%s", err);
        return CTL_INPUT;
    }
    ks_pubkey_format(pk, pk64);
    if (json_out) {
        printf("{\"name\": ");
        ctl_json_string(args[0]);
        printf(", \"public_key\": \"%s\", \"key_file\": ", pk64);
        ctl_json_string(opts[0]);
        printf("}\n");
    } else {
        fprintf(stderr, "keystorectl: wrote %s (mode 0600); add this line to the server's "
                "authorized clients file:\n", opts[0]);
        printf("%s %s\n", args[0], pk64);
    }
    return CTL_OK;
}

static int cmd_server_pubkey(char **args, int nargs, const char **opts)
{
    char err[512], pk64[KS_PUBKEY_B64_LEN + 1];
    uint8_t sk[32], pk[32];
    int rc;

    (void)nargs;
    (void)opts;
    rc = ks_keyfile_read(args[0], sk, pk, err, sizeof(err));
    sodium_memzero(sk, sizeof(sk));
    if (rc != 0) {
        ctl_err("%s", err);
        return CTL_INPUT;
    }
    ks_pubkey_format(pk, pk64);
    printf("%s\n", pk64);
    return CTL_OK;
}

static int get_status(Keystore__Response **resp)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__StatusRequest st = KEYSTORE__STATUS_REQUEST__INIT;

    req.body_case = KEYSTORE__REQUEST__BODY_STATUS;
    req.status = &st;
    return ctl_call(&req, KEYSTORE__RESPONSE__BODY_STATUS, resp);
}

static int cmd_status(char **args, int nargs, const char **opts)
{
    Keystore__Response *resp;
    int rc;

    (void)args;
    (void)nargs;
    (void)opts;
    rc = get_status(&resp);
    if (rc != CTL_OK)
        return rc;
    ctl_print_status(resp->status, json_out);
    keystore__response__free_unpacked(resp, NULL);
    return CTL_OK;
}

static int cmd_metrics(char **args, int nargs, const char **opts)
{
    Keystore__Response *resp;
    int rc;

    (void)args;
    (void)nargs;
    (void)opts;
    rc = get_status(&resp);
    if (rc != CTL_OK) {
        /* a scrape still gets a valid page saying the server is down */
        ctl_print_metrics_down();
        return rc;
    }
    ctl_print_metrics(resp->status);
    keystore__response__free_unpacked(resp, NULL);
    return CTL_OK;
}

static int cmd_reload(char **args, int nargs, const char **opts)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__ReloadRequest r = KEYSTORE__RELOAD_REQUEST__INIT;
    Keystore__Response *resp;
    int rc;

    (void)args;
    (void)nargs;
    (void)opts;
    req.body_case = KEYSTORE__REQUEST__BODY_RELOAD;
    req.reload = &r;
    rc = ctl_call(&req, KEYSTORE__RESPONSE__BODY_RELOAD, &resp);
    if (rc != CTL_OK)
        return rc;   /* refused: ctl_call printed the server's reason */
    if (json_out) {
        printf("{\"reloaded\": true, \"message\": ");
        ctl_json_string(resp->reload->message);
        printf("}\n");
    } else {
        printf("reloaded: %s\n", resp->reload->message);
    }
    keystore__response__free_unpacked(resp, NULL);
    return CTL_OK;
}

static const struct cmd commands[] = {
    { "generate", "NAME --type rsa|rsa-pss|ec|ed25519|ed448|x25519|x448 [--bits N] [--curve C] [--usage U]",
      "Create a new key inside the server; the private key never leaves it.\n"
      "  --type T    rsa, rsa-pss, ec, ed25519, ed448 (signing), x25519, x448 (key agreement)\n"
      "  --bits N    rsa/rsa-pss modulus size: 2048 (default), 3072 or 4096\n"
      "  --curve C   ec curve: P-256 (default), P-384, P-521, secp256k1, brainpoolP256r1,\n"
      "              brainpoolP384r1 or brainpoolP512r1\n"
      "  --usage U   sign (default), decrypt or sign,decrypt (rsa only); x25519 and\n"
      "              x448 keys derive; fixed for the key's life.  A TLS 1.2 server\n"
      "              with RSA key exchange needs sign,decrypt; other keys one usage.\n",
      1, 1, cmd_generate, generate_opts },
    { "import", "NAME FILE [--passin pass:TEXT|env:VAR|file:PATH] [--usage U]",
      "Store an existing private key (PEM or DER; PKCS#8 or traditional, optionally\n"
      "encrypted) in the server under NAME.  Without --passin an encrypted key is\n"
      "only accepted when a terminal can prompt for the passphrase.\n"
      "  --usage U   sign (default), decrypt or sign,decrypt (rsa only); fixed\n",
      2, 2, cmd_import, import_opts },
    { "list", "[--expiring DURATION]",
      "List the keys: NAME TYPE BITS/CURVE CREATED CERT USAGE EXPIRES SUBJECT ISSUER, the last\n"
      "three of the leaf certificate (--json: an array; each key's \"certificates\" give\n"
      "subject, issuer and not_after of the whole chain).\n"
      "  --expiring D  only keys whose leaf certificate expires within D (30d, 12h, 90m,\n"
      "                2w, 3600s) or has expired; exit status 0 if any is listed, 5 if none\n",
      0, 0, cmd_list, list_opts },
    { "info", "NAME [--version N]", "Show one key (its current version, or version N), the subject, issuer and\n"
      "not-after of each certificate, and the key's versions.\n",
      1, 1, cmd_info, info_opts },
    { "pubkey", "NAME [-o FILE] [--version N]",
      "Print the public key (of the current version, or version N) as PEM\n"
      "SubjectPublicKeyInfo, or write it to FILE.\n"
      "--json: {\"name\", \"public_key_pem\"} (with -o: {\"name\", \"file\"}).\n",
      1, 1, cmd_pubkey, pubkey_opts },
    { "delete", "NAME [--yes]", "Delete a key and its certificates from the server.  On a terminal it asks\n"
      "first; --yes (or -y) does not ask.\n",
      1, 1, cmd_delete, NULL },
    { "rotate", "NAME|--all [--type T] [--bits N] [--curve C] [--usage U]",
      "Generate a new version of a key (or of every key, --all) inside the server; it\n"
      "becomes the current one: what keystore:NAME opens from now on.  Applications\n"
      "that loaded an older version keep using it until they reload; keystore:NAME?version=N\n"
      "opens version N (e.g. openssl req -new -key 'keystore:NAME?version=N' for a CSR).\n"
      "Same type, size, curve and usage as the current version unless given (as for\n"
      "generate).  --all goes on after a key fails, and exits with the last failure.\n",
      0, 1, cmd_rotate, rotate_opts },
    { "retire", "NAME --version N",
      "Destroy version N of a key (its key and certificate files); never the current\n"
      "version.  Applications still using it are refused with a message telling them\n"
      "to reload.\n",
      1, 1, cmd_retire, retire_opts },
    { "attach-cert", "NAME CERT.pem [CHAIN.pem] [--no-chain-check] [--version N]",
      "Attach a certificate (leaf first, then its chain) to a key.  The leaf must\n"
      "certify the key's public key, and the server checks that each certificate\n"
      "was issued by the next one (issuer name and signature); the first link that\n"
      "does not fit is named.  Files may hold several PEM certificates.\n"
      "  --no-chain-check  store the chain without checking who issued what\n"
      "  --version N       attach to version N of the key (default: the current one)\n",
      2, 3, cmd_attach_cert, attach_opts },
    { "gen-master-key", "PATH",
      "Write a new random 32-byte master key to PATH (mode 0600); never overwrites.\n"
      "Runs locally, like keystored --gen-master-key.\n",
      1, 1, cmd_gen_master_key, NULL },
    { "client-keygen", "NAME -o FILE",
      "Create an X25519 key pair identifying a TCP client: the private key goes to FILE\n"
      "(mode 0600; never overwrites), and the line to add to the server's\n"
      "authorized_clients file ('NAME PUBLIC-KEY') is printed.  Runs locally.\n",
      1, 1, cmd_client_keygen, keygen_opts },
    { "server-pubkey", "KEYFILE",
      "Print the public key of a server key file (from keystored --gen-server-key),\n"
      "to pin in clients as server_public_key / KEYSTORE_SERVER_PUBKEY.  Runs locally.\n",
      1, 1, cmd_server_pubkey, NULL },
    { "status", "",
      "Show the server's health: uptime, keys, open connections by kind, operations\n"
      "by key, operation and result, p50/p99 latency per operation, errors, the last\n"
      "reload.  --json for scripts.  Admin socket only.\n",
      0, 0, cmd_status, NULL },
    { "metrics", "",
      "Print the status in the Prometheus text exposition format (for node_exporter's\n"
      "textfile collector or a scrape wrapper; keystored opens no HTTP port).  If the\n"
      "server does not answer, prints keystore_up 0 and exits 2.\n",
      0, 0, cmd_metrics, NULL },
    { "reload", "",
      "Make the server re-read its access list, authorized TCP clients and the\n"
      "certificate files in its key directory (like SIGHUP).  A new configuration\n"
      "with an error is refused whole: the old one stays, the server's message names\n"
      "FILE:LINE, and keystorectl exits 3.  keystored.conf itself is not re-read.\n",
      0, 0, cmd_reload, NULL },
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *opts[8] = { NULL };
    char *args[8];
    int opt, nargs, rc, r;
    size_t i;

    server_addr = getenv("KEYSTORE_ADMIN");
    if (server_addr == NULL || server_addr[0] == '\0')
        server_addr = NULL;   /* default below, after -s */
    /* "+": options after the command belong to the command */
    while ((opt = getopt_long(argc, argv, "+s:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': server_addr = optarg; break;
        case 'j': json_out = 1; break;
        case 'h': usage(stdout); return CTL_OK;
        case 'V': printf("keystorectl %s\n", KEYSTORE_VERSION); return CTL_OK;
        default: usage(stderr); return CTL_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CTL_USAGE;
    }
    if (server_addr == NULL) {
        const char *provider_server = getenv("KEYSTORE_SERVER");

        server_addr = KS_DEFAULT_ADMIN_SOCKET;
        /* KEYSTORE_SERVER is the provider's setting, not ours: when it names
         * a remote server, say so rather than silently list the local one */
        if (provider_server != NULL && ks_addr_is_tcp(provider_server))
            fprintf(stderr, "keystorectl: note: using the admin socket %s; KEYSTORE_SERVER (%s) "
                    "is the provider's setting (for a remote server: keystorectl -s %s ...)\n",
                    server_addr, provider_server, provider_server);
    }
    if (sodium_init() < 0) {
        ctl_err("libsodium failed to initialize");
        return CTL_INPUT;
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[optind], commands[i].name) != 0)
            continue;
        r = parse_cmd(&commands[i], argc - optind, argv + optind, args, &nargs, opts);
        if (r != 0)
            return r > 0 ? CTL_OK : CTL_USAGE;
        rc = commands[i].run(args, nargs, opts);
        ks_chan_close(conn);
        conn = NULL;
        if (fflush(stdout) != 0 && rc == CTL_OK) {
            ctl_err("writing the output failed");
            rc = CTL_INPUT;
        }
        return rc;
    }
    ctl_err("unknown command '%s' (see keystorectl --help)", argv[optind]);
    return CTL_USAGE;
}
