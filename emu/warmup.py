"""Compile every kernel once, saying so if it takes a while.

The first run of emu on a machine compiles its numba kernels (~50 s with two CPUs, ~80 s
with one); the compiled code is cached on disk, so later runs start in about a second.
Commands call :func:`warmup` up front so the compile happens in one visible place rather than
inside a measurement.

numba compiles in one thread, so on a first run with two or more CPUs the compile is shared
with one helper process: both take jobs from :func:`_jobs` in order (a job is claimed by
creating its file in a shared directory) and each finished kernel lands in the on-disk cache,
where the other process loads it instead of compiling it again.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

from ._jit import cold_cache, compile_notice

_done = []
_busy = []              # warming up now, or the helper process: Machine() does not call warmup()

#: Seconds the main process waits for the helper's last job before compiling it itself.
HELPER_TIMEOUT = 600


def _api_workload():
    """Every Machine API entry point once (the direct-call executor and the small kernels)."""
    from . import consts as K
    from .machine import Machine
    m = Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=4)
    hp = m.highmem_pfns[0]
    v = m.kmap(hp)
    m.write(v, b"emu")
    m.read(v, 3)
    m.kunmap(hp)
    m.kmap_high_get(hp)
    m.kunmap_high(hp)
    m.kmap_flush_unused()
    h = m.dma_map_page(hp, 0, 64, K.DMA_FROM_DEVICE)
    m.device.write(h, b"x")
    m.dma_sync_single_for_cpu(h, 64, K.DMA_FROM_DEVICE)
    m.dma_unmap_page(h, 64, K.DMA_FROM_DEVICE)
    m.cache.flush_all()
    m.check_integrity()
    # the Cache API's own kernels and the small lookups (each compiled on its first call
    # otherwise: ~9 s in all, silently, after a warm-up that said it compiled everything)
    m.page_address(hp)
    m.phys_write(0, b"emu")
    m.cache.probe(v)
    m.cache.inv_range(v, v + 64)
    m.cache.store(v, b"emu", pa=m.pfn_to_phys(hp))
    m.cache.load(v, 3, pa=m.pfn_to_phys(hp))
    m.cache.replay([0, 1], [0, 32], [4, 4])


def _sched_workload():
    """The scheduler: exhaustive, IRQ and random runs of the built-in scenarios."""
    from .exec.builtin import irq_getter, race
    from .exec.explore import explore, run_random
    explore(race(4, 1, "page_address"), bound=1, max_schedules=3)
    explore(irq_getter(False, 4), bound=1, max_schedules=3)
    run_random(race(4, 2, "kmap_high_get"), seed=1)


def _jobs():
    """Compile jobs in claim order: the routines' step functions first (each pulls in its own
    helpers; routines sharing fewest helpers come next to each other, so two processes rarely
    compile the same helper at once), then the oracle and the scheduler's own kernels, then
    the executors, which link all of them (the exploration loop with the scheduler, the
    larger, first; then the direct call), then the small kernels the Machine API calls."""
    from numba import types as T
    from .dma import mapping, oracle
    from .exec import dfs, program, sched, snapshot
    from .exec.kernel import direct_call
    from .exec.loaded import _DFS_SIG
    from .machine import _DIRECT_SIG
    from .mm import access, highmem
    S, B, i = T.int64[::1], T.uint8[::1], T.int64
    step = (S, B, i, i)

    def comp(disp, *sig):
        return partial(disp.compile, sig)

    return [
        comp(highmem.kmap_high_step, *step),
        comp(access.cpu_write_step, *step),
        comp(mapping.dma_cache_maint_page_step, *step),
        comp(oracle.final_check, S, B),
        comp(access.cpu_read_step, *step),
        comp(highmem.kunmap_high_step, *step),
        comp(mapping.dma_map_page_step, *step),
        comp(highmem.kmap_high_get_step, *step),
        comp(mapping.dma_unmap_page_step, *step),
        comp(program.program_step, *step),
        comp(mapping.dma_sync_for_cpu_step, *step),
        comp(highmem.kmap_step, *step),
        comp(mapping.dma_sync_for_device_step, *step),
        comp(highmem.kunmap_step, *step),
        comp(highmem.kmap_flush_unused_step, *step),
        comp(snapshot._restore, S, B, S, B),
        comp(sched.fire_timed, S, B),
        comp(sched.irq_exit, S, i),
        comp(sched._timed_pick, S, S, i),
        comp(sched._idle_until, S, i),
        comp(sched.next_due, S, T.boolean),
        comp(sched.any_awaited, S),
        comp(sched.irq_deadlock, S, i),
        comp(sched.unfinished, S),
        partial(dfs.explore_dfs.compile, _DFS_SIG),             # and sched.run, which it calls
        partial(direct_call.compile, _DIRECT_SIG),
        _api_workload,
    ]


def _claim_and_run(claims):
    """Run every job nobody has claimed yet, in order: file ``N`` in ``claims`` claims job N,
    ``N.done`` says it finished."""
    for n, job in enumerate(_jobs()):
        path = os.path.join(claims, str(n))
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        job()
        Path(path + ".done").touch()


def _helper_main(claims):
    """Entry point of the helper process (``python -c``); it reports nothing."""
    _busy.append(True)
    try:
        _claim_and_run(claims)
    except Exception:                                   # the main process compiles the rest
        pass


#: The helper imports this very emu package (not whatever ``import emu`` finds from its
#: working directory), so that both processes share one source hash and one cache.
_HELPER_CODE = """
import importlib.util, sys
pkg = sys.argv[2]
spec = importlib.util.spec_from_file_location("emu", pkg + "/__init__.py",
                                              submodule_search_locations=[pkg])
emu = importlib.util.module_from_spec(spec)
sys.modules["emu"] = emu
spec.loader.exec_module(emu)
from emu.warmup import _helper_main
_helper_main(sys.argv[1])
"""


def available_cpus():
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                          # not on Linux
        return os.cpu_count() or 1


def _start_helper(claims):
    """Start the helper process, or return None if there is no second CPU, no Python
    interpreter to start (emu embedded in another program) or no process."""
    exe = sys.executable or ""
    if available_cpus() < 2 or "python" not in Path(exe).name.lower():
        return None
    pkg = str(Path(__file__).resolve().parent)
    try:
        return subprocess.Popen([exe, "-c", _HELPER_CODE, claims, pkg],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _parallel_compile():
    """Compile the jobs with a helper process, if one can start (else leave it all to the
    serial warm-up that follows)."""
    try:
        claims = tempfile.mkdtemp(prefix="emu-warmup-")
    except OSError:                                     # no writable temporary directory
        return
    try:
        helper = _start_helper(claims)
        if helper is None:
            return
        try:
            _claim_and_run(claims)
            try:
                helper.wait(timeout=HELPER_TIMEOUT)
            except subprocess.TimeoutExpired:          # stuck: its job is compiled here next
                pass
        finally:
            if helper.poll() is None:
                helper.kill()
                helper.wait()
    finally:
        shutil.rmtree(claims, ignore_errors=True)


def warmup():
    """Compile (or load) every kernel by running a tiny workload through each; a no-op after
    the first call. ``Machine()`` calls it on a first run (see :func:`emu._jit.cold_cache`)."""
    if _done or _busy:
        return
    _busy.append(True)
    try:
        with compile_notice():
            if cold_cache():
                _parallel_compile()
            _api_workload()
            _sched_workload()
        _done.append(True)
    finally:
        _busy.clear()
