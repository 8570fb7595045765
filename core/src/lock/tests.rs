//! Tests of `lock`.

use super::*;
use std::sync::Arc;
use std::thread;

#[test]
fn opposite_argument_orders_never_deadlock() {
    let a = Arc::new(Mutex::new(0i64));
    let b = Arc::new(Mutex::new(0i64));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                for _ in 0..100_000 {
                    let (x, y) = if t == 0 { (&a, &b) } else { (&b, &a) };
                    let (mut gx, mut gy) = lock_both(x, y).unwrap();
                    *gx -= 1;
                    *gy += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*a.lock() + *b.lock(), 0);
}

#[test]
fn the_same_mutex_twice_is_an_error_not_a_deadlock() {
    let m = Mutex::new(1);
    let n = Mutex::new(2);
    assert_eq!(
        lock_both(&m, &m).unwrap_err(),
        SameMutexTwice { positions: (0, 1) }
    );
    assert_eq!(
        lock_all(&[&m, &n, &m]).unwrap_err(),
        SameMutexTwice { positions: (0, 2) }
    );
    let guards = lock_all(&[&n, &m]).unwrap();
    assert_eq!((*guards[0], *guards[1]), (2, 1), "guards in argument order");
}
