//! The pipeline's success path beside the same layers composed by hand (the
//! baseline a careful user would write), one thread: breaker + bulkhead,
//! and retry + breaker + rate limiter + bulkhead with deadlines.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use failwell::breaker::CircuitBreaker;
use failwell::bulkhead::Bulkhead;
use failwell::deadline::Deadline;
use failwell::pipeline::Pipeline;
use failwell::rate_limit::RateLimiter;
use failwell::retry::Retry;
use failwell::Error;

struct Layers {
    breaker: Arc<CircuitBreaker>,
    bulkhead: Arc<Bulkhead>,
    limiter: Arc<RateLimiter>,
    retry: Arc<Retry>,
}

fn layers() -> Layers {
    Layers {
        breaker: Arc::new(
            CircuitBreaker::builder()
                .consecutive_failures(5)
                .build()
                .unwrap(),
        ),
        bulkhead: Arc::new(Bulkhead::builder().max_concurrent(64).build().unwrap()),
        limiter: Arc::new(
            RateLimiter::builder()
                .rate(1_000_000_000, Duration::from_secs(1))
                .burst(1_000_000)
                .build()
                .unwrap(),
        ),
        retry: Arc::new(Retry::builder().max_attempts(3).build().unwrap()),
    }
}

/// Breaker and bulkhead by hand.
fn by_hand_two(l: &Layers) -> Result<u32, Error<()>> {
    let permit = l.breaker.try_acquire().map_err(Error::Rejected)?;
    let _slot = l.bulkhead.try_acquire().map_err(Error::Rejected)?;
    let r = black_box(Ok::<u32, ()>(7));
    match r {
        Ok(_) => permit.success(),
        Err(_) => permit.failure(),
    }
    r.map_err(Error::Inner)
}

/// Every layer by hand: retry around breaker, limiter, bulkhead, with a
/// total and a per-attempt deadline.
fn by_hand_all(l: &Layers) -> Result<u32, Error<()>> {
    let total = Deadline::after(Duration::from_secs(2));
    l.retry.call_protected(Some(total), || {
        let permit = l.breaker.try_acquire().map_err(Error::Rejected)?;
        l.limiter.try_acquire().map_err(Error::Rejected)?;
        let _slot = l.bulkhead.try_acquire().map_err(Error::Rejected)?;
        let deadline = total.min(Deadline::after(Duration::from_millis(500)));
        let r = black_box(Ok::<u32, ()>(black_box(deadline).as_nanos() as u32 & 7));
        match r {
            Ok(_) => permit.success(),
            Err(_) => permit.failure(),
        }
        r.map_err(Error::Inner)
    })
}

fn one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline_1t");
    let l = layers();
    let two = Pipeline::builder()
        .breaker(l.breaker.clone())
        .bulkhead(l.bulkhead.clone())
        .build()
        .unwrap();
    g.bench_function("by_hand_breaker_bulkhead", |b| {
        b.iter(|| black_box(by_hand_two(&l)))
    });
    g.bench_function("pipeline_breaker_bulkhead", |b| {
        b.iter(|| black_box(two.call(|_| black_box(Ok::<u32, ()>(7)))))
    });
    let all = Pipeline::builder()
        .total_timeout(Duration::from_secs(2))
        .retry(l.retry.clone())
        .breaker(l.breaker.clone())
        .rate_limiter(l.limiter.clone())
        .bulkhead(l.bulkhead.clone())
        .attempt_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    g.bench_function("by_hand_all_layers", |b| {
        b.iter(|| black_box(by_hand_all(&l)))
    });
    g.bench_function("pipeline_all_layers", |b| {
        b.iter(|| {
            black_box(all.call(|d| black_box(Ok::<u32, ()>(black_box(d).as_nanos() as u32 & 7))))
        })
    });
    g.finish();
}

criterion_group!(benches, one_thread);
criterion_main!(benches);
