"""CPython `multiprocessing` reference benchmarks for the `multiproc` Rust crate.

One subcommand per benchmark; each prints exactly ONE JSON object (one line)
on stdout.  Diagnostics, if any, go to stderr.  Standard library only.

Conventions
-----------
* Latency benches: `--warmup` un-timed iterations, then `--n` timed samples;
  reports median / p10 / p90 in microseconds (linear-interpolated percentiles).
  Very fast single-process ops (mp.Lock, mp.Semaphore) time batches of
  `--batch` ops per sample and divide, so timer overhead does not dominate.
* Throughput benches: `--repeat` timed runs (after one warm-up exchange);
  reports the median run plus every run.
* `--pin same|diff|none`: same = parent and child on CPU 0; diff = parent on
  CPU 0, child(ren) on CPU 1; none = leave the scheduler alone.
* `--start-method fork|forkserver|spawn` (default fork, CPython 3.11's
  Linux default) selects the multiprocessing context for all benches except
  `start_join`, which uses `--method`.
* Cross-process timestamps use time.monotonic_ns() (CLOCK_MONOTONIC,
  system-wide on Linux); in-process latencies use time.perf_counter_ns().
* Every child is started with PR_SET_PDEATHSIG=SIGKILL (Linux, via ctypes) and
  all children are terminated + joined in a `finally`; a SIGALRM watchdog
  (`--timeout`, default 120 s) aborts a hung bench through the same path.
"""

# Keep module-level imports minimal: spawn and forkserver children import this
# module (to find their target) and re-run the tiny mp_bench.py launcher as
# __mp_main__.  Heavy modules (argparse, json, ctypes, multiprocessing.managers)
# are imported lazily so they are only paid where used.
import math
import multiprocessing as mp
import os
import signal
import sys
import time

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _set_pdeathsig():
    """Ask the kernel to SIGKILL us when our parent dies (Linux only)."""
    try:
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def pin_cpu(cpu, pid=0):
    """Pin `pid` (0 = calling thread/process) to a single CPU; None = no-op."""
    if cpu is None:
        return False
    if not hasattr(os, "sched_setaffinity"):
        return False
    os.sched_setaffinity(pid, {cpu})
    return True


def pin_all_threads(pid, cpu):
    """Pin every thread of another process (e.g. a Manager server). Returns #threads pinned."""
    n = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tids = [str(pid)]
    for tid in tids:
        try:
            os.sched_setaffinity(int(tid), {cpu})
            n += 1
        except OSError:
            pass
    return n


def parent_cpu(pin):
    return None if pin == "none" else 0


def child_cpu(pin):
    return {"none": None, "same": 0, "diff": 1}[pin]


def child_entry(cpu, fn, *args):
    """Top-level trampoline every benchmark child runs through (picklable for spawn)."""
    _set_pdeathsig()
    pin_cpu(cpu)
    fn(*args)


def noop():
    pass


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * q
    lo = math.floor(k)
    hi = math.ceil(k)
    if lo == hi:
        return sorted_vals[lo]
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def latency_stats(samples_ns, per=1):
    """samples_ns: list of ns per sample; per: ops per sample (batching)."""
    us = sorted(s / per / 1000.0 for s in samples_ns)
    return {
        "median_us": round(percentile(us, 0.5), 3),
        "p10_us": round(percentile(us, 0.1), 3),
        "p90_us": round(percentile(us, 0.9), 3),
        "min_us": round(us[0], 3),
        "max_us": round(us[-1], 3),
    }


def loop_overhead_per_op_us(batch, n=200):
    """Median cost of an empty `for _ in range(batch)` loop, per iteration (us)."""
    clk = time.perf_counter_ns
    rng = range(batch)
    xs = []
    for _ in range(n):
        t0 = clk()
        for _ in rng:
            pass
        xs.append(clk() - t0)
    return round(median(xs) / batch / 1000.0, 4)


def median(vals):
    return percentile(sorted(vals), 0.5)


def emit(obj):
    import json
    import platform
    obj.setdefault("python", platform.python_version())
    obj.setdefault("ncpu", os.cpu_count())
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Cleanup:
    """Collects children / queues / pools / managers and tears them down in `finally`."""

    def __init__(self):
        self.procs = []
        self.queues = []
        self.pools = []
        self.managers = []

    def proc(self, p):
        self.procs.append(p)
        return p

    def queue(self, q):
        self.queues.append(q)
        return q

    def close(self):
        for p in self.procs:
            try:
                if p.is_alive():
                    p.terminate()
            except Exception:
                pass
        for p in self.procs:
            try:
                p.join(5)
                if p.is_alive():
                    p.kill()
                    p.join(5)
            except Exception:
                pass
        for pool in self.pools:
            try:
                pool.terminate()
                pool.join()
            except Exception:
                pass
        for m in self.managers:
            try:
                m.shutdown()
            except Exception:
                pass
        for q in self.queues:
            # data left in a queue must not block interpreter exit
            try:
                q.cancel_join_thread()
                q.close()
            except Exception:
                pass


def start_child(ctx, cl, cpu, fn, *args):
    p = ctx.Process(target=child_entry, args=(cpu, fn) + args, daemon=True)
    cl.proc(p)
    p.start()
    return p


def join_children(procs, timeout=30):
    for p in procs:
        p.join(timeout)
        if p.is_alive():
            raise RuntimeError(f"child {p.pid} did not exit")
        if p.exitcode != 0:
            raise RuntimeError(f"child {p.pid} exited with {p.exitcode}")


def start_manager(ctx, cl):
    from multiprocessing.managers import SyncManager
    m = SyncManager(ctx=ctx)
    m.start(_set_pdeathsig)
    cl.managers.append(m)
    return m


def start_pool(ctx, cl, n):
    pool = ctx.Pool(n, initializer=_set_pdeathsig)
    cl.pools.append(pool)
    return pool


def wait_ready(ready, n, timeout=60):
    """Wait until `n` children have released the `ready` semaphore."""
    for _ in range(n):
        if not ready.acquire(timeout=timeout):
            raise RuntimeError("children did not become ready")


def base(args, bench, **extra):
    d = {"bench": bench, "method": getattr(args, "start_method", None)}
    d.update(extra)
    return d


# --------------------------------------------------------------------------
# 1. start_join
# --------------------------------------------------------------------------

def bench_start_join(args):
    ctx = mp.get_context(args.method)
    # Prefer the launcher's noop (pickled as __main__.noop) so spawn/forkserver
    # children do not have to import this (large) module; see mp_bench.py.
    target = getattr(sys.modules["__main__"], "noop", noop)
    n = args.n or {"fork": 500, "forkserver": 400, "spawn": 100}[args.method]
    warm = args.warmup if args.warmup is not None else 3
    samples = []
    cl = Cleanup()
    try:
        # warm-up (for forkserver this starts the fork server before timing)
        for _ in range(warm):
            p = cl.proc(ctx.Process(target=target))
            p.start()
            p.join()
        cl.procs.clear()
        for _ in range(n):
            p = ctx.Process(target=target)
            t0 = time.perf_counter_ns()
            p.start()
            p.join()
            samples.append(time.perf_counter_ns() - t0)
            if p.exitcode != 0:
                raise RuntimeError(f"noop child exited {p.exitcode}")
    finally:
        cl.close()
    out = {"bench": "start_join", "method": args.method, "pin": "none",
           "target": f"{target.__module__}.{target.__name__}"}
    out.update(latency_stats(samples))
    out.update(n=n, warmup=warm)
    emit(out)


# --------------------------------------------------------------------------
# 2. mailbox_rt  (Queue round trip)
# --------------------------------------------------------------------------

def _echo_queue(q_in, q_out):
    get, put = q_in.get, q_out.put
    while True:
        m = get()
        if m is None:
            break
        put(m)


def bench_mailbox_rt(args):
    ctx = mp.get_context(args.start_method)
    n = args.n or 20000
    warm = args.warmup if args.warmup is not None else 1000
    cl = Cleanup()
    samples = []
    try:
        pin_cpu(parent_cpu(args.pin))
        q_in = cl.queue(ctx.Queue())
        q_out = cl.queue(ctx.Queue())
        p = start_child(ctx, cl, child_cpu(args.pin), _echo_queue, q_in, q_out)
        put, get = q_in.put, q_out.get
        msg = ("ping", 42)
        clk = time.perf_counter_ns
        for _ in range(warm):
            put(msg)
            get()
        for _ in range(n):
            t0 = clk()
            put(msg)
            get()
            samples.append(clk() - t0)
        put(None)
        join_children([p])
    finally:
        cl.close()
    out = base(args, "mailbox_rt", pin=args.pin, message="tuple ('ping', 42)")
    out.update(latency_stats(samples))
    out.update(n=n, warmup=warm)
    emit(out)


# --------------------------------------------------------------------------
# 3. mailbox_tput  (Queue one-way throughput, 1 -> 1)
# --------------------------------------------------------------------------

def _queue_sink(q, done, count):
    get = q.get
    get()  # warm-up message
    done.put(("ready", time.monotonic_ns()))
    for _ in range(count):
        get()
    t_end = time.monotonic_ns()
    done.put(("done", t_end))


def default_count_for_payload(payload):
    if payload <= 65536:
        return 200_000
    return 1000


def bench_mailbox_tput(args):
    ctx = mp.get_context(args.start_method)
    payload = args.payload
    count = args.count or default_count_for_payload(payload)
    data = b"x" * payload
    runs = []
    cl = Cleanup()
    try:
        pin_cpu(parent_cpu(args.pin))
        for _ in range(args.repeat):
            q = cl.queue(ctx.Queue())
            done = cl.queue(ctx.Queue())
            p = start_child(ctx, cl, child_cpu(args.pin), _queue_sink, q, done, count)
            q.put(data)
            assert done.get(timeout=60)[0] == "ready"
            put = q.put
            t0 = time.monotonic_ns()
            for _ in range(count):
                put(data)
            tag, t_end = done.get(timeout=120)
            assert tag == "done"
            join_children([p])
            runs.append((t_end - t0) / 1e9)
    finally:
        cl.close()
    secs = median(runs)
    out = base(args, "mailbox_tput", pin=args.pin, payload_bytes=payload, count=count,
               repeat=args.repeat,
               msgs_per_s=round(count / secs, 1),
               mb_per_s=round(count * payload / secs / 1e6, 3),
               seconds=round(secs, 4),
               runs_msgs_per_s=[round(count / r, 1) for r in runs])
    emit(out)


# --------------------------------------------------------------------------
# 4. queue_2p2c
# --------------------------------------------------------------------------

def _producer(q, ready, start_evt, count, payload):
    data = b"x" * payload
    put = q.put
    ready.release()
    start_evt.wait()
    for _ in range(count):
        put(data)


def _consumer(q, res, ready):
    ready.release()
    get = q.get
    n = 0
    t_last = 0
    while True:
        m = get()
        if m is None:
            break
        n += 1
        t_last = time.monotonic_ns()
    res.put((n, t_last))


def bench_queue_2p2c(args):
    ctx = mp.get_context(args.start_method)
    total = args.count or 200_000
    nprod, ncons = args.producers, args.consumers
    per = total // nprod
    total = per * nprod
    runs = []
    cl = Cleanup()
    try:
        for _ in range(args.repeat):
            q = cl.queue(ctx.Queue())
            res = cl.queue(ctx.Queue())
            start_evt = ctx.Event()
            ready = ctx.Semaphore(0)
            cons = [start_child(ctx, cl, None, _consumer, q, res, ready) for _ in range(ncons)]
            prods = [start_child(ctx, cl, None, _producer, q, ready, start_evt, per, args.payload)
                     for _ in range(nprod)]
            wait_ready(ready, ncons + nprod)
            t0 = time.monotonic_ns()
            start_evt.set()
            join_children(prods, timeout=120)  # producers flush their feeder threads on exit
            for _ in range(ncons):
                q.put(None)
            results = [res.get(timeout=60) for _ in range(ncons)]
            join_children(cons)
            got = sum(r[0] for r in results)
            if got != total:
                raise RuntimeError(f"received {got} of {total}")
            t_end = max(r[1] for r in results)
            runs.append((t_end - t0) / 1e9)
    finally:
        cl.close()
    secs = median(runs)
    emit(base(args, "queue_2p2c", pin="none", producers=nprod, consumers=ncons,
              payload_bytes=args.payload, count=total, repeat=args.repeat,
              msgs_per_s=round(total / secs, 1), seconds=round(secs, 4),
              runs_msgs_per_s=[round(total / r, 1) for r in runs]))


# --------------------------------------------------------------------------
# 5. joinable
# --------------------------------------------------------------------------

def _joinable_worker(q):
    get, done = q.get, q.task_done
    while True:
        m = get()
        done()
        if m is None:
            break


def bench_joinable(args):
    ctx = mp.get_context(args.start_method)
    count = args.count or 100_000
    runs = []
    cl = Cleanup()
    try:
        pin_cpu(parent_cpu(args.pin))
        q = cl.queue(ctx.JoinableQueue())
        p = start_child(ctx, cl, child_cpu(args.pin), _joinable_worker, q)
        for _ in range(100):  # warm-up
            q.put(0)
        q.join()
        put = q.put
        for _ in range(args.repeat):
            t0 = time.perf_counter_ns()
            for i in range(count):
                put(i)
            q.join()
            runs.append((time.perf_counter_ns() - t0) / 1e9)
        q.put(None)
        q.join()
        join_children([p])
    finally:
        cl.close()
    secs = median(runs)
    emit(base(args, "joinable", pin=args.pin, consumers=1, count=count, repeat=args.repeat,
              items_per_s=round(count / secs, 1), seconds=round(secs, 4),
              runs_items_per_s=[round(count / r, 1) for r in runs]))


# --------------------------------------------------------------------------
# 6. pipe_rt / pipe_tput
# --------------------------------------------------------------------------

def _pipe_echo(conn, mode):
    if mode == "bytes":
        recv, send = conn.recv_bytes, conn.send_bytes
        while True:
            m = recv()
            if not m:
                break
            send(m)
    else:
        recv, send = conn.recv, conn.send
        while True:
            m = recv()
            if m is None:
                break
            send(m)


def bench_pipe_rt(args):
    ctx = mp.get_context(args.start_method)
    n = args.n or 30000
    warm = args.warmup if args.warmup is not None else 1000
    samples = []
    cl = Cleanup()
    try:
        pin_cpu(parent_cpu(args.pin))
        a, b = ctx.Pipe()
        p = start_child(ctx, cl, child_cpu(args.pin), _pipe_echo, b, args.mode)
        if args.mode == "bytes":
            msg = b"x" * 64
            send, recv = a.send_bytes, a.recv_bytes
            stop = b""
        else:
            msg = ("ping", 42)
            send, recv = a.send, a.recv
            stop = None
        clk = time.perf_counter_ns
        for _ in range(warm):
            send(msg)
            recv()
        for _ in range(n):
            t0 = clk()
            send(msg)
            recv()
            samples.append(clk() - t0)
        send(stop)
        join_children([p])
    finally:
        cl.close()
    out = base(args, "pipe_rt", pin=args.pin, mode=args.mode, duplex=True,
               message="64 bytes via send_bytes" if args.mode == "bytes" else "tuple ('ping', 42) via send")
    out.update(latency_stats(samples))
    out.update(n=n, warmup=warm)
    emit(out)


def _pipe_sink(conn, done, mode, count):
    recv = conn.recv_bytes if mode == "bytes" else conn.recv
    recv()  # warm-up
    done.send(("ready", time.monotonic_ns()))
    for _ in range(count):
        recv()
    done.send(("done", time.monotonic_ns()))


def _pipe_tput_once(ctx, cl, args, mode, count):
    if args.oneway:
        r, w = ctx.Pipe(duplex=False)
    else:
        r, w = ctx.Pipe()
    done_r, done_w = ctx.Pipe(duplex=False)
    p = start_child(ctx, cl, child_cpu(args.pin), _pipe_sink, r, done_w, mode, count)
    r.close()
    done_w.close()
    if mode == "bytes":
        msg = b"x" * args.payload
        send = w.send_bytes
    else:
        msg = (12345, "abcdefgh", b"x" * 32)  # small picklable object
        send = w.send
    send(msg)
    if not done_r.poll(60):
        raise RuntimeError("pipe sink did not start")
    assert done_r.recv()[0] == "ready"
    t0 = time.monotonic_ns()
    for _ in range(count):
        send(msg)
    if not done_r.poll(120):
        raise RuntimeError("pipe sink did not finish")
    tag, t_end = done_r.recv()
    assert tag == "done"
    join_children([p])
    w.close()
    done_r.close()
    return (t_end - t0) / 1e9


def bench_pipe_tput(args):
    ctx = mp.get_context(args.start_method)
    count = args.count or 200_000
    res = {}
    cl = Cleanup()
    try:
        pin_cpu(parent_cpu(args.pin))
        for mode in ("bytes", "obj"):
            runs = [_pipe_tput_once(ctx, cl, args, mode, count) for _ in range(args.repeat)]
            secs = median(runs)
            res[mode] = (secs, runs)
    finally:
        cl.close()
    bs, bruns = res["bytes"]
    os_, oruns = res["obj"]
    emit(base(args, "pipe_tput", pin=args.pin, duplex=not args.oneway, count=count,
              repeat=args.repeat,
              bytes_payload=args.payload,
              bytes_msgs_per_s=round(count / bs, 1),
              bytes_mb_per_s=round(count * args.payload / bs / 1e6, 3),
              obj_msgs_per_s=round(count / os_, 1),
              obj_desc="tuple (12345, 'abcdefgh', b'x'*32) via send",
              runs_bytes_msgs_per_s=[round(count / r, 1) for r in bruns],
              runs_obj_msgs_per_s=[round(count / r, 1) for r in oruns]))


# --------------------------------------------------------------------------
# 7. lock_uncontended
# --------------------------------------------------------------------------

def bench_lock_uncontended(args):
    ctx = mp.get_context(args.start_method)
    cl = Cleanup()
    samples = []
    extra = {}
    try:
        pin_cpu(parent_cpu(args.pin))
        if args.kind == "mp":
            lock = ctx.Lock()
            batch = args.batch or 1000
            n = args.n or 2000
            extra["note"] = "single process; only the caller is pinned (same/diff identical)"
        else:
            m = start_manager(ctx, cl)
            lock = m.Lock()
            batch = args.batch or 1
            n = args.n or 10000
            spid = m._process.pid
            extra["server_pid_known"] = spid is not None
        warm = args.warmup if args.warmup is not None else 200
        acq, rel = lock.acquire, lock.release
        for _ in range(warm):
            acq()
            rel()
        if args.kind == "manager":
            scpu = child_cpu(args.pin)
            if scpu is None:
                extra["server_pinned"] = False
            else:
                # pin every server thread (main + accepter + our connection handler);
                # done after warm-up so the handler thread exists.
                nthr = pin_all_threads(spid, scpu)
                extra["server_pinned"] = nthr > 0
                extra["server_threads_pinned"] = nthr
                extra["server_cpu"] = scpu
            for _ in range(warm):
                acq()
                rel()
        clk = time.perf_counter_ns
        rng = range(batch)
        for _ in range(n):
            t0 = clk()
            for _ in rng:
                acq()
                rel()
            samples.append(clk() - t0)
    finally:
        cl.close()
    out = base(args, "lock_uncontended", kind=args.kind, pin=args.pin)
    out.update(latency_stats(samples, per=batch))
    out.update(n=n, batch=batch, warmup=warm)
    if batch > 1:
        out["loop_overhead_us_per_op"] = loop_overhead_per_op_us(batch)
    out.update(extra)
    emit(out)


# --------------------------------------------------------------------------
# 8. lock_contended
# --------------------------------------------------------------------------

def _contend_mp(lock, counter, ready, start_evt, k):
    ready.release()
    start_evt.wait()
    for _ in range(k):
        with lock:
            counter.value += 1


def _contend_manager(lock, counter, ready, start_evt, k):
    counter.value  # connect to the manager before the timed section
    lock.acquire()
    lock.release()
    ready.release()
    start_evt.wait()
    for _ in range(k):
        with lock:
            counter.value += 1


def bench_lock_contended(args):
    ctx = mp.get_context(args.start_method)
    procs_n = args.procs
    cl = Cleanup()
    try:
        if args.kind == "mp":
            k = args.k or 1_000_000 // procs_n
            lock = ctx.Lock()
            counter = ctx.Value("i", 0, lock=False)
            target = _contend_mp
        else:
            k = args.k or 10_000 // procs_n
            m = start_manager(ctx, cl)
            lock = m.Lock()
            counter = m.Value("i", 0)
            target = _contend_manager
        start_evt = ctx.Event()
        ready = ctx.Semaphore(0)
        ps = [start_child(ctx, cl, None, target, lock, counter, ready, start_evt, k)
              for _ in range(procs_n)]
        wait_ready(ready, procs_n)
        t0 = time.perf_counter_ns()
        start_evt.set()
        join_children(ps, timeout=120)
        secs = (time.perf_counter_ns() - t0) / 1e9
        final = counter.value
    finally:
        cl.close()
    total = procs_n * k
    if final != total:
        raise RuntimeError(f"counter {final} != {total}")
    emit(base(args, "lock_contended", kind=args.kind, procs=procs_n, k_per_proc=k, pin="none",
              counter=("mp.Value('i', lock=False)" if args.kind == "mp" else "Manager().Value('i')"),
              ops=total, lock_ops_per_s=round(total / secs, 1), seconds=round(secs, 4),
              note="timed from start Event.set() to join of all workers"))


# --------------------------------------------------------------------------
# 9. event_pingpong
# --------------------------------------------------------------------------

def _event_pong(ping, pong, stop):
    while True:
        ping.wait()
        ping.clear()
        if stop.value:
            pong.set()
            break
        pong.set()


def bench_event_pingpong(args):
    ctx = mp.get_context(args.start_method)
    n = args.n or 20000
    warm = args.warmup if args.warmup is not None else 1000
    samples = []
    cl = Cleanup()
    try:
        pin_cpu(parent_cpu(args.pin))
        ping, pong = ctx.Event(), ctx.Event()
        stop = ctx.Value("b", 0, lock=False)
        p = start_child(ctx, cl, child_cpu(args.pin), _event_pong, ping, pong, stop)
        clk = time.perf_counter_ns
        pset, pwait, pclear = ping.set, pong.wait, pong.clear
        for _ in range(warm):
            pset()
            pwait()
            pclear()
        for _ in range(n):
            t0 = clk()
            pset()
            pwait()
            pclear()
            samples.append(clk() - t0)
        stop.value = 1
        pset()
        pwait(10)
        join_children([p])
    finally:
        cl.close()
    out = base(args, "event_pingpong", pin=args.pin)
    out.update(latency_stats(samples))
    out.update(n=n, warmup=warm)
    emit(out)


# --------------------------------------------------------------------------
# 10. semaphore_rt
# --------------------------------------------------------------------------

def bench_semaphore_rt(args):
    ctx = mp.get_context(args.start_method)
    pin_cpu(parent_cpu(args.pin))
    sem = ctx.Semaphore(1)
    batch = args.batch or 1000
    n = args.n or 2000
    warm = args.warmup if args.warmup is not None else 200
    acq, rel = sem.acquire, sem.release
    for _ in range(warm):
        acq()
        rel()
    clk = time.perf_counter_ns
    rng = range(batch)
    samples = []
    for _ in range(n):
        t0 = clk()
        for _ in rng:
            acq()
            rel()
        samples.append(clk() - t0)
    out = base(args, "semaphore_rt", pin=args.pin,
               note="single process, uncontended mp.Semaphore(1) acquire+release")
    out.update(latency_stats(samples, per=batch))
    out.update(n=n, batch=batch, warmup=warm,
               loop_overhead_us_per_op=loop_overhead_per_op_us(batch))
    emit(out)


def bench_prim_rt(args):
    """Uncontended acquire+release of mp.RLock / mp.BoundedSemaphore(1), single process."""
    ctx = mp.get_context(args.start_method)
    pin_cpu(parent_cpu(args.pin))
    prim = {"rlock": ctx.RLock, "bounded": lambda: ctx.BoundedSemaphore(1),
            "semaphore": lambda: ctx.Semaphore(1), "lock": ctx.Lock}[args.kind]()
    batch = args.batch or 1000
    n = args.n or 2000
    warm = args.warmup if args.warmup is not None else 200
    acq, rel = prim.acquire, prim.release
    for _ in range(warm):
        acq()
        rel()
    clk = time.perf_counter_ns
    rng = range(batch)
    samples = []
    for _ in range(n):
        t0 = clk()
        for _ in rng:
            acq()
            rel()
        samples.append(clk() - t0)
    out = base(args, "prim_rt", kind=args.kind, pin=args.pin,
               note="single process, uncontended acquire+release")
    out.update(latency_stats(samples, per=batch))
    out.update(n=n, batch=batch, warmup=warm,
               loop_overhead_us_per_op=loop_overhead_per_op_us(batch))
    emit(out)


def _cond_pong(cond, stop, ready):
    with cond:
        ready.set()
        while True:
            cond.wait()
            if stop.value:
                cond.notify()
                return
            cond.notify()


def bench_condition_rt(args):
    """Condition ping-pong: parent `notify(); wait()`, child `wait(); notify()` under one
    lock; one sample = one round (two notify -> waiter-wakes hops)."""
    ctx = mp.get_context(args.start_method)
    n = args.n or 5000
    warm = args.warmup if args.warmup is not None else 200
    samples = []
    cl = Cleanup()
    try:
        pin_cpu(parent_cpu(args.pin))
        cond = ctx.Condition()
        stop = ctx.Value("b", 0, lock=False)
        ready = ctx.Event()
        p = start_child(ctx, cl, child_cpu(args.pin), _cond_pong, cond, stop, ready)
        ready.wait(30)
        clk = time.perf_counter_ns
        with cond:
            for _ in range(warm):
                cond.notify()
                cond.wait()
            for _ in range(n):
                t0 = clk()
                cond.notify()
                cond.wait()
                samples.append(clk() - t0)
            stop.value = 1
            cond.notify()
            cond.wait(10)
        join_children([p])
    finally:
        cl.close()
    out = base(args, "condition_rt", pin=args.pin)
    out.update(latency_stats(samples))
    out.update(n=n, warmup=warm)
    emit(out)


def _barrier_party(barrier, rounds):
    for _ in range(rounds):
        barrier.wait()


def bench_barrier(args):
    """Barrier(parties): the parent and parties-1 children each wait `rounds` times; time per
    generation (median of --repeat runs)."""
    ctx = mp.get_context(args.start_method)
    parties = args.parties
    rounds = args.rounds or 2000
    runs = []
    cl = Cleanup()
    try:
        for _ in range(args.repeat):
            barrier = ctx.Barrier(parties)
            procs = [start_child(ctx, cl, None, _barrier_party, barrier, rounds + 1)
                     for _ in range(parties - 1)]
            barrier.wait()  # everyone is running
            t0 = time.perf_counter_ns()
            for _ in range(rounds):
                barrier.wait()
            el = time.perf_counter_ns() - t0
            join_children(procs)
            runs.append(el / rounds / 1000.0)
    finally:
        cl.close()
    out = base(args, "barrier", parties=parties)
    out.update(us_per_generation=median(runs), runs_us=runs, rounds=rounds)
    emit(out)


# --------------------------------------------------------------------------
# 11-13. pool
# --------------------------------------------------------------------------

def trivial_fn(x):
    return x * 2


def bench_pool_map(args):
    ctx = mp.get_context(args.start_method)
    if args.chunksize == "default":
        chunksize = None
        n_items = args.n_items or 100_000
        args.repeat = args.repeat or 50  # one run is only ~10-20 ms
    else:
        chunksize = int(args.chunksize)
        n_items = args.n_items or 10_000
        args.repeat = args.repeat or 20
    runs = []
    cl = Cleanup()
    try:
        pool = start_pool(ctx, cl, args.workers)
        items = range(n_items)
        pool.map(trivial_fn, range(1000), chunksize)  # warm-up
        for _ in range(args.repeat):
            t0 = time.perf_counter_ns()
            r = pool.map(trivial_fn, items, chunksize)
            runs.append((time.perf_counter_ns() - t0) / 1e9)
            if len(r) != n_items or r[-1] != 2 * (n_items - 1):
                raise RuntimeError("bad pool.map result")
        pool.close()
        pool.join()
    finally:
        cl.close()
    secs = median(runs)
    eff = chunksize
    if eff is None:  # CPython's default rule
        eff, extra = divmod(n_items, args.workers * 4)
        if extra:
            eff += 1
    emit(base(args, "pool_map", pin="none", workers=args.workers, chunksize=args.chunksize,
              effective_chunksize=eff, n_items=n_items, repeat=args.repeat,
              tasks_per_s=round(n_items / secs, 1), seconds=round(secs, 4),
              runs_tasks_per_s=[round(n_items / r, 1) for r in runs]))


def bench_pool_apply_rt(args):
    ctx = mp.get_context(args.start_method)
    n = args.n or 10000
    warm = args.warmup if args.warmup is not None else 500
    samples = []
    cl = Cleanup()
    try:
        pool = start_pool(ctx, cl, args.workers)
        ap = pool.apply_async
        for i in range(warm):
            ap(trivial_fn, (i,)).get()
        clk = time.perf_counter_ns
        for i in range(n):
            t0 = clk()
            ap(trivial_fn, (i,)).get()
            samples.append(clk() - t0)
        pool.close()
        pool.join()
    finally:
        cl.close()
    out = base(args, "pool_apply_rt", pin="none", workers=args.workers)
    out.update(latency_stats(samples))
    out.update(n=n, warmup=warm)
    emit(out)


def train_on_parameter(bounds):
    start, end = bounds
    acc = 0.0
    sqrt, tanh, log2, log10 = math.sqrt, math.tanh, math.log2, math.log10
    for i in range(start, end):
        acc += sqrt(i) * tanh(i) + log2(i + 1) + log10(i + 1)
    return acc


def bench_pool_cpu(args):
    ctx = mp.get_context(args.start_method)
    chunks, size = args.chunks, args.size
    ranges = [(c * size, (c + 1) * size) for c in range(chunks)]
    cl = Cleanup()
    try:
        t0 = time.perf_counter_ns()
        serial = [train_on_parameter(r) for r in ranges]
        serial_s = (time.perf_counter_ns() - t0) / 1e9

        t0 = time.perf_counter_ns()
        pool = start_pool(ctx, cl, args.workers)
        t1 = time.perf_counter_ns()
        par = pool.map(train_on_parameter, ranges)
        t2 = time.perf_counter_ns()
        pool.close()
        pool.join()
        t3 = time.perf_counter_ns()
    finally:
        cl.close()
    if any(abs(a - b) > 1e-6 * abs(a) for a, b in zip(serial, par)):
        raise RuntimeError("pool result mismatch")
    pool_map_s = (t2 - t1) / 1e9
    pool_total_s = (t3 - t0) / 1e9
    emit(base(args, "pool_cpu", pin="none", workers=args.workers, chunks=chunks,
              iters_per_chunk=size, serial_s=round(serial_s, 4),
              pool_s=round(pool_map_s, 4), pool_incl_startup_s=round(pool_total_s, 4),
              pool_startup_s=round((t1 - t0) / 1e9, 4),
              speedup=round(serial_s / pool_map_s, 3),
              speedup_incl_startup=round(serial_s / pool_total_s, 3),
              note="pool_s = Pool(workers).map over the ranges, pool already started; "
                   "pool_incl_startup_s also counts Pool() creation and close/join"))


# --------------------------------------------------------------------------
# 14. manager_dict / manager_list_append
# --------------------------------------------------------------------------

def _mgr_dict_worker(d, count, warm, res):
    for i in range(warm):
        d[i % 64] = i
        d[i % 64]
    t0 = time.perf_counter_ns()
    for i in range(count):
        k = i % 64
        d[k] = i
        if d[k] != i:
            raise RuntimeError("manager dict mismatch")
    res.put((time.perf_counter_ns() - t0) / 1e9)


def _mgr_list_worker(lst, count, warm, res):
    for i in range(warm):
        lst.append(i)
    t0 = time.perf_counter_ns()
    for i in range(count):
        lst.append(i)
    res.put((time.perf_counter_ns() - t0) / 1e9)


def _bench_manager_child(args, bench, kind):
    ctx = mp.get_context(args.start_method)
    count = args.count or (20_000 if kind == "dict" else 40_000)
    warm = 200
    cl = Cleanup()
    try:
        m = start_manager(ctx, cl)
        res = cl.queue(ctx.Queue())
        if kind == "dict":
            obj = m.dict()
            p = start_child(ctx, cl, None, _mgr_dict_worker, obj, count, warm, res)
        else:
            obj = m.list()
            p = start_child(ctx, cl, None, _mgr_list_worker, obj, count, warm, res)
        secs = res.get(timeout=120)
        join_children([p])
        if kind == "list" and len(obj) != count + warm:
            raise RuntimeError("manager list length mismatch")
    finally:
        cl.close()
    if kind == "dict":
        emit(base(args, bench, pin="none", count=count,
                  set_get_pairs_per_s=round(count / secs, 1),
                  ops_per_s=round(2 * count / secs, 1), seconds=round(secs, 4),
                  note="child does d[k]=i then d[k] (2 proxy round trips per pair); 64 int keys"))
    else:
        emit(base(args, bench, pin="none", count=count,
                  ops_per_s=round(count / secs, 1), seconds=round(secs, 4),
                  note="child does lst.append(i)"))


def bench_manager_dict(args):
    _bench_manager_child(args, "manager_dict", "dict")


def bench_manager_list_append(args):
    _bench_manager_child(args, "manager_list_append", "list")


# --------------------------------------------------------------------------
# 14b. remote_manager: a proxy round trip to a manager reached by its address
# --------------------------------------------------------------------------

def bench_remote_manager(args):
    """`d[k]` through a SyncManager served on a Unix path or on 127.0.0.1 (what a separately
    started program gets from BaseManager(address, authkey).connect())."""
    import socket
    import tempfile
    from multiprocessing.managers import SyncManager
    count = args.count or 20_000
    cl = Cleanup()
    tmp = None
    try:
        if args.family == "tcp":
            addr = ("127.0.0.1", 0)
        else:
            tmp = tempfile.mkdtemp()
            addr = os.path.join(tmp, "mgr.sock")
        m = SyncManager(address=addr, authkey=b"bench key", ctx=mp.get_context(args.start_method))
        m.start(_set_pdeathsig)
        cl.managers.append(m)
        d = m.dict()
        d[1] = 1
        for _ in range(500):
            d[1]
        t0 = time.perf_counter_ns()
        for _ in range(count):
            d[1]
        secs = (time.perf_counter_ns() - t0) / 1e9
    finally:
        cl.close()
        if tmp:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    emit(base(args, "remote_manager", family=args.family, count=count,
              ops_per_s=round(count / secs, 1), median_us=round(secs / count * 1e6, 3),
              note="d[k] through a SyncManager at an explicit address with an authkey"))


# --------------------------------------------------------------------------
# 15. value_locked_incr
# --------------------------------------------------------------------------

def _value_incr(v, ready, start_evt, k):
    ready.release()
    start_evt.wait()
    for _ in range(k):
        with v.get_lock():
            v.value += 1


def bench_value_locked_incr(args):
    ctx = mp.get_context(args.start_method)
    k = args.k or 500_000
    cl = Cleanup()
    try:
        v = ctx.Value("i", 0)
        start_evt = ctx.Event()
        ready = ctx.Semaphore(0)
        ps = [start_child(ctx, cl, None, _value_incr, v, ready, start_evt, k)
              for _ in range(args.procs)]
        wait_ready(ready, args.procs)
        t0 = time.perf_counter_ns()
        start_evt.set()
        join_children(ps, timeout=120)
        secs = (time.perf_counter_ns() - t0) / 1e9
        final = v.value
    finally:
        cl.close()
    total = args.procs * k
    if final != total:
        raise RuntimeError(f"counter {final} != {total}")
    emit(base(args, "value_locked_incr", pin="none", procs=args.procs, k_per_proc=k, ops=total,
              ops_per_s=round(total / secs, 1), seconds=round(secs, 4),
              note="Value('i') default lock (RLock); `with v.get_lock(): v.value += 1`"))


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def build_parser():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name, fn, *, lat=False, tput=False, pin_default=None):
        sp = sub.add_parser(name)
        sp.set_defaults(func=fn)
        sp.add_argument("--start-method", default="fork", choices=["fork", "forkserver", "spawn"])
        sp.add_argument("--timeout", type=float, default=120.0, help="watchdog seconds")
        if lat:
            sp.add_argument("--n", type=int, default=None, help="timed samples")
            sp.add_argument("--warmup", type=int, default=None)
        if tput:
            sp.add_argument("--repeat", type=int, default=None if tput == -1 else 5,
                            help="timed runs; median reported")
        if pin_default is not None:
            sp.add_argument("--pin", choices=["same", "diff", "none"], default=pin_default)
        return sp

    sp = add("start_join", bench_start_join, lat=True)
    sp.add_argument("--method", choices=["fork", "forkserver", "spawn"], default="fork")

    add("mailbox_rt", bench_mailbox_rt, lat=True, pin_default="diff")

    sp = add("mailbox_tput", bench_mailbox_tput, tput=True, pin_default="none")
    sp.add_argument("--payload", type=int, default=64)
    sp.add_argument("--count", type=int, default=None)

    sp = add("queue_2p2c", bench_queue_2p2c, tput=True)
    sp.add_argument("--payload", type=int, default=64)
    sp.add_argument("--count", type=int, default=None, help="total messages")
    sp.add_argument("--producers", type=int, default=2)
    sp.add_argument("--consumers", type=int, default=2)

    sp = add("joinable", bench_joinable, tput=True, pin_default="none")
    sp.add_argument("--count", type=int, default=None)

    sp = add("pipe_rt", bench_pipe_rt, lat=True, pin_default="diff")
    sp.add_argument("--mode", choices=["obj", "bytes"], default="obj")

    sp = add("pipe_tput", bench_pipe_tput, tput=True, pin_default="none")
    sp.add_argument("--count", type=int, default=None)
    sp.add_argument("--payload", type=int, default=64, help="send_bytes payload")
    sp.add_argument("--oneway", action="store_true", help="Pipe(duplex=False) (os.pipe) instead of socketpair")

    sp = add("lock_uncontended", bench_lock_uncontended, lat=True, pin_default="diff")
    sp.add_argument("--kind", choices=["mp", "manager"], default="mp")
    sp.add_argument("--batch", type=int, default=None)

    sp = add("lock_contended", bench_lock_contended)
    sp.add_argument("--kind", choices=["mp", "manager"], default="mp")
    sp.add_argument("--procs", type=int, default=2)
    sp.add_argument("--k", type=int, default=None, help="increments per process")

    add("event_pingpong", bench_event_pingpong, lat=True, pin_default="diff")

    sp = add("semaphore_rt", bench_semaphore_rt, lat=True, pin_default="none")
    sp.add_argument("--batch", type=int, default=None)

    sp = add("prim_rt", bench_prim_rt, lat=True, pin_default="none")
    sp.add_argument("--kind", choices=["lock", "rlock", "semaphore", "bounded"], default="rlock")
    sp.add_argument("--batch", type=int, default=None)

    add("condition_rt", bench_condition_rt, lat=True, pin_default="same")

    sp = add("barrier", bench_barrier, tput=True)
    sp.add_argument("--parties", type=int, default=4)
    sp.add_argument("--rounds", type=int, default=None)

    sp = add("pool_map", bench_pool_map, tput=-1)  # --repeat default resolved in bench_pool_map
    sp.add_argument("--chunksize", default="default", help="'default' or an int")
    sp.add_argument("--n-items", type=int, default=None)
    sp.add_argument("--workers", type=int, default=2)

    sp = add("pool_apply_rt", bench_pool_apply_rt, lat=True)
    sp.add_argument("--workers", type=int, default=2)

    sp = add("pool_cpu", bench_pool_cpu)
    sp.add_argument("--chunks", type=int, default=8)
    sp.add_argument("--size", type=int, default=1_800_000, help="iterations per range")
    sp.add_argument("--workers", type=int, default=2)

    sp = add("manager_dict", bench_manager_dict)
    sp.add_argument("--count", type=int, default=None)

    sp = add("manager_list_append", bench_manager_list_append)
    sp.add_argument("--count", type=int, default=None)

    sp = add("remote_manager", bench_remote_manager)
    sp.add_argument("--family", choices=["unix", "tcp"], default="unix")
    sp.add_argument("--count", type=int, default=None)

    sp = add("value_locked_incr", bench_value_locked_incr)
    sp.add_argument("--procs", type=int, default=2)
    sp.add_argument("--k", type=int, default=None, help="increments per process")
    return ap


def _on_alarm(signum, frame):
    raise TimeoutError("benchmark watchdog expired")


def main(argv=None):
    args = build_parser().parse_args(argv)
    import ctypes.util  # noqa: F401  (pre-import so fork children get it for free)
    import json  # noqa: F401
    import platform  # noqa: F401
    if not hasattr(args, "pin"):
        args.pin = "none"
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    try:
        args.func(args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


if __name__ == "__main__":
    main()  # normally run via mp_bench.py
