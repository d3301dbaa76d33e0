#!/usr/bin/env python3
"""Start a program the way systemd socket activation does.

usage: sd_launch.py [--no-names] [--wrong-pid] [NAME=]PATH[:MODE]... -- COMMAND [ARGS...]

Binds and listens on each Unix socket PATH (file mode MODE, default 0666),
puts the sockets on descriptors 3, 4, ... in the order given, sets
LISTEN_FDS, LISTEN_PID (this process, which exec keeps) and LISTEN_FDNAMES
(the NAMEs, colon-separated; an empty NAME is passed as systemd's default
"unknown"), then execs COMMAND.  --no-names leaves LISTEN_FDNAMES unset;
--wrong-pid sets LISTEN_PID to another process, as a parent that forgot to
clear it would.
"""
import os
import socket
import sys


def main(argv):
    names_on, wrong_pid, specs = True, False, []
    args = argv[1:]
    while args and args[0] != "--":
        a = args.pop(0)
        if a == "--no-names":
            names_on = False
        elif a == "--wrong-pid":
            wrong_pid = True
        else:
            name, _, rest = a.partition("=") if not a.startswith("/") else ("", "", a)
            path, _, mode = rest.partition(":")
            specs.append((name or "unknown", path, int(mode or "0666", 8)))
    if not args or not specs or len(args) < 2:
        sys.exit(__doc__)
    command = args[1:]

    socks = []
    for name, path, mode in specs:
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, mode)
        s.listen(128)
        socks.append(s)
    # park them above the target range so no dup2 overwrites another socket
    parked = [os.dup2(s.fileno(), 200 + i) for i, s in enumerate(socks)]
    for s in socks:
        s.close()
    for i, fd in enumerate(parked):
        os.dup2(fd, 3 + i, inheritable=True)
        os.close(fd)

    env = dict(os.environ)
    env["LISTEN_FDS"] = str(len(specs))
    env["LISTEN_PID"] = str(os.getppid() if wrong_pid else os.getpid())
    if names_on:
        env["LISTEN_FDNAMES"] = ":".join(n for n, _, _ in specs)
    else:
        env.pop("LISTEN_FDNAMES", None)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv)
