"""The kmap_lock fast path (kmap_high + kunmap_high of a mapped highmem page) against a plain C
reference of the same routines on the same arrays (native/mm_ref.c).

``test_native_matches_numba_mm`` proves the C is the same logic: identical random direct calls
(kmap_high / kunmap_high / kmap_high_get, BUG paths, a contended lock, a lock released later
in emulated time by another CPU, a wake_up, a switch back from CPU 1, SMP and PREEMPT costs,
the event trace, random cycle costs) through ``emu.exec.core.direct_call`` and through C leave
``S`` and ``B`` byte-identical, with stats on and off, with and without
ARCH_NEEDS_KMAP_HIGH_GET, on one and two CPUs. The benchmarks check the same after their runs.

Ratios: numba and C run interleaved in a ``time.perf_counter`` loop with the GC off, min of the
rounds (as bench_cache.py). With ``--benchmark-disable`` every body runs once and only the
equality checks run.
"""

import sys

import numba
import numpy as np
import pytest

from benchmarks.compare import assert_same, interleaved_min
from benchmarks.native.build import Native
from emu import consts as K
from emu._jit import njit as emu_njit
from emu.exec import core
from emu.exec.errors import reset_direct
from emu.machine import Machine

JIT = not numba.config.DISABLE_JIT

PAIR_N = 200_000 if JIT else 50            # pairs per timed batch (both sides)
PAIR_ROUNDS = 11
CALL_N = 2000                              # Python / cffi call pairs per timed sample
CALL_ROUNDS = 15
CHURN_N = 20_000 if JIT else 300           # kmaps (and as many kunmaps) per churn run
CHURN_WINDOW = 16                          # live mappings: kunmap the page mapped 16 kmaps ago
CHURN_ROUNDS = 5
CHECK_OPS = 1500 if JIT else 150

MACHINE = dict(lowmem_mb=1, highmem_mb=4, last_pkmap=512)





@emu_njit
def _pair_loop(S, B, pfn, n):
    """``n`` kmap_high + kunmap_high of ``pfn`` through the executor's direct call (what the
    Python API runs, minus the Python); returns how many calls did not finish."""
    bad = 0
    for _ in range(n):
        bad += core.direct_call(S, B, K.R_KMAP_HIGH, pfn, 0, 0, 0) != K.ST_DONE
        bad += core.direct_call(S, B, K.R_KUNMAP_HIGH, pfn, 0, 0, 0) != K.ST_DONE
    return bad


@emu_njit
def _churn_loop(S, B, kinds, pfns):
    """A kmap_high / kunmap_high sequence through the direct call; returns failed calls."""
    bad = 0
    for i in range(len(kinds)):
        r = K.R_KMAP_HIGH if kinds[i] == 0 else K.R_KUNMAP_HIGH
        bad += core.direct_call(S, B, r, pfns[i], 0, 0, 0) != K.ST_DONE
    return bad


def fast_path_machine(stats=True, kmap_high_get=True, **kw):
    """A machine whose page ``pfn`` has a lazily-kept pkmap mapping (count 1)."""
    m = Machine(**MACHINE, stats=stats, kmap_high_get=kmap_high_get, **kw)
    pfn = m.highmem_pfns[0] + 44
    m.kmap_high(pfn)
    m.kunmap_high(pfn)
    return m, pfn


# ---------------------------------------------------------------------------------------------
# The C reference is the same logic: identical direct calls give byte-identical S and B
# ---------------------------------------------------------------------------------------------


def _last_ran_on_cpu1(S, clock_delta):
    """As if the scheduler last ran CPU 1 (switch_cpu): the next direct call switches back."""
    if S[K.H_CUR_CPU] == 1:
        return
    r0, r1 = int(S[K.H_R_CPU]), int(S[K.H_R_CPU]) + K.CPU_W
    S[r0 + K.CPU_CLOCK] = S[K.H_NOW]
    S[K.H_NOW] = S[r1 + K.CPU_CLOCK] = S[r0 + K.CPU_CLOCK] + clock_delta
    S[K.H_CUR_CPU] = 1
    S[K.H_CPUREC] = r1


@pytest.mark.parametrize("ncpus", [1, 2])
@pytest.mark.parametrize("khg", [True, False], ids=["kmap_high_get", "plain-lock"])
@pytest.mark.parametrize("stats", [True, False], ids=["stats", "nostats"])
def test_native_matches_numba_mm(native, stats, khg, ncpus):
    seed = 4 * ncpus + 2 * int(stats) + int(khg)
    rng = np.random.default_rng(seed)
    m = Machine(**MACHINE, stats=stats, kmap_high_get=khg, trace_events=64, ncpus=ncpus)
    S1, B1 = m._S, m._B
    S1[K.H_COST:K.H_COST + K.NUOPS] = rng.integers(0, 40, K.NUOPS)
    hp = list(m.highmem_pfns)
    mapped = hp[:12]
    count = {}
    for p in mapped:                                    # counts 1 (lazy) and 2..3 (in use)
        m.kmap_high(p)
        count[p] = 2
    for p in mapped[::2]:
        m.kunmap_high(p)
        count[p] = 1
    unmapped = hp[100:104]
    S2, B2 = S1.copy(), B1.copy()
    nat = Native(S2, B2)
    lib, Sp, Bp = nat.lib, nat.S_p, nat.B_p
    lk = int(S1[K.H_R_LOCK])
    q = int(S1[K.H_R_WAITQ])
    cr0 = int(S1[K.H_R_CTX])
    tr = int(S1[K.H_R_TRACE])

    def both(slot, value):
        S1[slot] = value
        S2[slot] = value

    def call(routine, cfn, pfn):
        st1 = core.direct_call(S1, B1, routine, pfn, 0, 0, 0)
        st2 = cfn(Sp, Bp, pfn)
        assert st2 != -100, (step, routine, "C: not a path mm_ref.c covers")
        assert st1 == st2, (step, routine, pfn, st1, st2)
        return st1

    for step in range(CHECK_OPS):
        both(K.H_SMP, int(rng.random() < 0.3))
        both(K.H_PREEMPT, int(rng.random() < 0.7))
        both(tr + K.TR_ON, int(rng.random() < 0.2))
        if ncpus == 2 and rng.random() < 0.2:
            delta = int(rng.integers(-500, 500))
            _last_ran_on_cpu1(S1, delta)
            _last_ran_on_cpu1(S2, delta)
        if rng.random() < 0.05:                 # released later in emulated time elsewhere
            both(lk + K.LK_FREE_AT, int(S1[K.H_NOW]) + int(rng.integers(1, 1000)))
        what = rng.random()
        p = mapped[int(rng.integers(len(mapped)))]
        if what < 0.4:
            assert call(K.R_KMAP_HIGH, lib.ref_kmap_high, p) == K.ST_DONE
            count[p] += 1
        elif what < 0.8:
            if count[p] >= 2:
                if rng.random() < 0.1 and count[p] == 2:        # a sleeper to wake
                    both(q, 1)
                    both(q + 1, 0)
                    both(cr0 + K.CTX_STATE, K.CTX_SLEEPING)
                assert call(K.R_KUNMAP_HIGH, lib.ref_kunmap_high, p) == K.ST_DONE
                count[p] -= 1
                both(q, 0)
                both(cr0 + K.CTX_STATE, K.CTX_RUNNABLE)
            else:                                               # unbalanced: BUG
                assert call(K.R_KUNMAP_HIGH, lib.ref_kunmap_high, p) == K.ST_ERROR
                reset_direct(S1)
                reset_direct(S2)
        elif what < 0.9:
            if khg:
                assert call(K.R_KMAP_HIGH_GET, lib.ref_kmap_high_get, p) == K.ST_DONE
                count[p] += 1
            else:
                u = unmapped[int(rng.integers(len(unmapped)))]    # BUG_ON(!vaddr)
                assert call(K.R_KUNMAP_HIGH, lib.ref_kunmap_high, u) == K.ST_ERROR
                reset_direct(S1)
                reset_direct(S2)
        elif what < 0.95:
            if khg:                                             # no mapping: returns 0
                u = unmapped[int(rng.integers(len(unmapped)))]
                assert call(K.R_KMAP_HIGH_GET, lib.ref_kmap_high_get, u) == K.ST_DONE
            else:
                assert call(K.R_KMAP_HIGH, lib.ref_kmap_high, p) == K.ST_DONE
                count[p] += 1
        else:                                                   # kmap_lock held elsewhere
            both(lk + K.LK_OWNER, 3)
            r, f = ((K.R_KMAP_HIGH, lib.ref_kmap_high) if rng.random() < 0.5
                    else (K.R_KUNMAP_HIGH, lib.ref_kunmap_high))
            assert call(r, f, p) == K.ST_SPIN
            both(lk + K.LK_OWNER, -1)
            reset_direct(S1)
            reset_direct(S2)
        if step % 100 == 99:
            assert_same(S1, B1, S2, B2, f"stats={stats} khg={khg} ncpus={ncpus} after op {step}")
    assert_same(S1, B1, S2, B2, f"stats={stats} khg={khg} ncpus={ncpus} at the end")
    lk_wait = int(S1[lk + K.LK_WAIT_TOTAL])
    assert lk_wait > 0 or not stats             # the FREE_AT wait path ran
    # the pkmap counts did what the sequence says
    base = int(S1[K.H_R_PKMAP_COUNT])
    for p, n in count.items():
        assert S1[base + ((m.page_address(p) - m.PKMAP_BASE) >> K.PAGE_SHIFT)] == n


@pytest.mark.parametrize("khg", [True, False], ids=["kmap_high_get", "plain-lock"])
@pytest.mark.parametrize("stats", [True, False], ids=["stats", "nostats"])
def test_native_matches_numba_mm_pairs(native, stats, khg):
    """The benchmark's loops and API calls themselves: N pairs through a jitted loop of
    core.direct_call and through C, then the Python API and the C API entry points."""
    m, pfn = fast_path_machine(stats, khg)
    S1, B1 = m._S, m._B
    S2, B2 = S1.copy(), B1.copy()
    nat = Native(S2, B2)
    n = 1000
    assert _pair_loop(S1, B1, pfn, n) == 0
    assert nat.lib.ref_bench_kmap_pair(nat.S_p, nat.B_p, pfn, n) == 0
    assert_same(S1, B1, S2, B2, f"{n} pairs in a loop")
    v = m.page_address(pfn)
    for _ in range(50):
        assert m.kmap_high(pfn) == v == nat.lib.ref_api_kmap_high(nat.S_p, nat.B_p, pfn)
        m.kunmap_high(pfn)
        assert nat.lib.ref_api_kunmap_high(nat.S_p, nat.B_p, pfn) == 0
    assert_same(S1, B1, S2, B2, "50 pairs through the API")


# ---------------------------------------------------------------------------------------------
# (a) the pair in a jitted loop vs the C loop
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stats", [True, False], ids=["stats", "nostats"])
def test_kmap_pair_batched(benchmark, bench_report, stats):
    m, pfn = fast_path_machine(stats)
    S, B = m._S, m._B
    S2, B2 = S.copy(), B.copy()
    nat = Native(S2, B2)

    def run_numba():
        assert _pair_loop(S, B, pfn, PAIR_N) == 0

    def run_c():
        assert nat.lib.ref_bench_kmap_pair(nat.S_p, nat.B_p, pfn, PAIR_N) == 0

    benchmark.pedantic(run_numba, rounds=PAIR_ROUNDS if benchmark.enabled else 1,
                       warmup_rounds=1 if benchmark.enabled else 0)
    run_c()
    if benchmark.disabled:
        assert_same(S, B, S2, B2, "pair loop")
        return
    t_nb, t_c = interleaved_min([run_numba, run_c], PAIR_ROUNDS)
    label = "stats on" if stats else "stats off"
    how = f"min of {PAIR_ROUNDS} interleaved rounds of {PAIR_N} pairs in a jitted / C loop"
    rate = bench_report.rate(f"kmap_high+kunmap_high pairs, jitted loop ({label})",
                             PAIR_N / t_nb / 1e6, PAIR_N / t_c / 1e6, 20, "M pairs", how=how)
    r = bench_report.ratio(f"kmap_high+kunmap_high pair, jitted loop ({label}), per pair",
                           t_nb / PAIR_N, t_c / PAIR_N, 1.5, how=how)
    assert r <= 1.5, f"numba/C = {r:.3f} > 1.5"
    assert rate >= 20, f"{rate:.1f} M pairs/s < 20"


# ---------------------------------------------------------------------------------------------
# (b) the pair through the Python API vs a cffi call pair
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stats", [True, False], ids=["stats", "nostats"])
def test_kmap_pair_python_api(benchmark, bench_report, stats):
    m, pfn = fast_path_machine(stats)
    ref, _ = fast_path_machine(stats)
    nat = Native(ref._S, ref._B)
    kh, ku = m.kmap_high, m.kunmap_high
    fk, fu, Sp, Bp = nat.lib.ref_api_kmap_high, nat.lib.ref_api_kunmap_high, nat.S_p, nat.B_p

    def pair():
        kh(pfn)
        ku(pfn)

    def run_numba():
        for _ in range(CALL_N):
            kh(pfn)
            ku(pfn)

    def run_c():
        for _ in range(CALL_N):
            fk(Sp, Bp, pfn)
            fu(Sp, Bp, pfn)

    benchmark(pair)
    assert fk(Sp, Bp, pfn) == m.page_address(pfn)
    assert fu(Sp, Bp, pfn) == 0
    if benchmark.disabled:
        return
    t_nb, t_c = interleaved_min([run_numba, run_c], CALL_ROUNDS)
    label = "stats on" if stats else "stats off"
    target = 4 if stats else None
    r = bench_report.ratio(
        f"m.kmap_high + m.kunmap_high ({label}) vs a cffi call pair", t_nb / CALL_N,
        t_c / CALL_N, target,
        how=f"min of {CALL_ROUNDS} interleaved rounds of {CALL_N} pairs from a Python loop")
    if target is not None:
        assert r <= target, f"numba/C = {r:.3f} > {target}"


# ---------------------------------------------------------------------------------------------
# (c) churn: random kmap/kunmap over 4 x LAST_PKMAP pages (wraps, flush_all_zero_pkmaps)
# ---------------------------------------------------------------------------------------------


def churn_ops(m, n, seed=7):
    """kmap_high a random page of a 4 x LAST_PKMAP working set, kunmap_high the page mapped
    ``CHURN_WINDOW`` kmaps ago (as the profiler's churn workload); then unmap the rest.
    Returns (kinds, pfns): kind 0 = kmap_high, 1 = kunmap_high."""
    rng = np.random.default_rng(seed)
    hp = m.highmem_pfns
    wset = 4 * m.LAST_PKMAP
    assert len(hp) >= wset
    pages = hp[0] + rng.integers(0, wset, n)
    kinds, pfns = [], []
    for i in range(n):
        kinds.append(0)
        pfns.append(int(pages[i]))
        if i >= CHURN_WINDOW:
            kinds.append(1)
            pfns.append(int(pages[i - CHURN_WINDOW]))
    for p in pages[max(0, n - CHURN_WINDOW):]:
        kinds.append(1)
        pfns.append(int(p))
    return np.array(kinds, np.int64), np.array(pfns, np.int64)


def test_kmap_churn(benchmark, bench_report):
    mk = dict(lowmem_mb=1, highmem_mb=8, last_pkmap=512)    # 2048 highmem pages = 4 x 512
    m_api, m_jit = Machine(**mk), Machine(**mk)
    kinds, pfns = churn_ops(m_api, CHURN_N)
    ops = list(zip(kinds.tolist(), pfns.tolist()))
    kh, ku = m_api.kmap_high, m_api.kunmap_high

    def run_api():
        for k, p in ops:
            if k == 0:
                kh(p)
            else:
                ku(p)

    def run_jit():
        assert _churn_loop(m_jit._S, m_jit._B, kinds, pfns) == 0

    run_jit()
    run_api()
    # the same sequence from the same state: the same machine
    assert_same(m_api._S, m_api._B, m_jit._S, m_jit._B, "churn: API vs jitted loop")
    flushes = m_api.mm_stats["flush_all_zero_pkmaps"]
    assert flushes > 0
    benchmark.pedantic(run_jit, rounds=CHURN_ROUNDS if benchmark.enabled else 1)
    if benchmark.disabled:
        return
    t_api, t_jit = interleaved_min([run_api, run_jit], CHURN_ROUNDS)
    how = (f"min of {CHURN_ROUNDS} interleaved runs of {CHURN_N} kmap_high + {CHURN_N} "
           f"kunmap_high (window {CHURN_WINDOW}, {flushes} flush_all_zero_pkmaps per run); "
           f"numba only")
    bench_report.rate("churn over 4 x LAST_PKMAP pages, jitted loop", CHURN_N / t_jit / 1e6,
                      None, None, "M pairs", how=how)
    bench_report.rate("churn over 4 x LAST_PKMAP pages, Python API", CHURN_N / t_api / 1e6,
                      None, None, "M pairs", how=how)


# ---------------------------------------------------------------------------------------------
# placement.py: the slow processes' cause (run by hand; here only that it works)
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not JIT or not sys.platform.startswith("linux"),
                    reason="loads machine code copies and remaps their pages (Linux, jitted)")
def test_placement_copies_and_renewed_pages_run(capsys):
    import placement
    assert placement.main(["--copies", "2"]) == 0
    assert "ns per pair, copy by copy:" in capsys.readouterr().out
    m, pfn = fast_path_machine(stats=False)
    f = emu_njit(_pair_loop.py_func)
    assert f(m._S, m._B, pfn, 10) == 0
    code = placement.code_pages(f)
    assert 4 <= len(code) < 1000
    libc = placement.open_libc()
    for p in code:                     # every page onto a fresh frame: the same program
        placement.renew_page(libc, p)
    S2, B2 = m._S.copy(), m._B.copy()
    assert f(m._S, m._B, pfn, 1000) == 0 and _pair_loop(S2, B2, pfn, 1000) == 0
    assert_same(m._S, m._B, S2, B2, "a copy with renewed pages vs the loaded loop")
