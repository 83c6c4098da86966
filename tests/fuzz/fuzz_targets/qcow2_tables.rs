//! cargo-fuzz entry of the `qcow2_tables` target (tests/fuzz/targets/qcow2_tables.rs, which
//! the stable harness tests/fuzz/stable.rs runs too).

#![no_main]

#[path = "../targets/qcow2_tables.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    target::run(data);
});
