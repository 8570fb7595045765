//! The closed-breaker acquire + record path and the bulkhead's
//! try_acquire + release allocate nothing: a counting global allocator sees
//! no allocation on this thread across many passes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use failwell::breaker::{CircuitBreaker, Window};
use failwell::bulkhead::Bulkhead;
use failwell::rate_limit::RateLimiter;
use failwell::retry::{Retry, RetryBudget};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; counting
// touches only a const-initialised thread-local `Cell`, which allocates
// nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(|a| a.get());
    f();
    ALLOCATIONS.with(|a| a.get()) - before
}

#[test]
fn closed_breaker_and_bulkhead_hot_paths_do_not_allocate() {
    let breakers = [
        CircuitBreaker::builder()
            .consecutive_failures(5)
            .build()
            .unwrap(),
        CircuitBreaker::builder()
            .failure_rate(0.5, Window::Count(100))
            .slow_call_rate(0.5, Duration::from_secs(1))
            .build()
            .unwrap(),
        CircuitBreaker::builder()
            .failure_rate(
                0.5,
                Window::Time {
                    length: Duration::from_secs(10),
                    buckets: 10,
                },
            )
            .build()
            .unwrap(),
    ];
    let bulkhead = Bulkhead::builder().max_concurrent(4).build().unwrap();
    // Warm up: first use of the thread's stripe hint, first window slides.
    for b in &breakers {
        for _ in 0..1000 {
            b.try_acquire().unwrap().success();
        }
    }
    for b in &breakers {
        let n = allocations_during(|| {
            for i in 0..10_000 {
                let r: Result<u32, failwell::Error<()>> = b.call(|| Ok(i));
                assert!(r.is_ok());
                b.try_acquire().unwrap().success();
            }
        });
        assert_eq!(n, 0, "{:?}", b.config());
    }
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            let p = bulkhead.try_acquire().unwrap();
            drop(p);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn rate_limit_check_and_retry_success_path_do_not_allocate() {
    let limiter = RateLimiter::builder()
        .rate(1_000_000_000, Duration::from_secs(1))
        .burst(1_000_000)
        .build()
        .unwrap();
    let retry = Retry::builder()
        .budget(std::sync::Arc::new(RetryBudget::new()))
        .build()
        .unwrap();
    let _ = limiter.try_acquire();
    let _: Result<u32, failwell::Error<()>> = retry.call(|| Ok(0));
    let n = allocations_during(|| {
        for i in 0..10_000u32 {
            let _ = limiter.try_acquire();
            let r: Result<u32, failwell::Error<()>> = retry.call(|| Ok(i));
            assert_eq!(r, Ok(i));
        }
    });
    assert_eq!(n, 0);
}
