//! The fuzz targets on seeded random inputs: what `scripts/test.sh` runs
//! where libFuzzer cannot be built, and a quick check that the targets
//! themselves work everywhere. `FAILWELL_FUZZ_CASES` sets how many inputs
//! each target gets (default 3000).

fn inputs(seed: u64) -> impl Iterator<Item = Vec<u8>> {
    let cases: usize = std::env::var("FAILWELL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..cases).map(move |_| {
        let len = (next() % 512) as usize;
        (0..len).map(|_| next() as u8).collect()
    })
}

#[test]
fn primitives_on_random_inputs() {
    for data in inputs(0x9E37_79B9_7F4A_7C15) {
        failwell_fuzz::primitives(&data);
    }
}

#[test]
fn c_abi_on_random_inputs() {
    for data in inputs(0xD1B5_4A32_D192_ED03) {
        failwell_fuzz::c_abi(&data);
    }
}
