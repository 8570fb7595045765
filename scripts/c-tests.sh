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

# The documented install step and pkg-config, end to end: install into a
# scratch prefix and build a program with pkg-config's flags (shared
# library), then run it.
command -v pkg-config >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q pkg-config >/dev/null; }
prefix=$(pwd)/target/c-prefix
bash scripts/install-c.sh "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
gcc -std=c11 -Wall -Wextra -Werror ffi-c/tests/test_pkgconfig.c \
    $(pkg-config --cflags --libs failwell) -o "$out/test_pkgconfig"
LD_LIBRARY_PATH="$prefix/lib" "$out/test_pkgconfig"
