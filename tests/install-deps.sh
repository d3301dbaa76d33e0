#!/bin/sh
# Installs what keystore needs to build and test on Debian 12 (run as root).
set -eu
PKGS="meson ninja-build pkg-config gcc clang libc6-dev openssl libssl-dev \
protobuf-c-compiler libprotobuf-c-dev libsodium-dev libseccomp-dev python3 python3-cryptography procps strace util-linux passwd \
systemd man-db groff-base binutils \
nginx haproxy apache2 curl gnutls-bin \
libcurl4-openssl-dev libjson-c-dev etcd-server etcd-client"
# keystored drops to this user after start-up (like a package's postinst would)
if [ "$(id -u)" = 0 ] && ! id -u keystored >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin keystored
fi
# the group of the client socket (socket_group, SocketGroup=)
if [ "$(id -u)" = 0 ] && ! getent group keystore >/dev/null; then
    groupadd --system keystore
fi
missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# nginx, apache2 and haproxy are installed for the tests, which start them on
# loopback ports of their own: keep their packages from starting the system
# services (on port 80) while they install, unless the machine already has a
# policy for that (containers usually do)
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# tests/install-deps.sh: no service starts while it installs\nexit 101\n' \
        > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
fi
trap '[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# the catalogue tests start etcd members of their own on free loopback ports;
# the packaged etcd service (2379/2380) is not wanted on a build machine
case " $missing " in
*" etcd-server "*)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now etcd >/dev/null 2>&1 || true
    fi ;;
esac
