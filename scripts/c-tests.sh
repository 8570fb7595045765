#!/usr/bin/env bash
# Builds libfailwell (static) and runs the C tests: functional and misuse
# tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# pthreads stress test under ThreadSanitizer. Compiled with
# gcc -std=c11 -Wall -Wextra -Werror.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p failwell-ffi
lib=target/debug/libfailwell.a
out=target/c-tests
mkdir -p "$out"
cflags=(-std=c11 -Wall -Wextra -Werror -g -Iinclude -Iffi-c/tests)
libs=(-lpthread -ldl -lm)
# One functional test program per primitive (as in ffi-c/src/), and the
# boundary's misuse suite.
for src in ffi-c/tests/test_*.c; do
    name=$(basename "$src" .c)
    case $name in test_hardening | test_stress | test_pkgconfig) continue ;; esac
    gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
        "$src" "$lib" "${libs[@]}" -o "$out/$name"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 "$out/$name"
done
gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
    ffi-c/tests/test_hardening.c "$lib" "${libs[@]}" -o "$out/test_hardening"
# Its forked child leaves with _exit, so LeakSanitizer checks the parent.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 timeout 120 "$out/test_hardening"
# Again with the C library's malloc (UBSan only), which is fork-safe where
# ASan's allocator is not: this build adds the many-forks stress test.
gcc "${cflags[@]}" -fsanitize=undefined -fno-omit-frame-pointer \
    ffi-c/tests/test_hardening.c "$lib" "${libs[@]}" -o "$out/test_hardening_libc"
UBSAN_OPTIONS=halt_on_error=1 timeout 120 "$out/test_hardening_libc"
gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
    ffi-c/examples/resilient_client.c "$lib" "${libs[@]}" -o "$out/resilient_client"
gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
    ffi-c/examples/pipeline_client.c "$lib" "${libs[@]}" -o "$out/pipeline_client"
"$out/pipeline_client"
"$out/resilient_client"

# The README's fleet example is ffi-c/examples/fleet_client.c as it is;
# run against a redis-server of its own on a free loopback port.
readme_block() {
    awk -v marker="<!-- $1 -->" '
        $0 == marker { found = 1; next }
        found && /^```/ { if (inside) exit; inside = 1; next }
        found && inside { print }' README.md
}
diff <(readme_block ffi-c/examples/fleet_client.c) ffi-c/examples/fleet_client.c
gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
    ffi-c/examples/fleet_client.c "$lib" "${libs[@]}" -o "$out/fleet_client"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
FAILWELL_REDIS_URL="redis://127.0.0.1:$port/" "$out/fleet_client"
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
trap - EXIT
g++ -std=c++17 -Wall -Wextra -Werror -g -Iinclude -fsanitize=address,undefined \
    ffi-c/tests/test_cpp.cpp "$lib" "${libs[@]}" -o "$out/test_cpp"
"$out/test_cpp"
gcc "${cflags[@]}" -fsanitize=thread \
    ffi-c/tests/test_stress.c "$lib" "${libs[@]}" -o "$out/test_stress"
TSAN_OPTIONS="halt_on_error=1 suppressions=$(pwd)/ffi-c/tests/tsan.supp" "$out/test_stress"

# The documented install step, end to end: install into a scratch prefix
# (with CARGO_TARGET_DIR set, as users' builds often have it), then build
# programs the ways C users do — pkg-config (shared, and --static against
# the archive) and a real CMake project (find_package) — and run them.
command -v pkg-config >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q pkg-config >/dev/null; }
command -v cmake >/dev/null 2>&1 || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake >/dev/null; }
prefix=$(pwd)/target/c-prefix
rm -rf "$prefix"
CARGO_TARGET_DIR=$(pwd)/target/install-c bash scripts/install-c.sh "$prefix" >/dev/null
[ "$(readelf -d "$prefix/lib/libfailwell.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" = libfailwell.so.0 ]
# (`! cmd` would not stop the script under set -e: each check says so.)
if readelf -S "$prefix/lib/libfailwell.so" | grep -q '\.debug_info'; then
    echo "the installed libfailwell.so carries debug info" >&2
    exit 1
fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
gcc -std=c11 -Wall -Wextra -Werror ffi-c/tests/test_pkgconfig.c \
    $(pkg-config --cflags --libs failwell) -o "$out/test_pkgconfig"
LD_LIBRARY_PATH="$prefix/lib" "$out/test_pkgconfig"
# --static: the archive and Libs.private suffice, nothing loaded at run time.
# shellcheck disable=SC2046
gcc -std=c11 -Wall -Wextra -Werror ffi-c/tests/test_pkgconfig.c \
    $(pkg-config --static --cflags --libs failwell | sed 's/-lfailwell/-l:libfailwell.a/') \
    -o "$out/test_pkgconfig_static"
if ldd "$out/test_pkgconfig_static" | grep -q libfailwell; then
    echo "pkg-config --static linked libfailwell.so" >&2
    exit 1
fi
"$out/test_pkgconfig_static"
cmake_build=$(pwd)/target/c-cmake
rm -rf "$cmake_build"
cmake -S ffi-c/tests/cmake -B "$cmake_build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$cmake_build" >/dev/null
"$cmake_build/app_shared"
"$cmake_build/app_static"
"$cmake_build/app_cpp"
if ldd "$cmake_build/app_static" | grep -q libfailwell; then
    echo "failwell::failwell_static linked libfailwell.so" >&2
    exit 1
fi
# A version the package is not compatible with is refused.
for want in 0.2 1.0; do
    if cmake -S ffi-c/tests/cmake -B "$cmake_build-$want" -DCMAKE_PREFIX_PATH="$prefix" \
        -DFAILWELL_WANT="$want" >/dev/null 2>&1; then
        echo "find_package(failwell $want) accepted failwell 0.1" >&2
        exit 1
    fi
    rm -rf "$cmake_build-$want"
done
echo "install: SONAME, pkg-config (shared and --static) and the CMake package: ok"
