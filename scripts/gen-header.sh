#!/usr/bin/env bash
# Regenerates include/failwell.h from ffi-c with cbindgen (installs it with
# cargo if missing). With --check, fails if the committed header differs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cbindgen >/dev/null 2>&1; then
    cargo install cbindgen --locked --version 0.29.4
fi
out=include/failwell.h
if [ "${1:-}" = "--check" ]; then
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    cbindgen --config ffi-c/cbindgen.toml --crate failwell-ffi --output "$tmp" ffi-c
    if ! diff -u "$out" "$tmp"; then
        echo "include/failwell.h is out of date: run scripts/gen-header.sh" >&2
        exit 1
    fi
    echo "include/failwell.h is up to date"
else
    cbindgen --config ffi-c/cbindgen.toml --crate failwell-ffi --output "$out" ffi-c
    echo "wrote $out"
fi
