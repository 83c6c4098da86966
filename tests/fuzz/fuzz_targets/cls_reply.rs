//! cargo-fuzz entry of the `cls_reply` target (tests/fuzz/targets/cls_reply.rs, which
//! the stable harness tests/fuzz/stable.rs runs too).

#![no_main]

#[path = "../targets/cls_reply.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    target::run(data);
});
