"""Where the time of emu's jitted code goes: a sampling profile by kernel function.

Runs a workload in a child process, samples it with Linux ``perf record`` on the software
clock once it is compiled and warm (no hardware counters needed: this VM has none), gives
each sample in jitted code to the function of the kernels' object files it lies in, and
prints each function's share and the hottest instructions with their disassembly::

    python benchmarks/jitprof.py explore [--seconds 10] [--top 20] [--hot 12] [--nostats]

Workloads: ``explore`` is what bench_exec's "jitted exploration loop" row times (every
bound-2 schedule of (i), LAST_PKMAP 8, in ``explore_dfs``); ``long`` the executor on its
one long schedule (``Loaded.run_raw``); ``pair`` bench_mm's kmap_high + kunmap_high loop.
numba inlines most kernels, so a "function" is what LLVM kept apart: ``sched.run``, the
oracle's checks, ``next_prefix``...; the rest is in the entry function.

Needs ``perf`` and binutils (``nm``, ``objdump``) on PATH. The child process compiles emu's
kernels afresh in a temporary numba cache (~100 s on this VM): code loaded from the cache
keeps no object file to take symbols from.
"""

import argparse
import bisect
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ("explore", "long", "pair")
TOOLS = ("perf", "nm", "objdump")
CHILD_LIMIT = 3600             # seconds the child runs at most if the parent goes away


def short_name(sym):
    """``emu.exec.sched.run`` from numba's mangled ``_ZN3emu4exec5sched3runB4v394...``."""
    m = re.match(r"(?:cfunc\.)?_ZN(?:7cpython)?((?:\d+[A-Za-z_]\w*?)+?)B\d", sym)
    if not m:
        return sym[:60]
    s, out, i = m.group(1), [], 0
    while i < len(s) and s[i].isdigit():
        j = i
        while s[j].isdigit():
            j += 1
        n = int(s[i:j])
        out.append(s[j:j + n])
        i = j + n
    prefix = "cpython wrapper of " if "_ZN7cpython" in sym else "cfunc of " if sym.startswith(
        "cfunc.") else ""
    return prefix + ".".join(out)


def parse_nm(text):
    """``[(offset, size, name)]`` of the code symbols in ``nm -S -n`` output, by offset."""
    out = []
    for line in text.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "tTwW":
            out.append((int(p[0], 16), int(p[1], 16), p[3]))
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# the child: the workload, in a process of its own that perf attaches to
# ---------------------------------------------------------------------------------------------


def _workload(name, stats):
    """A callable running one unit of the workload."""
    for d in (HERE.parent, HERE):          # as pytest imports the bench files (numba's cache)
        if str(d) not in sys.path:
            sys.path.insert(0, str(d))
    from emu import consts as K, warmup
    warmup._busy.append(True)   # no up-front compile (its helper process would compile some
                                # kernels, and those would load here without an object file)
    if name == "pair":
        import bench_mm
        m, pfn = bench_mm.fast_path_machine(stats=stats)
        return lambda: bench_mm._pair_loop(m._S, m._B, pfn, 100_000)
    import bench_exec
    from emu.exec.loaded import DEFAULT_MAX_STEPS
    if name == "long":
        ld, choices = bench_exec.long_schedule(stats)
        return lambda: ld.run_raw(choices)
    ld = bench_exec.scenario_i(8, stats)

    def explore():
        x = ld.dfs_state()
        while not ld.dfs(2, DEFAULT_MAX_STEPS, 1 << 62, 0, x) & K.DFS_DONE:
            pass
    return explore


def _dispatchers():
    """Every numba dispatcher of the loaded emu and bench modules."""
    seen = set()
    for mod in list(sys.modules.values()):
        if not getattr(mod, "__name__", "").startswith(("emu", "bench_")):
            continue
        for obj in list(vars(mod).values()):
            if hasattr(obj, "overloads") and id(obj) not in seen:
                seen.add(id(obj))
                yield obj


def child(name, stats, out):
    """Run the workload once (compiling it), save the object file of every kernel compiled
    and where its entry point lies (``objects.txt``), then run the workload until the parent
    says stop (it samples meanwhile)."""
    work = _workload(name, stats)
    work()
    lines = []
    for disp in _dispatchers():
        for ov in disp.overloads.values():
            try:
                obj = ov.library._get_compiled_object()
            except RuntimeError:                # loaded, not compiled, here: no object file
                continue
            f = out / f"code{len(lines)}.o"
            f.write_bytes(obj)
            addr = ov.library.get_pointer_to_function(ov.fndesc.llvm_func_name)
            lines.append(f"{f.name} {ov.fndesc.llvm_func_name} {addr}\n")
    (out / "objects.txt").write_text("".join(lines))
    (out / "ready").touch()
    t0 = time.perf_counter()
    n = 0
    while not (out / "stop").exists() and time.perf_counter() - t0 < CHILD_LIMIT:
        work()
        n += 1
    (out / "units.txt").write_text(f"{n} {time.perf_counter() - t0}\n")


# ---------------------------------------------------------------------------------------------
# the parent: perf record, then the report
# ---------------------------------------------------------------------------------------------


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def disassembly(obj):
    """``{offset: instruction}`` of the object's code sections."""
    out = {}
    for line in _run(["objdump", "-d", "--no-show-raw-insn", str(obj)]).splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s*(.*)", line)
        if m:
            out[int(m.group(1), 16)] = re.sub(r"<\S+?(\+0x[0-9a-f]+)?>",
                                              lambda g: f"<{g.group(1) or ''}>", m.group(2))
    return out


def code_map(out):
    """``[(address, size, name, object file, offset)]`` of every function of the kernels'
    object files where it lies in the child process, by address (a function linked into
    several objects is kept where its object's entry point says it lies; the copy the
    engine calls is whichever one the samples land in)."""
    out_syms = {}
    for line in (out / "objects.txt").read_text().splitlines():
        fname, entry, addr = line.split()
        syms = parse_nm(_run(["nm", "-S", "-n", str(out / fname)]))
        base = int(addr) - next(s[0] for s in syms if s[2] == entry)
        for off, size, sym in syms:
            out_syms.setdefault(base + off, (base + off, size, sym, fname, off))
    return sorted(out_syms.values())


def report(out, top, hot):
    functions = code_map(out)
    starts = [f[0] for f in functions]
    total, hits = 0, []
    script = _run(["perf", "script", "-i", str(out / "perf.data"), "-F", "ip"])
    for word in script.split():
        total += 1
        ip = int(word, 16)
        i = bisect.bisect_right(starts, ip) - 1
        if i >= 0 and ip < functions[i][0] + functions[i][1]:
            hits.append((i, ip))
    if not hits:
        raise SystemExit("no sample fell in the kernels' code (perf could not sample it?)")
    units, secs = (out / "units.txt").read_text().split()
    print(f"{total} samples, {len(hits)} in emu's jitted code "
          f"({100 * len(hits) / total:.1f} %; the rest: Python, numpy, the kernel); "
          f"{units} units of work in {float(secs):.1f} s")
    print("\nshare of the jitted code's samples, by function:")
    per = collections.Counter(short_name(functions[i][2]) for i, _ in hits)
    for name, n in per.most_common(top):
        print(f"  {100 * n / len(hits):5.1f} %  {name}")
    if hot:
        print(f"\nhottest {hot} instructions (function+offset; a sample tends to land on the "
              f"instruction after a slow one):")
        code = {}
        for (i, ip), n in collections.Counter(hits).most_common(hot):
            _, _, sym, fname, off = functions[i]
            if fname not in code:
                code[fname] = disassembly(out / fname)
            at = off + ip - functions[i][0]
            print(f"  {100 * n / len(hits):5.2f} %  {short_name(sym)}+{ip - functions[i][0]:#x}"
                  f"  {code[fname].get(at, '?')}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", choices=WORKLOADS)
    ap.add_argument("--seconds", type=float, default=10.0, help="sampled run time (> 0)")
    ap.add_argument("--top", type=int, default=20, help="functions listed")
    ap.add_argument("--hot", type=int, default=12, help="hottest instructions listed (0: none)")
    ap.add_argument("--nostats", action="store_true", help="the machine without the "
                    "profiler's records")
    ap.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.seconds <= 0:
        ap.error(f"--seconds must be > 0, got {args.seconds}")
    if args.child:
        child(args.workload, not args.nostats, Path(args.child))
        return 0
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        ap.error(f"needs {', '.join(missing)} on PATH (Linux perf and binutils)")
    with tempfile.TemporaryDirectory(prefix="emu-jitprof-") as tmp:
        out = Path(tmp)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(out / "numba"))
        cmd = [sys.executable, str(Path(__file__).resolve()), args.workload, "--child", tmp]
        if args.nostats:
            cmd.append("--nostats")
        print("compiling emu's kernels afresh...", file=sys.stderr)
        proc = subprocess.Popen(cmd, env=env)
        try:
            while not (out / "ready").exists():
                if proc.poll() is not None:
                    raise SystemExit(f"the workload process failed (exit {proc.returncode})")
                time.sleep(0.2)
            print(f"sampling for {args.seconds:g} s...", file=sys.stderr)
            _run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "10000", "-p",
                  str(proc.pid), "-o", str(out / "perf.data"), "--", "sleep",
                  str(args.seconds)])
        finally:
            (out / "stop").touch()
            proc.wait()
        report(out, args.top, args.hot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
