//! The layering rows: clones of a golden image's snapshot.
//!
//! * on the bench's cluster (`ceph_rows`): a 4 GiB golden image with 1 GiB
//!   of data (`--quick`: 512 MiB with 128 MiB), rbdimg against `rbd clone`
//!   and `rbd flatten`: one clone, 1,000 clones (8 at a time, each tool),
//!   and the flatten of a clone;
//! * on the embedded store (`embedded_rows`, rbdimg alone: nothing else
//!   clones there): one clone and 1,000 clones.

use std::fmt::Write as _;
use std::path::Path;

use super::{Cache, Case, Tool, cores, make_raw, sh, time_cases, tool};

/// How many clones the many-clones rows make, and how many at a time.
const CLONES: usize = 1000;
const CLONES_AT_ONCE: usize = 8;

/// `command` (with `{i}` for the clone's number) for 1 .. CLONES, 8 at a time.
fn many(command: &str) -> String {
    format!("seq {CLONES} | xargs -P {CLONES_AT_ONCE} -I{{i}} {command}")
}

/// Clones on the cluster: rbdimg against `rbd clone` and `rbd flatten`.
pub fn ceph_rows(runs: usize, quick: bool, dir: &Path, rbdimg: &Path, conf: &str) -> String {
    let src = dir.join("golden.raw");
    let (size, data) = if quick {
        (512u64 << 20, 128u64 << 20)
    } else {
        (4u64 << 30, 1u64 << 30)
    };
    make_raw(&src, size, data);
    let rbd = format!("rbd --conf {conf}");
    sh(&format!(
        "{rbd} import {} rbd/golden >/dev/null 2>&1 && {rbd} snap create rbd/golden@base \
         && {rbd} snap protect rbd/golden@base",
        src.display()
    ));
    let ours = rbdimg.display().to_string();
    let parent = format!("rbd:rbd/golden@base:conf={conf}");
    let clone_ours = |child: &str| {
        format!("{ours} create -q -f raw -b {parent} -F raw rbd:rbd/{child}:conf={conf}")
    };
    let clone_rbd = |child: &str| format!("{rbd} clone rbd/golden@base rbd/{child}");
    let case = |title: &str, tools, cleanup: &str| Case {
        title: title.into(),
        tools,
        src: String::new(),
        dst: String::new(),
        cleanup: cleanup.to_string(),
        cache: Cache::Untouched,
    };
    let cases = vec![
        case(
            "one clone (cluster)",
            vec![
                tool("rbdimg create -b", clone_ours("one-{n}")),
                tool("rbd clone", clone_rbd("one-{n}")),
            ],
            &format!("{rbd} rm rbd/one-{{n}} >/dev/null 2>&1"),
        ),
        // Left in place: removing 1,000 images would take longer than making them.
        case(
            "1,000 clones, 8 at a time (cluster)",
            vec![
                tool("rbdimg create -b", many(&clone_ours("many-{n}-{i}"))),
                tool("rbd clone", many(&clone_rbd("many-{n}-{i}"))),
            ],
            "true",
        ),
        case(
            "flatten a clone of the golden image (cluster)",
            vec![
                Tool {
                    setup: Some(clone_rbd("flat-{n}")),
                    ..tool(
                        "rbdimg rebase -b ''",
                        format!("{ours} rebase -b '' rbd:rbd/flat-{{n}}:conf={conf}"),
                    )
                },
                Tool {
                    setup: Some(clone_rbd("flat-{n}")),
                    ..tool("rbd flatten", format!("{rbd} flatten rbd/flat-{{n}}"))
                },
            ],
            &format!("{rbd} rm rbd/flat-{{n}} >/dev/null 2>&1"),
        ),
    ];
    let mut report = String::new();
    writeln!(
        report,
        "Clones of a {} golden image ({} MiB of data) on the single-node cluster: `rbdimg \
         create -f raw -b rbd:rbd/golden@base -F raw` against `rbd clone` (clone v1, as the \
         cluster's min compat client asks), `rbdimg rebase -b ''` against `rbd flatten`; \
         median of {} interleaved runs, {} cores.\n",
        if quick { "512 MiB" } else { "4 GiB" },
        data >> 20,
        runs,
        cores()
    )
    .unwrap();
    report += &time_cases(&cases, runs);
    report
}

/// Clones in the embedded store (rbdimg alone: nothing else clones there).
pub fn embedded_rows(runs: usize, dir: &Path, rbdimg: &Path) -> String {
    let ours = rbdimg.display().to_string();
    let store = dir.join("clones-{n}").display().to_string();
    let golden = format!(
        "{ours} create -q -f raw rbd:rbd/golden:store={store} 1G && \
         {ours} snapshot -c base rbd:rbd/golden:store={store}"
    );
    let clone = |child: &str| {
        format!(
            "{ours} create -q -f raw -b rbd:rbd/golden@base -F raw rbd:rbd/{child}:store={store}"
        )
    };
    let case = |title: &str, run: String| Case {
        title: title.into(),
        tools: vec![Tool {
            setup: Some(golden.clone()),
            ..tool("rbdimg create -b", run)
        }],
        src: String::new(),
        dst: String::new(),
        cleanup: format!("rm -rf {store}"),
        cache: Cache::Untouched,
    };
    let mut report = String::new();
    writeln!(
        report,
        "Clones of a snapshot of a 1 GiB image in a fresh embedded store; median of {} runs.\n",
        runs
    )
    .unwrap();
    report += &time_cases(
        &[
            case("one clone (embedded store)", clone("one")),
            case(
                "1,000 clones, 8 at a time (embedded store)",
                many(&clone("many-{i}")),
            ),
        ],
        runs,
    );
    report
}
