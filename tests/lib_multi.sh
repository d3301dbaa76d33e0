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
trap 'ms_cleanup; cleanup' EXIT
