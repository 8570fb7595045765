use super::*;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc as StdArc;
use std::thread;
use std::time::Duration;

/// Forks; the child runs `child` and leaves with its exit code at once.
/// Returns the child's exit code (waiting at most 10 s; a hang fails).
#[allow(unsafe_code)]
fn fork_and_wait(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs only `child` (no locks of the test harness)
    // and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = child();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            assert!(libc::WIFEXITED(status), "the child died: {status:#x}");
            return libc::WEXITSTATUS(status);
        }
        if start.elapsed() > Duration::from_secs(10) {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child hung");
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// A thread inside a quiet section for `hold`, then in `aside` for
/// `away`; returns once the section has begun, with flags for "left the
/// section" and "came back from aside".
fn busy_thread(hold: Duration, away: Duration) -> (thread::JoinHandle<()>, StdArc<AtomicBool>) {
    let left = StdArc::new(AtomicBool::new(false));
    let (began_tx, began_rx) = std::sync::mpsc::channel();
    let l = left.clone();
    let t = thread::spawn(move || {
        let _quiet = quiet();
        let _nested = quiet();
        began_tx.send(()).unwrap();
        thread::sleep(hold);
        aside(|| {
            l.store(true, SeqCst);
            thread::sleep(away);
        });
    });
    began_rx.recv().unwrap();
    (t, left)
}

#[test]
fn a_fork_waits_until_no_thread_is_in_a_quiet_section() {
    let (t, left) = busy_thread(Duration::from_millis(200), Duration::ZERO);
    assert_eq!(fork_and_wait(|| 0), 0);
    // fork() returned in the parent only after the section ended.
    assert!(left.load(SeqCst), "the fork passed a running section");
    t.join().unwrap();
}

#[test]
fn a_thread_aside_does_not_hold_up_a_fork() {
    let (t, left) = busy_thread(Duration::ZERO, Duration::from_secs(3));
    while !left.load(SeqCst) {
        thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    assert_eq!(fork_and_wait(|| 0), 0);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the fork waited for a thread that had stepped aside"
    );
    t.join().unwrap(); // and it re-entered its sections afterwards
}

#[test]
fn a_child_starts_with_the_gate_open_and_a_new_generation() {
    let before = generation();
    let (t, _) = busy_thread(Duration::from_millis(50), Duration::ZERO);
    let code = fork_and_wait(move || {
        // A section and a fork of its own work in the child.
        let q = quiet();
        drop(q);
        let grandchild = fork_and_wait(|| if generation() == before + 2 { 0 } else { 3 });
        if generation() != before + 1 {
            2
        } else {
            grandchild
        }
    });
    assert_eq!(code, 0);
    assert_eq!(generation(), before, "the parent's generation is unchanged");
    t.join().unwrap();
}

#[test]
fn a_background_thread_is_restarted_in_a_child_and_stopped_there() {
    let bg = BackgroundThread::new();
    let ticks = StdArc::new(crate::sync::statics::AtomicU64::new(0));
    let spawn = |ticks: StdArc<crate::sync::statics::AtomicU64>| {
        move |signal: Arc<Signal>| {
            thread::Builder::new().spawn(move || {
                while !signal.sleep_until(Instant::now().checked_add(Duration::from_millis(1))) {
                    ticks.fetch_add(1, SeqCst);
                }
            })
        }
    };
    bg.start(spawn(ticks.clone())).unwrap();
    assert!(bg.is_current());
    let t = &ticks;
    let code = fork_and_wait(|| {
        if bg.is_current() {
            return 2; // the parent's thread is not this process's
        }
        bg.ensure(spawn(t.clone()));
        let at = t.load(SeqCst);
        let start = Instant::now();
        while t.load(SeqCst) < at + 3 {
            if start.elapsed() > Duration::from_secs(5) {
                return 3; // the fresh thread does not run
            }
            thread::sleep(Duration::from_millis(1));
        }
        bg.stop_and_join(); // joins the child's thread, and returns
        0
    });
    assert_eq!(code, 0);
    bg.stop_and_join();
    let at = ticks.load(SeqCst);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(ticks.load(SeqCst), at, "the parent's thread stopped");
}

#[test]
fn a_thread_that_forks_inside_its_own_section_does_not_wait_for_itself() {
    // As a signal handler that forks would.
    let _quiet = quiet();
    let code = fork_and_wait(|| {
        // The child's thread is inside the section too; leaving it and
        // entering another must work.
        drop(quiet());
        0
    });
    assert_eq!(code, 0);
    drop(_quiet);
    assert_eq!(fork_and_wait(|| 0), 0, "the gate is open afterwards");
}
