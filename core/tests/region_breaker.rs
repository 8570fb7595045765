//! Shared circuit breakers with real processes: eight workers discover an
//! outage together (calls that reach the dead dependency counted outside
//! the region); eight workers of two threads cycle the breaker through
//! open, half-open and closed, and no half-open admits more probes than
//! `half_open_calls` host-wide (checked by a tally of their own); workers
//! killed with SIGKILL while holding half-open probes, or while they make
//! transitions, never take a probe slot or the transition lock with them;
//! a breaker outlives the process that created and tripped it.

#![cfg(all(unix, not(failwell_loom)))]

use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use failwell::breaker::{Builder, CircuitBreaker, State};
use failwell::clock::MonotonicClock;
use failwell::region::Region;

mod common;
use common::{ready, result, spawn, tally, worker_role, Scratch};

/// Tally words: the go signal, calls that reached the dependency, probe
/// violations; from `PROBES` on, `[generation:48 | probes:16]` slots.
const GO: usize = 0;
const REACHED: usize = 1;
const VIOLATIONS: usize = 2;
const PROBES: usize = 64;
const SLOTS: usize = 4096;

fn outage() -> Builder<MonotonicClock> {
    CircuitBreaker::builder()
        .consecutive_failures(5)
        .open_for(Duration::from_secs(3600))
}

fn cycling() -> Builder<MonotonicClock> {
    CircuitBreaker::builder()
        .consecutive_failures(2)
        .half_open_calls(3)
        .open_for(Duration::from_micros(200))
}

fn held_probes() -> Builder<MonotonicClock> {
    CircuitBreaker::builder()
        .consecutive_failures(1)
        .half_open_calls(2)
        .half_open_max_wait(Duration::from_secs(3600))
        .open_for(Duration::from_millis(1))
}

/// Counts one probe of half-open `gen`; true if that half-open now has
/// more than `limit`.
fn count_probe(t: &[AtomicU64], gen: u64, limit: u64) -> bool {
    let slot = &t[PROBES + (gen as usize % SLOTS)];
    let mut cur = slot.load(SeqCst);
    loop {
        let (g, n) = (cur >> 16, cur & 0xffff);
        let next = if g == gen & ((1 << 48) - 1) {
            cur + 1
        } else if g < gen {
            (gen << 16) | 1
        } else {
            return false; // a later half-open took the slot
        };
        match slot.compare_exchange(cur, next, SeqCst, SeqCst) {
            Ok(_) => return (next & 0xffff) > limit && n < u64::MAX,
            Err(seen) => cur = seen,
        }
    }
}

/// The worker side. Does nothing in an ordinary test run.
#[test]
fn worker() {
    let Some((role, args)) = worker_role() else {
        return;
    };
    let n = |i: usize| args[i].parse::<u64>().unwrap();
    let region = Region::open(&args[0], 4 << 20).expect("worker opens the region");
    match role.as_str() {
        // region, tally: wait for the go, then call the dead dependency
        // until the breaker refuses.
        "outage" => {
            let b = region.circuit_breaker("dep", outage()).unwrap();
            let t = tally(&args[1]);
            println!("READY");
            while t[GO].load(SeqCst) == 0 {
                std::hint::spin_loop();
            }
            let mut mine = 0;
            while let Ok(p) = b.try_acquire() {
                t[REACHED].fetch_add(1, SeqCst);
                mine += 1;
                p.failure(); // the dependency is down
            }
            println!("RESULT {mine}");
        }
        // region, tally, ops per thread, threads: call at full speed, one
        // call in three failing; count every probe by its half-open.
        "cycle" => {
            let b = region.circuit_breaker("cycle", cycling()).unwrap();
            let t = tally(&args[1]);
            let (ops, threads) = (n(2), n(3));
            let admitted = AtomicU64::new(0);
            std::thread::scope(|s| {
                for k in 0..threads {
                    let (b, admitted) = (&b, &admitted);
                    s.spawn(move || {
                        for i in 0..ops {
                            if let Ok(p) = b.try_acquire() {
                                admitted.fetch_add(1, SeqCst);
                                if p.state() == State::HalfOpen && count_probe(t, p.generation(), 3)
                                {
                                    t[VIOLATIONS].fetch_add(1, SeqCst);
                                }
                                if (i + k) % 3 == 0 {
                                    p.failure()
                                } else {
                                    p.success()
                                }
                            }
                        }
                    });
                }
            });
            println!("RESULT {} {}", ops * threads, admitted.load(SeqCst));
        }
        // region: take one half-open probe, print READY, sleep until killed.
        "probe" => {
            let b = region.circuit_breaker("probe", held_probes()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let p = loop {
                match b.try_acquire() {
                    Ok(p) if p.state() == State::HalfOpen => break p,
                    Ok(p) => p.failure(), // trip it again
                    Err(_) => assert!(Instant::now() < deadline, "no probe in 10 s"),
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            println!("READY");
            std::thread::sleep(Duration::from_secs(60));
            drop(p);
        }
        // region: create the breaker "gone", trip it, exit.
        "trip" => {
            let b = region.circuit_breaker("gone", outage()).unwrap();
            for _ in 0..5 {
                b.try_acquire().unwrap().failure();
            }
            println!("RESULT {}", b.snapshot().generation);
        }
        // region: make transitions at full speed until killed.
        "transitions" => {
            let b = region.circuit_breaker("lock", outage()).unwrap();
            println!("READY");
            loop {
                b.force_open();
                b.reset();
            }
        }
        other => panic!("unknown worker role {other}"),
    }
}

fn kill(w: &mut Child) {
    w.kill().unwrap();
    w.wait().unwrap();
}

/// Eight worker processes start calling a dependency that is down at the
/// same instant: with one breaker for the host (trips after 5 failures in
/// a row) at most 5 calls plus the ones already in flight (one per other
/// worker) reach it, where eight breakers of their own let 40 through.
#[test]
fn eight_workers_discover_an_outage_together() {
    let s = Scratch::new("br-outage");
    let path = format!("/dev/shm/{}-tally", s.0);
    let t = tally(&path);
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let b = region.circuit_breaker("dep", outage()).unwrap();
    let mut workers: Vec<Child> = (0..8)
        .map(|_| spawn("outage", &[s.0.clone(), path.clone()]))
        .collect();
    for w in &mut workers {
        ready(w);
    }
    t[GO].store(1, SeqCst);
    let per_worker: Vec<u64> = workers.into_iter().map(|w| result(w)[0]).collect();
    let reached = t[REACHED].load(SeqCst);
    let _ = std::fs::remove_file(&path);
    assert_eq!(per_worker.iter().sum::<u64>(), reached);
    assert!(
        (5..=5 + 7).contains(&reached),
        "{reached} calls reached it: {per_worker:?}"
    );
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.snapshot().opened, 1, "tripped once, for all");
    eprintln!(
        "outage discovery, 8 processes: {reached} calls reached the dependency {per_worker:?}"
    );
}

/// Eight processes of two threads, 1.04·10^6 calls in all, cycle one
/// breaker through open, half-open and closed thousands of times: no
/// half-open admits more than its 3 probes, by the workers' own tally.
#[test]
fn eight_processes_never_admit_more_probes_than_the_limit() {
    let s = Scratch::new("br-cycle");
    let path = format!("/dev/shm/{}-tally", s.0);
    let t = tally(&path);
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let b = region.circuit_breaker("cycle", cycling()).unwrap();
    let ops = 65_000u64;
    let workers: Vec<Child> = (0..8)
        .map(|_| {
            spawn(
                "cycle",
                &[s.0.clone(), path.clone(), ops.to_string(), "2".into()],
            )
        })
        .collect();
    let mut tries = 0;
    for w in workers {
        tries += result(w)[0];
    }
    let half_opens = t[PROBES..PROBES + SLOTS]
        .iter()
        .filter(|w| w.load(SeqCst) != 0)
        .count();
    let violations = t[VIOLATIONS].load(SeqCst);
    let _ = std::fs::remove_file(&path);
    assert_eq!(tries, 8 * 2 * ops);
    assert_eq!(violations, 0);
    let snap = b.snapshot();
    assert!(
        snap.opened > 100 && half_opens > 50,
        "it cycled: {snap:?}, {half_opens} half-opens seen"
    );
    eprintln!(
        "{tries} calls, {} openings, {half_opens} half-opens probed",
        snap.opened
    );
}

/// Workers holding the two half-open probes are killed with SIGKILL, 40
/// times: each time both slots come back within a second.
#[test]
fn probes_of_workers_killed_with_sigkill_come_back_within_a_second() {
    let s = Scratch::new("br-probe-kill");
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let b = region.circuit_breaker("probe", held_probes()).unwrap();
    let mut slowest = Duration::ZERO;
    for round in 0..20 {
        b.force_open();
        b.open_for(Duration::ZERO);
        let mut holders: Vec<Child> = (0..2)
            .map(|_| spawn("probe", std::slice::from_ref(&s.0)))
            .collect();
        for w in &mut holders {
            ready(w);
        }
        assert!(b.try_acquire().is_err(), "round {round}: both probes held");
        for w in &mut holders {
            w.kill().unwrap();
        }
        let killed = Instant::now();
        for w in &mut holders {
            w.wait().unwrap();
        }
        let probes = loop {
            let p: Vec<_> = (0..2).filter_map(|_| b.try_acquire().ok()).collect();
            if p.len() == 2 {
                break p;
            }
            drop(p);
            assert!(
                killed.elapsed() < Duration::from_secs(1),
                "round {round}: probes lost"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        slowest = slowest.max(killed.elapsed());
        assert!(probes.iter().all(|p| p.state() == State::HalfOpen));
        for p in probes {
            p.success();
        }
        assert_eq!(b.state(), State::Closed, "round {round}");
    }
    eprintln!("40 probe holders killed: every slot back, slowest round {slowest:?}");
}

/// Workers making transitions at full speed are killed with SIGKILL at a
/// random moment, 30 times (some kills land inside the transition lock: a
/// transition here then waits for the liveness check, 20 ms, and takes
/// the lock over): a transition here completes every time, within a
/// second.
#[test]
fn a_transition_lock_held_by_a_killed_worker_is_taken_over() {
    let s = Scratch::new("br-lock-kill");
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let b = region.circuit_breaker("lock", outage()).unwrap();
    let (mut slowest, mut taken_over) = (Duration::ZERO, 0);
    for round in 0..30 {
        let mut w = spawn("transitions", std::slice::from_ref(&s.0));
        ready(&mut w);
        std::thread::sleep(Duration::from_micros(500 + 137 * round));
        kill(&mut w);
        let t0 = Instant::now();
        b.force_open();
        b.reset();
        let took = t0.elapsed();
        slowest = slowest.max(took);
        taken_over += (took >= Duration::from_millis(20)) as u32;
        assert!(took < Duration::from_secs(1), "round {round}: {took:?}");
        assert_eq!(b.state(), State::Closed);
    }
    eprintln!(
        "30 transition makers killed: {taken_over} locks taken over, slowest transition after a kill {slowest:?}"
    );
}

/// A breaker created and tripped by a process that has exited is found,
/// open, by a process that attaches later, with its configuration.
#[test]
fn a_breaker_outlives_the_process_that_created_it() {
    let s = Scratch::new("br-gone");
    let gen = result(spawn("trip", std::slice::from_ref(&s.0)))[0];
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let b = region.attach_circuit_breaker("gone").unwrap();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.snapshot().generation, gen);
    assert_eq!(b.snapshot().failures, 5);
    assert_eq!(b.config().consecutive_failures(), Some(5));
    assert!(
        region.circuit_breaker("gone", outage()).is_ok(),
        "the same configuration"
    );
}
