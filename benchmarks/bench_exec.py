"""The interleaving executor: scheduler throughput and exploration times on scenario (i), the
2009 highmem DMA race (``emu.exec.builtin.race``). numba only: there is no C reference here.

(a) steps per second: a step is one scheduling decision the executor runs. The whole bound-2
    exploration in the jitted exploration loop (``emu.exec.dfs.explore_dfs``, what
    :func:`emu.exec.explore.explore` runs: per schedule the snapshot or checkpoint restore,
    the run, the final integrity check and the DFS successor, no Python); decisions a
    schedule takes over from a shared-prefix checkpoint are not counted as steps (they are
    in the second figure, decisions covered per second). Also every schedule of it through
    ``Loaded.run_raw`` (one jitted call per schedule from Python). Stats on and off.
(a') the executor's own rate: one long seeded random schedule of (i)'s tasks repeated over
    32 pages each (4,674 decisions, one restore and final check); and of the dma task alone
    (no target: nearly every step one line of the invalidate loop).
(b) exhaustive bound-2 exploration of (i) with LAST_PKMAP 8, after warm-up.
(c) time to find (i)'s minimal failing schedule: a complete bound-1 exploration (the minimal
    schedule has one preemption).
LAST_PKMAP 512 is reported alongside (no target).
"""

import gc
import time

import numba
import numpy as np
import pytest

from emu import consts as K
from emu.exec.builtin import race
from emu.exec.explore import explore
from emu.exec.loaded import DEFAULT_MAX_STEPS
from emu.exec.scenario import Scenario

JIT = not numba.config.DISABLE_JIT
ROUNDS = 5 if JIT else 1


def _min_time(fn, rounds):
    """Best wall time of ``rounds`` calls of ``fn`` (GC off while timing); and its last result."""
    best, out = float("inf"), None
    was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t0)
    finally:
        if was:
            gc.enable()
    return best, out


def scenario_i(last_pkmap=8, stats=True):
    """Scenario (i) loaded on its machine; ``stats=False`` builds the machine without the
    profiler's records (the scenario format has no such key: it goes straight to Machine)."""
    sc = race(last_pkmap, 1, "page_address")
    if not stats:
        sc.machine["stats"] = False
    ld = sc.build()
    assert bool(ld.machine._S[K.H_PROFILE]) == stats
    return ld


def schedules(ld, bound):
    """The choice prefixes an exhaustive ``bound`` exploration runs, in its order (each DFS
    step of the exploration loop leaves the next one in ``ld``'s prefix buffer)."""
    out = [np.zeros(0, np.int64)]
    x = ld.dfs_state()
    while not ld.dfs(bound, DEFAULT_MAX_STEPS, 1, 0, x) & K.DFS_DONE:
        out.append(ld.next_prefix(x))
    return out


# ---------------------------------------------------------------------------------------------
# (a) scheduler steps per second
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stats", [True, False], ids=["stats", "nostats"])
def test_scheduler_steps_per_second(benchmark, bench_report, stats):
    ld = scenario_i(8, stats)
    pre = schedules(ld, 2)                              # also the warm-up

    def run_py():
        return sum(ld.run_raw(p)[1] for p in pre)

    def run_engine():
        x = ld.dfs_state()
        while not ld.dfs(2, DEFAULT_MAX_STEPS, 1 << 62, 0, x) & K.DFS_DONE:
            pass                                        # it stops at each new best failure
        return int(x[K.X_DECISIONS]), int(x[K.X_EXECUTED])

    steps = benchmark.pedantic(run_py, rounds=ROUNDS if benchmark.enabled else 1)
    decisions, executed = run_engine()
    assert decisions == steps and steps > 100 * len(pre) and executed < steps
    if benchmark.disabled:
        return
    t_py, _ = _min_time(run_py, ROUNDS)
    t_eng, _ = _min_time(run_engine, ROUNDS)
    label = "stats on" if stats else "stats off"
    how = (f"{len(pre)} schedules of the bound-2 exploration of (i), LAST_PKMAP 8, "
           f"{steps} decisions ({steps / len(pre):.0f} per schedule), {executed} of them "
           f"executed (the rest taken over from shared-prefix checkpoints); min of {ROUNDS} "
           f"passes")
    rate = bench_report.rate(f"scheduler on (i), the jitted exploration loop ({label})",
                             executed / t_eng / 1e6, None, 50, "M steps", how=how)
    bench_report.rate(f"exploration of (i): schedule decisions covered per second ({label})",
                      steps / t_eng / 1e6, None, None, "M decisions", how=how)
    bench_report.rate(f"scheduler on (i), Loaded.run_raw per schedule ({label})",
                      steps / t_py / 1e6, None, None, "M steps", how=how)
    assert rate >= 50, f"{rate:.1f} M steps/s < 50"


# (a') the executor on one long schedule: (i)'s two tasks, each repeated over many pages, so
# that the rate is the executor's own and not the per-schedule restore and final check.
LONG_PAGES = 32                 # dma_map_page (4096-byte invalidate) + device write + unmap each
LONG_P_SWITCH = 10_000          # a switch at 1 % of the preemptible scheduling points


def long_schedule(stats=True, writer=True):
    """(i)'s dma and writer tasks over LONG_PAGES pages each (the DMA pages lazily mapped by
    the setup, as in (i)), loaded; and the choices of a seeded random schedule of it.
    ``writer=False``: the dma task alone, without the device writes (its steps are almost
    all lines of the invalidate loop)."""
    dma, wr = [], []
    for k in range(LONG_PAGES):
        dma.append({"op": "dma_map_page", "pfn": 300 + k, "offset": 0, "size": 4096,
                    "direction": "FROM_DEVICE", "as": f"h{k}"})
        if writer:
            dma.append({"op": "device_write", "dma_addr": f"h{k}", "byte": 0xD0, "n": 4096})
        dma.append({"op": "dma_unmap_page", "dma_addr": f"h{k}", "size": 4096,
                    "direction": "FROM_DEVICE"})
        wr += [{"op": "kmap_high", "pfn": 600 + k, "as": f"v{k}"},
               {"op": "fill", "va": f"v{k}+2048", "byte": 0xAB, "n": 128},
               {"op": "kunmap_high", "pfn": 600 + k}]
    sc = Scenario(name="(i) over many pages", machine={
        "last_pkmap": 512, "lowmem_mb": 1, "highmem_mb": 4, "stats": stats})
    sc.setup = [{"op": "kmap", "pfn": 300, "repeat": LONG_PAGES},
                {"op": "kunmap", "pfn": 300, "repeat": LONG_PAGES}]
    sc.task("dma", dma)
    if writer:
        sc.task("writer", wr)
    ld = sc.build()
    r = ld.run(K.SCHED_RANDOM, (), LONG_P_SWITCH, seed=1)
    assert r.outcome == "done" and (r.preemptions > 0 or not writer), r.message
    return ld, np.asarray(r.choices, np.int64)


@pytest.mark.parametrize("stats,writer", [(True, True), (False, True), (True, False)],
                         ids=["stats", "nostats", "dma-alone"])
def test_executor_one_long_schedule(benchmark, bench_report, stats, writer):
    ld, choices = long_schedule(stats, writer)

    def run():
        outcome, d, npre, lost = ld.run_raw(choices)
        assert outcome == K.RUN_DONE and lost == 0
        return d

    steps = benchmark.pedantic(run, rounds=ROUNDS if benchmark.enabled else 1)
    assert steps == len(choices) > 4000
    if benchmark.disabled:
        return
    t, _ = _min_time(run, 20 * ROUNDS)
    label = ("stats on" if stats else "stats off") if writer else "the dma task alone"
    what = ("of a seeded random schedule (1 % switches) of (i)'s two tasks" if writer else
            "of the dma task alone (dma_map_page + dma_unmap_page, no device write)")
    rate = bench_report.rate(
        f"executor on one long schedule ({label})", steps / t / 1e6, None,
        50 if writer else None, "M steps",
        how=f"{steps} decisions {what} over {LONG_PAGES} pages, replayed by Loaded.run_raw "
            f"(one restore and final check in all); min of {20 * ROUNDS}")
    if writer:
        assert rate >= 50, f"{rate:.1f} M steps/s < 50"


# ---------------------------------------------------------------------------------------------
# (b) exhaustive bound-2 exploration; (c) the minimal failing schedule
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("last_pkmap", [8, 512])
def test_explore_bound2(benchmark, bench_report, last_pkmap):
    ld = scenario_i(last_pkmap)
    explore(ld, bound=1, max_schedules=5)               # warm-up (compiled / loaded once)

    def run():
        return explore(ld, bound=2)

    ex = benchmark.pedantic(run, rounds=ROUNDS if benchmark.enabled else 1)
    assert ex.complete and ex.data_lost and ex.minimal.preemptions == 1
    if benchmark.disabled:
        return
    wall, ex = _min_time(run, ROUNDS)
    target = 10 if last_pkmap == 8 else None
    secs = bench_report.seconds(
        f"explore (i) bound 2, LAST_PKMAP {last_pkmap}: {ex.schedules} schedules",
        wall, target,
        how=f"explore() of a loaded scenario after warm-up, wall time incl. describing the "
            f"minimal schedule (its own loop: {ex.seconds * 1e3:.1f} ms); min of {ROUNDS}")
    if target is not None:
        assert secs < target, f"{secs:.2f} s >= {target} s"


@pytest.mark.parametrize("last_pkmap", [8, 512])
def test_find_minimal_schedule(benchmark, bench_report, last_pkmap):
    ld = scenario_i(last_pkmap)
    explore(ld, bound=1, max_schedules=5)               # warm-up

    def run():
        return explore(ld, bound=1)

    ex = benchmark.pedantic(run, rounds=ROUNDS if benchmark.enabled else 1)
    assert ex.complete and ex.minimal.preemptions == 1 and ex.minimal.lost_bytes > 0
    assert ex.switches == ["after step 1 of dma run writer"]
    if benchmark.disabled:
        return
    wall, ex = _min_time(run, ROUNDS)
    target = 1 if last_pkmap == 8 else None
    secs = bench_report.seconds(
        f"find (i)'s minimal failing schedule, LAST_PKMAP {last_pkmap} "
        f"({ex.schedules} schedules, bound 1)", wall, target,
        how=f"complete bound-1 explore() after warm-up, wall time incl. replay token and "
            f"switch list; min of {ROUNDS}")
    if target is not None:
        assert secs < target, f"{secs:.3f} s >= {target} s"



# ---------------------------------------------------------------------------------------------
# (d) the same exploration on every CPU (emu.exec.parallel), no target
# ---------------------------------------------------------------------------------------------


def test_explore_on_every_cpu(benchmark, bench_report):
    from emu.warmup import available_cpus
    ld = scenario_i(8)
    bound = 4 if benchmark.enabled else 2
    serial = explore(ld, bound=bound)
    jobs = max(2, available_cpus())
    par = benchmark.pedantic(lambda: explore(ld, bound=bound, jobs=jobs), rounds=1)
    assert (par.schedules, par.outcomes, par.minimal, par.replay) == \
        (serial.schedules, serial.outcomes, serial.minimal, serial.replay)
    if benchmark.disabled:
        return
    wall, _ = _min_time(lambda: explore(ld, bound=bound, jobs=jobs), 3)
    one, _ = _min_time(lambda: explore(ld, bound=bound), 3)
    bench_report.seconds(f"explore (i) bound 4 ({serial.schedules} schedules), {jobs} "
                         f"processes", wall, None,
                         how=f"explore(jobs={jobs}): this process and {jobs - 1} worker(s), "
                             f"which join after ~1 s; "
                             f"serial: {one:.2f} s, so {one / wall:.2f}x; min of 3")


# ---------------------------------------------------------------------------------------------
# jitprof.py: the sampling profile of the exploration loop (run by hand; here its parsing)
# ---------------------------------------------------------------------------------------------


def test_jitprof_names_numba_symbols():
    import jitprof
    nm = ("0000000000000000 00000000000000ff T _ZN3emu4exec3dfs11explore_dfsB4v375B46c8tJTIeFIjx"
          "E5ArrayIxLi1E1C7mutable7alignedE\n"
          "0000000000000100 0000000000000010 W _ZN3emu4exec5sched3runB4v394B46c8tJTIeFIjxE\n"
          "0000000000000000 r .const.explore_dfs\n"
          "0000000000000200 0000000000000008 T cfunc._ZN3emu2mm7highmem9kmap_stepB4v2B4xE\n")
    syms = jitprof.parse_nm(nm)
    assert [s[:2] for s in syms] == [(0, 0xff), (0x100, 0x10), (0x200, 8)]
    assert [jitprof.short_name(s[2]) for s in syms] == [
        "emu.exec.dfs.explore_dfs", "emu.exec.sched.run", "cfunc of emu.mm.highmem.kmap_step"]
    assert jitprof.short_name("_ZN7cpython3emu4exec3dfs11explore_dfsB4v3E") == \
        "cpython wrapper of emu.exec.dfs.explore_dfs"
    with pytest.raises(SystemExit):
        jitprof.main(["explore", "--seconds", "0"])         # argparse: must be > 0
