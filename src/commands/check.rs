//! `check [-f fmt] [--output=human|json] [-r leaks|all] [-q] [-U] filename`
//!
//! Exit codes as qemu-img's: 0 clean, 1 the check itself failed, 2
//! corruptions, 3 only leaks, 63 the format has no check.

use anyhow::bail;
use serde_json::{Map, Value, json};

use crate::block::driver::{CheckReport, Repair};
use crate::cli::CheckArgs;
use crate::commands::{
    Console, OutputFormat, is_cache_mode, one_filename, output_format, print, reading, usage,
};
use crate::error::ErrorKind;
use crate::open::{OpenOptions, open_image};
use crate::qjson;

pub const EXIT_NO_CHECK: i32 = 63;

pub fn run(a: CheckArgs, console: &Console) -> anyhow::Result<i32> {
    let output = output_format("check", &a.output)?;
    let repair = match a.repair.as_deref() {
        None => Repair::None,
        Some("leaks") => Repair::Leaks,
        Some("all") => Repair::All,
        Some(other) => {
            return Err(usage(
                "check",
                format!("--repair (-r) expects 'leaks' or 'all' not '{other}'"),
            ));
        }
    };
    let filename = one_filename("check", &a.args)?;
    if let Some(mode) = a.cache.as_ref().filter(|m| !is_cache_mode(m)) {
        bail!("Invalid source cache option: {mode}");
    }
    if repair != Repair::None && a.share.force_share {
        bail!("force-share=on can only be used with read-only images");
    }
    let opts = OpenOptions {
        writable: repair != Repair::None,
        check: true,
        ..reading(&a.image, a.share.force_share, console)
    };
    let image = open_image(filename, &opts)?;
    let mut report = match image.check(repair) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            console.error("This image format does not support checks");
            return Ok(EXIT_NO_CHECK);
        }
        Err(e) => bail!("Check failed: {e}"),
    };
    // What a check finds goes to stderr whatever the output format, as
    // QEMU prints it while checking.
    let print_found = |report: &CheckReport| {
        for message in &report.messages {
            console.diagnostic(message);
        }
    };
    print_found(&report);
    let mut text = String::new();
    if report.leaks_fixed > 0 || report.corruptions_fixed > 0 {
        if output == OutputFormat::Human {
            text.push_str(&format!(
                "The following inconsistencies were found and repaired:\n\n    {} leaked clusters\n    {} corruptions\n\n\
                 Double checking the fixed image now...\n",
                report.leaks_fixed, report.corruptions_fixed
            ));
        }
        let (leaks_fixed, corruptions_fixed) = (report.leaks_fixed, report.corruptions_fixed);
        report = image.check(Repair::None)?;
        print_found(&report);
        report.leaks_fixed = leaks_fixed;
        report.corruptions_fixed = corruptions_fixed;
    }
    match output {
        OutputFormat::Human => text.push_str(&human(&report)),
        OutputFormat::Json => {
            let value = to_json(&report, filename, image.format_name());
            text.push_str(&format!("{}\n", qjson::to_pretty_string(&value)));
        }
    }
    if !a.quiet.quiet || output == OutputFormat::Json {
        print(&text)?;
    }
    Ok(exit_code(&report))
}

fn exit_code(report: &CheckReport) -> i32 {
    if report.check_errors > 0 {
        1
    } else if report.corruptions > 0 {
        2
    } else if report.leaks > 0 {
        3
    } else {
        0
    }
}

fn human(r: &CheckReport) -> String {
    let mut out = String::new();
    if r.corruptions == 0 && r.leaks == 0 && r.check_errors == 0 {
        out.push_str("No errors were found on the image.\n");
    } else {
        if r.corruptions > 0 {
            out.push_str(&format!(
                "\n{} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n",
                r.corruptions
            ));
        }
        if r.leaks > 0 {
            out.push_str(&format!(
                "\n{} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n",
                r.leaks
            ));
        }
        if r.check_errors > 0 {
            out.push_str(&format!(
                "\n{} internal errors have occurred during the check.\n",
                r.check_errors
            ));
        }
    }
    if let (Some(total), Some(allocated)) = (r.total_clusters, r.allocated_clusters)
        && total > 0
        && allocated > 0
    {
        let pct = |n: u64, of: u64| n as f64 * 100.0 / of as f64;
        out.push_str(&format!(
            "{allocated}/{total} = {:.2}% allocated, {:.2}% fragmented, {:.2}% compressed clusters\n",
            pct(allocated, total),
            pct(r.fragmented_clusters.unwrap_or(0), allocated),
            pct(r.compressed_clusters.unwrap_or(0), allocated)
        ));
    }
    if let Some(end) = r.image_end_offset.filter(|&e| e > 0) {
        out.push_str(&format!("Image end offset: {end}\n"));
    }
    out
}

/// QAPI `ImageCheck`: optional counters appear only when non-zero.
fn to_json(r: &CheckReport, filename: &str, format: &str) -> Value {
    let mut m = Map::new();
    m.insert("filename".into(), json!(filename));
    m.insert("format".into(), json!(format));
    m.insert("check-errors".into(), json!(r.check_errors));
    let optional = [
        ("image-end-offset", r.image_end_offset.unwrap_or(0)),
        ("corruptions", r.corruptions),
        ("leaks", r.leaks),
        ("corruptions-fixed", r.corruptions_fixed),
        ("leaks-fixed", r.leaks_fixed),
        ("total-clusters", r.total_clusters.unwrap_or(0)),
        ("allocated-clusters", r.allocated_clusters.unwrap_or(0)),
        ("fragmented-clusters", r.fragmented_clusters.unwrap_or(0)),
        ("compressed-clusters", r.compressed_clusters.unwrap_or(0)),
    ];
    for (key, value) in optional {
        if value != 0 {
            m.insert(key.into(), json!(value));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_report_matches_qemu() {
        let r = CheckReport {
            image_end_offset: Some(393216),
            total_clusters: Some(16384),
            ..Default::default()
        };
        assert_eq!(
            human(&r),
            "No errors were found on the image.\nImage end offset: 393216\n"
        );
        let text = qjson::to_pretty_string(&to_json(&r, "c.qcow2", "qcow2"));
        assert_eq!(
            text,
            "{\n    \"image-end-offset\": 393216,\n    \"total-clusters\": 16384,\n    \"check-errors\": 0,\n    \
             \"filename\": \"c.qcow2\",\n    \"format\": \"qcow2\"\n}"
        );
        assert_eq!(exit_code(&r), 0);
        assert_eq!(
            exit_code(&CheckReport {
                leaks: 1,
                ..Default::default()
            }),
            3
        );
        assert_eq!(
            exit_code(&CheckReport {
                leaks: 1,
                corruptions: 1,
                ..Default::default()
            }),
            2
        );
    }
}
