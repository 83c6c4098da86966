//! RBD image feature bits (`include/rbd/features.h`).

pub const LAYERING: u64 = 1;
pub const STRIPINGV2: u64 = 2;
pub const EXCLUSIVE_LOCK: u64 = 4;
pub const OBJECT_MAP: u64 = 8;
pub const FAST_DIFF: u64 = 16;
pub const DEEP_FLATTEN: u64 = 32;
pub const JOURNALING: u64 = 64;
pub const DATA_POOL: u64 = 128;
pub const OPERATIONS: u64 = 256;
pub const MIGRATING: u64 = 512;
pub const NON_PRIMARY: u64 = 1024;
pub const DIRTY_CACHE: u64 = 2048;
pub const ALL: u64 = 0xFFF;
/// Ceph's default (`rbd_default_features`).
pub const DEFAULT: u64 = LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF | DEEP_FLATTEN;

pub const NAMES: &[(&str, u64)] = &[
    ("layering", LAYERING),
    ("striping", STRIPINGV2),
    ("exclusive-lock", EXCLUSIVE_LOCK),
    ("object-map", OBJECT_MAP),
    ("fast-diff", FAST_DIFF),
    ("deep-flatten", DEEP_FLATTEN),
    ("journaling", JOURNALING),
    ("data-pool", DATA_POOL),
    ("operations", OPERATIONS),
    ("migrating", MIGRATING),
    ("non-primary", NON_PRIMARY),
    ("dirty-cache", DIRTY_CACHE),
];

/// Parses `rbd_default_features`-style text: a number, or names
/// separated by ',' or '+' (in `-o`, a comma must be doubled).
pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    text.split([',', '+'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .try_fold(0u64, |acc, name| {
            NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, bit)| acc | bit)
        })
}

pub fn names(bits: u64) -> Vec<&'static str> {
    NAMES
        .iter()
        .filter(|(_, bit)| bits & bit != 0)
        .map(|(n, _)| *n)
        .collect()
}
