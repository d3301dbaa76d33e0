# Helpers for tests with several keystored servers (the provider's server
# list, provider/servers.c); source after lib.sh (and lib_remote.sh for TCP).
# Each server lives in $T/NAME with its own keys, sockets and log.
declare -A MS_PID=()
MS_TOP=$T

# ms_start NAME [CONFIG-LINE...]: start (or restart) keystored NAME.
ms_start() {
    local name=$1; shift
    mkdir -p "$MS_TOP/$name"
    local saved_server=${KEYSTORE_SERVER:-} saved_admin=${KEYSTORE_ADMIN:-}
    T=$MS_TOP/$name
    ks_start "$@"
    MS_PID[$name]=$KS_PID
    KS_PID=
    T=$MS_TOP
    export KEYSTORE_SERVER=$saved_server KEYSTORE_ADMIN=$saved_admin
}

# ms_start_tcp NAME [CONFIG-LINE...]: keystored NAME listening on TCP
# 127.0.0.1 too, with its own server key; the client key $MS_TOP/client.key
# is authorized on every such server and may use every key.  A restart
# keeps the port.  Sets MS_TCP[NAME] to "tcp:127.0.0.1:PORT@SERVER_PUBKEY".
declare -A MS_TCP=() MS_PORT=()
ms_start_tcp() {
    local name=$1 dir=$MS_TOP/$1 pub; shift
    mkdir -p "$dir"
    if [ ! -f "$MS_TOP/client.key" ]; then
        "$KEYSTORECTL" client-keygen fe -o "$MS_TOP/client.key" 2>/dev/null > "$MS_TOP/client.pub" \
            || fail "client-keygen"
    fi
    [ -f "$dir/server.key" ] || "$KEYSTORED" --gen-server-key "$dir/server.key" >/dev/null 2>&1 \
        || fail "gen-server-key $name"
    cp "$MS_TOP/client.pub" "$dir/authorized_clients"
    echo "*  sign,decrypt  uid:0 tcp:*" > "$dir/acl"
    ms_start "$name" "listen_tcp = tcp:127.0.0.1:${MS_PORT[$name]:-0}" \
        "server_key = $dir/server.key" "authorized_clients = $dir/authorized_clients" \
        "acl = $dir/acl" "$@"
    local port
    port=$(grep -o 'listening on tcp:127\.0\.0\.1:[0-9]*' "$dir/keystored.log" | sed 's/.*://')
    pub=$(grep -o 'TCP server public key: [^ ]*' "$dir/keystored.log" | sed 's/.*: //')
    [ -n "$port" ] && [ -n "$pub" ] || { cat "$dir/keystored.log"; fail "$name: no TCP listener"; }
    MS_PORT[$name]=$port
    MS_TCP[$name]="tcp:127.0.0.1:$port@$pub"
}

# The client and admin addresses of server NAME.
ms_addr() { echo "unix:$MS_TOP/$1/ks.sock"; }
ms_ctl() { local name=$1; shift; "$KEYSTORECTL" -s "unix:$MS_TOP/$name/admin.sock" "$@"; }

# ms_kill NAME [SIGNAL]: stop server NAME (default SIGKILL) and wait for it.
ms_kill() {
    local pid=${MS_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill "-${2:-KILL}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    MS_PID[$1]=
}

# Signatures server NAME made with key KEY since it started (keystorectl status).
ms_signs() {
    ms_ctl "$1" --json status | /usr/bin/python3 -c '
import json, sys
st = json.load(sys.stdin)
print(sum(o.get("count", 0) for o in st.get("operations", [])
          if o.get("op") == "sign" and o.get("key") == sys.argv[1] and o.get("result") == "ok"))' "$2"
}

ms_cleanup() {
    local name
    for name in "${!MS_PID[@]}"; do ms_kill "$name" TERM; done
}
trap 'ms_rc=$?; ms_cleanup; (exit $ms_rc); cleanup' EXIT
