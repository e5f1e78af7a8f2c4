"""Where the kmap pair's slow processes come from: the physical pages its code is loaded into.

Loads the benchmark's jitted kmap_high + kunmap_high loop (``bench_mm._pair_loop``) several
times in one process, each copy from numba's cache into fresh executable memory, and times
every copy on the same machine state. With ``--renew`` each slow copy then gets its code pages
moved, one at a time from the first (``--from-end``: from the last), onto fresh physical pages
(same addresses, same bytes) until it runs fast, and the page that did it is reported. Linux
only (``mremap``)::

    python benchmarks/placement.py --copies 8 --renew [--from-end]

On the 2-core AMD EPYC virtual machine of README's table about one copy in five runs at
70-79 ns instead of 48, a different one each run even with ASLR off; renewing the copy's first
page, or one page 68 KiB further on, makes it fast.
"""

import argparse
import ctypes
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

PAGE = 4096
PROT_RW, PROT_RX = 3, 5
MAP_PRIVATE_ANON = 0x22
MREMAP_MAYMOVE_FIXED = 3
SLOW_FACTOR = 1.25                             # slower than the fastest copy by this: slow


def open_libc():
    """libc through ctypes, with the types of the three calls :func:`renew_page` makes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mremap.restype = ctypes.c_void_p
    libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int,
                            ctypes.c_void_p]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def renew_page(libc, page):
    """Put a fresh physical page with the same bytes under code page ``page``."""
    new = libc.mmap(None, PAGE, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    if new in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    ctypes.memmove(new, page, PAGE)
    if libc.mprotect(new, PAGE, PROT_RX) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    if libc.mremap(new, PAGE, PAGE, MREMAP_MAYMOVE_FIXED, page) != page:
        raise OSError(ctypes.get_errno(), "mremap")


def code_pages(f):
    """The pages of the loop's machine code in copy ``f``, just loaded: from the function to
    its CPython wrapper, which the object file places after it (numba 0.68). The engine
    resolves a name to the newest definition, so this must run before the next copy loads."""
    ov = next(iter(f.overloads.values()))
    a = ov.library.get_pointer_to_function(ov.fndesc.llvm_func_name)
    b = ov.library.get_pointer_to_function(ov.fndesc.llvm_cpython_wrapper_name)
    if not a or not b:
        raise RuntimeError("cannot locate the loop's machine code")
    lo, hi = min(a, b), max(a, b)
    return list(range(lo & -PAGE, (hi & -PAGE) + PAGE, PAGE))


def time_pair(f, S, B, pfn, n=100_000, rounds=5):
    """Best ns per kmap_high + kunmap_high pair of copy ``f``."""
    f(S, B, pfn, 1000)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        f(S, B, pfn, n)
        best = min(best, time.perf_counter() - t)
    return best / n * 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=8, help="loads of the loop (>= 1)")
    ap.add_argument("--renew", action="store_true", help="find the page that makes a copy slow")
    ap.add_argument("--from-end", action="store_true", help="renew from the last page back")
    ap.add_argument("--stats", action="store_true", help="the machine keeps profiler records")
    args = ap.parse_args(argv)
    if args.copies < 1:
        ap.error(f"--copies must be >= 1, got {args.copies}")
    if not sys.platform.startswith("linux"):
        ap.error("needs Linux (mremap)")
    for d in (HERE.parent, HERE):          # as pytest imports it: numba's cache knows it so
        if str(d) not in sys.path:
            sys.path.insert(0, str(d))
    import bench_mm
    from emu._jit import njit as emu_njit
    m, pfn = bench_mm.fast_path_machine(stats=args.stats)
    S, B = m._S, m._B
    copies = []
    for _ in range(args.copies):
        f = emu_njit(bench_mm._pair_loop.py_func)
        f(S, B, pfn, 10)
        copies.append((f, code_pages(f)))
    times = [time_pair(f, S, B, pfn) for f, _ in copies]
    fast = min(times)
    print("ns per pair, copy by copy:", " ".join(f"{t:.1f}" for t in times))
    if not args.renew:
        return 0
    libc = open_libc()
    for k, ((f, code), t) in enumerate(zip(copies, times)):
        if t < fast * SLOW_FACTOR:
            continue
        order = range(len(code) - 1, -1, -1) if args.from_end else range(len(code))
        for i in order:
            p = code[i]
            renew_page(libc, p)
            t2 = time_pair(f, S, B, pfn)
            if t2 < fast * SLOW_FACTOR:
                print(f"copy {k}: {t:.1f} -> {t2:.1f} ns after renewing its code page {i} "
                      f"(+{(p - code[0]) // 1024} KiB; {len(code)} pages)")
                break
        else:
            print(f"copy {k}: still slow after renewing all {len(code)} code pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
