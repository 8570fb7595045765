//! Breaker specifications: unit tests in virtual time, a property test
//! against a plain reference model, and multi-threaded stress tests.

use super::*;
use crate::clock::ManualClock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

const MS: Duration = Duration::from_millis(1);

fn manual() -> (ManualClock, Builder<ManualClock>) {
    let clock = ManualClock::new();
    (clock.clone(), Builder::with_clock(clock))
}

fn fail(b: &CircuitBreaker<ManualClock>, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").failure();
    }
}

fn succeed(b: &CircuitBreaker<ManualClock>, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").success();
    }
}

/// A breaker tripped by one failure whose 1 ms open period has just ended:
/// the next caller becomes the first of `probes` half-open probes.
fn ready_to_probe(probes: u32) -> (ManualClock, CircuitBreaker<ManualClock>) {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(1)
        .open_for(MS)
        .half_open_calls(probes)
        .build()
        .unwrap();
    fail(&b, 1);
    clock.advance(MS);
    (clock, b)
}

mod config;
mod events;
mod half_open;
mod model;
mod permits;
mod policies;
mod rule;
mod settings;
mod stress;
mod wrap;
