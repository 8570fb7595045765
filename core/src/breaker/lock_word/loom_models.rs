//! loom models of the lock word. Built and run by `RUSTFLAGS="--cfg
//! failwell_loom" cargo test -p failwell --lib --release loom_models`.

use loom::sync::Arc;
use loom::thread;

use super::*;

const A: u64 = (1 << 1) | READY;
const B: u64 = (2 << 1) | READY;
const C: u64 = (3 << 1) | READY;

/// Two live holders: never inside at once, and each gets in.
#[test]
fn lock_word_excludes_live_holders() {
    loom::model(|| {
        let word = Arc::new(AtomicU64::new(0));
        let inside = Arc::new(AtomicU64::new(0));
        let t = {
            let (word, inside) = (word.clone(), inside.clone());
            thread::spawn(move || {
                lock(&word, B, |_| false, || true, thread::yield_now, || {});
                assert_eq!(inside.fetch_add(1, Relaxed), 0);
                inside.fetch_sub(1, Relaxed);
                unlock(&word);
            })
        };
        lock(&word, A, |_| false, || true, thread::yield_now, || {});
        assert_eq!(inside.fetch_add(1, Relaxed), 0);
        inside.fetch_sub(1, Relaxed);
        unlock(&word);
        t.join().unwrap();
        assert_eq!(word.load(Relaxed), 0);
    });
}

/// A holder that died holding the lock (the word names it; it never
/// unlocks): two live takers race to take it over, exactly one is inside
/// at a time, both get in, and the dead one's word is gone.
#[test]
fn lock_word_is_taken_over_from_a_dead_holder_by_one_taker_at_a_time() {
    loom::model(|| {
        let word = Arc::new(AtomicU64::new(C)); // C died holding it
        let inside = Arc::new(AtomicU64::new(0));
        let dead = |w: u64| w | READY == C;
        let t = {
            let (word, inside) = (word.clone(), inside.clone());
            thread::spawn(move || {
                lock(&word, B, dead, || true, thread::yield_now, || {});
                assert_eq!(inside.fetch_add(1, Relaxed), 0);
                inside.fetch_sub(1, Relaxed);
                unlock(&word);
            })
        };
        lock(&word, A, dead, || true, thread::yield_now, || {});
        assert_eq!(inside.fetch_add(1, Relaxed), 0);
        inside.fetch_sub(1, Relaxed);
        unlock(&word);
        t.join().unwrap();
        assert_eq!(word.load(Relaxed), 0);
    });
}
