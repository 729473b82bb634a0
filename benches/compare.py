#!/usr/bin/env python3
"""Prints multiproc's criterion results next to Python's multiprocessing, with ratios.

Usage: python3 benches/compare.py PY_JSONL [CRITERION_DIR]
Reads the medians criterion wrote under target/criterion/**/new/estimates.json and the JSON
lines written by benches/python/run_all.sh.
"""
import json
import os
import sys

py_path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/py_bench.jsonl"
crit = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "target", "criterion")


def rust(path):
    """Median time per iteration in microseconds, and elements per iteration (throughput)."""
    base = os.path.join(crit, *path.split("/"), "new")
    try:
        est = json.load(open(os.path.join(base, "estimates.json")))
        bench = json.load(open(os.path.join(base, "benchmark.json")))
    except OSError:
        return None, None
    us = est["median"]["point_estimate"] / 1000.0
    tp = bench.get("throughput") or {}
    elems = tp.get("Elements") or tp.get("Bytes")
    return us, elems


py = []
for line in open(py_path):
    line = line.strip()
    if line:
        try:
            py.append(json.loads(line))
        except ValueError:
            pass


def python(bench, **kw):
    for r in py:
        if r.get("bench") == bench and all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


rows = []


def lat(label, rust_path, py_rec, py_field="median_us", target=None, floor=None):
    us, _ = rust(rust_path)
    p = py_rec.get(py_field) if py_rec else None
    rows.append((label, us, "us", p, target, floor))


def tput(label, rust_path, per_iter, py_rec, py_field, unit, target=None):
    us, elems = rust(rust_path)
    val = None
    if us:
        n = per_iter if per_iter else (elems or 1)
        val = n / (us / 1e6)
        if unit == "MB/s":
            val = val / 1e6
    p = py_rec.get(py_field) if py_rec else None
    rows.append((label, val, unit, p, target, None))


# Processes and mailboxes (issue 2)
for m in ["forkserver", "spawn", "fork"]:
    lat(f"start+join {m}", f"start_join/{m}", python("start_join", method="fork"), target="<= 0.5 ms and < 0.5x Python fork" if m == "forkserver" else None)
for place in ["same", "diff"]:
    floor, _ = rust(f"floor_rt/relayed/{place}")
    direct, _ = rust(f"floor_rt/direct/{place}")
    rows.append((f"floor: socketpair RT direct ({place})", direct, "us", None, None, None))
    rows.append((f"floor: socketpair RT relayed ({place})", floor, "us", None, None, None))
    lat(f"mailbox RT ({place})", f"mailbox_rt/{place}", python("mailbox_rt", pin=place), target="<= 1.3x relayed floor", floor=floor)
    lat(f"hub ping RT ({place})", f"hub_ping/{place}", None, floor=floor)
tput("mailbox one-way 64 B (send)", "mailbox_oneway/send", None, python("mailbox_tput", payload_bytes=64), "msgs_per_s", "msg/s", ">= 2,000,000 msg/s")
tput("mailbox one-way 64 B (send_all)", "mailbox_oneway/send_all_256", None, python("mailbox_tput", payload_bytes=64), "msgs_per_s", "msg/s")
# Sync (issue 3); the sync bench runs under `taskset -c 0` (same CPU)
lat("Lock uncontended (same)", "lock_uncontended", python("lock_uncontended", kind="manager", pin="same"), target="<= 1.3x relayed floor (same)", floor=rust("floor_rt/relayed/same")[0])
lat("  vs Python mp.Lock (shared memory)", "lock_uncontended", python("lock_uncontended", kind="mp"))
tput("Lock contended 2 procs", "lock/contended_2procs", None, python("lock_contended", kind="manager", procs=2), "lock_ops_per_s", "ops/s", ">= 3x Manager().Lock()")
tput("Lock contended 4 procs", "lock/contended_4procs", None, python("lock_contended", kind="manager", procs=4), "lock_ops_per_s", "ops/s")
lat("Event ping-pong (same)", "event_pingpong", python("event_pingpong", pin="same"), target="<= Python mp.Event")
lat("Semaphore acquire+release", "semaphore_acquire_release", python("semaphore_rt"))
# Shared-memory fast paths (issue 9): against Python's shared-memory primitives
lat("Lock uncontended vs mp.Lock", "lock_uncontended", python("lock_uncontended", kind="mp"), target="<= 1.0x Python (aim 0.33x)")
lat("RLock uncontended vs mp.RLock", "rlock_uncontended", python("prim_rt", kind="rlock"), target="<= 1.0x Python")
lat("BoundedSemaphore vs mp.BoundedSemaphore", "bounded_semaphore_acquire_release", python("prim_rt", kind="bounded"), target="<= 1.0x Python")
tput("Lock contended 2 procs vs mp.Lock", "lock/contended_2procs", None, python("lock_contended", kind="mp", procs=2), "lock_ops_per_s", "ops/s", ">= 1.0x Python")
tput("Lock contended 4 procs vs mp.Lock", "lock/contended_4procs", None, python("lock_contended", kind="mp", procs=4), "lock_ops_per_s", "ops/s", ">= 1.0x Python")
lat("Condition notify/wait ping-pong (same)", "condition_pingpong", python("condition_rt", pin="same"), target="<= 1.0x Python")
lat("Barrier(4) per generation", "barrier/4parties", python("barrier", parties=4), py_field="us_per_generation", target="<= 1.0x Python")
lat("owner-death recovery", "lock/owner_death_recovery", None, target="<= 50 ms")
# Queues and pipes (issue 4)
tput("Queue 1P1C 64 B (put)", "queue_1p1c/put/64", 1, python("mailbox_tput", payload_bytes=64), "msgs_per_s", "msg/s", ">= 5x Python")
tput("Queue 1P1C 64 B (put_many)", "queue_1p1c/put_many/64", 1, python("mailbox_tput", payload_bytes=64), "msgs_per_s", "msg/s")
tput("Queue 1P1C 4 KiB (put)", "queue_1p1c/put/4096", 1, python("mailbox_tput", payload_bytes=4096), "msgs_per_s", "msg/s")
tput("Queue 1P1C 1 MiB (put)", "queue_1p1c/put/1048576", 1048576, python("mailbox_tput", payload_bytes=1048576), "mb_per_s", "MB/s", ">= 3x Python MB/s")
tput("Queue 2P2C 64 B", "queue_2p2c/64", 1, python("queue_2p2c"), "msgs_per_s", "msg/s")
tput("JoinableQueue put/get/task_done/join", "joinable/put_get_task_done_join", 1, python("joinable"), "items_per_s", "items/s", ">= 5x Python")
tput("Pipe one-way 64 B", "pipe_oneway/64", 1, python("pipe_tput", duplex=True), "bytes_msgs_per_s", "msg/s", ">= 5x Python Pipe")
for place in ["same", "diff"]:
    raw, _ = rust(f"pipe_rt/raw_socketpair_64B/{place}_cpu")
    lat(f"Pipe RT ({place})", f"pipe_rt/pipe_64B/{place}_cpu", python("pipe_rt", pin=place, mode="bytes"), target="<= 1.2x raw socketpair", floor=raw)
# Pool (issue 5)
tput("Pool(2) map, default chunksize, 100k", "pool/map_default_chunksize_100k", None, python("pool_map", chunksize="default"), "tasks_per_s", "tasks/s", ">= 2x Python")
tput("Pool(2) map, chunksize=1, 10k", "pool/map_chunksize1_10k", None, python("pool_map", chunksize="1"), "tasks_per_s", "tasks/s", ">= 5x Python")
lat("Pool(2) apply_async round trip", "pool/apply_async_round_trip", python("pool_apply_rt"), target="<= 0.5x Python and < procspawn 95 us")
_par, _ = rust("pool_cpu_bound/parallel_pool2")
_ser, _ = rust("pool_cpu_bound/serial")
_py = python("pool_cpu")
rows.append(("Pool(2) CPU-bound speedup", (_ser / _par) if (_par and _ser) else None, "x", _py.get("speedup") if _py else None, ">= 1.8x on 2 cores", None))
# Manager and shared memory (issue 6)
tput("Manager dict set+get from a child", "manager/dict_set_get_child", None, python("manager_dict"), "ops_per_s", "ops/s", ">= 3x Python")
tput("  insert+get (2 round trips, as Python)", "manager/dict_insert_get_child", None, python("manager_dict"), "ops_per_s", "ops/s")
tput("Manager list append from a child", "manager/list_append_child", None, python("manager_list_append"), "ops_per_s", "ops/s")
tput("Manager dict fetch_add from a child", "manager/dict_fetch_add_child", None, None, "ops_per_s", "ops/s")
tput("shm atomic increments, 2 procs", "shm/atomic_incr_2procs", None, python("value_locked_incr"), "ops_per_s", "ops/s", ">= 10x Python locked Value")
tput("shm locked Value increments, 2 procs", "shm/value_locked_incr_2procs", None, python("value_locked_incr"), "ops_per_s", "ops/s")

# Remote managers (issue 16)
for fam in ["unix", "tcp"]:
    # criterion writes a function id's "/" as "_" in the directory name
    lat(f"remote Dict get ({fam})", f"remote/dict_get_{fam}", python("remote_manager", family=fam), target=">= 2x Python ops/s (<= 0.5x time)")
    lat(f"remote Lock acquire+release ({fam})", f"remote/lock_acquire_release_{fam}", None)


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "us":
        if v < 1:
            return f"{v:.3f} us"
        return f"{v:,.1f} us" if v < 1000 else f"{v / 1000:,.2f} ms"
    if unit == "x":
        return f"{v:.2f}x"
    return f"{v:,.0f} {unit}"


print(f"{'measure':42} {'multiproc':>16} {'python':>16} {'ratio':>8} {'vs floor':>9}  target")
for label, val, unit, p, target, floor in rows:
    ratio = ""
    if val and p and unit != "x":
        ratio = f"{(p / val) if unit == 'us' else (val / p):.2f}x"
    vf = f"{val / floor:.2f}x" if (val and floor and unit == "us") else ""
    print(f"{label:42} {fmt(val, unit):>16} {fmt(p, unit):>16} {ratio:>8} {vf:>9}  {target or ''}")
print("\nratio: how many times better multiproc is (Python time / ours, or our rate / Python's).")
