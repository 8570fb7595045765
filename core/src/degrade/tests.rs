//! Tests of `degrade`.

use super::*;
use crate::clock::ManualClock;

fn cache(
    max_stale: Duration,
    capacity: usize,
) -> (ManualClock, StaleCache<&'static str, u32, ManualClock>) {
    let clock = ManualClock::new();
    let c = Builder::with_clock(clock.clone())
        .max_stale(max_stale)
        .capacity(capacity)
        .build()
        .unwrap();
    (clock, c)
}

#[test]
fn fallback_runs_the_secondary_only_on_failure() {
    assert_eq!(fallback(|| Ok::<_, &str>(1), |_| unreachable!()), Ok(1));
    assert_eq!(
        fallback(|| Err("a"), |e| if e == "a" { Ok(2) } else { Err(e) }),
        Ok(2)
    );
    assert_eq!(fallback(|| Err::<u8, _>("a"), |_| Err("b")), Err("b"));
}

#[test]
fn serves_stale_values_up_to_max_stale_and_says_how_old() {
    let (clock, c) = cache(Duration::from_secs(60), 10);
    assert_eq!(
        c.get_or_fetch("k", || Ok::<_, &str>(1)),
        Ok(Served::Fresh(1))
    );
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        c.get_or_fetch("k", || Err("down")),
        Ok(Served::Stale {
            value: 1,
            age: Duration::from_secs(59),
            error: "down"
        })
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        c.get_or_fetch("k", || Err("down")),
        Err("down"),
        "too stale"
    );
    assert_eq!(
        c.get_or_fetch("other", || Err("down")),
        Err("down"),
        "never cached"
    );
    assert_eq!(
        c.get_or_fetch("k", || Ok::<_, &str>(2)),
        Ok(Served::Fresh(2))
    );
    let s = c.snapshot();
    assert_eq!((s.fresh, s.stale, s.misses, s.entries), (2, 1, 2, 1));
    let served: Served<u32, &str> = Served::Stale {
        value: 3,
        age: Duration::ZERO,
        error: "x",
    };
    assert!(served.is_stale());
    assert_eq!(served.into_value(), 3);
}

#[test]
fn a_full_cache_drops_its_oldest_entry() {
    let (clock, c) = cache(Duration::from_secs(600), 2);
    c.get_or_fetch("a", || Ok::<_, ()>(1)).unwrap();
    clock.advance(Duration::from_secs(1));
    c.get_or_fetch("b", || Ok::<_, ()>(2)).unwrap();
    clock.advance(Duration::from_secs(1));
    c.get_or_fetch("c", || Ok::<_, ()>(3)).unwrap();
    assert_eq!(c.snapshot().entries, 2);
    assert_eq!(c.get_or_fetch("a", || Err(())), Err(()), "a was the oldest");
    assert!(c.get_or_fetch("b", || Err(())).unwrap().is_stale());
}

#[test]
fn the_two_step_form_matches_get_or_fetch() {
    let (clock, c) = cache(Duration::from_secs(60), 10);
    c.put_fresh("k", 1);
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        c.serve_stale(&"k", "down"),
        Ok(Served::Stale {
            value: 1,
            age: Duration::from_secs(5),
            error: "down"
        })
    );
    assert_eq!(c.serve_stale(&"x", "down"), Err("down"));
    let s = c.snapshot();
    assert_eq!((s.fresh, s.stale, s.misses, s.entries), (1, 1, 1, 1));
}

#[test]
fn invalid_configuration_names_the_field() {
    let e = StaleCache::builder()
        .max_stale(Duration::ZERO)
        .build::<u8, u8>()
        .unwrap_err();
    assert_eq!(e.field(), "max_stale");
    let e = StaleCache::builder()
        .capacity(0)
        .build::<u8, u8>()
        .unwrap_err();
    assert_eq!(e.field(), "capacity");
}
