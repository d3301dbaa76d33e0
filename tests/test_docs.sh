#!/usr/bin/env bash
# The documents' commands work as written.  Each document's ```sh blocks run
# in order, as root, with the real paths they name (/etc/keystored,
# /run/keystored, /var/lib/keystored, /usr/...), inside a private mount
# namespace whose /usr, /etc, /var and /run are overlays of the machine's: the
# install, the users and the files the commands make exist only there and
# vanish with it.  The README's own install command builds and installs from
# a copy of this source tree.  Blocks that cannot run on one machine say so
# (<!-- doc-test: skip: REASON -->, see tests/doc_blocks.py); the test lists
# them.  A document a test of its own runs (docs/web-servers.md) is not
# repeated here.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "this test runs as root (mount namespace, install into /usr)"
unset OPENSSL_MODULES KEYSTORE_SERVER KEYSTORE_ADMIN OPENSSL_CONF

DOCS=(README.md)

# a copy of the source tree to build from (the README says: meson setup build ...)
mkdir -p "$T/src"
git -C "$KS_SOURCE_ROOT" ls-files -z --cached --others --exclude-standard \
    | (cd "$KS_SOURCE_ROOT" && xargs -0 cp --parents -t "$T/src" 2>/dev/null) \
    || fail "copying the source tree"

run_doc() {   # run_doc DOC: its blocks in a fresh namespace; output in $T/DOC.log
    local doc=$1 tag; tag=$(tr '/.' '__' <<<"$doc")
    local u="$T/ns-$tag"
    python3 "$KS_SOURCE_ROOT/tests/doc_blocks.py" "$KS_SOURCE_ROOT/$doc" "$doc" > "$T/$tag.sh" \
        || fail "$doc: cannot extract its blocks"
    mkdir -p "$u/work" "$u/home"
    for d in usr etc var run; do mkdir -p "$u/$d.up" "$u/$d.work"; done
    unshare --mount --propagation private bash -c '
        set -e
        u=$1; script=$2; src=$3
        for d in usr etc var run; do
            mount -t overlay overlay -o "lowerdir=/$d,upperdir=$u/$d.up,workdir=$u/$d.work" "/$d"
        done
        mkdir -p /run/keystore-doc-test
        cd "$src"
        exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME="$u/home" LANG=C.UTF-8 DOC_WORK="$u/work" \
            bash -c ". \"\$1\"; . \"\$2\"" doc-test "$4" "$script"
    ' ns "$u" "$T/$tag.sh" "$T/src" "$KS_SOURCE_ROOT/tests/doc_lib.sh" > "$T/$tag.log" 2>&1
}

failed=0
for doc in "${DOCS[@]}"; do
    if run_doc "$doc"; then
        grep -E '^doc-(skip|done|none)' "$T/$(tr '/.' '__' <<<"$doc").log" | sed 's/^/   /'
        pass "$doc: every command block ran as written"
    else
        log="$T/$(tr '/.' '__' <<<"$doc").log"
        echo "---- $doc: last lines of its run:" >&2
        tail -40 "$log" >&2
        block=$(grep '^doc-block ' "$log" | tail -1)
        echo "FAIL: $doc: a command failed in ${block#doc-block }" >&2
        failed=1
    fi
done
[ "$failed" = 0 ] || fail "some documented commands do not work as written"
