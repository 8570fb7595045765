//! loom model of the adaptive limit's sampler try-lock. Built and run by
//! `RUSTFLAGS="--cfg failwell_loom" cargo test -p failwell --lib --release
//! loom_models`.

use loom::sync::Arc;
use loom::thread;

use super::rule::LimitState;
use super::state::AdaptiveState;

/// Two threads report a sample at once: each is either added to the
/// window by the one thread holding the sampler, or counted as skipped —
/// never lost, never added twice (a broken try-lock would let both read
/// the same window and one add overwrite the other).
#[test]
fn every_sample_is_added_once_or_counted_as_skipped() {
    loom::model(|| {
        let s = Arc::new(AdaptiveState::new(20.0));
        let report = |s: &AdaptiveState| {
            use crate::sync::Ordering::Relaxed;
            match s.sampler.try_hold() {
                Some(held) => {
                    let mut st: LimitState = held.load();
                    st.window_samples += 1;
                    st.window_latency += 5.0;
                    held.store(&st);
                }
                None => {
                    s.skipped_samples.fetch_add(1, Relaxed);
                }
            }
        };
        let t = {
            let s = s.clone();
            thread::spawn(move || report(&s))
        };
        report(&s);
        t.join().unwrap();
        let held = s.sampler.try_hold().expect("free once both are done");
        let st = held.load();
        let skipped = s.skipped_samples.load(crate::sync::Ordering::Relaxed);
        assert_eq!(st.window_samples + skipped, 2);
        assert_eq!(st.window_latency, 5.0 * st.window_samples as f64);
    });
}
