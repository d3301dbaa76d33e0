/* Attack test of keystored's confinement: each case runs in a fresh child
 * that goes through the server's own start-up and confinement code in
 * daemon/main.c's order (config, hardening, key directory, audit log, jail
 * and privilege drop, a worker thread, seccomp) and then acts as injected
 * code would: it tries to leave the key directory, write names the server
 * never writes, map executable memory or erase the audit log.  Every case
 * must fail or kill the child (SIGSYS); one that succeeds is an escape.
 * The last case checks that the server's own file operations still work.
 *
 *   jail_escape CONFIG OUTSIDE_DIR
 * CONFIG is a keystored config (key_dir, jail, user, audit_log); the key
 * directory holds victim.key and the symlinks rel-link and abs-link planted
 * by tests/test_jail_escape.sh; OUTSIDE_DIR is a directory outside it that
 * the server's user may write (and holds the file "precious"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "common/config.h"
#include "common/log.h"
#include "ops/audit.h"
#include "sandbox/confine.h"
#include "sandbox/harden.h"
#include "sandbox/landlock.h"
#include "store/keytable.h"
#include "store/masterkey.h"
#include "store/sealed_file.h"

#define BLOCKED 0
#define ESCAPED 1
#define SETUP 2

static struct ks_config cfg;
static const char *outside;
static int keydir = -1, audit = -1;

/* The audit log's descriptor, found as injected code would: by its target. */
static int find_fd_of(const char *path)
{
    char link[64], target[KS_CONF_PATH_MAX];
    int fd;

    for (fd = 3; fd < 256; fd++) {
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, path) == 0)
            return fd;
    }
    return -1;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;)
        sleep(1000);   /* clock_nanosleep: allowed, like a parked worker */
    return NULL;
}

/* daemon/main.c's steps 1-9, minus the listeners. */
static void start_like_keystored(const char *config)
{
    pthread_t t;

    ks_log_init();
    if (ks_config_load(&cfg, config) != 0 || ks_disable_core_dumps() != 0 ||
        ks_tune_malloc() != 0 || ks_confine_start(&cfg) != 0)
        _exit(SETUP);
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1 || sodium_init() < 0)
        _exit(SETUP);
    /* the master key seals the key directory's manifest, written at open */
    if (ks_seed_rng() != 0 || ks_master_load(cfg.master_key) != 0 ||
        ks_store_open(cfg.key_dir, cfg.rollback_counter) != 0 || ks_audit_open(&cfg) != 0)
        _exit(SETUP);
    keydir = ks_store_dir_fd();
    audit = find_fd_of(cfg.audit_log);
    if (keydir < 0 || audit < 0 || write(audit, "first line\n", 11) != 11)
        _exit(SETUP);
    if (ks_confine_jail(&cfg) != 0)
        _exit(SETUP);
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        _exit(SETUP);
    if (ks_confine_syscalls(&cfg) != 0)
        _exit(SETUP);
}

/* The file helper's Landlock ruleset alone (no chroot, no seccomp, still
 * root): the second layer must hold the key directory by itself. */
static void landlock_only(const char *config)
{
    char err[256];

    if (ks_config_load(&cfg, config) != 0 || sodium_init() < 0 ||
        ks_master_load(cfg.master_key) != 0 || ks_store_open(cfg.key_dir, cfg.rollback_counter) != 0)
        _exit(SETUP);
    keydir = ks_store_dir_fd();
    if (ks_landlock_restrict(keydir, err, sizeof(err)) <= 0) {
        fprintf(stderr, "jail_escape: Landlock: %s\n", err);
        _exit(SETUP);
    }
}

static int opened(int fd, const char *what)
{
    if (fd < 0) {
        fprintf(stderr, "  %s: %s\n", what, strerror(errno));
        return BLOCKED;
    }
    fprintf(stderr, "  %s: opened (fd %d)\n", what, fd);
    return ESCAPED;
}

static int ok_call(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "  %s: %s\n", what, strerror(errno));
        return BLOCKED;
    }
    fprintf(stderr, "  %s: succeeded\n", what);
    return ESCAPED;
}

static int host_passwd(int fd, const char *what)
{
    char buf[5] = "";

    if (fd < 0)
        return opened(fd, what);
    if (read(fd, buf, 4) == 4 && memcmp(buf, "root", 4) == 0) {
        fprintf(stderr, "  %s: read the host's /etc/passwd\n", what);
        return ESCAPED;
    }
    return opened(fd, what);
}

static const char UP[] = "../../../../../../../../";

static int dotdot_read(void)
{
    char p[256];

    snprintf(p, sizeof(p), "%setc/passwd", UP);
    return host_passwd(openat(keydir, p, O_RDONLY | O_CLOEXEC), "openat(keydir, ../../etc/passwd)");
}

static int dotdot_create(void)
{
    char p[KS_CONF_PATH_MAX + 64];

    snprintf(p, sizeof(p), "%s%s/created", UP, outside + 1);
    return opened(openat(keydir, p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600),
                  "openat(keydir, ../outside/created, O_CREAT)");
}

static int dotdot_rename(void)
{
    char p[KS_CONF_PATH_MAX + 64];

    snprintf(p, sizeof(p), "%s%s/stolen.key", UP, outside + 1);
    return ok_call(renameat(keydir, "victim.key", keydir, p), "renameat(victim.key, ../outside)");
}

static int dotdot_unlink(void)
{
    char p[KS_CONF_PATH_MAX + 64];

    snprintf(p, sizeof(p), "%s%s/precious", UP, outside + 1);
    return ok_call(unlinkat(keydir, p, 0), "unlinkat(keydir, ../outside/precious)");
}

static int rel_symlink(void)
{
    return host_passwd(openat(keydir, "rel-link", O_RDONLY | O_CLOEXEC),
                       "openat(keydir, rel-link -> ../../etc/passwd)");
}

static int abs_symlink(void)
{
    return host_passwd(openat(keydir, "abs-link", O_RDONLY | O_CLOEXEC),
                       "openat(keydir, abs-link -> /etc/passwd)");
}

static int proc_self_root(void)
{
    char p[256];
    int r;

    snprintf(p, sizeof(p), "%sproc/self/root/etc/passwd", UP);
    r = host_passwd(openat(keydir, p, O_RDONLY | O_CLOEXEC), "openat(keydir, ../proc/self/root)");
    if (r == BLOCKED)
        r = host_passwd(open("/proc/self/root/etc/passwd", O_RDONLY | O_CLOEXEC),
                        "open(/proc/self/root/etc/passwd)");
    return r;
}

/* Reopening a descriptor through its magic link can widen its mode. */
static int proc_self_fd(void)
{
    char p[256];

    snprintf(p, sizeof(p), "%sproc/self/fd/%d", UP, keydir);
    return opened(openat(keydir, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
                  "openat(keydir, ../proc/self/fd/KEYDIR)");
}

static int hard_link(void)
{
    char p[KS_CONF_PATH_MAX + 64];

    snprintf(p, sizeof(p), "%s%s/hardlink.key", UP, outside + 1);
    return ok_call(linkat(keydir, "victim.key", keydir, p, 0), "linkat(victim.key, ../outside)");
}

static int o_path(void)
{
    int fd = openat(keydir, "..", O_PATH | O_CLOEXEC);

    if (fd >= 0)
        return opened(fd, "openat(keydir, .., O_PATH)");
    return opened(openat(keydir, "victim.key", O_PATH | O_CLOEXEC), "openat(victim.key, O_PATH)");
}

static int openat2_plain(void)
{
    struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = 0 };
    char p[256];

    snprintf(p, sizeof(p), "%setc/passwd", UP);
    return host_passwd((int)syscall(SYS_openat2, keydir, p, &how, sizeof(how)),
                       "openat2(keydir, ../../etc/passwd, resolve 0)");
}

/* A file the server would never write, inside the key directory. */
static int foreign_name(void)
{
    return opened(openat(keydir, "planted.so", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600),
                  "openat(keydir, planted.so, O_CREAT)");
}

/* The store's own helpers carry no name check of their own: whatever
 * enforces the file names must refuse these. */
static int store_helper_names(void)
{
    static const char *const bad[] = { "planted.so", "../escape.key", "victim.key/x", "" };
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ks_write_file_atomic_at(keydir, bad[i], ".victim.tmp", (const uint8_t *)"x", 1,
                                    err, sizeof(err)) == 0) {
            fprintf(stderr, "  ks_write_file_atomic_at('%s'): written\n", bad[i]);
            return ESCAPED;
        }
        fprintf(stderr, "  ks_write_file_atomic_at('%s'): %s\n", bad[i], err);
    }
    return BLOCKED;
}

static int mmap_exec(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);

    if (p == MAP_FAILED)
        return ok_call(-1, "mmap(PROT_EXEC)");
    return ok_call(0, "mmap(PROT_READ|PROT_WRITE|PROT_EXEC)");
}

static int mprotect_exec(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        _exit(SETUP);
    return ok_call(mprotect(p, 4096, PROT_READ | PROT_EXEC), "mprotect(PROT_READ|PROT_EXEC)");
}

static int audit_truncate(void)
{
    int r = ok_call(ftruncate(audit, 0), "ftruncate(audit log, 0)");

    if (r == BLOCKED && write(audit, "after\n", 6) != 6)
        return ok_call(-1, "write(audit log) after the failed truncation");
    return r;
}

/* Clearing O_APPEND would let the next write land on old lines. */
static int audit_clear_append(void)
{
    int fl;

    if (fcntl(audit, F_SETFL, 0) != 0)
        return ok_call(-1, "fcntl(audit log, F_SETFL, 0)");
    fl = fcntl(audit, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND) == 0) {
        lseek(audit, 0, SEEK_SET);
        if (write(audit, "XXXXX", 5) == 5)
            fprintf(stderr, "  overwrote the audit log's first line\n");
        return ok_call(0, "fcntl(audit log, F_SETFL, 0) cleared O_APPEND");
    }
    return ok_call(-1, "fcntl(audit log, F_SETFL, 0) left O_APPEND");
}

static int ll_truncate(void)
{
    return opened(openat(keydir, "victim.key", O_WRONLY | O_TRUNC | O_CLOEXEC),
                  "openat(victim.key, O_TRUNC)");
}

static int ll_symlink(void)
{
    return ok_call(symlinkat("/etc/passwd", keydir, "new-link"), "symlinkat(keydir, new-link)");
}

static int ll_proc_fd(void)
{
    char p[64];

    snprintf(p, sizeof(p), "/proc/self/fd/%d", keydir);
    return opened(open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open(/proc/self/fd/KEYDIR)");
}

/* Planted symlinks under the server's own names: the helper replaces the
 * link, it never writes through it. */
static int helper_over_symlinks(void)
{
    char err[256];

    if (ks_write_file_atomic_at(keydir, "sym.key", ".sym.tmp", (const uint8_t *)"new", 3,
                                err, sizeof(err)) != 0)
        fprintf(stderr, "  writing sym.key: %s\n", err);
    else
        fprintf(stderr, "  wrote sym.key (the link itself was replaced)\n");
    return BLOCKED;   /* the shell checks that outside/precious is unchanged */
}

/* Not an attack: what the confined server does must keep working. */
static int server_file_ops(void)
{
    char err[256];
    uint8_t *buf;
    size_t len;

    if (ks_write_file_atomic_at(keydir, "fresh.key", ".fresh.tmp", (const uint8_t *)"k1", 2,
                                err, sizeof(err)) != 0 ||
        ks_write_file_atomic_at(keydir, "fresh.crt", ".fresh.crt.tmp", (const uint8_t *)"c1", 2,
                                err, sizeof(err)) != 0) {
        fprintf(stderr, "  writing fresh.key/.crt: %s\n", err);
        return ESCAPED;
    }
    if (ks_read_file_at(keydir, "fresh.crt", 64, &buf, &len, err, sizeof(err)) != 0 ||
        len != 2 || memcmp(buf, "c1", 2) != 0) {
        fprintf(stderr, "  reading fresh.crt back failed\n");
        return ESCAPED;
    }
    free(buf);
    if (ks_read_file_at(keydir, "rel.crt", 64, &buf, &len, err, sizeof(err)) == 0) {
        fprintf(stderr, "  read through the planted symlink rel.crt\n");
        return ESCAPED;
    }
    fprintf(stderr, "  the server wrote and read fresh.key/fresh.crt; the symlink rel.crt: %s\n",
            err);
    return BLOCKED;
}

struct attack {
    const char *name;
    int (*fn)(void);
};

int main(int argc, char **argv)
{
    static const struct attack attacks[] = {
        { "'..' from the key directory (read the host's /etc/passwd)", dotdot_read },
        { "'..' from the key directory (create a file outside)", dotdot_create },
        { "'..' from the key directory (rename a key file outside)", dotdot_rename },
        { "'..' from the key directory (delete a file outside)", dotdot_unlink },
        { "relative symlink planted in the key directory", rel_symlink },
        { "absolute symlink planted in the key directory", abs_symlink },
        { "/proc/self/root", proc_self_root },
        { "/proc/self/fd/N", proc_self_fd },
        { "hard link of a key file to outside", hard_link },
        { "O_PATH descriptors", o_path },
        { "openat2 without RESOLVE_ flags", openat2_plain },
        { "a file name the server never writes", foreign_name },
        { "the store's write helper with foreign names", store_helper_names },
        { "mmap PROT_EXEC", mmap_exec },
        { "mprotect to PROT_EXEC", mprotect_exec },
        { "truncating the audit log", audit_truncate },
        { "clearing the audit log's O_APPEND", audit_clear_append },
        { "the file helper asked to write over planted symlinks", helper_over_symlinks },
    };
    static const struct attack landlock_attacks[] = {
        { "'..' from the key directory (read)", dotdot_read },
        { "'..' from the key directory (create)", dotdot_create },
        { "'..' from the key directory (rename)", dotdot_rename },
        { "'..' from the key directory (delete)", dotdot_unlink },
        { "relative symlink", rel_symlink }, { "absolute symlink", abs_symlink },
        { "/proc/self/fd/N", ll_proc_fd }, { "hard link to outside", hard_link },
        { "O_TRUNC of a key file", ll_truncate }, { "creating a symlink", ll_symlink },
    };
    size_t nl = sizeof(landlock_attacks) / sizeof(landlock_attacks[0]);
    size_t i;
    int failures = 0, st;
    pid_t pid;

    if (argc != 3) {
        fprintf(stderr, "usage: jail_escape CONFIG OUTSIDE_DIR\n");
        return 2;
    }
    outside = argv[2];
    if (outside[0] != '/') {
        fprintf(stderr, "jail_escape: OUTSIDE_DIR must be absolute\n");
        return 2;
    }
    for (i = 0; i <= sizeof(attacks) / sizeof(attacks[0]); i++) {
        int last = i == sizeof(attacks) / sizeof(attacks[0]);
        const char *name = last ? "the server's own file operations" : attacks[i].name;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            start_like_keystored(argv[1]);
            _exit(last ? server_file_ops() : attacks[i].fn());
        }
        if (waitpid(pid, &st, 0) < 0)
            return 2;
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) {
            printf("ok: %s: killed by SIGSYS\n", name);
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == BLOCKED) {
            printf("ok: %s: %s\n", name, last ? "work" : "refused");
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == ESCAPED) {
            printf("FAIL: %s: %s\n", name, last ? "broken" : "ESCAPED");
            failures++;
        } else {
            printf("FAIL: %s: child status %d (setup failed?)\n", name, st);
            failures++;
        }
        fflush(stdout);
    }
    for (i = 0; i < nl; i++) {
        fflush(NULL);
        pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            landlock_only(argv[1]);
            _exit(landlock_attacks[i].fn());
        }
        if (waitpid(pid, &st, 0) < 0)
            return 2;
        if (WIFEXITED(st) && WEXITSTATUS(st) == BLOCKED) {
            printf("ok: Landlock alone: %s: refused\n", landlock_attacks[i].name);
        } else {
            printf("FAIL: Landlock alone: %s: %s (status %d)\n", landlock_attacks[i].name,
                   WIFEXITED(st) && WEXITSTATUS(st) == ESCAPED ? "ESCAPED" : "setup", st);
            failures++;
        }
        fflush(stdout);
    }
    return failures == 0 ? 0 : 1;
}
