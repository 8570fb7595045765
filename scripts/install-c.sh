#!/usr/bin/env bash
# Builds the C library in release mode (no debug info) and installs it
# under PREFIX (default /usr/local), laid out as C libraries are:
#
#   PREFIX/lib/libfailwell.so.MAJOR.MINOR.PATCH   the shared library
#   PREFIX/lib/libfailwell.so.MAJOR -> ...         (its SONAME)
#   PREFIX/lib/libfailwell.so -> ...MAJOR          (for -lfailwell)
#   PREFIX/lib/libfailwell.a                       the static library
#   PREFIX/include/failwell.h, failwell.hpp        the C header, the C++ wrapper
#   PREFIX/lib/pkgconfig/failwell.pc               pkg-config (--static too)
#   PREFIX/lib/cmake/failwell/                     find_package(failwell CONFIG)
#
#   scripts/install-c.sh /opt/failwell
#   PKG_CONFIG_PATH=/opt/failwell/lib/pkgconfig cc app.c $(pkg-config --cflags --libs failwell)
#   cmake -DCMAKE_PREFIX_PATH=/opt/failwell ...   # find_package(failwell CONFIG REQUIRED)
#
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
prefix=$(mkdir -p "$prefix" && cd "$prefix" && pwd)
cargo build -q --release -p failwell-ffi
target=${CARGO_TARGET_DIR:-target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
minor=$(echo "$version" | cut -d. -f2)
lib="$prefix/lib"
mkdir -p "$lib/pkgconfig" "$lib/cmake/failwell" "$prefix/include"

install -m 755 "$target/release/libfailwell.so" "$lib/libfailwell.so.$version"
ln -sf "libfailwell.so.$version" "$lib/libfailwell.so.$major"
ln -sf "libfailwell.so.$major" "$lib/libfailwell.so"
install -m 644 "$target/release/libfailwell.a" "$lib/libfailwell.a"
# The Rust standard library's debug info comes with the archive; a user's
# release build does not want it.
strip --strip-debug "$lib/libfailwell.a" 2>/dev/null || true
install -m 644 include/failwell.h include/failwell.hpp "$prefix/include/"

# What a static link needs besides the archive (Libs.private, used by
# `pkg-config --static`).
private="-lpthread -ldl -lm"
cat > "$lib/pkgconfig/failwell.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: failwell
Description: Fault-tolerance primitives: circuit breakers, bulkheads, rate limiters
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lfailwell
Libs.private: $private
PC

cat > "$lib/cmake/failwell/failwellConfig.cmake" <<'CMAKE'
# failwell's CMake package: find_package(failwell CONFIG REQUIRED), then
# target_link_libraries(app PRIVATE failwell::failwell) for the shared
# library or failwell::failwell_static for the static one.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
get_filename_component(_failwell_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET failwell::failwell)
  add_library(failwell::failwell SHARED IMPORTED)
  set_target_properties(failwell::failwell PROPERTIES
    IMPORTED_LOCATION "${_failwell_prefix}/lib/libfailwell.so.@VERSION@"
    IMPORTED_SONAME "libfailwell.so.@MAJOR@"
    INTERFACE_INCLUDE_DIRECTORIES "${_failwell_prefix}/include")
endif()
if(NOT TARGET failwell::failwell_static)
  add_library(failwell::failwell_static STATIC IMPORTED)
  set_target_properties(failwell::failwell_static PROPERTIES
    IMPORTED_LOCATION "${_failwell_prefix}/lib/libfailwell.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_failwell_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
endif()
unset(_failwell_prefix)
CMAKE
sed -i "s/@VERSION@/$version/; s/@MAJOR@/$major/" "$lib/cmake/failwell/failwellConfig.cmake"

cat > "$lib/cmake/failwell/failwellConfigVersion.cmake" <<CMAKE
# Compatible with a request for the same major version (while the major is
# 0, the same minor: 0.x releases may break), at or below this one.
set(PACKAGE_VERSION "$version")
if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("$major" STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$minor")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
CMAKE
echo "installed failwell $version under $prefix"
