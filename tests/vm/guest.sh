#!/bin/bash
# The VM boot test's guest side (tests/ceph/vm.rs).
#
#   guest.sh rootfs OUT.qcow2   build the guest's root filesystem, once: Debian
#                               bookworm (debootstrap --variant=minbase, from the
#                               mirror apt uses here) with /rbdimg-init as PID 1,
#                               made into a 1 GiB ext4 image by mke2fs -d, as qcow2
#   guest.sh kernel DIR         the kernel and an initramfs that can mount an ext4
#                               root on virtio-blk (the stock one if it can, else
#                               one made with mkinitramfs), as DIR/vmlinuz and
#                               DIR/initrd.img (links or files)
#
# Nothing is downloaded but Debian packages; the outputs are written beside
# their final names and renamed into place, so an interrupted build leaves
# nothing a later run would take for finished.
set -euo pipefail

die() { echo "guest.sh: $*" >&2; exit 1; }

# The mirror this machine uses for Debian bookworm (as tests/ceph/cluster.sh
# finds it), unless $RBDIMG_TEST_MIRROR names one.
mirror() {
    if [[ -n ${RBDIMG_TEST_MIRROR:-} ]]; then echo "$RBDIMG_TEST_MIRROR"; return; fi
    local m
    m=$(apt-cache policy 2>/dev/null | awk '$3 ~ /^bookworm\// {u = $2; next}
        u && /o=Debian,/ && /n=bookworm,/ {print u; exit} {u = ""}' || true)
    echo "${m:-http://deb.debian.org/debian}"
}

# PID 1 of the guest: "rbdimg=write" on the kernel command line writes
# /marker, "rbdimg=check" reports whether it exists; either way the result
# goes to the serial console and the guest powers off.
init_script() {
    cat <<'INIT'
#!/bin/sh
mount -t proc proc /proc
case "$(cat /proc/cmdline)" in
*rbdimg=write*) echo "written by the VM boot test" >/marker && sync && echo "RBDIMG-RESULT: wrote" ;;
*rbdimg=check*) if [ -e /marker ]; then echo "RBDIMG-RESULT: present"; else echo "RBDIMG-RESULT: absent"; fi ;;
*) echo "RBDIMG-RESULT: no mode" ;;
esac
mount -o remount,ro / ; sync
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
# Only builtins from here on: the disk is going away.
while :; do :; done
INIT
}

cmd_rootfs() {
    local out=$1
    [[ -e $out ]] && return 0
    command -v debootstrap >/dev/null || die "debootstrap is missing (tests/run.sh installs it)"
    work=$(mktemp -d "$(dirname "$out")/rootfs-build.XXXXXX")
    trap 'rm -rf "${work:-}"' EXIT
    if ! debootstrap --variant=minbase bookworm "$work/tree" "$(mirror)" >"$work/log" 2>&1; then
        tail -20 "$work/log" >&2; die "debootstrap failed"
    fi
    init_script >"$work/tree/rbdimg-init"
    chmod 755 "$work/tree/rbdimg-init"
    mke2fs -q -t ext4 -d "$work/tree" -F "$work/rootfs.raw" 1G
    qemu-img convert -f raw -O qcow2 "$work/rootfs.raw" "$work/rootfs.qcow2"
    mv "$work/rootfs.qcow2" "$out"
}

cmd_kernel() {
    local dir=$1 vmlinuz version initrd
    vmlinuz=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)
    [[ -n $vmlinuz ]] || die "no kernel in /boot (tests/run.sh installs linux-image-amd64)"
    version=${vmlinuz#/boot/vmlinuz-}
    initrd=/boot/initrd.img-$version
    mkdir -p "$dir"
    ln -sf "$vmlinuz" "$dir/vmlinuz"
    local files=""
    [[ -e $initrd ]] && files=$(lsinitramfs "$initrd")
    if [[ $files == */virtio_blk.ko* && $files == */ext4.ko* ]]; then
        ln -sf "$initrd" "$dir/initrd.img"
        return 0
    fi
    [[ -e $dir/initrd-$version.img ]] || {
        local conf; conf=$(mktemp -d)
        cp -r /etc/initramfs-tools/. "$conf/"
        printf 'virtio_pci\nvirtio_blk\next4\n' >>"$conf/modules"
        mkinitramfs -d "$conf" -o "$dir/initrd-$version.partial" "$version"
        rm -rf "$conf"
        mv "$dir/initrd-$version.partial" "$dir/initrd-$version.img"
    }
    ln -sf "initrd-$version.img" "$dir/initrd.img"
}

case "${1:-}" in
    rootfs) [[ $# -eq 2 ]] || die "usage: $0 rootfs OUT.qcow2"; cmd_rootfs "$2" ;;
    kernel) [[ $# -eq 2 ]] || die "usage: $0 kernel DIR"; cmd_kernel "$2" ;;
    *) die "usage: $0 rootfs OUT.qcow2 | kernel DIR" ;;
esac
