/* Proves keystored's seccomp filters (the same ks_seccomp_install the server
 * calls, and the file helper's ks_seccomp_install_files): in forked
 * children, forbidden calls die with SIGSYS, also from a thread that existed
 * before the filter (TSYNC), while the calls each process needs keep
 * working.  Prints one line per case; exit 0 if all hold. */
#include "sandbox/seccomp_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int keydir = -1;

static void install(void)
{
    char err[256];

    if (ks_seccomp_install(err, sizeof(err)) != 0) {
        fprintf(stderr, "seccomp_test: %s\n", err);
        _exit(3);
    }
}

static void install_agent(void)
{
    char err[256];

    if (ks_seccomp_install_agent(err, sizeof(err)) != 0) {
        fprintf(stderr, "seccomp_test: %s\n", err);
        _exit(3);
    }
}

/* The catalogue agent: no file at all (opens fail, the key directory's
 * files included), TCP sockets work. */
static void agent_unlinkat(void) { syscall(SYS_unlinkat, keydir, "k.key", 0); }
static void agent_renameat(void) { syscall(SYS_renameat, keydir, "k.key", keydir, "x.key"); }
static void agent_packet(void) { syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0); }
static void agent_netlink(void) { syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0); }

static int allowed_agent_calls(void)
{
    int fd, s;

    install_agent();
    fd = (int)syscall(SYS_openat, keydir, "k.key", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 || errno != EACCES)
        return 10;   /* the key directory's file must stay out of reach */
    fd = (int)syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
    if (fd >= 0 || errno != EACCES)
        return 11;
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 12;
    close(s);
    return 0;
}

static void install_files(void)
{
    char err[256];

    if (ks_seccomp_install_files(keydir, err, sizeof(err)) != 0) {
        fprintf(stderr, "seccomp_test: %s\n", err);
        _exit(3);
    }
}

static void do_open(void) { syscall(SYS_open, "/etc/passwd", O_RDONLY); }
static void do_openat_cwd(void) { syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY); }
static void do_execve(void)
{
    char *argv[] = { "/bin/true", NULL };

    syscall(SYS_execve, "/bin/true", argv, NULL);
}
static void do_socket(void) { syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); }
static void do_ptrace(void) { syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL); }
static void do_fork(void) { syscall(SYS_fork); }
static void do_openat_keydir(void) { syscall(SYS_openat, keydir, "k.key", O_RDONLY); }
static void do_sendmsg(void)
{
    struct msghdr mh;

    memset(&mh, 0, sizeof(mh));
    syscall(SYS_sendmsg, 1, &mh, 0);
}
/* the shared-memory rings need recvmsg, but only with exactly
 * MSG_DONTWAIT | MSG_CMSG_CLOEXEC: a blocking or descriptor-leaking receive dies */
static void do_recvmsg_blocking(void)
{
    struct msghdr mh;

    memset(&mh, 0, sizeof(mh));
    syscall(SYS_recvmsg, 0, &mh, 0);
}
static void do_fcntl_add_seals(void) { syscall(SYS_fcntl, 1, F_ADD_SEALS, F_SEAL_SEAL); }
static void do_ftruncate(void) { syscall(SYS_ftruncate, 1, 0); }
static void do_fcntl_setfl(void) { syscall(SYS_fcntl, 1, F_SETFL, 0); }
static void do_mmap_exec(void)
{
    syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
/* the file helper's filter */
static void files_open_path(void) { syscall(SYS_openat, keydir, ".", O_PATH | O_CLOEXEC); }
static void files_open_rdwr(void) { syscall(SYS_openat, keydir, "k.key", O_RDWR | O_CLOEXEC); }
static void files_open_trunc(void)
{
    syscall(SYS_openat, keydir, "k.key", O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
}
static void files_open_follow(void) { syscall(SYS_openat, keydir, "k.key", O_RDONLY | O_CLOEXEC); }
static void files_open_cwd(void)
{
    syscall(SYS_openat, AT_FDCWD, "k.key", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}
static void files_linkat(void) { syscall(SYS_linkat, keydir, "a", keydir, "b", 0); }
static void files_symlinkat(void) { syscall(SYS_symlinkat, "/etc", keydir, "l"); }
static void files_socket(void) { do_socket(); }

static void *late_socket(void *arg)
{
    (void)arg;
    sleep(1);          /* the main thread installs the filter meanwhile */
    do_socket();
    return NULL;
}
static void do_thread_socket(void) { }

/* What the server does all day must keep working. */
static int allowed_calls(void)
{
    int sv[2], ep, fd;
    char buf[64];
    unsigned char rnd[32];
    struct timespec ts;
    struct epoll_event ev = { .events = EPOLLIN };
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    void *big;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || (ep = epoll_create1(0)) < 0)
        return 10;
    ev.data.fd = sv[1];
    /* as the server does: OpenSSL initialised and its DRBG seeded before the filter */
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return 9;
    install();
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev) != 0) return 11;
    if (send(sv[0], "ping", 4, MSG_NOSIGNAL) != 4) return 12;
    if (epoll_wait(ep, &ev, 1, 1000) != 1) return 13;
    if (recv(sv[1], buf, sizeof(buf), 0) != 4) return 14;
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) return 15;
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) return 16;
    if ((big = malloc(8 << 20)) == NULL) return 17;
    memset(big, 1, 8 << 20);
    free(big);
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 18;
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    (void)fd;
    fprintf(stderr, "seccomp_test: allowed calls work\n");
    return 0;
}

/* What the file helper does for the store (store/keydir.c). */
static int allowed_file_calls(void)
{
    char buf[8];
    void *big;
    int fd;

    install_files();
    fd = openat(keydir, ".k.tmp", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return 19;
    if (write(fd, "x", 1) != 1 || fsync(fd) != 0 || close(fd) != 0) return 20;
    if (renameat(keydir, ".k.tmp", keydir, "k.key") != 0) return 21;
    if (fsync(keydir) != 0) return 22;
    fd = openat(keydir, "k.key", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || read(fd, buf, sizeof(buf)) != 1 || close(fd) != 0) return 23;
    if (unlinkat(keydir, "k.key", 0) != 0) return 24;
    if ((big = malloc(8 << 20)) == NULL) return 25;
    memset(big, 1, 8 << 20);
    free(big);
    return 0;
}

struct kcase { const char *name; void (*fn)(void); int files; };

int main(int argc, char **argv)
{
    static const struct kcase kills[] = {
        { "open", do_open }, { "openat outside the key directory", do_openat_cwd },
        { "execve", do_execve }, { "socket", do_socket }, { "ptrace", do_ptrace },
        { "fork", do_fork }, { "socket from a thread started before the filter", do_thread_socket },
        { "openat relative to the key directory (the file helper's job)", do_openat_keydir },
        { "sendmsg (could pass descriptors)", do_sendmsg }, { "ftruncate", do_ftruncate },
        { "fcntl(F_SETFL)", do_fcntl_setfl }, { "mmap PROT_EXEC", do_mmap_exec },
        { "recvmsg without MSG_DONTWAIT|MSG_CMSG_CLOEXEC", do_recvmsg_blocking },
        { "fcntl(F_ADD_SEALS)", do_fcntl_add_seals },
        { "file helper: openat O_PATH", files_open_path, 1 },
        { "file helper: openat O_RDWR", files_open_rdwr, 1 },
        { "file helper: openat O_TRUNC", files_open_trunc, 1 },
        { "file helper: openat without O_NOFOLLOW", files_open_follow, 1 },
        { "file helper: openat outside the key directory's fd", files_open_cwd, 1 },
        { "file helper: linkat", files_linkat, 1 },
        { "file helper: symlinkat", files_symlinkat, 1 },
        { "file helper: socket", files_socket, 1 },
        { "file helper: mmap PROT_EXEC", do_mmap_exec, 1 },
        { "catalogue agent: execve", do_execve, 2 },
        { "catalogue agent: fork", do_fork, 2 },
        { "catalogue agent: ptrace", do_ptrace, 2 },
        { "catalogue agent: unlinkat in the key directory", agent_unlinkat, 2 },
        { "catalogue agent: renameat in the key directory", agent_renameat, 2 },
        { "catalogue agent: packet socket", agent_packet, 2 },
        { "catalogue agent: netlink socket", agent_netlink, 2 },
        { "catalogue agent: mmap PROT_EXEC", do_mmap_exec, 2 },
    };
    size_t i;
    int failures = 0, st;
    pid_t pid;

    if (argc != 2) {
        fprintf(stderr, "usage: seccomp_test KEYDIR\n");
        return 2;
    }
    if ((keydir = open(argv[1], O_RDONLY | O_DIRECTORY)) < 0) {
        perror(argv[1]);
        return 2;
    }
    for (i = 0; i < sizeof(kills) / sizeof(kills[0]); i++) {
        pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            if (kills[i].fn == do_thread_socket) {
                pthread_t t;

                if (pthread_create(&t, NULL, late_socket, NULL) != 0)
                    _exit(4);
                install();
                pthread_join(t, NULL);
            } else {
                if (kills[i].files == 2)
                    install_agent();
                else if (kills[i].files)
                    install_files();
                else
                    install();
                kills[i].fn();
            }
            _exit(0);   /* survived: the filter let the call through */
        }
        if (waitpid(pid, &st, 0) < 0)
            return 2;
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) {
            printf("ok: %s killed the process with SIGSYS\n", kills[i].name);
        } else {
            printf("FAIL: %s was not killed by SIGSYS (status %d)\n", kills[i].name, st);
            failures++;
        }
    }
    pid = fork();
    if (pid == 0)
        _exit(allowed_calls());
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return 2;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        printf("ok: the calls keystored needs succeed under the filter\n");
    } else {
        printf("FAIL: allowed calls: status %d (exit %d, signal %d)\n", st,
               WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        failures++;
    }
    pid = fork();
    if (pid == 0)
        _exit(allowed_file_calls());
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return 2;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        printf("ok: the calls the file helper needs succeed under its filter\n");
    } else {
        printf("FAIL: file helper calls: status %d (exit %d, signal %d)\n", st,
               WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        failures++;
    }
    pid = fork();
    if (pid == 0)
        _exit(allowed_agent_calls());
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return 2;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        printf("ok: under the agent's filter every open fails with EACCES (the key directory's "
               "file too) and TCP sockets work\n");
    } else {
        printf("FAIL: agent calls: status %d (exit %d, signal %d)\n", st,
               WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        failures++;
    }
    return failures == 0 ? 0 : 1;
}
