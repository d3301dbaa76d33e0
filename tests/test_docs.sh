#!/usr/bin/env bash
# test_docs.sh [DOC...]: the documents' commands work as written (default:
# README.md).  Each document's command blocks (```sh; a man page's EXAMPLES)
# run in order, as root, with the real paths they name (/etc/keystored,
# /run/keystored, /var/lib/keystored, /usr/...), inside a private mount and
# network namespace whose /usr, /etc, /var, /run and /root are overlays of the
# machine's: the install, the users, the files and the ports the commands
# make exist only there and vanish with it.  The README's own install command
# builds and installs from a copy of this source tree; the other documents
# start where the README leaves a reader (installed, and `keystored -c` running
# where they say so: the doc_installed / doc_running notes), from one build
# the doc tests share.  Blocks that cannot run on one machine say why
# (<!-- doc-test: skip: REASON -->, see tests/doc_blocks.py); the test lists
# them and counts, per document, the blocks that ran and those skipped.
# docs/web-servers.md's blocks are run by tests/test_web_servers.sh (with
# Debian's web servers); here each of them must be one that test runs.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "this test runs as root (mount namespace, install into /usr)"
unset OPENSSL_MODULES KEYSTORE_SERVER KEYSTORE_ADMIN OPENSSL_CONF
[ $# -gt 0 ] || set -- README.md
SRC=$KS_SOURCE_ROOT

# --- the README's two commands come first (what it is and why, then these)
check_readme_head() {
    local first
    first=$(awk '/^```/ { if (inside) exit; inside = 1; next } inside' "$SRC/README.md" \
        | sed 's/[[:space:]]*#.*//; /^[[:space:]]*$/d')
    [ "$first" = $'./demo.sh\ntests/run.sh' ] \
        || fail "README.md's first command block must be ./demo.sh and tests/run.sh, it is: $first"
    [ -x "$SRC/demo.sh" ] && [ -x "$SRC/tests/run.sh" ] || fail "demo.sh or tests/run.sh is not executable"
    # they are run, not here: test_demo runs demo.sh as the README does, and
    # .ci/run is tests/run.sh, which ends with the summary line
    grep -q "'demo' : 'test_demo.sh'" "$SRC/tests/meson.build" || fail "no test runs demo.sh"
    grep -q 'exec tests/run.sh' "$SRC/.ci/run" || fail ".ci/run does not run tests/run.sh"
    grep -q 'passed, .* failed' "$SRC/tests/run.sh" || fail "tests/run.sh prints no 'N passed, N failed'"
    pass "README.md opens with ./demo.sh and tests/run.sh (run by test_demo and .ci/run)"
}

# --- every keystorectl command that --help lists is in keystorectl(1)
check_ctl_man() {
    local cmds c missing=
    cmds=$("$KEYSTORECTL" --help 2>&1 | sed -n 's/^  \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p' | sort -u)
    [ "$(wc -w <<<"$cmds")" -ge 10 ] || fail "could not read the commands from keystorectl --help: $cmds"
    for c in $cmds; do
        # a command is a .TP entry: .B name, or .BI "name " ARGS
        grep -Eq "^\.BI? \"?$(sed 's/-/\\\\-/g' <<<"$c")( |\"|$)" "$SRC/docs/man/keystorectl.1" \
            || missing+=" $c"
    done
    [ -z "$missing" ] || fail "keystorectl --help lists commands keystorectl(1) does not describe:$missing"
    pass "keystorectl(1) describes every command of keystorectl --help ($(wc -w <<<"$cmds"))"
}

# --- docs/web-servers.md: every sh block is one test_web_servers runs
check_web_servers() {
    local doc=$SRC/docs/web-servers.md labels n=0 l
    labels=$(awk '/^<!-- test:[a-z-]+ -->$/ { l = $2; next }
                  /^```sh/ { print (l ? l : "-"); l = ""; next }
                  /^./ { l = "" }' "$doc" | sed 's/^test://')
    for l in $labels; do
        [ "$l" != - ] || fail "docs/web-servers.md has a sh block without <!-- test:LABEL --> for test_web_servers"
        grep -q "^doc_run $l\$" "$SRC/tests/test_web_servers.sh" \
            || fail "docs/web-servers.md block '$l' is not run by tests/test_web_servers.sh"
        n=$((n + 1))
    done
    echo "   doc-done docs/web-servers.md: $n blocks, run by test_web_servers (Debian's nginx, Apache, HAProxy)"
    pass "docs/web-servers.md: every command block is run by test_web_servers"
}

# --- the extraction catches what it must: a failing command anywhere in a
# block, a failing setup, an untyped block of commands, a skip without reason
check_self() {
    local d="$T/self" out
    mkdir -p "$d/work"
    selfrun() {   # selfrun NAME TEXT: extract and run a document; its status
        printf '%s\n' "$2" > "$d/$1.md"
        python3 "$SRC/tests/doc_blocks.py" "$d/$1.md" "$1.md" > "$d/$1.sh" 2> "$d/$1.err" || return 2
        (cd "$d/work" && DOC_WORK="$d/work" bash -c '. "$1"; . "$2"' x "$SRC/tests/doc_lib.sh" "$d/$1.sh") \
            > "$d/$1.out" 2>&1
    }
    local fence='```'
    selfrun good "$(printf '%ssh\ntrue\n%s' "$fence" "$fence")" || fail "self-test: a block of 'true' failed"
    for body in 'false\ntrue' 'false | cat' 'cat missing-file\necho after'; do
        if selfrun bad "$(printf "%ssh\n$body\n%s" "$fence" "$fence")"; then
            fail "self-test: a block '$body' passed"
        fi
    done
    if selfrun setup "$(printf '<!-- doc-test: setup: false -->\n%ssh\ntrue\n%s' "$fence" "$fence")"; then
        fail "self-test: a failing setup passed"
    fi
    grep -q 'the setup "false" failed' "$d/setup.out" || fail "self-test: a failing setup is not named: $(cat "$d/setup.out")"
    local rc=0
    selfrun untyped "$(printf '%s\nkeystorectl list\n%s' "$fence" "$fence")" || rc=$?
    [ $rc = 2 ] && grep -q 'reads like commands' "$d/untyped.err" || fail "self-test: an untyped block of commands was not refused"
    rc=0
    selfrun noreason "$(printf '<!-- doc-test: skip -->\n%ssh\ntrue\n%s' "$fence" "$fence")" || rc=$?
    [ $rc = 2 ] || fail "self-test: a skip without a reason was accepted"
    pass "self-test: failing commands, setups, untyped command blocks and skips without reason are caught"
}

# --- every document is one a doc test runs (a new one too)
check_all_registered() {
    local f missing=
    for f in "$SRC"/docs/*.md "$SRC"/docs/man/*.[1-8]; do
        f=${f#"$SRC/"}
        grep -q "'$f'" "$SRC/tests/meson.build" || missing+=" $f"
    done
    [ -z "$missing" ] || fail "no doc test runs:$missing (add each to doc_tests in tests/meson.build)"
    pass "every document in docs/ and docs/man/ is run by a doc test"
}

# --- the install the documents other than the README start from: one build
# configured as the README's install is (--prefix=/usr), installed into a
# staging directory that the doc tests share.  The README's run makes it (its
# own install command builds exactly that: no second build); a doc test run
# without it, or after the source changed, builds it.  A lock orders them:
# the README's run takes it first and holds it until it has published.
SHARED=$KS_BUILD_ROOT/doc-test-system
source_stamp() {
    git -C "$SRC" ls-files -z --cached --others --exclude-standard \
        | (cd "$SRC" && xargs -0 sha256sum 2>/dev/null) | sha256sum | cut -d' ' -f1
}
shared_lock() {
    exec 8>"$SHARED.lock"
    flock 8
}
shared_unlock() { flock -u 8; exec 8>&-; }
publish_stage() {   # publish_stage BUILDDIR: its install becomes the shared stage
    rm -rf "$SHARED/stage.new"
    mkdir -p "$SHARED"
    meson install --no-rebuild --quiet -C "$1" --destdir "$SHARED/stage.new" > "$T/publish.log" 2>&1 \
        || { tail -20 "$T/publish.log" >&2; return 1; }
    rm -rf "$SHARED/stage"
    mv "$SHARED/stage.new" "$SHARED/stage"
    echo "$STAMP" > "$SHARED/stage.stamp"
}
DOC_STAGE=
shared_install() {
    local b="$SHARED/build"
    # a README run started with this one goes first: it builds what we need
    [ "${DOC_WAITED:-}" ] || { sleep 2; DOC_WAITED=1; }
    shared_lock
    if [ "$(cat "$SHARED/stage.stamp" 2>/dev/null)" != "$STAMP" ]; then
        {
            [ -f "$b/build.ninja" ] || meson setup "$b" "$SRC" --prefix=/usr
            # what meson install installs, not the tests' own programs
            meson compile -C "$b" keystored keystorectl keystore
        } > "$T/shared-build.log" 2>&1 && publish_stage "$b" \
            || { shared_unlock; tail -30 "$T/shared-build.log" >&2; fail "building the install the documents start from"; }
    fi
    # a copy, so that a doc test starting later cannot change it under this one
    cp -a "$SHARED/stage" "$T/stage"
    shared_unlock
    DOC_STAGE=$T/stage
}

# a copy of the source tree to build from (the README says: meson setup build ...)
copy_source() {
    mkdir -p "$T/src"
    git -C "$SRC" ls-files -z --cached --others --exclude-standard \
        | (cd "$SRC" && xargs -0 cp --parents -t "$T/src" 2>/dev/null) \
        || fail "copying the source tree"
}

tag_of() { tr '/.' '__' <<<"$1"; }

run_doc() {   # run_doc DOC: its blocks in fresh namespaces; output in $T/TAG.log
    local doc=$1 tag; tag=$(tag_of "$doc")
    local u="$T/ns-$tag"
    python3 "$SRC/tests/doc_blocks.py" "$SRC/$doc" "$doc" > "$T/$tag.sh" 2> "$T/$tag.log" \
        || return 1
    if [ -z "$DOC_STAGE" ] && grep -q "doc_[a-z_]*installed\\|doc_running" "$T/$tag.sh"; then
        shared_install
    fi
    mkdir -p "$u/work" "$u/home"
    for d in usr etc var run root; do mkdir -p "$u/$d.up" "$u/$d.work"; done
    unshare --mount --net --propagation private bash -c '
        set -e
        u=$1; script=$2; src=$3
        ip link set lo up
        for d in usr etc var run root; do
            mount -t overlay overlay -o "lowerdir=/$d,upperdir=$u/$d.up,workdir=$u/$d.work" "/$d"
        done
        mkdir -p /run/keystore-doc-test
        cd "$src"
        exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME="$u/home" LANG=C.UTF-8 DOC_WORK="$u/work" DOC_STAGE="$5" \
            bash -c ". \"\$1\"; . \"\$2\"" doc-test "$4" "$script"
    ' ns "$u" "$T/$tag.sh" "$T/src" "$SRC/tests/doc_lib.sh" "$DOC_STAGE" >> "$T/$tag.log" 2>&1
}

STAMP=$(source_stamp)
case " $* " in *" README.md "*) shared_lock ;; esac     # until its install is published
copy_source
failed=0
for doc in "$@"; do
    case $doc in
    README.md) check_self; check_all_registered; check_readme_head; check_ctl_man ;;
    docs/web-servers.md) check_web_servers; continue ;;
    esac
    log="$T/$(tag_of "$doc").log"
    if run_doc "$doc"; then
        if [ "$doc" = README.md ]; then
            publish_stage "$T/src/build-system" || fail "installing README.md's build for the other doc tests"
            shared_unlock
        fi
        grep -E '^doc-(skip|done|none)' "$log" | sed 's/^/   /'
        pass "$doc: every command block ran as written"
    else
        echo "---- $doc: last lines of its run:" >&2
        tail -40 "$log" >&2
        block=$(grep '^doc-block ' "$log" | tail -1 || true)
        echo "FAIL: $doc: a command failed in ${block#doc-block }" >&2
        failed=1
    fi
done
[ "$failed" = 0 ] || fail "some documented commands do not work as written"
