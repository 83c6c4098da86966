//! cargo-fuzz entry of the `cls_server` target (tests/fuzz/targets/cls_server.rs, which
//! the stable harness tests/fuzz/stable.rs runs too).

#![no_main]

#[path = "../targets/cls_server.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    target::run(data);
});
