#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need
# (qemu-img/qemu-io as the oracle; cryptsetup for LUKS headers; Ceph's mon, osd, CLI tools and librados,
# and QEMU's rbd driver), then builds and runs every test. The Ceph tests
# start and stop their own single-node clusters on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    # Installs Debian packages once, quietly, as root (CI and dev machines).
    [ "$(id -u)" = 0 ] || { echo "tests/run.sh: need root to install $*" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! have qemu-img || ! have qemu-io; then
    apt_install qemu-utils
fi
if ! have cryptsetup; then
    apt_install cryptsetup-bin
fi
bash tests/ceph/cluster.sh install

cargo test --locked --all-targets
