//! The breaker, bulkhead, rate limiter, retry and retry budget driven by
//! arbitrary operation sequences with arbitrary clock gaps, each checked
//! against a reference model or independent counters.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| failwell_fuzz::primitives(data));
