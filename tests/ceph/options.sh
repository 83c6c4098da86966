#!/usr/bin/env bash
# Prints Ceph's configuration option table, which the embedded store checks
# rbd: name settings against (src/rados/embedded/ceph_options.tsv):
#
#   name <TAB> type <TAB> min <TAB> max <TAB> allowed values (comma-separated)
#
#   bash tests/ceph/options.sh DIR > src/rados/embedded/ceph_options.tsv
#
# DIR is a cluster started by tests/ceph/cluster.sh: its monitor's admin
# socket lists every option with its schema ("config help"), and the debug
# levels of logging subsystems, which that list leaves out, with the current
# values ("config show"); those get the type "subsys". A test fails when the
# committed table differs from the installed Ceph's.
set -euo pipefail
dir=${1:?usage: options.sh CLUSTER_DIR}
asok() { ceph --conf "$dir/ceph.conf" daemon "$dir/run/ceph-mon.a.asok" "$@" -f json; }
python3 -c '
import json, sys
help, show = (json.load(open(f)) for f in sys.argv[1:3])
def text(v):
    return v if isinstance(v, str) else json.dumps(v)
rows = {o["name"]: [o["type"], text(o["min"]), text(o["max"]),
                    ",".join(o.get("enum_values", []))]
        for o in help["options"]}
for name in show:
    if name.startswith("debug_") and name not in rows:
        rows[name] = ["subsys", "", "", ""]
for name in sorted(rows):
    print("\t".join([name] + rows[name]))
' <(asok config help) <(asok config show)
