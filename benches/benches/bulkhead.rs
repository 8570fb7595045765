//! Bulkhead try_acquire + release, beside the hardware floor, tokio's
//! semaphore (no runtime needed for try_acquire) and a Mutex + Condvar
//! semaphore, on one thread and with two threads on one instance.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use failwell::bulkhead::Bulkhead;
use failwell_benches::{two_threads, CondvarSemaphore};

fn bulkhead() -> Bulkhead {
    Bulkhead::builder().max_concurrent(64).build().unwrap()
}

/// The same bulkhead in a host region of this run's own (the file is
/// removed at once; the mapping stays).
fn shared_bulkhead(tag: &str) -> Bulkhead {
    let name = format!("failwell-bench-{tag}-{}", std::process::id());
    let region = failwell::region::Region::open(&name, 1 << 20).unwrap();
    failwell::region::Region::unlink(&name).unwrap();
    let config = failwell::bulkhead::Config {
        max_concurrent: 64,
        critical_reserve: 0,
    };
    region.bulkhead("bench", config).unwrap()
}

fn one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulkhead_1t");
    let floor = AtomicU64::new(0);
    g.bench_function("floor_fetch_add", |b| {
        b.iter(|| black_box(floor.fetch_add(1, Relaxed)))
    });
    let bh = bulkhead();
    g.bench_function("failwell", |b| b.iter(|| drop(black_box(bh.try_acquire()))));
    let sh = shared_bulkhead("1t");
    g.bench_function("failwell_shared", |b| {
        b.iter(|| drop(black_box(sh.try_acquire())))
    });
    let sem = tokio::sync::Semaphore::new(64);
    g.bench_function("tokio_semaphore", |b| {
        b.iter(|| drop(black_box(sem.try_acquire())))
    });
    let cs = CondvarSemaphore::new(64);
    g.bench_function("mutex_condvar", |b| {
        b.iter(|| {
            if black_box(cs.try_acquire()) {
                cs.release();
            }
        })
    });
    g.finish();
}

fn two(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulkhead_2t");
    let floor = Arc::new(AtomicU64::new(0));
    g.bench_function("floor_fetch_add", |b| {
        b.iter_custom(|n| {
            two_threads(n, &floor, |a| {
                black_box(a.fetch_add(1, Relaxed));
            })
        })
    });
    let bh = Arc::new(bulkhead());
    g.bench_function("failwell", |b| {
        b.iter_custom(|n| two_threads(n, &bh, |h| drop(black_box(h.try_acquire()))))
    });
    let sh = Arc::new(shared_bulkhead("2t"));
    g.bench_function("failwell_shared", |b| {
        b.iter_custom(|n| two_threads(n, &sh, |h| drop(black_box(h.try_acquire()))))
    });
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    g.bench_function("tokio_semaphore", |b| {
        b.iter_custom(|n| two_threads(n, &sem, |s| drop(black_box(s.try_acquire()))))
    });
    let cs = Arc::new(CondvarSemaphore::new(64));
    g.bench_function("mutex_condvar", |b| {
        b.iter_custom(|n| {
            two_threads(n, &cs, |s| {
                if black_box(s.try_acquire()) {
                    s.release();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, one_thread, two);
criterion_main!(benches);
