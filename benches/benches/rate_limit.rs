//! Rate-limiter check (admitted path), beside the hardware floor and
//! governor's direct (unkeyed) limiter, on one thread and with two threads
//! on one limiter. Both limiters are set to 10^9 requests per second so that
//! every check is admitted and both pay their clock read and CAS.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use failwell::rate_limit::RateLimiter;
use failwell_benches::two_threads;

const RATE: u32 = 1_000_000_000;

fn failwell_limiter(precise: bool) -> RateLimiter {
    RateLimiter::builder()
        .rate(RATE as u64, Duration::from_secs(1))
        .burst(1_000_000)
        .precise(precise)
        .build()
        .unwrap()
}

fn governor_limiter() -> governor::DefaultDirectRateLimiter {
    let q = governor::Quota::per_second(NonZeroU32::new(RATE).unwrap())
        .allow_burst(NonZeroU32::new(1_000_000).unwrap());
    governor::RateLimiter::direct(q)
}

fn one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit_1t");
    let floor = AtomicU64::new(0);
    g.bench_function("floor_fetch_add", |b| {
        b.iter(|| black_box(floor.fetch_add(1, Relaxed)))
    });
    let l = failwell_limiter(false);
    g.bench_function("failwell_coarse", |b| b.iter(|| black_box(l.try_acquire())));
    let l = failwell_limiter(true);
    g.bench_function("failwell_precise", |b| {
        b.iter(|| black_box(l.try_acquire()))
    });
    let gov = governor_limiter();
    g.bench_function("governor", |b| b.iter(|| black_box(gov.check())));
    // The same coarse limiter in a host region (shared memory), beside its
    // in-process twin above.
    let name = format!("failwell-bench-{}", std::process::id());
    let region = failwell::region::Region::open(&name, 1 << 20).unwrap();
    let shared = region
        .rate_limiter(
            "bench",
            RateLimiter::builder()
                .rate(RATE as u64, Duration::from_secs(1))
                .burst(1_000_000),
        )
        .unwrap();
    failwell::region::Region::unlink(&name).unwrap();
    g.bench_function("failwell_coarse_shared", |b| {
        b.iter(|| black_box(shared.try_acquire()))
    });
    g.finish();
}

fn two(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit_2t");
    let floor = Arc::new(AtomicU64::new(0));
    g.bench_function("floor_fetch_add", |b| {
        b.iter_custom(|n| {
            two_threads(n, &floor, |a| {
                black_box(a.fetch_add(1, Relaxed));
            })
        })
    });
    for (name, precise) in [("failwell_coarse", false), ("failwell_precise", true)] {
        let l = Arc::new(failwell_limiter(precise));
        g.bench_function(name, |b| {
            b.iter_custom(|n| {
                two_threads(n, &l, |l| {
                    let _ = black_box(l.try_acquire());
                })
            })
        });
    }
    let gov = Arc::new(governor_limiter());
    g.bench_function("governor", |b| {
        b.iter_custom(|n| {
            two_threads(n, &gov, |l| {
                let _ = black_box(l.check());
            })
        })
    });
    g.finish();
}

criterion_group!(benches, one_thread, two);
criterion_main!(benches);
