"""The one place emu configures numba.

Every kernel is compiled with ``cache=True`` (the on-disk cache makes the second run start in
about a second), ``error_model="numpy"`` (no Python exception checks on integer division)
and without numba's reference-counting runtime (``_nrt=False``): kernels only index the
machine arrays they are given and never allocate, and without NRT a call between kernels does
not pay two atomic reference-count updates per array argument (that was ~100 ns per cache
access). Every kernel is lowered by :class:`emu._rawindex.EmuCompiler`, whose integer array
indexing is C's (no negative-index wrap-around). ``NUMBA_DISABLE_JIT=1`` turns every kernel
back into plain Python for debugging.
"""

import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numba
import numba.core.config
import numba.core.event
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher

from ._numbacache import safe_cache

try:
    from ._rawindex import EmuCompiler
except ImportError:         # a numba whose internals moved: its own pipeline (Python indexing,
    from numba.core.compiler import Compiler as EmuCompiler   # slower; tests/test_rawindex fails)

_PKG = Path(__file__).resolve().parent


def _source_hash():
    """Hash of every emu source file: numba's cache only checks a function's own file, so a
    change to a constant or a callee elsewhere would otherwise reuse stale machine code."""
    h = hashlib.sha1(numba.__version__.encode())
    for f in sorted(_PKG.rglob("*.py")):
        h.update(str(f.relative_to(_PKG)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _cache_dir():
    """``emu/__pycache__/numba-<hash>`` when writable, else a per-user directory."""
    tag = "numba-" + _source_hash()
    user = os.environ.get("NUMBA_CACHE_DIR")
    for root in ((Path(user) / "emu",) if user else ()) + (_PKG / "__pycache__",
                 Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emu",
                 Path(tempfile.gettempdir()) / f"emu-{os.getuid() if hasattr(os, 'getuid') else 0}"):
        try:
            root.mkdir(parents=True, exist_ok=True)
            d = root / tag
            d.mkdir(exist_ok=True)
            probe = d / ".w"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError:
            continue
        now = time.time()
        for old in root.glob("numba-*"):                 # caches of older sources
            try:                                         # (unused for a day: another process
                stale = now - old.stat().st_mtime > 86400  # may still run those sources)
            except OSError:
                continue
            if old.name != tag and stale:
                shutil.rmtree(old, ignore_errors=True)
        return str(d)
    return None


_dir = _cache_dir()


@contextmanager
def _emu_cache_dir():
    """numba's cache directory set to emu's (:data:`_dir`) while a kernel's dispatcher is made
    (numba fixes a function's cache path then), and set back after: the program importing emu
    keeps its own ``NUMBA_CACHE_DIR`` (or none) for its own ``cache=True`` functions."""
    if _dir is None:
        yield
        return
    old = numba.core.config.CACHE_DIR
    numba.core.config.CACHE_DIR = _dir
    try:
        yield
    finally:
        numba.core.config.CACHE_DIR = old


_warm = []


def cold_cache():
    """True on a first run of these sources: kernels are cached on disk here, and the cache
    does not hold the executor entry points (the Machine API's, the scheduler's and the
    exploration loop's) yet."""
    if _dir is None or numba.core.config.DISABLE_JIT or _warm:
        return False
    names = {p.name.split("-")[0] for p in Path(_dir).rglob("*.nbi")}
    if {"kernel.direct_call", "sched.run", "dfs.explore_dfs"} <= names:
        _warm.append(True)
        return False
    return True


#: Seconds a first call may run before emu says that it is compiling.
COMPILE_NOTICE_AFTER = 1.5


def njit(*args, **kwargs):
    """``numba.njit`` with emu's defaults (``cache=True``, ``error_model="numpy"``)."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("error_model", "numpy")
    kwargs.setdefault("_nrt", False)
    kwargs.setdefault("pipeline_class", EmuCompiler)
    if args and callable(args[0]):                  # @njit
        with _emu_cache_dir():
            return safe_cache(numba.njit(*args, **kwargs))
    out = numba.njit(*args, **kwargs)

    def wrap(fn):                                   # @njit(...)
        with _emu_cache_dir():
            return safe_cache(out(fn))
    return wrap


def entry(disp, sig):
    """The compiled entry point of kernel ``disp`` for signature ``sig`` (compiling it, or
    loading it from the cache, now). Calling it skips the dispatcher's type resolution: about
    200 ns less per call from Python, which is most of a small kernel call. The caller must
    pass exactly these types (emu's public methods check their arguments first). Under
    ``NUMBA_DISABLE_JIT=1`` this is the plain function."""
    compile_ = getattr(disp, "compile", None)
    if compile_ is None:
        return disp
    return compile_(sig)


class KernelOnly(CPUDispatcher):
    """A helper compiled without a Python entry point: jitted callers link it as usual, and a
    call from Python raises instead of jumping to a wrapper that was never built."""

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.py_func.__module__}.{self.py_func.__qualname__} is an emu "
                        "kernel helper: call it from jitted code (NUMBA_DISABLE_JIT=1 makes "
                        "it plain Python)")


def _kernel_only(**options):
    """``numba.njit`` for helpers called only from other kernels: numba then builds neither the
    CPython wrapper (argument unboxing, ~5 s of first-run compile over all helpers) nor the C
    callback wrapper for them. They are cached too, so that the warm-up's helper process and
    the main one (emu.warmup) compile each helper once between them."""
    def wrap(fn):
        with _emu_cache_dir():
            disp = numba.njit(cache=True, error_model="numpy", _nrt=False,
                              no_cpython_wrapper=True, no_cfunc_wrapper=True,
                              pipeline_class=EmuCompiler, **options)(fn)
        if isinstance(disp, CPUDispatcher):             # not under NUMBA_DISABLE_JIT
            disp.__class__ = KernelOnly
        return safe_cache(disp)
    return wrap


def tiny(fn):
    """A one-to-three-line helper on hot paths (accounting, record offsets): inlined at
    numba's IR level, so it costs nothing in the caller. Kept to tiny functions: IR
    inlining of large ones multiplied whole-executor compile times."""
    return numba.njit(inline="always", error_model="numpy", _nrt=False,
                      pipeline_class=EmuCompiler)(fn)


def inline(fn):
    """A helper called from other kernels, compiled on its own: LLVM inlines only the smallest
    of these, the rest stay calls (a few ns each). IR-level inlining of all of them was ~25%
    faster on the kmap fast path but multiplied first-run compile times (45 s -> 267 s)."""
    return _kernel_only()(fn)


def hot(fn):
    """A helper on a hot path (lock halves, IRQ-masking bookkeeping, the page_address hash
    walk, the range loop's line ops and their accounting, the byte primitives of
    :mod:`emu._bytes`, a CPU access's shadow store and stale-read check), compiled on its own like
    :func:`inline` but marked LLVM ``alwaysinline`` (numba's ``forceinline``), so callers get
    its body without a call.

    Keep the list short: every helper marked this way grows each function that calls it, and
    numba re-optimises a function's code inside every library that links it. The lock, IRQ and
    page_address ones took the kmap_high+kunmap_high pair from ~196 to ~150 ns for ~5 s more
    first-run compile; marking every ``inline`` helper also reached ~150 ns but cost ~23 s.
    The kmap_high and kunmap_high steps are marked too (pair ~75 -> ~67 ns; first-run compile
    ~4 s more on two CPUs, ~11 s on one)."""
    return _kernel_only(forceinline=True)(fn)


def flat(fn):
    """A driver level (``run_step``, its frame loop, ``direct_call``, the scheduler's
    ``run_action`` and ``alternatives``, ``dma_range_step`` and the per-geometry dispatch of
    ``range_lines``), inlined at numba's IR level into its few callers.

    numba optimises each compiled function's library together with every library it links, so
    each separately compiled level re-runs LLVM over everything below it (~1.3 s of first-run
    compile for a level above the whole executor) and costs a call with both arrays' fields as
    arguments. Folding these levels into their callers: kmap pair ~150 -> ~113 ns, scheduler
    8.4 -> 12 M steps/s, first-run compile a little shorter than with them compiled apart."""
    return numba.njit(inline="always", error_model="numpy", _nrt=False,
                      pipeline_class=EmuCompiler)(fn)


class _CompileWatch(numba.core.event.Listener):
    """Calls ``on_compile`` when numba starts compiling a function it caches on disk (a
    ``numba:compile`` event: a dispatcher that loads its code from the cache sends none;
    ``Dispatcher.compile`` counts the load in ``stats.cache_hits`` instead). A function
    without ``cache=True`` (a :func:`tiny` one called from Python, as ``push``) compiles
    in every process: no first-run compile, so it is not counted."""

    def __init__(self, on_compile):
        self.on_compile = on_compile

    def on_start(self, event):
        cache = getattr(event.data.get("dispatcher"), "_cache", None)
        if not isinstance(cache, NullCache):
            self.on_compile()

    def on_end(self, event):
        pass


@contextmanager
def compile_notice(what="emu kernels", stream=None):
    """Print a line to stderr once numba compiles a kernel, if the body has run
    :data:`COMPILE_NOTICE_AFTER` seconds by then or goes on that long.

    The first call of a kernel compiles it (tens of seconds for the executor); later runs load
    the on-disk cache, which sends no compile event however slow a busy host makes it. Used
    around warm-up calls so a user knows why the first run waits.
    """
    out = stream if stream is not None else sys.stderr
    lock = threading.Lock()
    said, compiling, late = [], [], []

    def say():
        with lock:
            if said or not (compiling and late):
                return
            said.append(True)
        print(f"emu: compiling {what} (first run only; cached afterwards)...", file=out, flush=True)

    def compiled():
        compiling.append(True)
        say()

    def after():
        late.append(True)
        say()

    timer = threading.Timer(COMPILE_NOTICE_AFTER, after)
    timer.daemon = True
    watch = _CompileWatch(compiled)
    numba.core.event.register("numba:compile", watch)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        numba.core.event.unregister("numba:compile", watch)
        if said:
            print("emu: compiled.", file=out, flush=True)
