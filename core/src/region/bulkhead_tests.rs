//! Shared bulkheads in one process: two mappings of one file share the
//! permits and the waits; the configuration is the slot's; the reaper
//! gives back the permits of dead processes' entries (made up here: the
//! entry of a pid that no longer exists, of a live pid with another start
//! time, of a zombie) and leaves live ones alone. Several real processes,
//! SIGKILL included: `core/tests/region_bulkhead.rs`.

use std::time::{Duration, Instant};

use super::tests::Scratch;
use super::threads::{boot_for_tests, ident_for_tests, start_time_for_tests};
use super::*;
use crate::bulkhead::{Config, Priority};
use crate::Rejected;

fn config(max: u32, reserve: u32) -> Config {
    Config {
        max_concurrent: max,
        critical_reserve: reserve,
    }
}

#[test]
fn two_mappings_share_one_limit_and_the_reserve() {
    let s = Scratch::new("bh-share");
    let (a, b) = (s.open(MIN_SIZE), s.open(MIN_SIZE));
    let x = a.bulkhead("db", config(3, 1)).unwrap();
    let y = b.bulkhead("db", config(3, 1)).unwrap();
    let p1 = x.try_acquire().unwrap();
    let p2 = y.try_acquire().unwrap();
    assert_eq!(x.try_acquire().unwrap_err(), Rejected::BulkheadFull);
    assert_eq!(
        y.try_acquire().unwrap_err(),
        Rejected::BulkheadFull,
        "the reserve"
    );
    let p3 = y.try_acquire_with(Priority::Critical).unwrap();
    assert!(x.try_acquire_with(Priority::Critical).is_err());
    let snap = x.snapshot();
    assert_eq!(
        (snap.in_use, snap.available, snap.max_concurrent),
        (3, 0, 3)
    );
    assert_eq!(
        snap.rejected + y.snapshot().rejected,
        6,
        "one counter, both counted"
    );
    drop((p1, p2, p3));
    assert_eq!(y.snapshot().available, 3);
    assert_eq!(x.snapshot().peak, 3);
    assert_eq!(
        a.names(),
        vec!["db".to_string()],
        "the thread table is not a name"
    );
}

#[test]
fn a_permit_moved_to_another_thread_is_given_back_there() {
    let s = Scratch::new("bh-move");
    let r = s.open(MIN_SIZE);
    let b = std::sync::Arc::new(r.bulkhead("db", config(1, 0)).unwrap());
    let p = b.try_acquire_owned(Priority::Normal).unwrap();
    std::thread::spawn(move || drop(p)).join().unwrap();
    assert_eq!(b.snapshot().available, 1);
    assert!(b.try_acquire().is_ok());
}

#[test]
fn the_configuration_is_the_slots() {
    let s = Scratch::new("bh-config");
    let r = s.open(MIN_SIZE);
    let b = r.bulkhead("db", config(4, 1)).unwrap();
    assert!(matches!(
        r.bulkhead("db", config(5, 1)),
        Err(RegionError::ConfigMismatch { .. })
    ));
    let e = r.bulkhead("db", config(4, 0)).unwrap_err().to_string();
    assert!(
        e.contains("critical_reserve: 1") && e.contains("critical_reserve: 0"),
        "{e}"
    );
    let adopted = r.attach_bulkhead("db").unwrap();
    assert_eq!(adopted.config(), b.config());
    assert!(matches!(
        r.attach_bulkhead("nope"),
        Err(RegionError::NotFound { .. })
    ));
    assert!(matches!(
        r.rate_limiter(
            "db",
            crate::rate_limit::RateLimiter::builder().rate(1, Duration::from_secs(1))
        ),
        Err(RegionError::KindMismatch { .. })
    ));
    let e = b.set_max_concurrent(8).unwrap_err();
    assert_eq!(e.field(), "reconfigure");
    assert_eq!(b.config().max_concurrent, 4, "unchanged");
}

#[test]
fn invalid_configurations_name_the_field() {
    let s = Scratch::new("bh-invalid");
    let r = s.open(MIN_SIZE);
    for (c, field) in [
        (config(0, 0), "max_concurrent"),
        (config(3, 3), "critical_reserve"),
        (config(crate::bulkhead::MAX_SHARED + 1, 0), "max_concurrent"),
        (config(u32::MAX, 0), "max_concurrent"),
    ] {
        match r.bulkhead("db", c) {
            Err(RegionError::Config(e)) => assert_eq!(e.field(), field, "{c:?}"),
            other => panic!("{c:?}: {other:?}"),
        }
    }
    assert!(r
        .bulkhead("db", config(crate::bulkhead::MAX_SHARED, 0))
        .is_ok());
    assert!(r.names() == vec!["db".to_string()]);
}

#[test]
fn a_waiter_on_one_mapping_is_woken_by_a_release_on_another() {
    let s = Scratch::new("bh-wait");
    let (a, b) = (s.open(MIN_SIZE), s.open(MIN_SIZE));
    let x = a.bulkhead("db", config(1, 0)).unwrap();
    let y = b.attach_bulkhead("db").unwrap();
    let held = x.try_acquire().unwrap();
    let t0 = Instant::now();
    assert!(y.acquire_timeout(Duration::from_millis(30)).is_err());
    assert!(t0.elapsed() >= Duration::from_millis(30));
    std::thread::scope(|sc| {
        let waiter = sc.spawn(|| {
            let t = Instant::now();
            let p = y.acquire_timeout(Duration::from_secs(10));
            (p.is_ok(), t.elapsed())
        });
        while y.snapshot().waiting == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(5));
        let released = Instant::now();
        drop(held);
        let (ok, _) = waiter.join().unwrap();
        assert!(ok);
        // Woken by the release, not by the 50 ms poll.
        assert!(
            released.elapsed() < Duration::from_millis(45),
            "{:?}",
            released.elapsed()
        );
    });
    assert_eq!(x.snapshot().available, 1);
}

#[test]
fn an_unbounded_acquire_waits_for_a_release() {
    let s = Scratch::new("bh-unbounded");
    let r = s.open(MIN_SIZE);
    let b = r.bulkhead("db", config(1, 1 - 1)).unwrap();
    let held = b.try_acquire().unwrap();
    std::thread::scope(|sc| {
        let t = sc.spawn(|| drop(b.acquire(Priority::Critical)));
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        t.join().unwrap();
    });
    assert_eq!(b.snapshot().available, 1);
}

/// Makes an entry for `ident` (as a dead process would have left it)
/// holding `n` permits of every bulkhead in the region.
fn plant(r: &Region, ident: u64, boot: u64, n: u32) -> usize {
    let i = r.threads().unwrap().plant(ident, boot);
    for b in r.bulkhead_blocks() {
        let t = crate::bulkhead::tagged::Tagged {
            word: &b.state.word,
            ledger: b.ledger.get(),
        };
        for _ in 0..n {
            t.take(i, Some(0)).unwrap();
        }
    }
    i
}

#[test]
fn the_reaper_gives_back_a_dead_processs_permits_and_frees_its_entry() {
    let s = Scratch::new("bh-reap");
    let r = s.open(MIN_SIZE);
    let b = r.bulkhead("db", config(5, 0)).unwrap();
    let boot = boot_for_tests();
    // A pid that exited: a child we waited for.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let i = plant(&r, ident_for_tests(pid, 12345, 0), boot, 3);
    assert_eq!(b.snapshot().available, 2);
    assert_eq!(r.threads().unwrap().reap(true), 3);
    assert_eq!(b.snapshot().available, 5);
    assert_eq!(r.threads().unwrap().owner(i), 0, "freed");
    assert_eq!(r.threads().unwrap().reap(true), 0, "once");
}

#[test]
fn a_live_process_is_left_alone_and_a_reused_pid_is_not_it() {
    let s = Scratch::new("bh-reuse");
    let r = s.open(MIN_SIZE);
    let b = r.bulkhead("db", config(5, 0)).unwrap();
    let boot = boot_for_tests();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    let start = start_time_for_tests(pid).unwrap();
    // The live process, as it is: kept.
    plant(&r, ident_for_tests(pid, start, 0), boot, 1);
    // The same pid with another start time: an earlier process that had
    // the pid, dead. And the live one's entry from before this boot.
    plant(&r, ident_for_tests(pid, start + 1, 0), boot, 1);
    plant(&r, ident_for_tests(pid, start, 0), boot ^ 2, 1);
    assert_eq!(b.snapshot().available, 2);
    assert_eq!(r.threads().unwrap().reap(true), 2);
    assert_eq!(b.snapshot().available, 4);
    // Killed: a zombie until waited for, and a zombie is dead.
    sleeper.kill().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        start_time_for_tests(pid),
        None,
        "a zombie has no start time"
    );
    assert_eq!(r.threads().unwrap().reap(true), 1);
    assert_eq!(b.snapshot().available, 5);
    sleeper.wait().unwrap();
}

#[test]
fn contention_reaps_when_due_and_the_reaper_thread_within_half_a_second() {
    let s = Scratch::new("bh-timer");
    let r = s.open(MIN_SIZE);
    let b = r.bulkhead("db", config(2, 0)).unwrap();
    let boot = boot_for_tests();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    plant(&r, ident_for_tests(pid, 1, 0), boot, 2);
    // The reaper thread (or a contended try) gives them back soon.
    let t0 = Instant::now();
    while b.snapshot().available < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "not reaped within 1 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Contention: a try that finds none free reaps (when due) and gets one.
    plant(&r, ident_for_tests(pid, 1, 0), boot, 2);
    std::thread::sleep(threads::REAP_EVERY);
    let t0 = Instant::now();
    loop {
        if let Ok(p) = b.try_acquire() {
            drop(p);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn a_childs_copy_of_a_parents_permit_returns_nothing() {
    let s = Scratch::new("bh-fork");
    let r = s.open(MIN_SIZE);
    let b = r.bulkhead("db", config(2, 0)).unwrap();
    let p = b.try_acquire().unwrap();
    // SAFETY: the child only drops a permit, reads a word and exits.
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(p);
        let code = if b.snapshot().available == 1 { 0 } else { 1 };
        // SAFETY: leaves the child without running the parent's atexit.
        #[allow(unsafe_code)]
        unsafe {
            libc::_exit(code)
        };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    #[allow(unsafe_code)]
    unsafe {
        libc::waitpid(pid, &mut status, 0);
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status}"
    );
    assert_eq!(
        b.snapshot().available,
        1,
        "the parent's permit is still out"
    );
    drop(p);
    assert_eq!(b.snapshot().available, 2);
}
