//! The library's version, at compile time (the header's `FW_VERSION_*`)
//! and at run time (`fw_version`), so that a program can check that the
//! library it loaded is the one it was built against.

use std::ffi::c_char;

/// The major version of the header (and of the library it was
/// generated with): a change of it may break callers.
pub const FW_VERSION_MAJOR: u32 = 0;
/// The minor version of the header: additions.
pub const FW_VERSION_MINOR: u32 = 1;
/// The patch version of the header: fixes.
pub const FW_VERSION_PATCH: u32 = 0;

/// The version of the library loaded at run time, `"MAJOR.MINOR.PATCH"`
/// (a static string, never NULL): compare it with `FW_VERSION_STRING`, or
/// its major with `FW_VERSION_MAJOR`, to detect a program run against a
/// library other than the one it was compiled with.
#[no_mangle]
pub extern "C" fn fw_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's constants follow the crate's version (cbindgen writes
    /// them from these literals; the workspace's `version` decides).
    #[test]
    fn the_constants_are_the_crate_version() {
        let v = env!("CARGO_PKG_VERSION");
        // FW_VERSION_STRING is written by cbindgen.toml (cbindgen writes
        // no string constants).
        let config = include_str!("../cbindgen.toml");
        assert!(
            config.contains(&format!("#define FW_VERSION_STRING \\\"{v}\\\"")),
            "ffi-c/cbindgen.toml's FW_VERSION_STRING is not {v}"
        );
        let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(
            parts,
            [FW_VERSION_MAJOR, FW_VERSION_MINOR, FW_VERSION_PATCH]
        );
        // SAFETY: fw_version returns a static NUL-terminated string.
        let run = unsafe { std::ffi::CStr::from_ptr(fw_version()) };
        assert_eq!(run.to_str().unwrap(), v);
    }
}
