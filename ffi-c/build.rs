//! Gives the shared library a SONAME of its major version
//! (`libfailwell.so.0`), as C libraries have: programs linked against it
//! load `libfailwell.so.MAJOR`, which scripts/install-c.sh installs as a
//! link to `libfailwell.so.MAJOR.MINOR.PATCH`.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfailwell.so.{major}");
    }
}
