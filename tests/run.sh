#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need
# (qemu-img/qemu-io as the oracle; cryptsetup for LUKS headers; Ceph's mon, osd, CLI tools and librados,
# and QEMU's rbd driver; for the VM boot test qemu-system-x86 of qemu-img's
# very version, a Debian kernel and debootstrap), then builds and runs every
# test. The Ceph tests
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

# After cluster.sh install, which adds bookworm-backports when qemu-img
# comes from there: qemu-system-x86 must be qemu-img's very version (they
# share qemu-block-extra's rbd module), with its dependencies from the same
# suite.
qver=$(qemu-img --version | sed -n '1s/.*(Debian \(.*\))$/\1/p')
if [[ -n $qver && $(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null) != "$qver" ]]; then
    suite=()
    [[ $qver != *bpo12* ]] || suite=(-t bookworm-backports)
    apt_install --no-install-recommends "${suite[@]}" "qemu-system-x86=$qver"
fi
vm=()
for p in linux-image-amd64 debootstrap; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || vm+=("$p")
done
if ((${#vm[@]})); then
    apt_install --no-install-recommends "${vm[@]}"
fi

cargo test --locked --all-targets
