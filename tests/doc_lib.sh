# Sourced by the scripts tests/doc_blocks.py makes (run by tests/test_docs.sh):
# what a reader does by hand beside the documented commands.

DOC_SERVED=()
DOC_SERVED_CMDS=()
doc_stop_served() {
    local p
    for p in "${DOC_SERVED[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${DOC_SERVED[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap doc_stop_served EXIT

# doc_serve WHERE COMMAND: a command that serves until stopped (a reader
# runs it in another terminal): start it, wait until it is ready, go on.
doc_serve() {
    local where=$1 cmd=$2 log pid i
    log=$(mktemp "$DOC_WORK/serve.XXXXXX")
    bash -c "exec $cmd" >"$log" 2>&1 &
    pid=$!
    DOC_SERVED+=("$pid")
    DOC_SERVED_CMDS+=("$where"$'\t'"$cmd")
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "doc-test: $where: '$cmd' exited" >&2; return 1; }
        case $cmd in
        keystored*)
            # ready once its admin socket answers
            keystorectl list >/dev/null 2>&1 && return 0 ;;
        *s_server*)
            local port; port=$(sed -n 's/.*-accept \([0-9]*\).*/\1/p' <<<"$cmd")
            # a reader tries it, then stops it: the port is free for the next example
            if ss -ltnH "sport = :$port" 2>/dev/null | grep -q .; then
                kill "$pid"; wait "$pid" 2>/dev/null || true
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
    tar -C "$DOC_STAGE" -cf - . | tar -C / -xf - --keep-directory-symlink
    systemd-sysusers /usr/lib/sysusers.d/keystored.conf
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/keystored.conf
    keystored --gen-master-key /etc/keystored/master.key >/dev/null
    cp /etc/keystored/keystored.conf.sample /etc/keystored/keystored.conf
}

# doc_running: installed, and keystored started as the README starts it.
doc_running() {
    doc_installed
    doc_serve README.md 'keystored -c /etc/keystored/keystored.conf'
}
