//! Closed-breaker pass (acquire + record success), beside the hardware floor
//! and peers, on one thread and with two threads on one breaker.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use failsafe::CircuitBreaker as _;
use failwell::breaker::{CircuitBreaker, Window};
use failwell_benches::{two_threads, MutexBreaker};

fn consecutive() -> CircuitBreaker {
    CircuitBreaker::builder()
        .consecutive_failures(5)
        .build()
        .unwrap()
}

fn count_window() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_rate(0.5, Window::Count(100))
        .build()
        .unwrap()
}

fn time_window() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_rate(
            0.5,
            Window::Time {
                length: Duration::from_secs(10),
                buckets: 10,
            },
        )
        .build()
        .unwrap()
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .half_open_len(10)
        .open_wait(Duration::from_secs(30))
        .build()
}

/// `builder`'s breaker in a host region of this run's own (the file is
/// removed at once; the mapping stays).
fn in_region(tag: &str, builder: failwell::breaker::Builder) -> CircuitBreaker {
    let name = format!("failwell-bench-{tag}-{}", std::process::id());
    let region = failwell::region::Region::open(&name, 1 << 20).unwrap();
    failwell::region::Region::unlink(&name).unwrap();
    region.circuit_breaker("bench", builder).unwrap()
}

fn failwell_pass(b: &CircuitBreaker) {
    let r: Result<(), failwell::Error<()>> = b.call(|| black_box(Ok(())));
    let _ = black_box(r);
}

fn one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker_closed_1t");
    let floor = AtomicU64::new(0);
    g.bench_function("floor_fetch_add", |b| {
        b.iter(|| black_box(floor.fetch_add(1, Relaxed)))
    });
    g.bench_function("instant_now", |b| b.iter(|| black_box(Instant::now())));
    {
        use failwell::clock::{Clock, MonotonicClock};
        g.bench_function("clock_now_coarse", |b| {
            b.iter(|| black_box(MonotonicClock.now_coarse()))
        });
    }
    let cb = consecutive();
    g.bench_function("failwell_consecutive", |b| b.iter(|| failwell_pass(&cb)));
    let cb = count_window();
    g.bench_function("failwell_count_window", |b| b.iter(|| failwell_pass(&cb)));
    let cb = time_window();
    g.bench_function("failwell_time_window", |b| b.iter(|| failwell_pass(&cb)));
    // The consecutive and count-window breakers in a host region, beside
    // their in-process twins above.
    let cb = in_region("c1", CircuitBreaker::builder().consecutive_failures(5));
    g.bench_function("failwell_consecutive_shared", |b| {
        b.iter(|| failwell_pass(&cb))
    });
    let cb = in_region(
        "w1",
        CircuitBreaker::builder().failure_rate(0.5, Window::Count(100)),
    );
    g.bench_function("failwell_count_window_shared", |b| {
        b.iter(|| failwell_pass(&cb))
    });
    let cb = count_window();
    g.bench_function("failwell_permit_api", |b| {
        b.iter(|| black_box(cb.try_acquire()).unwrap().success())
    });
    let mb = MutexBreaker::new(5, Duration::from_secs(30));
    g.bench_function("mutex_breaker", |b| {
        b.iter(|| black_box(mb.call(|| black_box(Ok::<(), ()>(())))))
    });
    let fs = failsafe::Config::new().build();
    g.bench_function("failsafe", |b| {
        b.iter(|| black_box(fs.call(|| black_box(Ok::<(), ()>(())))))
    });
    let rc = recloser();
    g.bench_function("recloser", |b| {
        b.iter(|| black_box(rc.call(|| black_box(Ok::<(), ()>(())))))
    });
    g.finish();
}

fn two(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker_closed_2t");
    let floor = Arc::new(AtomicU64::new(0));
    g.bench_function("floor_fetch_add", |b| {
        b.iter_custom(|n| {
            two_threads(n, &floor, |a| {
                black_box(a.fetch_add(1, Relaxed));
            })
        })
    });
    for (name, make) in [
        (
            "failwell_consecutive",
            consecutive as fn() -> CircuitBreaker,
        ),
        ("failwell_count_window", count_window),
        ("failwell_time_window", time_window),
    ] {
        let cb = Arc::new(make());
        g.bench_function(name, |b| {
            b.iter_custom(|n| two_threads(n, &cb, failwell_pass))
        });
    }
    let cb = Arc::new(in_region(
        "c2",
        CircuitBreaker::builder().consecutive_failures(5),
    ));
    g.bench_function("failwell_consecutive_shared", |b| {
        b.iter_custom(|n| two_threads(n, &cb, failwell_pass))
    });
    let mb = Arc::new(MutexBreaker::new(5, Duration::from_secs(30)));
    g.bench_function("mutex_breaker", |b| {
        b.iter_custom(|n| {
            two_threads(n, &mb, |m| {
                black_box(m.call(|| black_box(Ok::<(), ()>(()))));
            })
        })
    });
    let fs = Arc::new(failsafe::Config::new().build());
    g.bench_function("failsafe", |b| {
        b.iter_custom(|n| {
            two_threads(n, &fs, |f| {
                let _ = black_box(f.call(|| black_box(Ok::<(), ()>(()))));
            })
        })
    });
    let rc = Arc::new(recloser());
    g.bench_function("recloser", |b| {
        b.iter_custom(|n| {
            two_threads(n, &rc, |r| {
                let _ = black_box(r.call(|| black_box(Ok::<(), ()>(()))));
            })
        })
    });
    g.finish();
}

criterion_group!(benches, one_thread, two);
criterion_main!(benches);
