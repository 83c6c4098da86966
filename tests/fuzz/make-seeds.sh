#!/usr/bin/env bash
# Makes the seed corpus of the fuzz targets, corpus/<target>/, from small
# images that qemu-img and qemu-io make (nothing binary is committed), and
# for the name and cls targets, the stable harness's seeds:
#   qcow2_open    whole images (512-byte to 16 KiB clusters, a few KiB each)
#   qcow2_header  their first KiB, and the first KiB of a 64 KiB-cluster image
#   qcow2_tables  their snapshot tables, bitmap directory, L2 tables and
#                 refcount blocks, behind the target's 5-byte prefix
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# mk NAME SIZE OPTIONS [qemu-io command...]
mk() {
    local name=$1 size=$2 opts=$3
    shift 3
    qemu-img create -q -f qcow2 ${opts:+-o "$opts"} "$name.qcow2" "$size"
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    if [ ${#args[@]} -gt 0 ]; then
        qemu-io -f qcow2 "${args[@]}" "$name.qcow2" >/dev/null
    fi
}

mk v2 1M compat=0.10,cluster_size=512 'write -P 1 0 3k' 'write -P 2 100k 700'
mk v3 1M cluster_size=512 'write -P 1 0 3k' 'write -z 4k 2k' 'write -P 3 64k 1k' 'discard 64k 512'
mk rc1 1M cluster_size=1k,refcount_bits=1 'write -P 1 0 5k'
mk rc64 1M cluster_size=512,refcount_bits=64 'write -P 1 1k 2k'
mk zlib 1M cluster_size=512 'write -c -P 1 0 512' 'write -c -P 2 1k 512' 'write -P 3 2k 512'
mk zstd 1M cluster_size=512,compression_type=zstd 'write -c -P 1 0 512' 'write -c -P 2 512 512'
mk el2 256k cluster_size=16k,extended_l2=on 'write -P 1 0 1k' 'write -z 2k 2k' 'write -P 2 20k 5k'
mk snap 1M cluster_size=512 'write -P 1 0 2k'
qemu-img snapshot -c first snap.qcow2
qemu-io -f qcow2 -c 'write -P 2 512 1k' snap.qcow2 >/dev/null
qemu-img snapshot -c second snap.qcow2
mk bitmap 1M cluster_size=512 'write -P 1 0 1k'
qemu-img bitmap --add -g 64k bitmap.qcow2 b0
mk lazy 1M cluster_size=512,lazy_refcounts=on 'write -P 1 0 1k'
mk meta 64k cluster_size=512,preallocation=metadata
mk datafile 1M cluster_size=512,data_file=datafile.raw 'write -P 1 0 1k'
qemu-img create -q -f qcow2 -o cluster_size=512 -u -b base.qcow2 -F qcow2 backing.qcow2 1M
mk big 1M ''

rm -rf "$here/corpus"
mkdir -p "$here/corpus/qcow2_open" "$here/corpus/qcow2_header" "$here/corpus/qcow2_tables"
for f in *.qcow2; do
    [ "$f" = big.qcow2 ] || cp "$f" "$here/corpus/qcow2_open/$f"
    head -c 1024 "$f" >"$here/corpus/qcow2_header/$f"
done

python3 - "$here/corpus/qcow2_tables" <<'PY'
import struct, sys, glob, os
out = sys.argv[1]
def be(fmt, b, at): return struct.unpack_from('>' + fmt, b, at)[0]
for path in sorted(glob.glob('*.qcow2')):
    if path == 'big.qcow2':
        continue
    img = open(path, 'rb').read()
    img += bytes(max(0, (1 << 17) - len(img)))
    version, cbits = be('I', img, 4), be('I', img, 20)
    cs = 1 << cbits
    incompat = be('Q', img, 72) if version >= 3 else 0
    order = be('I', img, 96) if version >= 3 else 4
    ext = 2 if incompat & 16 else 0
    def seed(tag, count, flags, table):
        prefix = struct.pack('>HBBB', count, flags | ext, cbits - 9, order)
        open(os.path.join(out, f'{path}.{tag}'), 'wb').write(prefix + table)
    nb_snap, snap_off = be('I', img, 60), be('Q', img, 64)
    if nb_snap:
        seed('snapshots', nb_snap, 0, img[snap_off:snap_off + 4096])
        seed('snapshots-repair', nb_snap, 1, img[snap_off:snap_off + 4096])
    l1 = be('Q', img, 40)
    l2 = be('Q', img, l1) & 0x00fffffffffffe00
    if l2:
        seed('l2', 0, 0, img[l2:l2 + cs])
    rb = be('Q', img, be('Q', img, 48))
    if rb:
        seed('refblock', 0, 0, img[rb:rb + cs])
    at = be('I', img, 100) if version >= 3 else 72
    while at + 8 <= cs:
        magic, length = be('I', img, at), be('I', img, at + 4)
        if magic == 0:
            break
        if magic == 0x23852875:
            nb, size, off = be('I', img, at + 8), be('Q', img, at + 16), be('Q', img, at + 24)
            seed('bitmaps', nb, 0, img[off:off + size])
        at += 8 + (length + 7) // 8 * 8
PY
# The other targets' seeds are the ones the stable harness starts from.
(cd "$here/../.." && RBDIMG_FUZZ_CORPUS_OUT="$here/corpus" RBDIMG_FUZZ_ITERS=0 \
    cargo test -q --test fuzz -- luks_header luks2_header rbd_name image_name cls_reply \
    cls_server >/dev/null)
echo "seeds: $(find "$here/corpus" -type f | wc -l) files in $here/corpus"
