//! The windows' words: where each outcome lands in the tail, and that the
//! views read back exactly what the words hold.

use super::*;
use crate::breaker::state::TailLayout;
use crate::breaker::Window;
use std::time::Duration;

/// The non-zero words of `w`'s tail, by index.
fn written(words: &[AtomicU64]) -> Vec<(usize, u64)> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| (i, w.load(Relaxed)))
        .filter(|&(_, v)| v != 0)
        .collect()
}

#[test]
fn a_count_window_keeps_each_outcome_in_its_slot_word() {
    let w = OwnedWindow::count(3);
    let empty = GEN_MASK << 2;
    assert!(w.tail.get()[..3].iter().all(|s| s.load(Relaxed) == empty));
    w.c().record(7, FAILED);
    w.c().record(7, 0);
    w.c().record(7, SLOW | FAILED);
    let slots: Vec<u64> = w.tail.get()[..3].iter().map(|s| s.load(Relaxed)).collect();
    assert_eq!(slots, [7 << 2 | FAILED, 7 << 2, 7 << 2 | SLOW | FAILED]);
    let s = w.c().stats(7);
    assert_eq!((s.calls, s.failures, s.slow), (3, 2, 1));
    // The fourth outcome replaces the first: the window slides.
    w.c().record(7, 0);
    assert_eq!(w.tail.get()[0].load(Relaxed), 7 << 2);
    let s = w.c().stats(7);
    assert_eq!((s.calls, s.failures, s.slow), (3, 1, 1));
    assert_eq!(w.heads.seq.load(Relaxed), 4);
}

#[test]
fn a_time_window_counts_a_failure_in_its_bucket_and_one_call_stripe() {
    // 4 buckets of 10 ns.
    let w = OwnedWindow::time(40, 4);
    let g = w.layout.time.expect("a time window");
    assert_eq!(
        (g.buckets, g.width, g.tallies, g.calls),
        (4, 10, 0, LINE_WORDS)
    );
    assert_eq!(
        w.layout.words(),
        LINE_WORDS + (g.stripe_mask + 1) * g.stride
    );
    assert!(written(w.tail.get()).is_empty());
    w.t().record(25, 1, FAILED); // epoch 2, bucket 2
    let tag = TimeWindow::tag(1, 2);
    let words = written(w.tail.get());
    assert_eq!(words.len(), 2, "{words:?}");
    assert_eq!(words[0], (2 * 2, (tag << 32) | 1), "bucket 2's failures");
    let (call_at, call) = words[1];
    assert_eq!(call, (tag << 32) | 1);
    assert!(call_at >= g.calls && (call_at - g.calls) % g.stride == 2);
    let s = w.t().stats(25, 1);
    assert_eq!((s.calls, s.failures, s.slow), (1, 1, 0));
    // Every counting word is swept: 2 per bucket and one per bucket and stripe.
    assert_eq!(w.t().words().count(), 2 * 4 + (g.stripe_mask + 1) * 4);
}

#[test]
fn the_breaker_tail_puts_the_window_after_the_call_stripes() {
    let t = TailLayout::new(Some(Window::Count(5)));
    let stripes = t.calls.words();
    assert_eq!(t.words(), stripes + 5);
    let tail = t.new_tail();
    let words = tail.get();
    assert!(words[..stripes].iter().all(|w| w.load(Relaxed) == 0));
    assert!(words[stripes..stripes + 5]
        .iter()
        .all(|w| w.load(Relaxed) == GEN_MASK << 2));
    assert!(words[stripes + 5..].iter().all(|w| w.load(Relaxed) == 0));
    t.calls.add(&tail, 2);
    assert_eq!(t.calls.sum(&tail), 2);

    let t = TailLayout::new(Some(Window::Time {
        length: Duration::from_secs(10),
        buckets: 10,
    }));
    assert_eq!(t.words(), t.calls.words() + t.window.words());
    assert_eq!(TailLayout::new(None).words(), t.calls.words());
}
