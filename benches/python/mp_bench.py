#!/usr/bin/env python3
"""CLI entry point: `python3 mp_bench.py <subcommand> [options]` (see README.md).

Deliberately tiny.  With the spawn and forkserver start methods every child
re-runs the main script as __mp_main__, compiling it from source (a script
run as __main__ never gets a .pyc).  CPython 3.11's forkserver also fails to
preload __main__ (forkserver.py requests the preparation key 'main_path' but
spawn.get_preparation_data() calls it 'init_main_from_path'), so forkserver
children pay this too.  `start_join` therefore uses the `noop` defined HERE as
its target, so a spawn/forkserver child only loads this small file, like a
small user script would; all other code lives in mp_bench_impl.py.
"""


def noop():
    pass


if __name__ == "__main__":
    from mp_bench_impl import main

    main()
