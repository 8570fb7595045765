//! A bulkhead with a critical reserve: at most 8 calls at once to a slow
//! dependency, 2 of them kept for critical callers. Normal traffic that
//! fills the bulkhead is refused at once (instead of queueing without
//! bound), and a critical call still gets in.
//!
//! Run: `cargo run -p failwell --example bulkhead`

use std::sync::{Arc, Barrier};
use std::time::Duration;

use failwell::bulkhead::{Bulkhead, Priority};
use failwell::Rejected;

fn main() -> Result<(), failwell::ConfigError> {
    let bulkhead = Arc::new(
        Bulkhead::builder()
            .max_concurrent(8)
            .critical_reserve(2)
            .build()?,
    );

    // Six normal calls hold every permit normal traffic may use...
    let (hold, release) = (Arc::new(Barrier::new(7)), Arc::new(Barrier::new(7)));
    let workers: Vec<_> = (0..6)
        .map(|i| {
            let (b, hold, release) = (
                Arc::clone(&bulkhead),
                Arc::clone(&hold),
                Arc::clone(&release),
            );
            std::thread::spawn(move || {
                let permit = b
                    .try_acquire()
                    .unwrap_or_else(|r| panic!("worker {i}: {r}"));
                hold.wait();
                release.wait(); // the slow call
                drop(permit);
            })
        })
        .collect();
    hold.wait();
    let s = bulkhead.snapshot();
    println!(
        "6 slow normal calls in flight; {} permits left, all reserved",
        s.available
    );

    // ...so the seventh normal call is refused at once,
    match bulkhead.try_acquire() {
        Err(Rejected::BulkheadFull) => {
            println!("a 7th normal call: refused at once (bulkhead full)")
        }
        other => panic!("expected BulkheadFull, got {:?}", other.map(|_| ())),
    }
    // a normal caller that can wait a little gives up after its timeout,
    let waited = bulkhead.acquire_timeout(Duration::from_millis(50));
    assert!(
        matches!(waited, Err(Rejected::BulkheadFull)),
        "{:?}",
        waited.map(|_| ())
    );
    println!("a normal call that waits 50 ms: refused after its wait");
    // and a critical call still gets in, from the reserve.
    let critical = bulkhead
        .try_acquire_with(Priority::Critical)
        .expect("the reserve admits it");
    println!("a critical call: admitted from the reserve");
    drop(critical);

    release.wait();
    for w in workers {
        w.join().expect("worker");
    }
    let s = bulkhead.snapshot();
    println!(
        "all done: {} of {} permits free",
        s.available, s.max_concurrent
    );
    assert_eq!(s.available, 8);
    Ok(())
}
