//! Retry success path (the call succeeds at once), beside the bare call and
//! backon's blocking retry, on one thread.

use std::hint::black_box;
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};
use criterion::{criterion_group, criterion_main, Criterion};
use failwell::retry::{Backoff, Retry, RetryBudget};

#[inline(never)]
fn op(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

fn success_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("retry_success_1t");
    g.bench_function("bare_call", |b| b.iter(|| black_box(op(black_box(7)))));
    let retry = Retry::builder()
        .max_attempts(3)
        .backoff(Backoff::exponential(
            Duration::from_millis(100),
            2.0,
            Duration::from_secs(10),
        ))
        .build()
        .unwrap();
    g.bench_function("failwell", |b| {
        b.iter(|| black_box(retry.call(|| op(black_box(7)))))
    });
    let budgeted = Retry::builder()
        .budget(std::sync::Arc::new(RetryBudget::new()))
        .build()
        .unwrap();
    g.bench_function("failwell_with_budget", |b| {
        b.iter(|| black_box(budgeted.call(|| op(black_box(7)))))
    });
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_times(2);
    g.bench_function("backon", |b| {
        b.iter(|| black_box((|| op(black_box(7))).retry(backoff).call()))
    });
    g.finish();
}

criterion_group!(benches, success_path);
criterion_main!(benches);
