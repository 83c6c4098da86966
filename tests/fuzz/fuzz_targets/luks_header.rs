//! cargo-fuzz entry of the `luks_header` target (tests/fuzz/targets/luks_header.rs, which
//! the stable harness tests/fuzz/stable.rs runs too).

#![no_main]

#[path = "../targets/padded.rs"]
mod padded;
#[path = "../targets/luks_header.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    target::run(data);
});
