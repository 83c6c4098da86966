//! cargo-fuzz entry of the `rbd_name` target (tests/fuzz/targets/rbd_name.rs, which
//! the stable harness tests/fuzz/stable.rs runs too).

#![no_main]

#[path = "../targets/rbd_name.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    target::run(data);
});
