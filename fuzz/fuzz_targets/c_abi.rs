//! The C ABI driven by arbitrary call sequences on arbitrary handles,
//! NULLs and values (run under AddressSanitizer by `cargo fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| failwell_fuzz::c_abi(data));
