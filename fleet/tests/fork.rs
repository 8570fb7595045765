//! A fleet and its limiters made before `fork()` (a pre-fork server, or
//! gunicorn `--preload`), with the leasing thread running and pooled
//! connections open: the child uses connections of its own (the parent's
//! sockets carry on undisturbed), drops the tokens the parent held,
//! starts a leasing thread under an instance id of its own, and is
//! counted as a second instance.

#![cfg(unix)]

use std::time::{Duration, Instant};

use failwell::rate_limit::RateLimiter;
use failwell_fleet::{Fleet, LEASE_TICK};

mod common;
use common::Redis;

fn limit() -> failwell::rate_limit::Builder {
    RateLimiter::builder()
        .rate(200, Duration::from_secs(1))
        .burst(20)
}

/// Calls every 2 ms for `d`: admitted, and whether every exact check
/// reached Redis with a sane answer.
fn work(
    l: &failwell_fleet::LeasedRateLimiter,
    e: &failwell_fleet::ExactRateLimiter,
    d: Duration,
) -> (u64, bool) {
    let t = Instant::now();
    let (mut admitted, mut exact_ok) = (0, true);
    let mut i = 0u32;
    while t.elapsed() < d {
        admitted += l.try_acquire().is_ok() as u64;
        if i.is_multiple_of(10) {
            exact_ok &= matches!(e.check_n(1), Ok(Ok(())));
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    (admitted, exact_ok)
}

#[test]
fn a_child_of_fork_leases_on_its_own_and_leaves_the_parents_sockets_alone() {
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    let l = fleet.rate_limiter("forked", limit()).build().unwrap();
    let e = fleet
        .exact_rate_limiter(
            "forked-exact",
            RateLimiter::builder()
                .rate(1_000_000, Duration::from_secs(1))
                .burst(1_000_000),
        )
        .build()
        .unwrap();
    let (before, ok) = work(&l, &e, LEASE_TICK * 3);
    assert!(before > 0 && ok);
    let held_at_fork = l.snapshot().held;
    let mut fds = [0; 2];
    // SAFETY: a plain pipe(2) into a local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fork(2); the child only runs this test's code and _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let leased_before = l.snapshot().leased;
        let (admitted, exact_ok) = work(&l, &e, LEASE_TICK * 8);
        let s = l.snapshot();
        let ok = admitted > 0 && exact_ok && s.leased > leased_before && s.instances == 2;
        let msg = [ok as u8, s.instances.min(255) as u8];
        // SAFETY: writes two bytes from a local array to the pipe.
        unsafe {
            libc::write(fds[1], msg.as_ptr().cast(), 2);
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's copy of the write end.
    unsafe { libc::close(fds[1]) };
    let (during, exact_ok) = work(&l, &e, LEASE_TICK * 8);
    let mut msg = [0u8; 2];
    // SAFETY: reads two bytes into a local array from the pipe.
    let n = unsafe { libc::read(fds[0], msg.as_mut_ptr().cast(), 2) };
    let mut status = 0;
    // SAFETY: waits for the child made above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(n, 2);
    assert_eq!(
        msg,
        [1, 2],
        "the child leased on its own, as a second instance"
    );
    assert!(
        exact_ok,
        "the parent's pooled connections were not disturbed"
    );
    assert!(during > 0, "{during}");
    assert!(held_at_fork <= 40, "{held_at_fork}");
}

/// A fleet breaker made before `fork()`, its sync thread running: the
/// child's first call starts a sync thread of its own, so a trip in the
/// parent opens the child's breaker through the fleet, and the child's
/// own trip reaches the parent.
#[test]
fn a_child_of_fork_syncs_its_breaker_on_its_own() {
    use failwell::breaker::CircuitBreaker;
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    let b = fleet
        .circuit_breaker(
            "forked-breaker",
            CircuitBreaker::builder()
                .consecutive_failures(1)
                .open_for(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    assert!(b.try_acquire().is_ok());
    let wait_refusal = |b: &failwell_fleet::FleetBreaker| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if b.try_acquire().is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    };
    let mut fds = [0; 2];
    // SAFETY: a plain pipe(2) into a local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fork(2); the child only runs this test's code and _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let first = b.try_acquire().is_ok(); // starts the child's thread
        let opened = wait_refusal(&b);
        let s = b.fleet_snapshot();
        let msg = [first as u8, opened as u8, (s.syncs > 0) as u8];
        // SAFETY: writes three bytes from a local array to the pipe.
        unsafe {
            libc::write(fds[1], msg.as_ptr().cast(), 3);
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's copy of the write end.
    unsafe { libc::close(fds[1]) };
    std::thread::sleep(Duration::from_millis(300)); // the child is syncing
    b.try_acquire().unwrap().failure();
    let mut msg = [0u8; 3];
    // SAFETY: reads three bytes into a local array from the pipe.
    let n = unsafe { libc::read(fds[0], msg.as_mut_ptr().cast(), 3) };
    let mut status = 0;
    // SAFETY: waits for the child made above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(n, 3);
    assert_eq!(
        msg,
        [1, 1, 1],
        "the child synced and was opened by the parent's trip"
    );
    drop(b); // ends the parent's thread
}
