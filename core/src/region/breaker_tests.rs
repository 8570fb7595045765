//! Shared circuit breakers in one process: two mappings of one file share
//! the state, the windows and the half-open probes; the configuration is
//! the slot's; each mapping's listeners hear of the other's transitions;
//! a dead process's probes come back and its transition lock is taken
//! over (the dead process made up here: a pid that no longer exists).
//! Several real processes, SIGKILL included: `core/tests/region_breaker.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tests::Scratch;
use super::threads::{boot_for_tests, ident_for_tests};
use super::*;
use crate::breaker::shared::{ENTRY_WORDS, PROBE_ENTRIES};
use crate::breaker::{Builder, CircuitBreaker, State, Transition, Window};
use crate::clock::MonotonicClock;
use crate::sync::Ordering::Relaxed;
use crate::Rejected;

fn consecutive(n: u32) -> Builder<MonotonicClock> {
    CircuitBreaker::builder()
        .consecutive_failures(n)
        .open_for(Duration::from_secs(3600))
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_trip_in_one_mapping_is_seen_by_the_other_at_once() {
    let s = Scratch::new("br-trip");
    let (a, b) = (s.open(MIN_SIZE), s.open(MIN_SIZE));
    let x = a.circuit_breaker("db", consecutive(3)).unwrap();
    let y = b.circuit_breaker("db", consecutive(3)).unwrap();
    x.try_acquire().unwrap().failure();
    y.try_acquire().unwrap().failure();
    assert_eq!(y.state(), State::Closed);
    x.try_acquire().unwrap().failure(); // the third in a row, host-wide
    assert_eq!(y.state(), State::Open);
    assert!(matches!(
        y.try_acquire().unwrap_err(),
        Rejected::CircuitOpen { retry_after: Some(d) } if d > Duration::from_secs(3500)
    ));
    let (sx, sy) = (x.snapshot(), y.snapshot());
    assert_eq!(
        (sx.state, sx.generation, sx.failures),
        (sy.state, sy.generation, 3)
    );
    assert_eq!(sy.rejected, 1);
    y.reset();
    assert_eq!(x.state(), State::Closed);
    assert_eq!(a.names(), vec!["db".to_string()]);
}

#[test]
fn a_count_window_and_a_time_window_hold_every_mappings_outcomes() {
    let s = Scratch::new("br-window");
    let (a, b) = (s.open(MIN_SIZE), s.open(MIN_SIZE));
    for window in [Window::Count(10), Window::time(Duration::from_secs(60))] {
        let name = format!("{window:?}").replace(' ', "");
        let name = &name[..name.len().min(40)];
        let make = || {
            CircuitBreaker::builder()
                .failure_rate(0.5, window)
                .minimum_calls(10)
                .open_for(Duration::from_secs(3600))
        };
        let x = a.circuit_breaker(name, make()).unwrap();
        let y = b.circuit_breaker(name, make()).unwrap();
        for i in 0..9 {
            let p = if i % 2 == 0 {
                x.try_acquire()
            } else {
                y.try_acquire()
            }
            .unwrap();
            if i < 4 {
                p.success()
            } else {
                p.failure()
            }
        }
        assert_eq!(
            x.state(),
            State::Closed,
            "{window:?}: 9 calls, fewer than the minimum"
        );
        y.try_acquire().unwrap().failure(); // 6 of 10 failed, host-wide
        assert_eq!(x.state(), State::Open, "{window:?}");
    }
}

#[test]
fn the_configuration_is_the_slots() {
    let s = Scratch::new("br-config");
    let r = s.open(MIN_SIZE);
    r.circuit_breaker("db", consecutive(3)).unwrap();
    let e = r.circuit_breaker("db", consecutive(4)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, RegionError::ConfigMismatch { .. }), "{e:?}");
    assert!(
        msg.contains("consecutive_failures: 3") && msg.contains("consecutive_failures: 4"),
        "{msg}"
    );
    let attached = r.attach_circuit_breaker("db").unwrap();
    assert_eq!(attached.config().consecutive_failures(), Some(3));
    assert_eq!(
        attached.config(),
        r.circuit_breaker("db", consecutive(3)).unwrap().config()
    );
    let e = attached
        .reconfigure(|c| c.open_for(Duration::from_secs(1)))
        .unwrap_err();
    assert_eq!(e.field(), "reconfigure");
    assert!(matches!(
        r.attach_circuit_breaker("absent").unwrap_err(),
        RegionError::NotFound { .. }
    ));
    assert!(matches!(
        r.rate_limiter(
            "db",
            crate::rate_limit::RateLimiter::builder().rate(1, Duration::from_secs(1))
        )
        .unwrap_err(),
        RegionError::KindMismatch { .. }
    ));
    let e = r
        .circuit_breaker("other", CircuitBreaker::builder().consecutive_failures(0))
        .unwrap_err();
    assert!(
        matches!(&e, RegionError::Config(c) if c.field() == "consecutive_failures"),
        "{e:?}"
    );
    // Every policy and window survives the round trip through the region.
    let builders = [
        CircuitBreaker::builder(),
        CircuitBreaker::builder()
            .failure_rate(0.25, Window::time(Duration::from_secs(30)))
            .slow_call_rate(0.5, Duration::from_millis(300))
            .minimum_calls(7)
            .half_open_calls(4)
            .half_open_max_wait(Duration::from_secs(9))
            .open_for(Duration::from_millis(1500))
            .open_for_multiplier(2.0)
            .open_for_max(Duration::from_secs(60)),
        consecutive(u32::MAX),
    ];
    for (i, b) in builders.into_iter().enumerate() {
        let want = b.clone().build().unwrap().config();
        let got = r.circuit_breaker(&format!("rt{i}"), b).unwrap().config();
        assert_eq!(got, want);
        assert_eq!(
            r.attach_circuit_breaker(&format!("rt{i}"))
                .unwrap()
                .config(),
            want
        );
    }
}

#[test]
fn each_mappings_listeners_hear_of_the_others_transitions_once() {
    let s = Scratch::new("br-listen");
    let (a, b) = (s.open(MIN_SIZE), s.open(MIN_SIZE));
    let x = a.circuit_breaker("db", consecutive(1)).unwrap();
    let y = b.circuit_breaker("db", consecutive(1)).unwrap();
    let heard: Arc<Mutex<Vec<Transition>>> = Arc::default();
    let h = heard.clone();
    y.add_listener(move |t| h.lock().unwrap().push(*t));
    let mine: Arc<Mutex<Vec<Transition>>> = Arc::default();
    let m = mine.clone();
    x.add_listener(move |t| m.lock().unwrap().push(*t));
    x.try_acquire().unwrap().failure(); // x trips it
    assert_eq!(mine.lock().unwrap().len(), 1, "on the thread that made it");
    // y hears of it on its next call that finds it open...
    assert!(y.try_acquire().is_err());
    let got = heard.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].from, got[0].to, got[0].generation),
        (State::Closed, State::Open, 1)
    );
    // ...or from the reaper thread, within 250 ms, with no call at all.
    x.reset();
    let start = Instant::now();
    while heard.lock().unwrap().len() < 2 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let waited = start.elapsed();
    let got = heard.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[1].from, got[1].to, got[1].generation),
        (State::Open, State::Closed, 2)
    );
    assert!(waited < Duration::from_millis(1000), "{waited:?}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(heard.lock().unwrap().len(), 2, "announced once");
    assert_eq!(mine.lock().unwrap().len(), 2, "x made both: no echo");
}

#[test]
fn at_most_half_open_calls_probes_across_mappings() {
    let s = Scratch::new("br-probes");
    let (a, b) = (s.open(MIN_SIZE), s.open(MIN_SIZE));
    let make = || {
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .half_open_calls(3)
            .open_for(Duration::from_millis(1))
    };
    let x = a.circuit_breaker("db", make()).unwrap();
    let y = b.circuit_breaker("db", make()).unwrap();
    x.try_acquire().unwrap().failure();
    std::thread::sleep(Duration::from_millis(5));
    let mut probes = Vec::new();
    for i in 0..10 {
        if let Ok(p) = if i % 2 == 0 {
            x.try_acquire()
        } else {
            y.try_acquire()
        } {
            probes.push(p);
        }
    }
    assert_eq!(probes.len(), 3);
    assert_eq!(y.state(), State::HalfOpen);
    let ledger = || -> u64 {
        let blocks = a.breaker_blocks();
        let p = blocks[0].probes.get();
        (0..PROBE_ENTRIES)
            .map(|i| p[i * ENTRY_WORDS + 3].load(Relaxed))
            .sum()
    };
    assert_eq!(ledger(), 3, "this process holds three probes");
    drop(probes.pop()); // ignored: its slot comes back
    assert_eq!(ledger(), 2);
    let p = y.try_acquire().unwrap();
    assert_eq!(ledger(), 3);
    for p in probes.drain(..).chain([p]) {
        p.success();
    }
    assert_eq!(x.state(), State::Closed);
    assert_eq!(ledger(), 0, "every entry freed");
}

/// Records `n` probes of the current half-open as held by the dead
/// process `ident`, as it would have left them.
fn plant_probes(r: &Region, ident: u64, boot: u64, b: &CircuitBreaker, n: u64) {
    let gen = b.snapshot().generation;
    let blocks = r.breaker_blocks();
    let e = blocks[0].probes.get();
    let i = (0..PROBE_ENTRIES)
        .rev()
        .find(|&i| e[i * ENTRY_WORDS].load(Relaxed) == 0)
        .unwrap();
    e[i * ENTRY_WORDS + 1].store(boot, Relaxed);
    e[i * ENTRY_WORDS + 2].store(gen, Relaxed);
    e[i * ENTRY_WORDS + 3].store(n, Relaxed);
    e[i * ENTRY_WORDS].store(ident, Relaxed);
}

#[test]
fn a_dead_processs_probes_come_back() {
    let s = Scratch::new("br-reap");
    let r = s.open(MIN_SIZE);
    let b = r
        .circuit_breaker(
            "db",
            CircuitBreaker::builder()
                .consecutive_failures(1)
                .half_open_calls(2)
                .open_for(Duration::from_millis(1)),
        )
        .unwrap();
    b.try_acquire().unwrap().failure();
    std::thread::sleep(Duration::from_millis(5));
    // Two probes out: as if a dead process had taken them (their permits
    // forgotten here, their entry planted).
    std::mem::forget(b.try_acquire().unwrap());
    std::mem::forget(b.try_acquire().unwrap());
    let ledger = r.breaker_blocks();
    let e = ledger[0].probes.get();
    for i in 0..PROBE_ENTRIES {
        e[i * ENTRY_WORDS + 3].store(0, Relaxed);
        e[i * ENTRY_WORDS].store(0, Relaxed);
    }
    assert!(b.try_acquire().is_err(), "both slots out");
    let boot = boot_for_tests();
    plant_probes(&r, ident_for_tests(dead_pid(), 777, 0), boot, &b, 2);
    assert_eq!(r.threads().unwrap().reap(true), 2);
    assert_eq!(b.snapshot().state, State::HalfOpen);
    let p = b.try_acquire().expect("a slot came back");
    let q = b.try_acquire().expect("both did");
    assert!(b.try_acquire().is_err());
    assert_eq!(r.threads().unwrap().reap(true), 0, "once");
    p.success();
    q.success();
    assert_eq!(b.state(), State::Closed);
    // A dead process's probes of an earlier half-open give nothing back.
    plant_probes(&r, ident_for_tests(dead_pid(), 778, 0), boot, &b, 5);
    assert_eq!(r.threads().unwrap().reap(true), 0);
}

#[test]
fn a_transition_lock_left_by_a_dead_process_is_taken_over() {
    let s = Scratch::new("br-lock");
    let r = s.open(MIN_SIZE);
    let b = r.circuit_breaker("db", consecutive(1)).unwrap();
    let blocks = r.breaker_blocks();
    drop(blocks);
    // The lock word: at the block's LOCK_AT; found through the handle's
    // region block by offset.
    let lock = r.breaker_lock_for_tests("db");
    lock.boot.store(boot_for_tests(), Relaxed);
    lock.owner
        .store(ident_for_tests(dead_pid(), 4242, 0), Relaxed);
    let start = Instant::now();
    b.force_open();
    let took = start.elapsed();
    assert_eq!(b.state(), State::ForcedOpen);
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(lock.owner.load(Relaxed), 0, "released");
    // A live holder (this process, another thread) is waited for.
    let (me, boot) = this_process();
    lock.boot.store(boot, Relaxed);
    lock.owner.store(me, Relaxed);
    let b = Arc::new(b);
    let b2 = b.clone();
    let t = std::thread::spawn(move || b2.reset());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.state(), State::ForcedOpen, "still waiting");
    lock.owner.store(0, Relaxed);
    t.join().unwrap();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_shared_breaker_is_named_by_its_builder_or_its_slot() {
    let s = Scratch::new("br-name");
    let r = s.open(MIN_SIZE);
    assert_eq!(
        r.circuit_breaker("db", consecutive(3)).unwrap().name(),
        Some("db")
    );
    let named = r.circuit_breaker("cache", consecutive(3).name("cache-primary"));
    assert_eq!(named.unwrap().name(), Some("cache-primary"));
    assert_eq!(r.attach_circuit_breaker("db").unwrap().name(), Some("db"));
    assert_eq!(CircuitBreaker::builder().build().unwrap().name(), None);
}
