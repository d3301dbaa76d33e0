#!/bin/sh
# Installs what keystore needs to build and test on Debian 12 (run as root).
set -eu
PKGS="meson ninja-build pkg-config gcc clang libc6-dev openssl libssl-dev \
protobuf-c-compiler libprotobuf-c-dev libsodium-dev libseccomp-dev python3 procps"
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
