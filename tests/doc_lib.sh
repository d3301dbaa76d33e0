# Sourced by the scripts tests/doc_blocks.py makes (run by tests/test_docs.sh):
# what a reader does by hand beside the documented commands.

DOC_SERVED=()
DOC_SERVED_CMDS=()
doc_stop_served() {
    local p
    for p in "${DOC_SERVED[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${DOC_SERVED[@]}"; do wait "$p" 2>/dev/null || true; done
    # one doc_no_systemd's systemctl started
    p=$(cat "$DOC_PIDFILE" 2>/dev/null) && kill "$p" 2>/dev/null || true
}
DOC_PIDFILE=/run/keystore-doc-test/keystored.pid
trap doc_stop_served EXIT

# doc_serve WHERE COMMAND: a command that serves until stopped (a reader
# runs it in another terminal): start it, wait until it is ready, go on.
# A keystored serves until the document ends; an s_server until the end of
# its block (doc_block_end), so that a client in the same block can talk to
# it and the port is free for the next example.
DOC_BLOCK_SERVED=()
doc_serve() {
    local where=$1 cmd=$2 log pid i
    log=$(mktemp "$DOC_WORK/serve.XXXXXX")
    bash -c "exec $cmd" >"$log" 2>&1 </dev/null &
    pid=$!
    DOC_SERVED+=("$pid")
    DOC_SERVED_CMDS+=("$where"$'\t'"$cmd")
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "doc-test: $where: '$cmd' exited" >&2; return 1; }
        case $cmd in
        keystored*)
            # ready once its admin socket answers
            keystorectl list >/dev/null 2>&1 && { echo "$pid" > "$DOC_PIDFILE"; return 0; } ;;
        etcd*)
            # ready once its client port listens (the block then waits for health)
            local cport; cport=$(sed -n 's/.*--listen-client-urls https\{0,1\}:\/\/[^ ]*:\([0-9]*\).*/\1/p' <<<"$cmd")
            [ -n "$cport" ] || { echo "doc-test: $where: no --listen-client-urls port in '$cmd'" >&2; return 1; }
            ss -ltnH "sport = :$cport" 2>/dev/null | grep -q . && return 0 ;;
        *s_server*)
            local port; port=$(sed -n 's/.*-accept \([0-9]*\).*/\1/p' <<<"$cmd")
            if ss -ltnH "sport = :$port" 2>/dev/null | grep -q .; then
                DOC_BLOCK_SERVED+=("$pid")
                return 0
            fi ;;
        *)
            [ "$i" -ge 20 ] && return 0 ;;
        esac
        sleep 0.05
    done
    cat "$log" >&2
    echo "doc-test: $where: '$cmd' did not become ready in 10 s" >&2
    return 1
}

# doc_block_end: the reader stops what the block started in another
# terminal (an s_server), after checking it still ran.
doc_block_end() {
    local p
    for p in "${DOC_BLOCK_SERVED[@]}"; do
        kill -0 "$p" 2>/dev/null || { echo "doc-test: a server of this block exited early" >&2; return 1; }
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    DOC_BLOCK_SERVED=()
}

# doc_restart: what "restart keystored" means by hand: stop every served
# keystored and start it again with the same command.
doc_restart() {
    local i entry cmds=()
    for i in "${!DOC_SERVED_CMDS[@]}"; do
        entry=${DOC_SERVED_CMDS[$i]}
        case ${entry#*$'\t'} in
        keystored*)
            kill "${DOC_SERVED[$i]}" 2>/dev/null || true
            wait "${DOC_SERVED[$i]}" 2>/dev/null || true
            cmds+=("$entry") ;;
        esac
    done
    for entry in "${cmds[@]}"; do
        # a confined keystored cannot remove its sockets (outside its jail)
        rm -f /run/keystored/keystored.sock /run/keystored/admin.sock
        doc_serve "${entry%%$'\t'*}" "${entry#*$'\t'}"
    done
}

# doc_installed: where README.md's "Installing system-wide" leaves a reader
# (a document other than the README starts there): the build of
# tests/test_docs.sh installed, the accounts, directories, master key and
# configuration made as the README's commands make them.
doc_installed() {
    doc_meson_installed
    keystored --gen-master-key /etc/keystored/master.key >/dev/null
    cp /etc/keystored/keystored.conf.sample /etc/keystored/keystored.conf
}

# doc_meson_installed: only the packages, meson install, the accounts and
# directories (operations.md section 1 before its master key).
doc_meson_installed() {
    doc_files_installed
    systemd-sysusers /usr/lib/sysusers.d/keystored.conf
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/keystored.conf
}

# doc_files_installed: meson install's files only.
doc_files_installed() {
    tar -C "$DOC_STAGE" -cf - . | tar -C / -xf - --keep-directory-symlink
}

# doc_running: installed, and keystored started as the README starts it.
doc_running() {
    doc_installed
    doc_serve README.md 'keystored -c /etc/keystored/keystored.conf'
}

# Certificates the text takes for granted ("have it signed by your CA").
# doc_ca NAME: a CA of one's own, NAME.key and NAME.crt, in the current directory.
doc_ca() {
    OPENSSL_CONF=/dev/null openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1.key" -subj "/CN=$1" -days 30 -out "$1.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -addext subjectKeyIdentifier=hash 2>/dev/null
}
# doc_issue KEY CA OUT: the keystore key KEY's certificate OUT, issued by doc_ca CA.
doc_issue() {
    OPENSSL_CONF=/dev/null openssl req -provider default -provider keystore -new \
        -key "keystore:$1" -subj "/CN=$1" \
        | OPENSSL_CONF=/dev/null openssl x509 -req -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
            -days 30 -out "$3" 2>/dev/null
}

# doc_fill FILE TEXT VALUE: the reader replaces the placeholder TEXT in FILE
# by what it stands for (a fill note, tests/doc_blocks.py).
doc_fill() {
    local f=$1 ph=$2 val=$3
    [ -n "$val" ] || { echo "doc-test: nothing to put in place of '$ph' in $f" >&2; return 1; }
    PH=$ph VAL=$val awk '{ while ((i = index($0, ENVIRON["PH"])) > 0)
        $0 = substr($0, 1, i - 1) ENVIRON["VAL"] substr($0, i + length(ENVIRON["PH"])); print }' \
        "$f" > "$f.fill" && cat "$f.fill" > "$f" && rm -f "$f.fill"
}

# doc_no_systemd: there is no systemd in the test's namespace; what
# "systemctl start|stop|restart|reload|status keystored" and "journalctl -u
# keystored" do, done by hand as operations.md's "Start it without systemd"
# does (stderr to /var/log/keystored.log).  The units themselves are tested
# by test_install and test_socket_activation.
doc_no_systemd() {
    cat > /usr/local/sbin/systemctl <<'SHIM'
#!/bin/bash
# doc-test (tests/doc_lib.sh doc_no_systemd): systemctl for keystored, by hand
set -eu
pidf=/run/keystore-doc-test/keystored.pid
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
stop() {
    local pid; pid=$(cat "$pidf" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
    rm -f "$pidf" /run/keystored/keystored.sock /run/keystored/admin.sock
}
start() {
    keystored -c /etc/keystored/keystored.conf 2>>/var/log/keystored.log </dev/null >/dev/null &
    echo $! > "$pidf"
    for _ in $(seq 200); do
        alive "$!" || { tail -5 /var/log/keystored.log >&2; exit 1; }
        keystorectl list >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    exit 1
}
[ $# -ge 2 ] || { echo "doc-test systemctl: $*: not done by hand" >&2; exit 1; }
case "$1" in
stop) stop ;;
start) start ;;
restart) stop; start ;;
reload) kill -HUP "$(cat "$pidf")" ;;
status) alive "$(cat "$pidf")" && echo "keystored (pid $(cat "$pidf")) is running" ;;
*) echo "doc-test systemctl: $*: not done by hand" >&2; exit 1 ;;
esac
SHIM
    cat > /usr/local/bin/journalctl <<'SHIM'
#!/bin/bash
# doc-test (tests/doc_lib.sh doc_no_systemd): keystored's log without a journal
case " $* " in *" -f "*) echo "doc-test journalctl: -f follows forever" >&2; exit 1 ;; esac
cat /var/log/keystored.log
SHIM
    chmod 0755 /usr/local/sbin/systemctl /usr/local/bin/journalctl
}

# doc_sign CSR CA OUT: "the CA returns OUT" (the CA of doc_ca CA).
doc_sign() {
    OPENSSL_CONF=/dev/null openssl x509 -req -in "$1" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
        -days 90 -out "$3" 2>/dev/null
}
