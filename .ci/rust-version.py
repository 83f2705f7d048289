#!/usr/bin/env python3
"""Fails when Cargo.toml's rust-version is below what the locked
dependencies declare: the README promises that minimum to newcomers."""
import json
import re
import subprocess
import sys


def version(text):
    return tuple(int(part) for part in text.split("."))[:2]


manifest = open("Cargo.toml", encoding="utf-8").read()
declared = re.search(r'^rust-version\s*=\s*"([^"]+)"', manifest, re.M).group(1)
metadata = json.loads(
    subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked",
         "--filter-platform", "x86_64-unknown-linux-gnu"]
    )
)
built = {node["id"] for node in metadata["resolve"]["nodes"]}
needed = max(
    (version(p["rust_version"]), p["name"], p["version"])
    for p in metadata["packages"]
    if p.get("rust_version") and p["id"] in built
)
if version(declared) < needed[0]:
    sys.exit(
        f"Cargo.toml says rust-version {declared}, but {needed[1]} {needed[2]} "
        f"needs {'.'.join(map(str, needed[0]))}: raise rust-version (and README)"
    )
print(f"rust-version {declared} covers every locked dependency (highest: "
      f"{needed[1]} {needed[2]}, {'.'.join(map(str, needed[0]))})")
