#!/usr/bin/env bash
# Before/after in one run: builds the benchmark harness of two commits,
# runs them in turn on this machine and prints a markdown table of the
# user-visible figures with NEW/OLD ratios (BENCHMARKS.md, "Before/after").
#
#   bench/compare.sh OLD NEW
#   ROUNDS=3 BENCH_ARGS='--quick' KEEP=1 bench/compare.sh 9c0f5ac HEAD
#
# ROUNDS      pairs of runs (default 3); each cell is the median of its runs
# BENCH_ARGS  arguments for every harness run (default: none, the full run)
# KEEP=1      keep the worktrees, binaries and raw outputs
# CARGO_TARGET_DIR  where both builds go (default: this checkout's target/,
#             so the dependencies they share compile once)
set -euo pipefail

if [ $# -ne 2 ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
repo=$(git rev-parse --show-toplevel)
old=$(git -C "$repo" rev-parse --verify "$1^{commit}")
new=$(git -C "$repo" rev-parse --verify "$2^{commit}")
rounds=${ROUNDS:-3}
read -r -a bench_args <<<"${BENCH_ARGS:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
work=$(mktemp -d "${TMPDIR:-/tmp}/tributary-compare.XXXXXX")

cleanup() {
    for side in old new; do
        if [ -d "$work/$side" ]; then
            git -C "$repo" worktree remove --force "$work/$side" || true
        fi
    done
    if [ "${KEEP:-}" = 1 ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# Each commit's own harness: it links that commit's daemon library. Before
# the harness became a workspace member (bench/) it was a binary of the
# daemon's package.
for side in old new; do
    rev=${!side}
    git -C "$repo" worktree add --quiet --detach "$work/$side" "$rev"
    if [ -f "$work/$side/bench/Cargo.toml" ]; then
        which=(-p tributary-bench)
    else
        which=(--bin tributary-bench)
    fi
    echo "building $side ($(git -C "$repo" log -1 --format='%h %s' "$rev"))" >&2
    (cd "$work/$side" && nice -n 10 cargo build --release --locked --quiet "${which[@]}")
    cp "$CARGO_TARGET_DIR/release/tributary-bench" "$work/bin-$side"
done

# Alternating, and each round starting with the side the last one ended
# with (old new, new old, ...), so a drift of the machine's speed during
# the run weighs on both alike.
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) = 1 ]; then order="old new"; else order="new old"; fi
    for side in $order; do
        echo "round $round/$rounds: $side" >&2
        nice -n 10 "$work/bin-$side" "${bench_args[@]}" \
            >"$work/$side-$round.md" 2>"$work/$side-$round.log" || {
            echo "the $side harness failed; its log:" >&2
            tail -n 20 "$work/$side-$round.log" >&2
            exit 1
        }
    done
done

python3 - "$work" "$rounds" "$(git -C "$repo" log -1 --format=%h "$old")" \
    "$(git -C "$repo" log -1 --format=%h "$new")" "${BENCH_ARGS:-}" <<'EOF'
import re, statistics, sys

work, rounds, old, new, args = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]

# (label, row name prefix, column, regex of the figure, unit, higher is better)
FIGURES = [
    ("parse floor, feed-rs (control: the machine, not tributary)", "parse floor", 2, r"([\d.]+) entries/s", "entries/s", True),
    ("ingest, SQLite (`tributary fetch`, fresh store)", "`tributary fetch`", 1, r"([\d.]+) entries/s", "entries/s", True),
    ("ingest, SQLite steady state (new entries, filled store)", "steady state", 1, r"([\d.]+) entries/s", "entries/s", True),
    ("ingest, SQLite, `[entities]` on (fresh store)", "the same with `[entities]", 1, r"([\d.]+) entries/s", "entries/s", True),
    ("ingest, PostgreSQL, 1 daemon", "PostgreSQL, 1 daemon", 1, r"([\d.]+) entries/s", "entries/s", True),
    ("ingest, PostgreSQL, 2 daemons", "PostgreSQL, 2 daemons", 1, r"([\d.]+) entries/s", "entries/s", True),
    ("all-304 refresh (wall)", "all-304 refetch", 1, r"([\d.]+) s,", "s", False),
    ("peak RSS of the fetch cycle", "peak RSS of the fetch cycle", 1, r"([\d.]+) MB", "MB", False),
    ("cached feed, req/s", "cached 50-entry feed", 1, r"([\d.]+) req/s", "req/s", True),
    ("cached feed, p99", "cached 50-entry feed", 1, r"p99 ([\d.]+) ms", "ms", False),
    ("its 304, req/s", "its 304", 1, r"([\d.]+) req/s", "req/s", True),
    ("its 304, p99", "its 304", 1, r"p99 ([\d.]+) ms", "ms", False),
    ("filtered page, req/s", "uncached filtered page", 1, r"([\d.]+) req/s", "req/s", True),
    ("filtered page, p99", "uncached filtered page", 1, r"p99 ([\d.]+) ms", "ms", False),
    ("daemon RSS, idle", "RSS of the daemon", 1, r"([\d.]+) MB /", "MB", False),
]

def rows(path):
    out = []
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 5:
            out.append(cells)
    return out

def figure(table, prefix, column, pattern):
    for cells in table:
        if cells[0].startswith(prefix):
            m = re.search(pattern, cells[column])
            return float(m.group(1)) if m else None
    return None

tables = {side: [rows(f"{work}/{side}-{r}.md") for r in range(1, rounds + 1)] for side in ("old", "new")}
shape = next((l.strip() for l in open(f"{work}/new-1.md") if " sources x " in l), "")
print(f"\nBefore/after: {old} (OLD) vs {new} (NEW), {rounds} round(s) interleaved, "
      f"median of each; harness args: `{args or '(defaults)'}`; {shape}\n")
print("| figure | OLD | NEW | NEW/OLD | |")
print("| --- | --- | --- | --- | --- |")
worse = []
for label, prefix, column, pattern, unit, higher in FIGURES:
    values = {}
    for side in ("old", "new"):
        found = [v for v in (figure(t, prefix, column, pattern) for t in tables[side]) if v is not None]
        values[side] = statistics.median(found) if found else None
    o, n = values["old"], values["new"]
    if o is None or n is None:
        print(f"| {label} | {o if o is not None else 'n/a'} | {n if n is not None else 'n/a'} | | not measured |")
        continue
    ratio = n / o if o else float("inf")
    better = ratio > 1 if higher else ratio < 1
    # More than 25% worse: a rate below 0.75x, a time or size above 1.25x.
    too_much = ratio < 0.75 if higher else ratio > 1.25
    verdict = "" if abs(ratio - 1) < 0.005 else ("better" if better else "worse")
    if too_much and not label.startswith("parse floor"):
        verdict = "**worse by more than 25%**"
        worse.append(label)
    def show(v):
        return f"{v:,.0f} {unit}" if v >= 100 or unit == "MB" else f"{v:.2f} {unit}"
    print(f"| {label} | {show(o)} | {show(n)} | {ratio:.2f}x | {verdict} |")
print()
if worse:
    print("More than 25% worse: " + "; ".join(worse))
EOF
