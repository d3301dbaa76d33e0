/* keystored: holds private keys and performs operations on them for
 * clients of the keystore OpenSSL provider.  The start-up sequence below is
 * ordered on purpose; each step says why it comes where it does. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "catalogue.h"
#include "channel.h"
#include "common/config.h"
#include "common/log.h"
#include "confhelper.h"
#include "offline.h"
#include "ops/acl.h"
#include "ops/audit.h"
#include "ops/dispatch.h"
#include "sandbox/confine.h"
#include "sandbox/harden.h"
#include "reload.h"
#include "sdlisten.h"
#include "sdnotify.h"
#include "server.h"
#include "store/keytable.h"
#include "store/masterkey.h"
#include "store/rotate.h"
#include "store/secure_heap.h"
#include "tcp_identity.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: keystored -c CONFIG [--dev] [--foreground]\n"
            "       keystored --gen-master-key PATH\n"
            "       keystored --gen-server-key PATH\n"
            "       keystored --rotate-master-key NEW.key -c CONFIG\n"
            "       keystored --backup FILE -c CONFIG\n"
            "       keystored --restore FILE -c CONFIG [--allow-rollback]\n"
            "\n"
            "  -c, --config CONFIG     configuration file (see keystored.conf.sample)\n"
            "      --dev               development mode: failing to lock memory or to\n"
            "                          create the secure heap is a warning, not fatal\n"
            "      --foreground        accepted for compatibility; keystored never forks\n"
            "      --gen-master-key P  write a new random %d-byte master key to P (mode 0600;\n"
            "                          never overwrites) and exit\n"
            "      --gen-server-key P  write a new X25519 key for the TCP listener to P (mode\n"
            "                          0600; never overwrites), print its public key, exit\n"
            "      --rotate-master-key NEW  re-seal every file of key_dir under the master key\n"
            "                          in NEW and make NEW the master_key (keystored stopped;\n"
            "                          crash-safe: the next start finishes or undoes it)\n"
            "      --backup FILE       write a sealed archive of key_dir that matches its\n"
            "                          manifest (the server may be running); never overwrites\n"
            "      --restore FILE      check the archive, then replace key_dir with it\n"
            "                          (keystored stopped)\n"
            "      --allow-rollback    let --restore put back an archive older than the\n"
            "                          rollback counter (the counter still only goes up)\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "Logs go to stderr.  SIGTERM or SIGINT shut the server down cleanly; SIGHUP\n"
            "re-reads the access list, the authorized clients and the certificates.\n"
            "Socket activation: listening sockets passed by systemd (LISTEN_FDS, named\n"
            "client and admin in LISTEN_FDNAMES) replace socket and admin_socket.\n",
            KS_MASTER_KEY_LEN);
}

static int gen_master_key(const char *path)
{
    char err[512];

    if (sodium_init() < 0) {
        ks_log("error: libsodium failed to initialize");
        return 1;
    }
    if (ks_master_key_generate(path, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return 1;
    }
    ks_log("wrote a new master key to %s (mode 0600); back it up: without it no key "
           "file can be read", path);
    return 0;
}

static int gen_server_key(const char *path)
{
    char err[512], pk64[KS_PUBKEY_B64_LEN + 1];
    uint8_t pk[32];

    if (sodium_init() < 0) {
        ks_log("error: libsodium failed to initialize");
        return 1;
    }
    if (ks_keyfile_generate(path, "keystored server key", pk, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return 1;
    }
    ks_pubkey_format(pk, pk64);
    ks_log("wrote a new server key to %s (mode 0600); set server_key = %s and pin this public "
           "key in clients (server_public_key / KEYSTORE_SERVER_PUBKEY):", path, path);
    printf("%s\n", pk64);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* Parse listen_tcp and open each address after the two Unix listeners. */
static int open_tcp_listeners(const struct ks_config *cfg, struct ks_listener *ls, int *n)
{
    char copy[sizeof(cfg->listen_tcp)], *tok, *save = NULL;

    snprintf(copy, sizeof(copy), "%s", cfg->listen_tcp);
    for (tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        if (*n >= 2 + KS_MAX_TCP_LISTENERS || ks_listener_open_tcp(&ls[*n], tok) != 0)
            return -1;
        (*n)++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "dev", no_argument, NULL, 'd' },
        { "foreground", no_argument, NULL, 'f' },
        { "gen-master-key", required_argument, NULL, 'g' },
        { "gen-server-key", required_argument, NULL, 'k' },
        { "rotate-master-key", required_argument, NULL, 'R' },
        { "backup", required_argument, NULL, 'B' },
        { "restore", required_argument, NULL, 'S' },
        { "allow-rollback", no_argument, NULL, 'A' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct ks_listener listeners[2 + KS_MAX_TCP_LISTENERS];
    static struct ks_config cfg;
    const char *config_path = NULL, *master_out = NULL, *server_key_out = NULL;
    const char *offline_arg = NULL;
    enum ks_offline_cmd offline = KS_OFFLINE_ROTATE;
    int dev = 0, opt, rc = 1, nls = 2, i, allow_rollback = 0, noffline = 0;

    for (i = 0; i < 2 + KS_MAX_TCP_LISTENERS; i++)
        listeners[i] = (struct ks_listener){ .fd = -1 };

    ks_log_init();
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'd': dev = 1; break;
        case 'f': break;
        case 'g': master_out = optarg; break;
        case 'k': server_key_out = optarg; break;
        case 'R': offline = KS_OFFLINE_ROTATE; offline_arg = optarg; noffline++; break;
        case 'B': offline = KS_OFFLINE_BACKUP; offline_arg = optarg; noffline++; break;
        case 'S': offline = KS_OFFLINE_RESTORE; offline_arg = optarg; noffline++; break;
        case 'A': allow_rollback = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("%s\n", KS_SERVER_VERSION); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "keystored: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    if (noffline > 1 || (noffline == 1 && (master_out != NULL || server_key_out != NULL))) {
        fprintf(stderr, "keystored: --rotate-master-key, --backup, --restore, --gen-master-key "
                "and --gen-server-key exclude each other\n");
        return 1;
    }
    if (allow_rollback && offline != KS_OFFLINE_RESTORE) {
        fprintf(stderr, "keystored: --allow-rollback goes with --restore\n");
        return 1;
    }
    if (server_key_out != NULL) {
        if (config_path != NULL || master_out != NULL) {
            fprintf(stderr, "keystored: --gen-server-key takes no other option\n");
            return 1;
        }
        return gen_server_key(server_key_out);
    }
    if (master_out != NULL) {
        if (config_path != NULL) {
            fprintf(stderr, "keystored: --gen-master-key does not take -c\n");
            return 1;
        }
        return gen_master_key(master_out);
    }
    if (config_path == NULL) {
        fprintf(stderr, "keystored: -c CONFIG is required\n");
        usage(stderr);
        return 1;
    }

    /* Termination signals are held until serving starts, so a SIGTERM during
     * start-up still leads to a clean shutdown (threads inherit the mask). */
    if (ks_block_signals() != 0)
        return 1;

    /* 1. Configuration. */
    if (ks_config_load(&cfg, config_path) != 0)
        return 1;
    if (noffline == 1)
        return ks_offline_run(&cfg, offline, offline_arg, allow_rollback);
    if (dev)
        ks_log("development mode (--dev): memory locking problems are not fatal");

    /* 1b. The configuration reader for reloads (confhelper.c): forked now,
     *     while single-threaded and before any secret is in memory, so the
     *     process that stays outside the jail never holds a key. */
    if (ks_confhelper_start(&cfg) != 0)
        return 1;

    /* 1c. catalogue = etcd: the agent that talks to etcd (catalogue_agent.c),
     *     forked for the same reason: it never holds the master key or a key. */
    if (ks_catalogue_start(&cfg) != 0)
        return 1;

    /* 2. No core dumps or ptrace by same-uid processes, before any secret exists.
     *    malloc must not need /proc once confined (see harden.h).
     *    While root, lift RLIMIT_MEMLOCK so steps 3 and 4 can lock everything. */
    if (ks_disable_core_dumps() != 0 || ks_tune_malloc() != 0)
        return 1;
    ks_raise_memlock_limit();

    /* 2b. The file helper, which will hold the key directory once the server
     *     is confined (sandbox/broker.h), is forked now: a copy of a process
     *     that holds no secret yet and has one thread. */
    if (ks_confine_start(&cfg) != 0)
        return 1;

    /* 3. Crypto libraries.  The secure heap must exist before any key is parsed:
     *    OpenSSL puts private BIGNUMs there. */
    /* Read openssl.cnf now: once confined, no file outside key_dir is reachable. */
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1) {
        ks_log("error: OpenSSL failed to initialize; check the configuration file named "
               "by OPENSSL_CONF (or the system openssl.cnf)");
        return 1;
    }
    if (sodium_init() < 0) {
        ks_log("error: libsodium failed to initialize");
        return 1;
    }
    if (ks_init_secure_heap(cfg.secure_heap, dev) != 0)
        return 1;

    /* 4. Keep every page (keys, stacks, heap) out of swap. */
    if (ks_lock_memory(dev) != 0)
        goto out;

    /* 5. Seed OpenSSL's DRBG now, while /dev/urandom and getrandom are
     *    certainly reachable (confinement may chroot later). */
    if (ks_seed_rng() != 0 || ks_rng_set_reseed(cfg.rng_reseed_seconds) != 0)
        goto out;

    /* 6. An interrupted master-key rotation is finished or undone first
     *    (store/rotate.h; this also takes the rollback counter's lock), so
     *    that master_key and key_dir match.  Then the master key:
     *    sodium_malloc'd, PROT_NONE except while (un)sealing. */
    if (ks_rotation_recover(cfg.master_key, cfg.key_dir, cfg.rollback_counter) != 0 ||
        ks_master_load(cfg.master_key) != 0)
        goto out;

    /* 7. Keys.  The key directory stays open as an fd for later writes. */
    if (ks_store_open(cfg.key_dir, cfg.rollback_counter) != 0)
        goto out;
    if (ks_secure_heap_size() > 0)
        ks_log("secure heap: %zu KiB of %zu MiB in use", CRYPTO_secure_used() / 1024,
               ks_secure_heap_size() >> 20);

    /* 8. Remote access and policy files: server key (locked memory), read
     *    now; authorized clients and access list through the configuration
     *    reader, as every reload will (reload.c); the audit log descriptor;
     *    the systemd notification socket (connected now: its path is
     *    outside the jail).
     *    Then the listeners (the worker threads follow in step 9, parked
     *    until step 10): Unix sockets passed by systemd socket activation
     *    if any (sdlisten.c), else bound here; TCP listeners are bound here. */
    if (ks_tcp_identity_load(&cfg) != 0 || ks_reload_initial(&cfg) != 0 ||
        ks_audit_open(&cfg) != 0 || ks_sd_notify_init() != 0)
        goto out;
    ks_acl_log_keys();   /* who may use each key, one line per key */
    if (ks_sd_listen_init() < 0)
        goto out;
    if (ks_listener_open(&listeners[0], cfg.socket, cfg.socket_mode, cfg.socket_group, 0) != 0 ||
        ks_listener_open(&listeners[1], cfg.admin_socket, 0600, NULL, 1) != 0 ||
        ks_sd_listen_finish() != 0 ||
        open_tcp_listeners(&cfg, listeners, &nls) != 0)
        goto out;

    /* 9. Confinement, in two steps around the creation of the worker
     *    threads: chroot and the privilege drop first, so the workers are
     *    born with the dropped credentials and the one capability kept
     *    (capabilities are per thread); then the seccomp filter on all
     *    threads (TSYNC), once no thread will ever be created again.
     *    Everything the server needs is open by now; the key directory is
     *    ks_store_dir_fd().  Implemented in confine.c. */
    if (ks_confine_jail(&cfg) != 0)
        goto out;
    if (ks_serve_prepare(&cfg, listeners, nls) != 0 || ks_catalogue_thread_start() != 0)
        goto out;
    if (ks_confine_syscalls(&cfg) != 0) {
        ks_serve_stop();
        goto out;
    }

    /* 10. Serve until SIGTERM/SIGINT. */
    if (ks_serve_run(&cfg) != 0)
        goto out;
    rc = 0;
out:
    /* Once confined (chroot) the socket paths are out of reach; the next
     * start removes the stale files instead. */
    for (i = 0; i < nls; i++)
        ks_listener_close(&listeners[i], !ks_confined());
    ks_audit_close();
    ks_sd_notify_close();
    ks_confhelper_stop();
    ks_tcp_identity_unload();
    /* records applied since the catalogue thread's last write: the state on
     * disk is exact after a clean stop (kill -9 only makes a restart apply
     * them again) */
    ks_store_catalogue_flush();
    ks_store_close();
    ks_master_unload();
    if (rc == 0)
        ks_log("stopped");
    return rc;
}
