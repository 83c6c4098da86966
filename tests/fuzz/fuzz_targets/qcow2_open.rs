//! cargo-fuzz entry of the `qcow2_open` target (tests/fuzz/targets/qcow2_open.rs, which
//! the stable harness tests/fuzz/stable.rs runs too).

#![no_main]

#[path = "../targets/qcow2_open.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    target::run(data);
});
