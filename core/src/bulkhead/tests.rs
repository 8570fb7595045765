//! The bulkhead's tests.
use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crate::clock::ManualClock;
use proptest::prelude::*;

fn bulkhead(max: u32, reserve: u32) -> Bulkhead {
    Bulkhead::builder()
        .max_concurrent(max)
        .critical_reserve(reserve)
        .build()
        .unwrap()
}

#[test]
fn admits_up_to_the_limit_then_rejects() {
    let b = bulkhead(2, 0);
    let p1 = b.try_acquire().unwrap();
    let _p2 = b.try_acquire().unwrap();
    assert_eq!(b.try_acquire().unwrap_err(), Rejected::BulkheadFull);
    drop(p1);
    let _p3 = b.try_acquire().unwrap();
    let s = b.snapshot();
    assert_eq!((s.in_use, s.available, s.rejected, s.peak), (2, 0, 1, 2));
}

#[test]
fn reserve_is_for_critical_callers_only() {
    let b = bulkhead(3, 1);
    let _a = b.try_acquire().unwrap();
    let _b = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err(), "normal callers leave the reserve");
    let c = b.try_acquire_with(Priority::Critical).unwrap();
    assert!(b.try_acquire_with(Priority::Critical).is_err());
    drop(c);
    assert!(b.try_acquire_with(Priority::Critical).is_ok());
}

#[test]
fn invalid_configuration_names_the_field() {
    let e = Bulkhead::builder().max_concurrent(0).build().unwrap_err();
    assert_eq!(e.field(), "max_concurrent");
    let e = Bulkhead::builder()
        .max_concurrent(2)
        .critical_reserve(2)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "critical_reserve");
    let b = bulkhead(2, 1);
    assert_eq!(
        b.set_max_concurrent(1).unwrap_err().field(),
        "critical_reserve"
    );
    assert_eq!(
        b.set_max_concurrent(0).unwrap_err().field(),
        "max_concurrent"
    );
}

#[test]
fn a_refused_reconfiguration_changes_nothing() {
    let b = bulkhead(4, 2);
    let before = b.snapshot();
    for (max, reserve, field) in [
        (8, 8, "critical_reserve"),
        (0, 0, "max_concurrent"),
        (2, 2, "critical_reserve"),
        (MAX_CONCURRENT + 1, 0, "max_concurrent"),
    ] {
        let e = b
            .reconfigure(|c| c.max_concurrent(max).critical_reserve(reserve))
            .unwrap_err();
        assert_eq!(e.field(), field, "({max}, {reserve})");
        let now = b.snapshot();
        assert_eq!(
            (now.max_concurrent, now.available),
            (before.max_concurrent, before.available),
            "({max}, {reserve}) changed nothing"
        );
        let _normal = b.try_acquire().unwrap();
        let _normal2 = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_err(), "the reserve of 2 still holds");
        let _critical = b.try_acquire_with(Priority::Critical).unwrap();
    }
    // Both at once, in either direction, through pairs that one at a
    // time would refuse.
    b.reconfigure(|c| c.max_concurrent(1).critical_reserve(0))
        .unwrap();
    assert_eq!(b.snapshot().max_concurrent, 1);
    b.reconfigure(|c| c.max_concurrent(10).critical_reserve(9))
        .unwrap();
    let _p = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err(), "9 of 10 are reserved");
}

#[test]
fn timed_acquire_gives_up_after_its_timeout() {
    let b = bulkhead(1, 0);
    let _p = b.try_acquire().unwrap();
    let t = Instant::now();
    let r = b.acquire_timeout(Duration::from_millis(30));
    assert_eq!(r.unwrap_err(), Rejected::BulkheadFull);
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(b.snapshot().waiting, 0);
}

#[test]
fn blocked_acquire_is_woken_by_a_release() {
    let b = Arc::new(bulkhead(1, 0));
    let p = b.try_acquire().unwrap();
    let got = Arc::new(AtomicBool::new(false));
    let h = {
        let (b, got) = (b.clone(), got.clone());
        thread::spawn(move || {
            let _p = b.acquire(Priority::Normal);
            got.store(true, Ordering::SeqCst);
        })
    };
    while b.snapshot().waiting == 0 {
        thread::yield_now();
    }
    assert!(!got.load(Ordering::SeqCst));
    drop(p);
    h.join().unwrap();
    assert!(got.load(Ordering::SeqCst));
    assert_eq!(b.snapshot().in_use, 0);
}

#[test]
fn a_release_into_the_reserve_wakes_a_critical_waiter() {
    let b = Arc::new(bulkhead(2, 1));
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire_with(Priority::Critical).unwrap();
    let normal = {
        let b = b.clone();
        thread::spawn(move || b.acquire_timeout(Duration::from_millis(300)).is_ok())
    };
    let critical = {
        let b = b.clone();
        thread::spawn(move || {
            b.acquire_timeout_with(Priority::Critical, Duration::from_secs(30))
                .is_ok()
        })
    };
    while b.snapshot().waiting < 2 {
        thread::yield_now();
    }
    drop(p2); // one permit free: only the reserve
    assert!(
        critical.join().unwrap(),
        "the critical waiter gets the reserve"
    );
    assert!(!normal.join().unwrap(), "the normal waiter may not");
    drop(p1);
}

#[test]
fn growing_the_limit_wakes_waiters() {
    let b = Arc::new(bulkhead(1, 0));
    let _p = b.try_acquire().unwrap();
    let h = {
        let b = b.clone();
        thread::spawn(move || b.acquire_timeout(Duration::from_secs(30)).is_ok())
    };
    while b.snapshot().waiting == 0 {
        thread::yield_now();
    }
    b.set_max_concurrent(2).unwrap();
    assert!(h.join().unwrap());
}

#[test]
fn shrinking_the_limit_holds_new_permits_until_enough_return() {
    let b = bulkhead(3, 0);
    let p: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
    b.set_max_concurrent(1).unwrap();
    let mut p = p.into_iter();
    drop(p.next());
    assert!(b.try_acquire().is_err());
    drop(p.next());
    assert!(b.try_acquire().is_err());
    drop(p.next());
    let _q = b.try_acquire().unwrap();
    assert_eq!(b.snapshot().in_use, 1);
}

#[test]
fn a_panic_inside_call_returns_the_permit() {
    let b = bulkhead(1, 0);
    let r = std::panic::catch_unwind(AssertUnwindSafeWrap(&b).call());
    assert!(r.is_err());
    assert_eq!(b.snapshot().in_use, 0);
    assert_eq!(b.call(|| 7).unwrap(), 7);
}

struct AssertUnwindSafeWrap<'a>(&'a Bulkhead);
impl<'a> AssertUnwindSafeWrap<'a> {
    fn call(self) -> impl FnOnce() + std::panic::UnwindSafe + 'a {
        let b = std::panic::AssertUnwindSafe(self.0);
        move || {
            let _ = b.call(|| panic!("boom"));
        }
    }
}

/// ≥ 2 threads, ≥ 10^6 operations: never more than the limit out, never
/// more normal holders than the limit less the reserve (both checked
/// with independent counters), and every permit comes back.
#[test]
fn stress_never_over_admits_and_loses_no_permit() {
    const THREADS: usize = 4;
    const OPS: usize = 300_000;
    let b = Arc::new(bulkhead(3, 1));
    let inside = Arc::new(AtomicUsize::new(0));
    let normal_inside = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (b, inside, normal_inside) = (b.clone(), inside.clone(), normal_inside.clone());
            thread::spawn(move || {
                let mut admitted = 0usize;
                for i in 0..OPS {
                    let prio = if (i + t) % 5 == 0 {
                        Priority::Critical
                    } else {
                        Priority::Normal
                    };
                    let permit = if i % 1000 == 0 {
                        b.acquire_timeout_with(prio, Duration::from_millis(1))
                    } else {
                        b.try_acquire_with(prio)
                    };
                    let Ok(_p) = permit else { continue };
                    admitted += 1;
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(n <= 3, "{n} permits out with a limit of 3");
                    if prio == Priority::Normal {
                        let m = normal_inside.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(m <= 2, "{m} normal holders with 1 of 3 reserved");
                        normal_inside.fetch_sub(1, Ordering::SeqCst);
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
                admitted
            })
        })
        .collect();
    let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let s = b.snapshot();
    assert_eq!(s.in_use, 0, "every permit came back");
    assert_eq!(s.available, 3);
    assert_eq!(s.waiting, 0);
    assert!(s.peak <= 3);
    assert_eq!(admitted as u64 + s.rejected, (THREADS * OPS) as u64);
}

/// Waits on a [`ManualClock`] end when the clock passes their deadline,
/// not after any real time: a 10-minute timeout ends within moments of the
/// clock being moved 10 minutes on.
#[test]
fn timed_waits_run_in_virtual_time() {
    let clock = ManualClock::new();
    let b = Arc::new(
        Bulkhead::builder()
            .max_concurrent(1)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let _held = b.try_acquire().unwrap();
    let started = Instant::now();
    let waiter = {
        let b = b.clone();
        thread::spawn(move || b.acquire_timeout(Duration::from_secs(600)).map(drop))
    };
    while b.snapshot().waiting == 0 {
        thread::yield_now();
    }
    clock.advance(Duration::from_secs(599));
    thread::sleep(Duration::from_millis(20));
    assert!(
        !waiter.is_finished(),
        "599 s of 600 have passed on the clock"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(waiter.join().unwrap(), Err(Rejected::BulkheadFull));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "no real 10-minute wait"
    );
    let s = b.snapshot();
    assert_eq!((s.waiting, s.rejected, s.in_use), (0, 1, 1));
}

/// A zero timeout never sleeps, and `Duration::MAX` waits without bound
/// (until a release), on either clock.
#[test]
fn zero_and_unbounded_timeouts() {
    let clock = ManualClock::starting_at(u64::MAX - 5);
    let b = Arc::new(
        Bulkhead::builder()
            .max_concurrent(1)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let held = b.try_acquire().unwrap();
    assert_eq!(
        b.acquire_timeout(Duration::ZERO).unwrap_err(),
        Rejected::BulkheadFull
    );
    let waiter = {
        let b = b.clone();
        thread::spawn(move || b.acquire_timeout(Duration::MAX).is_ok())
    };
    while b.snapshot().waiting == 0 {
        thread::yield_now();
    }
    clock.advance(Duration::from_secs(3600)); // the clock saturates at u64::MAX
    thread::sleep(Duration::from_millis(10));
    assert!(
        !waiter.is_finished(),
        "an unbounded wait outlives the clock's end"
    );
    drop(held);
    assert!(waiter.join().unwrap());
}

#[test]
fn owned_permits_keep_the_bulkhead_and_come_back_once() {
    let b = Arc::new(bulkhead(2, 1));
    let p = b.try_acquire_owned(Priority::Normal).unwrap();
    assert_eq!(
        b.try_acquire_owned(Priority::Normal).unwrap_err(),
        Rejected::BulkheadFull,
        "the reserve holds for owned permits too"
    );
    let c = b
        .acquire_timeout_owned(Priority::Critical, Duration::from_millis(1))
        .unwrap();
    assert!(Arc::ptr_eq(p.bulkhead(), &b));
    let weak = Arc::downgrade(&b);
    drop(b);
    let moved = thread::spawn(move || drop(p));
    moved.join().unwrap();
    let b = weak.upgrade().expect("a live permit keeps its bulkhead");
    assert_eq!(b.snapshot().in_use, 1);
    drop(c);
    let s = b.snapshot();
    assert_eq!((s.in_use, s.available, s.rejected), (0, 2, 1));
}

#[test]
fn config_reads_back_and_defaults_are_documented_ones() {
    assert_eq!(
        Config::default(),
        Config {
            max_concurrent: 25,
            critical_reserve: 0
        }
    );
    assert_eq!(
        Bulkhead::builder().build().unwrap().config(),
        Config::default()
    );
    let b = bulkhead(9, 3);
    b.reconfigure(|c| c.max_concurrent(12)).unwrap();
    assert_eq!(
        b.config(),
        Config {
            max_concurrent: 12,
            critical_reserve: 3
        }
    );
}

/// One step of the permit word against the reference model.
#[derive(Debug, Clone)]
enum Op {
    Take(Priority),
    Release,
    Register(Priority),
    Leave(Priority),
    /// A waiter's step: take and leave, or stay registered.
    Wake(Priority),
}

fn op() -> impl Strategy<Value = Op> {
    let prio = prop_oneof![Just(Priority::Normal), Just(Priority::Critical)];
    prop_oneof![
        prio.clone().prop_map(Op::Take),
        Just(Op::Release),
        prio.clone().prop_map(Op::Register),
        prio.clone().prop_map(Op::Leave),
        prio.prop_map(Op::Wake),
    ]
}

/// The reference: plain integers.
#[derive(Debug, Default, PartialEq)]
struct Model {
    in_use: i64,
    normal: u64,
    critical: u64,
}

impl Model {
    fn free_for(&self, max: i64, reserve: i64, p: Priority) -> bool {
        let floor = if p == Priority::Critical { 0 } else { reserve };
        max - self.in_use > floor
    }
    fn waiters(&mut self, p: Priority) -> &mut u64 {
        match p {
            Priority::Normal => &mut self.normal,
            Priority::Critical => &mut self.critical,
        }
    }
}

fn unit(p: Priority) -> u64 {
    match p {
        Priority::Normal => state::word::NORMAL_WAITER,
        Priority::Critical => state::word::CRITICAL_WAITER,
    }
}

proptest! {
    /// The rule's word decodes to the reference model after every step,
    /// and admits exactly when the model has a permit free above the
    /// caller's floor.
    #[test]
    fn the_rule_matches_the_reference_model(
        max in 1u32..6,
        reserve_pick in 0u32..6,
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let reserve = reserve_pick % max;
        let (maxi, res) = (max as i64, reserve as i64);
        let mut w = state::word::full(max);
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Take(p) => {
                    let got = rule::take(w, rule::floor(p, res));
                    prop_assert_eq!(got.is_some(), m.free_for(maxi, res, p));
                    if let Some(n) = got { w = n; m.in_use += 1; }
                }
                Op::Release => {
                    if m.in_use > 0 { w += 1; m.in_use -= 1; }
                }
                Op::Register(p) => {
                    if let Some((n, taken)) = rule::take_and_adjust(w, rule::floor(p, res), 0, unit(p)) {
                        prop_assert_eq!(taken, m.free_for(maxi, res, p));
                        w = n;
                        if taken { m.in_use += 1 } else { *m.waiters(p) += 1 }
                    }
                }
                Op::Leave(p) | Op::Wake(p) if *m.waiters(p) == 0 => {}
                Op::Leave(p) => {
                    let leave = unit(p).wrapping_neg();
                    let (n, taken) = rule::take_and_adjust(w, rule::floor(p, res), leave, leave).unwrap();
                    prop_assert_eq!(taken, m.free_for(maxi, res, p));
                    w = n;
                    *m.waiters(p) -= 1;
                    if taken { m.in_use += 1 }
                }
                Op::Wake(p) => {
                    let leave = unit(p).wrapping_neg();
                    match rule::take_and_adjust(w, rule::floor(p, res), leave, 0) {
                        Some((n, taken)) => {
                            prop_assert!(taken);
                            prop_assert!(m.free_for(maxi, res, p));
                            w = n;
                            *m.waiters(p) -= 1;
                            m.in_use += 1;
                        }
                        None => prop_assert!(!m.free_for(maxi, res, p)),
                    }
                }
            }
            prop_assert_eq!(rule::in_use(maxi, state::word::available(w)), m.in_use);
            prop_assert_eq!(state::word::normal_waiters(w), m.normal);
            prop_assert_eq!(state::word::critical_waiters(w), m.critical);
            // Whom a release would wake: critical first; normal only with a
            // permit outside the reserve.
            let avail = maxi - m.in_use;
            let expect = if m.critical > 0 {
                Some(Priority::Critical)
            } else if m.normal > 0 && avail > res {
                Some(Priority::Normal)
            } else {
                None
            };
            prop_assert_eq!(rule::whom_to_wake(w, avail, res), expect);
        }
    }
}
