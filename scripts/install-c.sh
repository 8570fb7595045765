#!/usr/bin/env bash
# Builds the C library in release mode and installs it under PREFIX
# (default /usr/local): PREFIX/lib/libfailwell.{so,a},
# PREFIX/include/failwell.h and PREFIX/lib/pkgconfig/failwell.pc.
#
#   scripts/install-c.sh /opt/failwell
#   PKG_CONFIG_PATH=/opt/failwell/lib/pkgconfig cc app.c $(pkg-config --cflags --libs failwell)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
prefix=$(mkdir -p "$prefix" && cd "$prefix" && pwd)
cargo build -q --release -p failwell-ffi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp target/release/libfailwell.so target/release/libfailwell.a "$prefix/lib/"
cp include/failwell.h include/failwell.hpp "$prefix/include/"
cat > "$prefix/lib/pkgconfig/failwell.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: failwell
Description: Fault-tolerance primitives: circuit breakers, bulkheads, rate limiters
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lfailwell
Libs.private: -lpthread -ldl -lm
PC
echo "installed failwell $version under $prefix"
