//! The region in one process: the header, slots by name, every refusal,
//! and primitives shared between two mappings of one file (as two
//! processes map it). Several processes: `core/tests/region.rs`.

use super::*;
use crate::clock::MonotonicClock;
use crate::rate_limit::{self, RateLimiter};
use crate::Rejected;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// A region file of this test's own in /dev/shm, removed when dropped.
pub(super) struct Scratch(String);

impl Scratch {
    pub(super) fn new(tag: &str) -> Self {
        let name = format!("failwell-unit-{}-{tag}", std::process::id());
        let _ = Region::unlink(&name);
        Scratch(name)
    }

    pub(super) fn open(&self, size: usize) -> Region {
        Region::open(&self.0, size).expect("region opens")
    }

    fn path(&self) -> PathBuf {
        Path::new("/dev/shm").join(&self.0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Region::unlink(&self.0);
    }
}

fn limiter(per_hour: u64, burst: u64) -> rate_limit::Builder<MonotonicClock> {
    RateLimiter::builder()
        .rate(per_hour, Duration::from_secs(3600))
        .burst(burst)
}

#[test]
fn a_new_region_has_a_header_and_a_second_open_attaches_it() {
    let s = Scratch::new("header");
    let a = s.open(100_000);
    assert_eq!(a.path(), s.path().display().to_string());
    assert_eq!(a.size() % 4096, 0);
    assert!(a.size() >= 100_000);
    assert!(a.created_unix_nanos() > 1_600_000_000_000_000_000);
    assert!(a.names().is_empty());
    let bytes = std::fs::read(s.path()).unwrap();
    assert_eq!(&bytes[..8], b"FWREGION");
    assert_eq!(
        u64::from_le_bytes(bytes[8..16].try_into().unwrap()),
        LAYOUT_VERSION
    );
    // Another size on attach: the region keeps its own.
    let b = s.open(MIN_SIZE);
    assert_eq!(b.size(), a.size());
    assert_eq!(b.created_unix_nanos(), a.created_unix_nanos());
    a.rate_limiter("x", limiter(1, 1)).unwrap();
    assert_eq!(b.names(), ["x"]);
}

#[test]
fn two_mappings_share_one_limiter() {
    let s = Scratch::new("share");
    let (a, b) = (s.open(MIN_SIZE), s.open(MIN_SIZE));
    let la = a.rate_limiter("api", limiter(1, 10)).unwrap();
    let lb = b.rate_limiter("api", limiter(1, 10)).unwrap();
    let mut admitted = 0;
    for i in 0..30 {
        let l = if i % 2 == 0 { &la } else { &lb };
        admitted += l.try_acquire().is_ok() as u64;
    }
    assert_eq!(admitted, 10, "one bucket of 10 for both");
    let (sa, sb) = (la.snapshot(), lb.snapshot());
    assert_eq!(sa, sb, "one state, read from either mapping");
    assert_eq!((sa.admitted, sa.rejected, sa.burst), (10, 20, 10));
    assert!(matches!(
        lb.try_acquire(),
        Err(Rejected::RateLimited { .. })
    ));
    // The handles keep the mapping alive after the regions are dropped.
    drop((a, b));
    assert_eq!(la.snapshot().rejected, 21);
}

#[test]
fn another_configuration_is_refused_and_attach_adopts_the_stored_one() {
    let s = Scratch::new("config");
    let r = s.open(MIN_SIZE);
    r.rate_limiter("api", limiter(100, 10)).unwrap();
    match r.rate_limiter("api", limiter(100, 20)) {
        Err(RegionError::ConfigMismatch {
            name,
            stored,
            asked,
        }) => {
            assert_eq!(name, "api");
            assert!(stored.contains("burst: 10"), "{stored}");
            assert!(asked.contains("burst: 20"), "{asked}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let msg = r
        .rate_limiter("api", limiter(100, 20))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("\"api\"") && msg.contains("attach"), "{msg}");
    let precise = limiter(100, 10).precise(true);
    assert!(matches!(
        r.rate_limiter("api", precise),
        Err(RegionError::ConfigMismatch { .. })
    ));
    let adopted = r.attach_rate_limiter("api").unwrap();
    assert_eq!(adopted.snapshot().burst, 10);
    assert!(matches!(
        r.attach_rate_limiter("other"),
        Err(RegionError::NotFound { name }) if name == "other"
    ));
    assert_eq!(r.names(), ["api"], "attach creates nothing");
}

#[test]
fn a_shared_limiter_refuses_reconfiguration() {
    let s = Scratch::new("reconf");
    let l = s
        .open(MIN_SIZE)
        .rate_limiter("api", limiter(100, 10))
        .unwrap();
    let e = l.set_burst(20).unwrap_err();
    assert_eq!(e.field(), "reconfigure");
    assert_eq!(l.snapshot().burst, 10, "nothing changed");
}

#[test]
fn bad_configurations_and_arguments_are_errors_that_name_them() {
    let s = Scratch::new("args");
    let r = s.open(MIN_SIZE);
    let e = r.rate_limiter("api", limiter(100, 0)).unwrap_err();
    assert!(
        matches!(&e, RegionError::Config(c) if c.field() == "burst"),
        "{e}"
    );
    let arg = |e: RegionError| match e {
        RegionError::Argument { argument, problem } => (argument, problem),
        other => panic!("expected an argument error, got {other:?}"),
    };
    let (a, p) = arg(r.rate_limiter("", limiter(1, 1)).unwrap_err());
    assert_eq!((a, p.as_str()), ("name", "must not be empty"));
    let long = "n".repeat(MAX_NAME + 1);
    let (a, p) = arg(r.rate_limiter(&long, limiter(1, 1)).unwrap_err());
    assert!(a == "name" && p.contains("at most 55"), "{p}");
    assert!(r.rate_limiter(&"n".repeat(MAX_NAME), limiter(1, 1)).is_ok());
    let (a, _) = arg(r.rate_limiter("a\0b", limiter(1, 1)).unwrap_err());
    assert_eq!(a, "name");
    let (a, p) = arg(Region::open(format!("{}-small", s.0), MIN_SIZE - 1).unwrap_err());
    assert!(a == "size" && p.contains("at least"), "{p}");
    let (a, _) = arg(Region::open("", MIN_SIZE).unwrap_err());
    assert_eq!(a, "name");
    let (a, _) = arg(Region::open("..", MIN_SIZE).unwrap_err());
    assert_eq!(a, "name");
    let (a, _) = arg(Region::open(usize::MAX.to_string(), usize::MAX).unwrap_err());
    assert_eq!(a, "size");
    // Names are compared whole: a prefix is another slot.
    r.rate_limiter("api", limiter(1, 1)).unwrap();
    r.rate_limiter("ap", limiter(2, 1)).unwrap();
    assert_eq!(r.names().len(), 3);
}

#[test]
fn a_file_that_is_not_a_region_or_of_another_version_is_refused() {
    let s = Scratch::new("foreign");
    std::fs::write(s.path(), vec![7u8; MIN_SIZE]).unwrap();
    assert!(matches!(
        Region::open(&s.0, MIN_SIZE),
        Err(RegionError::NotARegion { .. })
    ));
    std::fs::write(s.path(), b"short").unwrap();
    assert!(matches!(
        Region::open(&s.0, MIN_SIZE),
        Err(RegionError::NotARegion { .. })
    ));
    std::fs::remove_file(s.path()).unwrap();
    drop(s.open(MIN_SIZE));
    let mut bytes = std::fs::read(s.path()).unwrap();
    bytes[8..16].copy_from_slice(&2u64.to_le_bytes());
    std::fs::write(s.path(), &bytes).unwrap();
    match Region::open(&s.0, MIN_SIZE) {
        Err(
            e @ RegionError::LayoutVersion {
                found: 2,
                expected: 1,
                ..
            },
        ) => {
            assert!(e.to_string().contains("layout version 2"), "{e}");
        }
        other => panic!("expected a version error, got {other:?}"),
    }
}

#[test]
fn a_region_left_unfinished_by_its_creator_is_made_again() {
    // A creator killed after reserving the file, before the header.
    let s = Scratch::new("unfinished");
    std::fs::File::create(s.path())
        .unwrap()
        .write_all(&vec![0u8; MIN_SIZE])
        .unwrap();
    let r = s.open(MIN_SIZE);
    assert_eq!(r.size(), MIN_SIZE);
    assert!(r.rate_limiter("api", limiter(1, 1)).is_ok());
}

#[test]
fn a_full_region_says_what_ran_out() {
    let s = Scratch::new("bytes");
    let r = s.open(MIN_SIZE);
    let mut made = 0;
    let e = loop {
        match r.rate_limiter(&format!("l{made}"), limiter(1, 1)) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
    };
    assert!(made > 10, "{made}");
    assert!(
        matches!(&e, RegionError::Full { problem } if problem.contains("bytes")),
        "{e}"
    );
    // Existing names are still found.
    assert!(r.rate_limiter("l0", limiter(1, 1)).is_ok());

    let s = Scratch::new("slots");
    let r = s.open(4 << 20);
    for i in 0..MAX_SLOTS {
        r.rate_limiter(&format!("l{i}"), limiter(1, 1)).unwrap();
    }
    let e = r.rate_limiter("one-more", limiter(1, 1)).unwrap_err();
    assert!(
        matches!(&e, RegionError::Full { problem } if problem.contains("256 slots")),
        "{e}"
    );
    assert_eq!(r.names().len(), MAX_SLOTS);
}

#[test]
fn unlink_removes_the_file_and_the_next_open_starts_over() {
    let s = Scratch::new("unlink");
    let old = s.open(MIN_SIZE).rate_limiter("api", limiter(1, 1)).unwrap();
    assert!(old.try_acquire().is_ok());
    Region::unlink(&s.0).unwrap();
    assert!(!s.path().exists());
    // The old mapping still works; a new region is a new bucket.
    assert!(old.try_acquire().is_err());
    let new = s.open(MIN_SIZE).rate_limiter("api", limiter(1, 1)).unwrap();
    assert!(new.try_acquire().is_ok());
    assert!(matches!(
        Region::unlink(&s.0).and(Region::unlink(&s.0)),
        Err(RegionError::Io { op: "unlink", .. })
    ));
}

#[test]
fn a_region_from_an_inherited_descriptor() {
    let s = Scratch::new("fd");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(s.path())
        .unwrap();
    let r = Region::from_fd(file.into(), MIN_SIZE).unwrap();
    assert!(r.path().starts_with("fd "));
    r.rate_limiter("api", limiter(1, 3)).unwrap();
    assert_eq!(s.open(MIN_SIZE).names(), ["api"], "the same file by name");
}

#[test]
fn two_mappings_share_one_retry_budget() {
    let s = Scratch::new("budget");
    let (a, b) = (s.open(MIN_SIZE), s.open(MIN_SIZE));
    let ttl = Duration::from_secs(10);
    // No ratio, a floor of 0.2 per second over 10 s: two retries in all.
    let ba = a.retry_budget("db", 0.0, 0.2, ttl).unwrap();
    let bb = b.retry_budget("db", 0.0, 0.2, ttl).unwrap();
    assert!(ba.try_withdraw());
    assert!(bb.try_withdraw());
    assert!(
        !ba.try_withdraw() && !bb.try_withdraw(),
        "two for both, not two each"
    );
    assert_eq!((ba.refused(), bb.refused()), (2, 2), "one refusal count");
    // Calls deposited anywhere raise everyone's allowance.
    let c = a.retry_budget("calls", 0.5, 0.0, ttl).unwrap();
    let d = b.attach_retry_budget("calls").unwrap();
    for _ in 0..4 {
        c.deposit();
    }
    assert!(d.try_withdraw() && d.try_withdraw());
    assert!(!c.try_withdraw(), "half of 4 calls");
}

#[test]
fn a_retry_budget_slot_is_checked_like_any_other() {
    let s = Scratch::new("budget-checks");
    let r = s.open(MIN_SIZE);
    let ttl = Duration::from_secs(10);
    r.rate_limiter("x", limiter(1, 1)).unwrap();
    match r.retry_budget("x", 0.2, 3.0, ttl) {
        Err(e @ RegionError::KindMismatch { .. }) => {
            assert_eq!(
                e.to_string(),
                "slot \"x\" holds a rate limiter, not a retry budget"
            );
        }
        other => panic!("expected a kind mismatch, got {other:?}"),
    }
    assert!(matches!(
        r.attach_rate_limiter("x")
            .map(|_| ())
            .and(r.attach_retry_budget("x").map(|_| ())),
        Err(RegionError::KindMismatch { .. })
    ));
    r.retry_budget("b", 0.2, 3.0, ttl).unwrap();
    match r.retry_budget("b", 0.3, 3.0, ttl) {
        Err(RegionError::ConfigMismatch { stored, asked, .. }) => {
            assert!(stored.contains("ratio: 0.2") && asked.contains("ratio: 0.3"));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let e = r.retry_budget("c", 2.0, 3.0, ttl).unwrap_err();
    assert!(
        matches!(&e, RegionError::Config(c) if c.field() == "budget.ratio"),
        "{e}"
    );
    let e = r
        .retry_budget("c", 0.2, 3.0, Duration::from_millis(10))
        .unwrap_err();
    assert!(
        matches!(&e, RegionError::Config(c) if c.field() == "budget.ttl"),
        "{e}"
    );
    assert!(matches!(
        r.attach_retry_budget("c"),
        Err(RegionError::NotFound { .. })
    ));
    assert_eq!(r.names(), ["x", "b"]);
}
