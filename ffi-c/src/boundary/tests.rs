//! Tests of `boundary`.

use super::*;

#[test]
fn a_panic_becomes_fw_epanic_with_its_message() {
    // Quiet the default hook's report of the deliberate panic.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let last = || {
        let mut buf = [0 as c_char; 64];
        // SAFETY: a writable buffer of its length.
        let need = unsafe { fw_last_error(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: fw_last_error NUL-terminates within the buffer.
        let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(need, msg.len() + 1);
        msg
    };
    let s = guard(|| panic!("deliberate"));
    let first = last();
    guard_void(|| panic!("in a free"));
    assert_eq!(last(), "failwell panicked: in a free");
    let s2 = guard(|| std::panic::panic_any(7u8));
    std::panic::set_hook(hook);
    assert_eq!((s, s2), (FW_EPANIC, FW_EPANIC));
    assert_eq!(first, "failwell panicked: deliberate");
    assert_eq!(last(), "failwell panicked: unknown panic");
    assert_eq!(guard(|| FW_OK), FW_OK);
}

#[test]
fn arguments_are_named_with_the_export_they_were_passed_to() {
    #[allow(non_snake_case)]
    fn fw_example(out: *mut u64, arg: *const u8) -> fw_status_t {
        guard(|| {
            let out = try_out!(out);
            let arg = try_ref!(arg);
            out.write(u64::from(*arg));
            FW_OK
        })
    }
    let mut v = 0u64;
    let one = 7u8;
    assert_eq!(fw_example(&mut v, &one), FW_OK);
    assert_eq!(v, 7);
    assert_eq!(fw_example(std::ptr::null_mut(), &one), FW_EINVAL);
    let msg = |()| {
        let mut buf = [0 as c_char; 96];
        // SAFETY: a writable buffer of its length.
        unsafe { fw_last_error(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated within the buffer.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(msg(()), "fw_example: `out` is NULL");
    assert_eq!(fw_example(&mut v, std::ptr::null()), FW_EINVAL);
    assert_eq!(msg(()), "fw_example: `arg` is NULL");
}

#[test]
fn a_handle_is_one_arc_shared_and_freed_by_count() {
    #[derive(Debug)]
    struct fw_thing_t {
        _opaque: (),
    }
    // SAFETY: never constructed; pointers only from `new_handle`.
    unsafe impl Handle for fw_thing_t {
        type Target = String;
    }
    let h: *mut fw_thing_t = new_handle("x".to_string());
    assert_eq!(borrow(h).map(String::as_str), Some("x"));
    let shared = share(h).unwrap();
    // SAFETY: made above, freed once.
    unsafe { free_handle(h) };
    assert_eq!(*shared, "x", "a shared reference outlives the handle");
    assert_eq!(Arc::strong_count(&shared), 1);
    assert!(borrow::<fw_thing_t>(std::ptr::null()).is_none());
    assert!(share::<fw_thing_t>(std::ptr::null()).is_none());
    // SAFETY: NULL is a no-op.
    unsafe { free_handle::<fw_thing_t>(std::ptr::null_mut()) };
}
