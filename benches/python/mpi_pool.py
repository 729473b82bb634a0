"""mpi4py's MPIPoolExecutor on the same ranks as tests/mpi's mpi_bench (issue 13).

    pip install mpi4py
    mpirun --oversubscribe --allow-run-as-root -n 3 python3 -m mpi4py.futures benches/python/mpi_pool.py

`-m mpi4py.futures` is mpi4py's static mode: rank 0 runs this script, ranks 1..N-1 serve the
executor (no MPI_Comm_spawn), the same layout as multiproc's MPI backend.
"""
import statistics
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor


def noop(x):
    return x


def square(x):
    return x * x


def timed(reps, f):
    f()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main():
    n1, n2 = 20_000, 100_000
    with MPIPoolExecutor() as ex:
        workers = ex.num_workers
        print(f"{MPI.COMM_WORLD.Get_size()} ranks ({workers} serving tasks), mpi4py {__import__('mpi4py').__version__}")
        t = timed(5, lambda: list(ex.map(noop, range(n1), chunksize=1)))
        print(f"mpi4py map chunksize=1, {n1} noop tasks: {t * 1e3:.1f} ms = {n1 / t:.0f} tasks/s")
        # Python's multiprocessing default chunksize: ceil(len / (4 * workers)).
        cs = -(-n2 // (4 * workers))
        t = timed(7, lambda: list(ex.map(square, range(n2), chunksize=cs)))
        print(f"mpi4py map chunksize={cs}, {n2} ints: {t * 1e3:.2f} ms = {n2 / t:.0f} tasks/s")
        t = timed(101, lambda: ex.submit(noop, 1).result())
        print(f"mpi4py submit round trip: {t * 1e6:.1f} us")


if __name__ == "__main__":
    main()
