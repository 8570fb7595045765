//! Long idle gaps and wrap-around: a breaker keeps protecting after any
//! quiet period (hours to years of `ManualClock` time) and after any number
//! of transitions, and a permit from an ended generation never counts.

use super::*;

const HOUR: Duration = Duration::from_secs(3600);
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The default time window (10 s in 10 buckets), trips at 50 % of ≥ 4 calls.
fn time_breaker(length: Duration, buckets: u32) -> (ManualClock, CircuitBreaker<ManualClock>) {
    let (clock, b) = manual();
    let b = b
        .failure_rate(0.5, Window::Time { length, buckets })
        .minimum_calls(4)
        .open_for(Duration::from_secs(1))
        .build()
        .unwrap();
    (clock, b)
}

/// After the gap the window starts empty, counts again and trips.
fn assert_counts_and_trips_after(gap: Duration, length: Duration, buckets: u32) {
    let (clock, b) = time_breaker(length, buckets);
    succeed(&b, 3);
    fail(&b, 1);
    assert_eq!(b.snapshot().window_calls, 4);
    clock.advance(gap);
    let s = b.snapshot();
    assert_eq!(
        (s.window_calls, s.failure_rate),
        (0, 0.0),
        "after {gap:?} the old calls are out of the window"
    );
    succeed(&b, 2);
    assert_eq!(b.snapshot().window_calls, 2, "counting after {gap:?}");
    fail(&b, 1);
    assert_eq!(b.state(), State::Closed, "1 of 3 failed after {gap:?}");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "2 of 4 failed after {gap:?}");
}

#[test]
fn a_time_window_counts_and_trips_after_any_idle_gap() {
    let width = Duration::from_secs(1);
    let gaps = [
        Duration::from_secs(11),
        HOUR,
        9 * HOUR, // about 2^15 bucket widths: the gap that blinded 16-bit epochs
        width * (1 << 15),
        width * (1 << 15) + width,
        width * (1 << 16), // the 16-bit epoch aliases the last one exactly
        width * (1 << 16) - width,
        width * ((1 << 16) + 3),
        width * (1 << 17),
        24 * HOUR,
        30 * 24 * HOUR,
        YEAR,
        10 * YEAR,
    ];
    for gap in gaps {
        assert_counts_and_trips_after(gap, Duration::from_secs(10), 10);
    }
    // 100 ms buckets went blind after 55 minutes.
    for gap in [55 * Duration::from_secs(60), 2 * HOUR, YEAR] {
        assert_counts_and_trips_after(gap, Duration::from_secs(1), 10);
    }
}

#[test]
fn a_time_window_stays_exact_across_many_successive_gaps() {
    // Gaps that each alias the 16-bit epoch of the last record, one after
    // another, with calls in between.
    let (clock, b) = time_breaker(Duration::from_secs(10), 10);
    for round in 0..20u32 {
        succeed(&b, 2);
        assert_eq!(b.snapshot().window_calls, 2, "round {round}");
        clock.advance(Duration::from_secs(1 << 16));
        assert_eq!(b.snapshot().window_calls, 0, "round {round}");
    }
    succeed(&b, 2);
    fail(&b, 2);
    assert_eq!(b.state(), State::Open, "2 of 4 failed");
}

#[test]
fn a_count_window_and_the_consecutive_count_survive_any_idle_gap() {
    for gap in [HOUR, YEAR, 10 * YEAR] {
        let (clock, b) = manual();
        let b = b
            .failure_rate(0.5, Window::Count(4))
            .minimum_calls(4)
            .consecutive_failures(3)
            .build()
            .unwrap();
        succeed(&b, 4);
        clock.advance(gap);
        fail(&b, 1);
        assert_eq!(b.snapshot().consecutive_failures, 1);
        assert_eq!(b.state(), State::Closed);
        fail(&b, 1);
        assert_eq!(
            b.state(),
            State::Open,
            "2 of the last 4 failed after {gap:?}"
        );
    }
}

#[test]
fn an_open_breaker_probes_after_any_idle_gap() {
    let (clock, b) = ready_to_probe(1);
    b.try_acquire().unwrap().failure(); // back to open
    clock.advance(10 * YEAR);
    let p = b.try_acquire().expect("the open period ended years ago");
    assert_eq!(p.state(), State::HalfOpen);
    p.success();
    assert_eq!(b.state(), State::Closed);
}

/// Many transitions with no call in between, past the 16-bit time tags'
/// generation wrap and the old 21-bit state word's: the windows of the
/// current generation still count every call.
#[test]
fn windows_count_after_transitions_past_every_tag_width() {
    let (_, b) = time_breaker(Duration::from_secs(10), 10);
    succeed(&b, 3); // words tagged with generation 0
    for target in [(1u64 << 15) + 1, (1 << 16) + 7, (1 << 21) + 1] {
        while b.snapshot().generation < target {
            b.reset();
        }
        assert_eq!(
            b.snapshot().window_calls,
            0,
            "a new generation starts empty"
        );
        succeed(&b, 2);
        fail(&b, 1);
        assert_eq!(
            b.snapshot().window_calls,
            3,
            "counting at generation {target}"
        );
        fail(&b, 1);
        assert_eq!(b.state(), State::Open, "trips at generation {target}");
    }
}

/// A permit held while exactly 2^21 transitions pass (the width of the old
/// generation field, where its generation looked current again) and one
/// held across 2^16 (the time tags' width) are still stale.
#[test]
fn a_permit_held_across_any_number_of_transitions_never_counts() {
    let (_, b) = manual();
    let b = b.consecutive_failures(1).build().unwrap();
    for span in [1u64 << 16, 1 << 21] {
        let held = b.try_acquire().unwrap();
        let (start, failures) = (held.generation(), b.snapshot().failures);
        while b.snapshot().generation < start + span {
            b.reset();
        }
        assert_eq!(b.snapshot().generation, start + span);
        held.failure();
        let s = b.snapshot();
        assert_eq!(
            (b.state(), s.consecutive_failures),
            (State::Closed, 0),
            "a failure from {span} generations ago does not trip"
        );
        assert_eq!(
            s.failures,
            failures + 1,
            "it is still counted in the totals"
        );
        b.reset();
    }
}

#[test]
fn a_time_window_permit_held_across_transitions_never_counts() {
    let (_, b) = time_breaker(Duration::from_secs(10), 10);
    let held: Vec<_> = (0..4).map(|_| b.try_acquire().unwrap()).collect();
    let start = b.snapshot().generation;
    while b.snapshot().generation < start + (1 << 16) {
        b.reset();
    }
    for p in held {
        p.failure();
    }
    let s = b.snapshot();
    assert_eq!((b.state(), s.window_calls), (State::Closed, 0));
}

/// A half-open probe held while the breaker goes round through 2^21 more
/// generations into a new half-open whose word has the same low bits: its
/// outcome is not a verdict there, and dropping it frees no slot there.
#[test]
fn a_half_open_probe_held_across_a_generation_wrap_is_stale() {
    let (clock, b) = ready_to_probe(1);
    let held = b.try_acquire().expect("the first probe");
    assert_eq!(held.state(), State::HalfOpen);
    let gen = held.generation();
    // Each round: open until now (one generation), then a new half-open
    // (another); its probe is given back.
    while b.snapshot().generation + 2 <= gen + (1 << 21) {
        b.open_until(clock.now());
        drop(b.try_acquire().unwrap());
    }
    let s = b.snapshot();
    assert_eq!((s.state, s.generation), (State::HalfOpen, gen + (1 << 21)));
    let current = b.try_acquire().expect("the new half-open's one probe");
    assert!(b.try_acquire().is_err(), "its one slot is taken");
    held.failure();
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "the stale failure is no verdict"
    );
    current.success();
    assert_eq!(b.state(), State::Closed, "the current probe decides");
}

#[test]
fn a_dropped_stale_probe_frees_no_slot_of_a_later_half_open() {
    let (clock, b) = ready_to_probe(1);
    let held = b.try_acquire().unwrap();
    let gen = held.generation();
    while b.snapshot().generation + 2 <= gen + (1 << 21) {
        b.open_until(clock.now());
        drop(b.try_acquire().unwrap());
    }
    let current = b.try_acquire().expect("the new half-open's one probe");
    drop(held);
    assert!(
        b.try_acquire().is_err(),
        "the stale permit's drop gave back no slot of the new half-open"
    );
    current.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn transitions_report_the_full_generation() {
    let (_, b) = manual();
    let b = b.consecutive_failures(1).build().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    while b.snapshot().generation < (1 << 21) + 5 {
        b.reset();
    }
    let s = seen.clone();
    b.add_listener(move |t| s.store(t.generation as usize, Ordering::SeqCst));
    b.force_open();
    assert_eq!(seen.load(Ordering::SeqCst) as u64, (1 << 21) + 6);
    assert_eq!(b.snapshot().generation, (1 << 21) + 6);
}

/// Past the 32-bit wrap of the totals' tags: counts recorded at generation
/// `g` never read as current at `g + 2^32`, where those tags are equal.
/// The first 2^32 − 2^14 transitions are jumped over (to a refresh point,
/// as real transitions would reach it); the last 2^14 run for real.
#[test]
fn counts_never_alias_across_the_32_bit_tag_wrap() {
    let (_, b) = manual();
    let b = b
        .consecutive_failures(3)
        .failure_rate(0.5, Window::Count(4))
        .minimum_calls(4)
        .build()
        .unwrap();
    b.reset();
    let g = b.snapshot().generation;
    fail(&b, 1);
    succeed(&b, 1);
    fail(&b, 1);
    let s = b.snapshot();
    assert_eq!((s.consecutive_failures, s.window_calls), (1, 3));
    let target = g + (1 << 32);
    let r = WindowLayout::REFRESH_EVERY;
    b.jump_to_refresh_point((target - 1) / r * r);
    while b.snapshot().generation < target {
        b.reset();
    }
    let s = b.snapshot();
    assert_eq!(s.generation, target);
    assert_eq!(
        (s.consecutive_failures, s.window_calls),
        (0, 0),
        "generation {g}'s counts are not {target}'s"
    );
    fail(&b, 2);
    assert_eq!(b.state(), State::Closed, "2 in a row of 3, 2 calls of 4");
    succeed(&b, 1);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "3 of the last 4 failed");
}
