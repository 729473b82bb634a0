#!/usr/bin/env bash
# Run every CPython multiprocessing reference benchmark; one JSON line per run.
# Usage: benches/python/run_all.sh [OUT_FILE]   (default /tmp/py_bench.jsonl)
# Extra env: PYTHON (default python3), PER_BENCH_TIMEOUT (seconds, default 60).
set -u
OUT="${1:-/tmp/py_bench.jsonl}"
PY="${PYTHON:-python3}"
LIMIT="${PER_BENCH_TIMEOUT:-60}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$HERE/mp_bench.py"

: > "$OUT"
fails=0
t_start=$(date +%s)

run() {
    local t0 line rc
    t0=$(date +%s%N)
    # mp_bench has its own watchdog (--timeout); `timeout` is a second line of defence.
    # Children die with their parent (PR_SET_PDEATHSIG), so killing the parent is enough.
    line=$(timeout -k 5 "$LIMIT" "$PY" "$BENCH" "$@" --timeout "$((LIMIT - 5))")
    rc=$?
    if [ $rc -eq 0 ] && [ -n "$line" ]; then
        echo "$line" >> "$OUT"
    else
        fails=$((fails + 1))
        printf '{"bench": "%s", "args": "%s", "error": "exit code %d"}\n' "$1" "$*" "$rc" >> "$OUT"
    fi
    printf '%-55s rc=%d %6d ms\n' "$*" "$rc" "$(( ($(date +%s%N) - t0) / 1000000 ))" >&2
}

# 1. process start + join
for m in fork forkserver spawn; do run start_join --method "$m"; done
# 2-5. queues
for pin in same diff; do run mailbox_rt --pin "$pin"; done
for payload in 64 4096 1048576; do run mailbox_tput --payload "$payload"; done
run queue_2p2c
run joinable
# 6. pipes
for pin in same diff; do
    run pipe_rt --pin "$pin" --mode obj
    run pipe_rt --pin "$pin" --mode bytes
done
run pipe_tput
run pipe_tput --oneway
# 7-8. locks
run lock_uncontended --kind mp --pin same   # single process: same/diff are identical
for pin in same diff; do run lock_uncontended --kind manager --pin "$pin"; done
for kind in mp manager; do
    for procs in 2 4; do run lock_contended --kind "$kind" --procs "$procs"; done
done
# 9-10. events, semaphores
for pin in same diff; do run event_pingpong --pin "$pin"; done
run semaphore_rt
# issue 9: the other primitives' uncontended round trips, Condition, Barrier
for kind in rlock bounded; do run prim_rt --kind "$kind"; done
for pin in same diff; do run condition_rt --pin "$pin"; done
run barrier --parties 4
# 11-13. pools
run pool_map --chunksize default
run pool_map --chunksize 1
run pool_apply_rt
run pool_cpu
# 14-15. managers, shared values
run manager_dict
run manager_list_append
run value_locked_incr --procs 2
# 16. remote managers (issue 16)
for fam in unix tcp; do run remote_manager --family "$fam"; done

echo "wrote $(wc -l < "$OUT") lines to $OUT in $(( $(date +%s) - t_start ))s; failures: $fails" >&2
[ "$fails" -eq 0 ]
