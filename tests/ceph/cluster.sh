#!/usr/bin/env bash
# Throw-away single-node Ceph cluster (1 mon, 1 or more OSDs, no mgr) for rbdimg's tests.
#
#   cluster.sh install                      install Ceph 16.2 + qemu-block-extra (idempotent)
#   cluster.sh start DIR [memstore|bluestore] [OSDS]
#                                           fresh cluster with all state in DIR; with OSDS > 1
#                                           (e.g. 3) pools are replicated: size 2, min_size 1
#   cluster.sh start-osd DIR ID             start osd.ID again (after a kill), wait until it is up
#   cluster.sh stop DIR                     kill its daemons, remove DIR (idempotent)
#   cluster.sh pids DIR                     print "mon PID" / "osd.ID PID" lines
#
# Env: CEPH_TEST_PORT (mon port, default 46789; give each concurrent cluster its
#      own), CEPH_TEST_TIMEOUT (start time limit in s, default 90),
#      CEPH_TEST_MEMSTORE_BYTES (memstore capacity per OSD, default 4 GiB).
# After start:  . DIR/env   (or CEPH_CONF=DIR/ceph.conf)  then rbd/rados/qemu-img work.
# Everything listens on 127.0.0.1 only; /etc/ceph and /var/lib/ceph are never used.
# Every daemon has a pid file in DIR/run: stop (and the tests) end exactly the
# daemons this DIR started.
# Needs root (apt, and the daemons run as the invoking user).
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }

apt_get() {
    # Wait for the dpkg lock instead of failing if another apt is running.
    DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 "$@"
}

# Serialized: tests may start several clusters at once on a fresh machine.
cmd_install() { (flock 9 && install_locked) 9>/tmp/.rbdimg-ceph-install.lock; }

install_locked() {
    local pkgs=(ceph-mon ceph-osd ceph-common librados2) missing=() p
    for p in "${pkgs[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
    done

    # qemu-img may come from bookworm-backports; its rbd driver lives in
    # qemu-block-extra, which must be the very same version or qemu refuses to
    # load the module.  "qemu-img version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"
    local qver="" qhave=""
    if command -v qemu-img >/dev/null; then
        qver=$(qemu-img --version | sed -n '1s/.*(Debian \(.*\))$/\1/p')
        qhave=$(dpkg-query -W -f='${Version}' qemu-block-extra 2>/dev/null || true)
        [[ -n $qver && $qver != "$qhave" ]] && missing+=("qemu-block-extra=$qver")
    fi
    ((${#missing[@]})) || return 0
    local log; log=$(mktemp)

    # "update" may fail over some unrelated unreachable source: let install decide.
    { apt_get update || true; } >"$log" 2>&1
    local srcs=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    if [[ $qver == *bpo* ]] && ! grep -qs '^[^#]*bookworm-backports' "${srcs[@]}"; then
        # Add bookworm-backports on the mirror this machine uses for Debian
        # bookworm itself (per apt-cache policy; else the first ".../debian" URI).
        local mirror
        mirror=$(apt-cache policy 2>/dev/null | awk '$3 ~ /^bookworm\// {u = $2; next}
                 u && /o=Debian,/ && /n=bookworm,/ {print u; exit} {u = ""}' || true)
        [[ -n $mirror ]] || mirror=$(sed -nE 's/^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+\/debian)\/?([[:space:]].*)?$/\3/p' \
                 "${srcs[@]}" 2>/dev/null | head -n1 || true)
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
            "${mirror:-http://deb.debian.org/debian}" /usr/share/keyrings/debian-archive-keyring.gpg \
            >/etc/apt/sources.list.d/rbdimg-bookworm-backports.sources
        { apt_get update || true; } >>"$log" 2>&1
    fi
    # --no-install-recommends: recommends would pull in ceph-mgr/mds and their python stack.
    if ! apt_get install --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"; die "apt-get install ${missing[*]} failed"
    fi
    rm -f "$log"
    # "qemu-img --help" lists rbd even when the module is missing; only opening
    # an rbd image tells.  Without a pool it fails before contacting any cluster.
    local out; out=$(qemu-img info --image-opts driver=rbd 2>&1 || true)
    if [[ -n $qver && $out != *"'pool' is missing"* ]]; then
        echo "$out" >&2
        die "qemu-img cannot load its rbd module after installing qemu-block-extra=$qver"
    fi
}

# ---------------------------------------------------------------- helpers

ceph_() { timeout 30 ceph -c "$DIR/ceph.conf" --connect-timeout 20 "$@"; }

# On failure: show the log tails, kill the daemons, keep DIR for inspection.
fail_start() {
    local f
    for f in "$DIR"/log/{setup,mon}.log "$DIR"/log/osd.*.log; do
        [[ -f $f ]] && { echo "==== tail $f" >&2; tail -n 20 "$f" >&2; }
    done
    stop_daemons
    echo "cluster.sh: start failed: $* (logs kept in $DIR; 'cluster.sh stop $DIR' removes it)" >&2
    exit 1
}

# Pid from DIR/run/NAME.pid, only if that process is still a daemon of this DIR
# (guards against pid reuse).
pid_of() {
    local f="$1/run/$2.pid" pid cmd
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") && [[ $cmd == *"-c $1/ceph.conf "* ]] || return 1
    echo "$pid"
}

# ---------------------------------------------------------------- start
cmd_start() {
    local store=${2:-memstore} osds=${3:-1}
    [[ $store == memstore || $store == bluestore ]] || die "objectstore must be memstore or bluestore, not '$store'"
    [[ $osds =~ ^[1-9]$ ]] || die "OSDS must be 1 to 9, not '$osds'"
    [[ $EUID -eq 0 ]] || die "must run as root"
    cmd_install  # ~50 ms when everything is there already

    DIR=$(realpath -m "$1")
    [[ $DIR != *[[:space:]]* ]] || die "DIR must not contain whitespace (ceph.conf values): '$DIR'"
    if [[ -e $DIR ]] && [[ -n $(ls -A "$DIR") ]]; then die "$DIR exists and is not empty (stop it first)"; fi
    local port=${CEPH_TEST_PORT:-46789} limit=${CEPH_TEST_TIMEOUT:-90}
    # Refuse a busy port: otherwise the mon dies and we would only see a timeout.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port 127.0.0.1:$port is in use (set CEPH_TEST_PORT)"; fi
    mkdir -p "$DIR"/{mon,log,run,crash}
    local t0=$SECONDS fsid id
    fsid=$(</proc/sys/kernel/random/uuid)
    # One OSD: no redundancy. Several: every object on two OSDs and writable
    # with one of them up (a test can kill an OSD mid-write); each OSD small.
    local size=1 memory=1073741824
    if ((osds > 1)); then size=2 memory=536870912; fi

    # msgr v2 only: librados (rbd CLI, qemu, librbd users) of pacific speaks it,
    # and a single address avoids v1/v2 ambiguity. In [osd], Ceph expands $id.
    cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/keyring
run dir = $DIR/run
crash dir = $DIR/crash
osd pool default size = $size
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# the host disk may be fuller than the default 30 % / 5 % thresholds
mon data avail warn = 2
mon data avail crit = 1
# every osdmap change (osd boot, pool create, rbd pool init's snap ops) waits
# for a paxos proposal; the 1 s default makes start 3x slower
paxos propose interval = 0.01
paxos min wait = 0.001
[mon]
mon data = $DIR/mon
keyring = $DIR/mon/keyring
log file = $DIR/log/mon.log
mon cluster log file = $DIR/log/cluster.log
pid file = $DIR/run/mon.pid
[osd]
osd data = $DIR/osd.\$id
keyring = $DIR/osd.\$id/keyring
log file = $DIR/log/osd.\$id.log
pid file = $DIR/run/osd.\$id.pid
osd objectstore = $store
memstore device bytes = ${CEPH_TEST_MEMSTORE_BYTES:-4294967296}
# Tests SIGSTOP/SIGCONT daemons: after a long stop a worker thread would look
# hung and the OSD would abort itself ("hit suicide timeout").
osd op thread suicide timeout = 0
osd recovery thread suicide timeout = 0
osd command thread suicide timeout = 0
bluestore block create = true
bluestore block size = 68719476736
bluestore fsck on mkfs = false
osd memory target = $memory
bluestore cache autotune = true
EOF
    printf 'export CEPH_CONF=%q\n' "$DIR/ceph.conf" >"$DIR/env"

    # One keyring holds mon. + client.admin: mon --mkfs imports every entity
    # in it into the auth database.
    {
        ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *'
        ceph-authtool "$DIR/keyring" --gen-key -n client.admin \
            --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
        monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$DIR/monmap"
        ceph-mon -c "$DIR/ceph.conf" -i a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/keyring"
        ceph-mon -c "$DIR/ceph.conf" -i a
    } >"$DIR/log/setup.log" 2>&1 || fail_start "creating the monitor (see $DIR/log/setup.log)"

    # OSDs: every mkfs at once (bluestore's takes seconds), each making its
    # own key; --no-mon-config: mkfs asks the mon for nothing (the mon does
    # not know that key yet). Then each key and id is registered and started.
    local mkfs=() uuids=()
    for ((id = 0; id < osds; id++)); do
        uuids[id]=$(</proc/sys/kernel/random/uuid)
        mkdir -p "$DIR/osd.$id"
        ceph-osd -c "$DIR/ceph.conf" -i "$id" --mkfs --mkkey --osd-uuid "${uuids[id]}" \
            --no-mon-config >"$DIR/log/mkfs.$id.log" 2>&1 &
        mkfs[id]=$!
    done
    for ((id = 0; id < osds; id++)); do
        wait "${mkfs[id]}" || fail_start "mkfs of osd.$id (see $DIR/log/mkfs.$id.log)"
    done
    {
        for ((id = 0; id < osds; id++)); do
            ceph_ auth add "osd.$id" mon 'allow profile osd' osd 'allow *' mgr 'allow profile osd' \
                -i "$DIR/osd.$id/keyring"
            ceph_ osd new "${uuids[id]}" "$id"
            ceph-osd -c "$DIR/ceph.conf" -i "$id"
        done
    } >>"$DIR/log/setup.log" 2>&1 || fail_start "creating the OSDs (see $DIR/log/setup.log)"
    wait_osds_up "$osds" "$t0" "$limit" || fail_start "OSDs not up+in after ${limit}s"

    # rbd pool init blocks until the PGs are active, so it doubles as the
    # readiness check.  No mgr is needed for any of this in pacific.
    local pool left
    for pool in rbd rbd2; do
        left=$((limit - (SECONDS - t0))); ((left > 5)) || left=5
        { ceph_ osd pool create "$pool" 8 8 && timeout "$left" rbd -c "$DIR/ceph.conf" pool init "$pool"; } \
            >>"$DIR/log/setup.log" 2>&1 || fail_start "creating pool $pool (see $DIR/log/setup.log)"
    done
    timeout 20 rbd -c "$DIR/ceph.conf" ls rbd >/dev/null 2>>"$DIR/log/setup.log" || fail_start "rbd ls rbd failed"
}

# Waits until all N OSDs are up and in (the wait started at SECONDS=$2 and
# lasts at most $3 s); fails at once if one of them exited.
wait_osds_up() {
    local n=$1 t0=$2 limit=$3 id
    until [[ $(ceph_ osd stat 2>/dev/null) == *"$n up"*"$n in"* ]]; do
        ((SECONDS - t0 < limit)) || return 1
        for ((id = 0; id < n; id++)); do
            pid_of "$DIR" "osd.$id" >/dev/null || { echo "cluster.sh: ceph-osd $id exited" >&2; return 1; }
        done
        sleep 0.5
    done
}

# Starts osd.ID of DIR again (a test killed it) and waits until every OSD is up.
cmd_start_osd() {
    DIR=$(realpath -m "$1")
    local id=$2 osds
    [[ $id =~ ^[0-9]$ && -d $DIR/osd.$id ]] || die "no osd.$id in $DIR"
    if pid_of "$DIR" "osd.$id" >/dev/null; then die "osd.$id of $DIR is running"; fi
    osds=$(find "$DIR" -maxdepth 1 -name 'osd.*' -type d | wc -l)
    ceph-osd -c "$DIR/ceph.conf" -i "$id" >>"$DIR/log/setup.log" 2>&1 || die "starting osd.$id failed"
    wait_osds_up "$osds" "$SECONDS" "${CEPH_TEST_TIMEOUT:-90}" || die "osd.$id not up after its restart"
}

# ---------------------------------------------------------------- stop / pids
# Running and not a zombie (the container's pid 1 may take seconds to reap).
alive() { local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) && [[ ${st:0:1} != Z ]]; }

# SIGTERM, up to 5 s, then SIGKILL.
kill_daemon() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
}

# Every daemon with a pid file in DIR/run that is still this DIR's: "NAME PID".
daemons() {
    local f name pid
    for f in "$DIR"/run/*.pid; do
        [[ -e $f ]] || continue
        name=$(basename "$f" .pid)
        if pid=$(pid_of "$DIR" "$name"); then echo "$name $pid"; fi
    done
}

stop_daemons() {
    local name pid osds=() mons=()
    while read -r name pid; do
        if [[ $name == mon ]]; then mons+=("$pid"); else osds+=("$pid"); fi
    done < <(daemons)
    # Wake every daemon first (a stopped process can't act on SIGTERM), then
    # OSDs (in parallel) before the mon: on SIGTERM an OSD waits up to 5 s
    # for the mon's ack.
    if ((${#osds[@]} + ${#mons[@]})); then kill -CONT "${osds[@]}" "${mons[@]}" 2>/dev/null || true; fi
    for pid in "${osds[@]}"; do kill_daemon "$pid" & done
    wait
    for pid in "${mons[@]}"; do kill_daemon "$pid"; done
}

cmd_stop() {
    DIR=$(realpath -m "$1")
    stop_daemons
    # Only delete something that looks like one of our cluster dirs.
    if [[ -e $DIR ]]; then
        [[ -f $DIR/ceph.conf || -d $DIR/mon || -z $(ls -A "$DIR") ]] || die "$DIR does not look like a test cluster; not removing it"
        rm -rf "$DIR"
    fi
}

cmd_pids() {
    DIR=$(realpath -m "$1")
    daemons
}

case "${1:-}" in
    install) cmd_install ;;
    start) [[ $# -ge 2 && $# -le 4 ]] || die "usage: $0 start DIR [memstore|bluestore] [OSDS]"; cmd_start "$2" "${3:-}" "${4:-}" ;;
    start-osd) [[ $# -eq 3 ]] || die "usage: $0 start-osd DIR ID"; cmd_start_osd "$2" "$3" ;;
    stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
    pids) [[ $# -eq 2 ]] || die "usage: $0 pids DIR"; cmd_pids "$2" ;;
    *) die "usage: $0 install | start DIR [memstore|bluestore] [OSDS] | start-osd DIR ID | stop DIR | pids DIR" ;;
esac
