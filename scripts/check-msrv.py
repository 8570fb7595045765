#!/usr/bin/env python3
"""Checks each shipped crate's declared MSRV (`rust-version`) against the
locked dependency tree: every crate it builds with (normal and build
dependencies, every target but the loom model build's) must declare a
`rust-version` no newer than its own — with its default features and with
each optional feature of `failwell` on. `deadlock-detection` is held to its
own documented MSRV (parking_lot's detection pulls in `backtrace`, whose
current releases need a newer Rust than the core). clippy's `incompatible_msrv` lint checks the use of
std against the same field; together they stand in for a build with the old
compiler, which this machine does not have.

Usage: scripts/check-msrv.py   (from anywhere in the workspace; exit 1 on a
violation, naming the crate, the dependency and both versions)
"""
import json
import subprocess
import sys

# (crate, features of the workspace to turn on, the MSRV that build needs:
# None = the crate's own rust-version)
BUILDS = [
    ("failwell", [], None),
    ("failwell", ["failwell/metrics"], None),
    ("failwell", ["failwell/tracing"], None),
    ("failwell", ["failwell/deadlock-detection"], "1.88"),
    ("failwell-fleet", [], None),
    ("failwell-ffi", [], None),
    ("failwell-py", [], None),
]


def version(v):
    return tuple(int(x) for x in v.split(".")) + (0,) * (3 - len(v.split(".")))


def main():
    failed = 0
    for name, features, allowed in BUILDS:
        args = ["cargo", "metadata", "--format-version", "1", "--locked"]
        if features:
            args += ["--features", ",".join(features)]
        meta = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
        packages = {p["id"]: p for p in meta["packages"]}
        nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
        by_name = {packages[i]["name"]: i for i in meta["workspace_members"]}
        root = by_name[name]
        declared = allowed or packages[root]["rust_version"]
        label = f"{name}{' +' + ','.join(features) if features else ''}"
        if declared is None:
            print(f"check-msrv: {name} declares no rust-version")
            failed += 1
            continue
        seen, stack, unknown = {root}, [root], 0
        while stack:
            for dep in nodes[stack.pop()]["deps"]:
                built = [
                    k
                    for k in dep["dep_kinds"]
                    if k["kind"] != "dev" and "failwell_loom" not in (k["target"] or "")
                ]
                if not built or dep["pkg"] in seen:
                    continue
                seen.add(dep["pkg"])
                stack.append(dep["pkg"])
                p = packages[dep["pkg"]]
                need = p["rust_version"]
                if need is None:
                    unknown += 1
                elif version(need) > version(declared):
                    print(
                        f"check-msrv: {label} needs at most Rust {declared}, "
                        f"but its dependency {p['name']} {p['version']} needs {need}"
                    )
                    failed += 1
        print(
            f"check-msrv: {label} (Rust {declared}): {len(seen) - 1} dependencies "
            f"checked, {unknown} declare none"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
