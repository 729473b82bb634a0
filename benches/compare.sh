#!/usr/bin/env bash
# Runs multiproc's criterion benches and the Python equivalents on this machine, in one go,
# and prints both side by side with their ratios (benches/compare.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY_OUT=${1:-/tmp/py_bench.jsonl}
bash benches/python/run_all.sh "$PY_OUT"
cargo bench -p multiproc-benches --bench process -- --warm-up-time 1
# Same-CPU placement for the lock/event latencies: every thread and child on CPU 0.
taskset -c 0 cargo bench -p multiproc-benches --bench sync -- --warm-up-time 1 --measurement-time 3
cargo bench -p multiproc-benches --bench queue -- --warm-up-time 1 --measurement-time 3
cargo bench -p multiproc-benches --bench manager -- --warm-up-time 1 --measurement-time 3
cargo bench -p multiproc-benches --bench pool -- --warm-up-time 1 --measurement-time 3
cargo bench -p multiproc-benches --bench remote -- --warm-up-time 1 --measurement-time 3
# Actors and supervisors, with the ractor peer in the same binary (no Python equivalent).
cargo bench -p multiproc-benches --bench actor -- --warm-up-time 1 --measurement-time 3
python3 benches/compare.py "$PY_OUT"
