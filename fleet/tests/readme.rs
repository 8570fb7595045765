//! The README's fleet examples are these files, run here (Rust) and by
//! `scripts/c-tests.sh` (C) against a real redis-server.

mod common;

mod example {
    include!("../examples/fleet.rs");

    pub fn run() -> Result<(), FleetError> {
        main()
    }
}

/// The code block that follows `<!-- path -->` in the README.
fn readme_block(path: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let marker = format!("<!-- {path} -->");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))
        .1;
    let body = after.split_once("```").expect("a code block").1;
    let body = body.split_once('\n').expect("a fence line").1;
    body.split_once("```")
        .expect("a closed block")
        .0
        .to_string()
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleet.rs")).unwrap();
    assert_eq!(readme_block("fleet/examples/fleet.rs"), file);
}

#[test]
fn the_example_runs_against_a_real_redis() {
    let redis = common::Redis::start();
    std::env::set_var("FAILWELL_REDIS_URL", redis.url());
    example::run().unwrap();
}
