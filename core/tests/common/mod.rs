//! What the multi-process tests share: a region name of the run's own,
//! and running the test binary itself as a worker process (its `worker`
//! test does what `FAILWELL_REGION_WORKER` says, and nothing otherwise).

#![allow(dead_code)] // each test binary uses its part

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;

use failwell::region::Region;

pub const ROLE: &str = "FAILWELL_REGION_WORKER";

/// A region name of this run's own, removed when dropped.
pub struct Scratch(pub String);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let name = format!("failwell-it-{}-{tag}", std::process::id());
        let _ = Region::unlink(&name);
        Scratch(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Region::unlink(&self.0);
    }
}

/// Starts this binary as a worker: `role` and its arguments.
pub fn spawn(role: &str, args: &[String]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--nocapture", "--test-threads", "1"])
        .env(ROLE, role)
        .env("FAILWELL_REGION_ARGS", args.join(" "))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("worker starts")
}

/// Waits for a worker and returns the numbers it reported (`RESULT a b…`).
pub fn result(child: Child) -> Vec<u64> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "worker failed: {:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no RESULT in {text:?}"));
    line.split(' ').map(|n| n.parse().unwrap()).collect()
}

/// In a worker process: its role and arguments (as `spawn` passed them);
/// `None` in an ordinary test run.
pub fn worker_role() -> Option<(String, Vec<String>)> {
    let role = std::env::var(ROLE).ok()?;
    // A worker dies with the test thread that started it, so a test that
    // fails or hangs leaves no worker running on (Linux).
    #[cfg(target_os = "linux")]
    // SAFETY: a plain prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let args = std::env::var("FAILWELL_REGION_ARGS")
        .expect("a worker has arguments")
        .split(' ')
        .map(str::to_owned)
        .collect();
    Some((role, args))
}

/// Waits until a worker prints READY.
pub fn ready(child: &mut Child) {
    let out = child.stdout.as_mut().unwrap();
    let mut line = String::new();
    let mut r = BufReader::new(out);
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "worker ended before READY"
        );
        if line.trim_end().ends_with("READY") {
            return;
        }
    }
}

/// The 8192 words of a 64 KiB file at `path` (created if absent), mapped
/// shared: counts of a test's own, outside any region, that every worker
/// maps alike.
pub fn tally(path: &str) -> &'static [AtomicU64] {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    f.set_len(1 << 16).unwrap();
    // SAFETY: a shared mapping of the file, never unmapped (it lives as
    // long as the process); only atomics are read and written through it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            1 << 16,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    // SAFETY: 8192 aligned words in the mapping above.
    unsafe { std::slice::from_raw_parts(p.cast::<AtomicU64>(), 1 << 13) }
}
