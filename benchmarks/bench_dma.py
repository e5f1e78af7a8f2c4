"""dma_map_page of a 4 KiB highmem page pinned with kmap_high_get, against a plain C reference of
the same routine on the same arrays (native/mm_ref.c): kmap_high_get pins the page's pkmap
mapping, the core's dma_inv_range walks its 128 lines (arm926, 32-byte lines), kunmap_high
unpins, the outer-cache hook is called, dma-debug records the mapping.

``test_native_matches_numba_dma`` proves the C is the same logic: random dma_map_page calls
(every direction, lowmem / highmem / unmapped highmem pages, offsets, multi-page buffers, dirty
lines in the range, both pinning schemes, four cores) through ``emu.exec.core.direct_call`` and
through C leave ``S`` and ``B`` byte-identical, stats on and off.

dma-debug keeps one table entry per map (4096 at most, then it switches itself off): the loops
reset the table's count before each map, identically on both sides.
"""


import numba
import numpy as np
import pytest

from benchmarks.compare import assert_same, interleaved_min
from benchmarks.native.build import Native
from emu import consts as K
from emu._jit import njit as emu_njit
from emu.cache import kernels as _k
from emu.dma.oracle import judge_discards
from emu.exec import core
from emu.machine import Machine

JIT = not numba.config.DISABLE_JIT

MAP_N = 20_000 if JIT else 20              # maps per timed batch (both sides)
MAP_ROUNDS = 11
CALL_N = 2000                              # Python / cffi calls per timed sample
CALL_ROUNDS = 15
CHECK_OPS = 600 if JIT else 60
SIZE = K.PAGE_SIZE
FROM_DEVICE = K.DMA_FROM_DEVICE

MACHINE = dict(lowmem_mb=1, highmem_mb=4, last_pkmap=512)





@emu_njit
def _map_loop(S, B, pfn, off, size, d, n):
    """``n`` dma_map_page calls through the executor's direct call, dma-debug's table count
    reset before each; returns how many did not finish."""
    dd = S[K.H_R_DMADBG]
    bad = 0
    for _ in range(n):
        S[dd + K.DD_COUNT] = 0
        bad += core.direct_call(S, B, K.R_DMA_MAP_PAGE, pfn, off, size, d) != K.ST_DONE
    return bad


def pinned_page_machine(stats=True, **kw):
    """A machine whose highmem page ``pfn`` keeps a pkmap mapping (count 1), so dma_map_page's
    kmap_high_get finds and pins it."""
    m = Machine(**MACHINE, stats=stats, **kw)
    pfn = m.highmem_pfns[0] + 77
    m.kmap_high(pfn)
    m.kunmap_high(pfn)
    return m, pfn


def _dd_reset(S):
    """Empty dma-debug's table (and switch it back on if it filled up)."""
    S[int(S[K.H_R_DMADBG]) + K.DD_COUNT] = 0
    S[int(S[K.H_R_DMADBG]) + K.DD_OFF] = 0


# ---------------------------------------------------------------------------------------------
# The C reference is the same logic
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stats", [True, False], ids=["stats", "nostats"])
@pytest.mark.parametrize("pin", ["kmap_high_get", "page_address"])
@pytest.mark.parametrize("cpu", ["arm926", "feroceon", "xscale", "sa110"])
def test_native_matches_numba_dma(native, cpu, pin, stats):
    seed = ["arm926", "feroceon", "xscale", "sa110"].index(cpu) * 4 + 2 * (pin == "page_address") \
        + int(stats)
    rng = np.random.default_rng(seed)
    m = Machine(cpu=cpu, **MACHINE, stats=stats, kmap_high_get=True, dma_pinning=pin,
                trace_events=64)
    S1, B1 = m._S, m._B
    S1[K.H_COST:K.H_COST + K.NUOPS] = rng.integers(0, 40, K.NUOPS)
    hp = list(m.highmem_pfns)
    mapped = hp[:6]
    for p in mapped:                        # pkmap mappings with counts 1 and 2
        m.kmap_high(p)
    for p in mapped[::2]:
        m.kunmap_high(p)
    unmapped = hp[200:203]
    low = list(range(10, 14))
    S2, B2 = S1.copy(), B1.copy()
    nat = Native(S2, B2)
    lib, Sp, Bp = nat.lib, nat.S_p, nat.B_p
    tr = int(S1[K.H_R_TRACE])
    data = rng.integers(0, 256, 64, dtype=np.uint8)
    dp = nat.ptr(data)

    def both(slot, value):
        S1[slot] = value
        S2[slot] = value

    for step in range(CHECK_OPS):
        both(K.H_SMP, int(rng.random() < 0.3))
        both(K.H_PREEMPT, int(rng.random() < 0.7))
        both(tr + K.TR_ON, int(rng.random() < 0.2))
        if rng.random() < 0.05:
            _dd_reset(S1)
            _dd_reset(S2)
        kind = rng.random()
        if kind < 0.6:
            pfn = mapped[int(rng.integers(len(mapped)))]
        elif kind < 0.8:
            pfn = low[int(rng.integers(len(low)))]
        else:
            pfn = unmapped[int(rng.integers(len(unmapped)))]
        if rng.random() < 0.5:                          # dirty lines of the buffer's pages
            va = m.page_address(pfn)
            if va:
                for _ in range(int(rng.integers(1, 6))):
                    o = int(rng.integers(0, SIZE - 16))
                    pa = (pfn << K.PAGE_SHIFT) + o
                    _k.cache_load(S1, B1, va + o, pa, 0, data, 0)     # allocate (read miss)
                    lib.ref_load(Sp, Bp, va + o, pa, 0, dp, 0)
                    _k.cache_store(S1, B1, va + o, pa, 8, data, 0)
                    lib.ref_store(Sp, Bp, va + o, pa, 8, dp, 0)
        r = rng.random()
        if r < 0.5:
            off, size = 0, SIZE
        elif r < 0.8:
            off = int(rng.integers(0, SIZE))
            size = int(rng.integers(1, SIZE - off + 1))
        else:                                           # across pages, maybe offset >= 4096
            off = int(rng.integers(0, 2 * SIZE))
            size = int(rng.integers(1, 2 * SIZE))
            pfn = mapped[0] if pfn in mapped else pfn
        d = int(rng.integers(0, 3))
        if rng.random() < 0.02:
            d = 3                                       # DMA_NONE: BUG_ON(!valid_dma_direction)
        st1 = core.direct_call(S1, B1, K.R_DMA_MAP_PAGE, pfn, off, size, d)
        st2 = lib.ref_dma_map_page(Sp, Bp, pfn, off, size, d)
        assert st2 != -100, (step, "C: not a path mm_ref.c covers")
        assert st1 == st2, (step, pfn, off, size, d, st1, st2)
        if st1 != K.ST_DONE:
            assert d == 3 and st1 == K.ST_ERROR
            for S_ in (S1, S2):
                S_[int(S_[K.H_R_CTX]) + int(S_[K.H_DIRECT_CTX]) * K.CTX_W + K.CTX_SP] = 0
                S_[K.H_ERR] = K.ERR_NONE
        if step % 50 == 49:
            assert_same(S1, B1, S2, B2, f"{cpu}/{pin}/stats={stats} after op {step}")
    assert_same(S1, B1, S2, B2, f"{cpu}/{pin}/stats={stats} at the end")
    cs = int(S1[K.H_R_CSTAT])
    assert S1[cs + K.CS_DIRTY_DISCARDS] > 0 and S1[cs + K.CS_RANGE_OPS] > 0


@pytest.mark.parametrize("stats", [True, False], ids=["stats", "nostats"])
def test_native_matches_numba_dma_loop(native, stats):
    """The benchmark's loop and API call themselves, on a page with dirty lines at first."""
    m, pfn = pinned_page_machine(stats)
    va = m.page_address(pfn)
    for o in range(0, SIZE, 96):
        m.read(va + o, 4)
        m.write(va + o, b"\x01\x02\x03")
    S1, B1 = m._S, m._B
    S2, B2 = S1.copy(), B1.copy()
    nat = Native(S2, B2)
    assert _map_loop(S1, B1, pfn, 0, SIZE, FROM_DEVICE, 300) == 0
    assert nat.lib.ref_bench_dma_map(nat.S_p, nat.B_p, pfn, 0, SIZE, FROM_DEVICE, 300) == 0
    assert_same(S1, B1, S2, B2, "300 maps in a loop")
    cs = int(S1[K.H_R_CSTAT])
    assert S1[cs + K.CS_DIRTY_DISCARDS] > 0
    # the oracle judges the dropped lines (the API does that after each call; mm_ref.c has
    # no judge_discards): all in the DMA range, so no finding, the shadow takes RAM's bytes
    for S_, B_ in ((S1, B1), (S2, B2)):
        judge_discards(S_, B_)
        _dd_reset(S_)
    assert not m.findings() and m.check_integrity() == 0
    for _ in range(20):
        h = m.dma_map_page(pfn, 0, SIZE, FROM_DEVICE)
        assert h == nat.lib.ref_api_dma_map_page(nat.S_p, nat.B_p, pfn, 0, SIZE, FROM_DEVICE)
    assert_same(S1, B1, S2, B2, "20 maps through the API")


# ---------------------------------------------------------------------------------------------
# The benchmarks
# ---------------------------------------------------------------------------------------------


def test_dma_map_page_batched(benchmark, bench_report):
    m, pfn = pinned_page_machine()
    S, B = m._S, m._B
    S2, B2 = S.copy(), B.copy()
    nat = Native(S2, B2)

    def run_numba():
        assert _map_loop(S, B, pfn, 0, SIZE, FROM_DEVICE, MAP_N) == 0

    def run_c():
        assert nat.lib.ref_bench_dma_map(nat.S_p, nat.B_p, pfn, 0, SIZE, FROM_DEVICE, MAP_N) == 0

    benchmark.pedantic(run_numba, rounds=MAP_ROUNDS if benchmark.enabled else 1,
                       warmup_rounds=1 if benchmark.enabled else 0)
    run_c()
    if benchmark.disabled:
        assert_same(S, B, S2, B2, "dma_map_page loop")
        return
    t_nb, t_c = interleaved_min([run_numba, run_c], MAP_ROUNDS)
    how = (f"min of {MAP_ROUNDS} interleaved rounds of {MAP_N} maps in a jitted / C loop "
           f"(arm926, FROM_DEVICE, page kept mapped, lines not cached)")
    rate = bench_report.rate("dma_map_page 4 KiB highmem (kmap_high_get pin), jitted loop",
                             MAP_N / t_nb / 1e6, MAP_N / t_c / 1e6, 2, "M maps", how=how)
    r = bench_report.ratio("dma_map_page 4 KiB highmem, jitted loop, per map", t_nb / MAP_N,
                           t_c / MAP_N, 1.3, how=how)
    assert r <= 1.3, f"numba/C = {r:.3f} > 1.3"
    assert rate >= 2, f"{rate:.2f} M maps/s < 2"


def test_dma_map_page_python_api(benchmark, bench_report):
    m, pfn = pinned_page_machine()
    ref, _ = pinned_page_machine()
    nat = Native(ref._S, ref._B)
    f, Sp, Bp = nat.lib.ref_api_dma_map_page, nat.S_p, nat.B_p
    dmap = m.dma_map_page

    def run_numba():
        _dd_reset(m._S)
        for _ in range(CALL_N):
            dmap(pfn, 0, SIZE, FROM_DEVICE)

    def run_c():
        _dd_reset(ref._S)
        for _ in range(CALL_N):
            f(Sp, Bp, pfn, 0, SIZE, FROM_DEVICE)

    benchmark(dmap, pfn, 0, SIZE, FROM_DEVICE)
    assert f(Sp, Bp, pfn, 0, SIZE, FROM_DEVICE) == pfn << K.PAGE_SHIFT
    if benchmark.disabled:
        return
    t_nb, t_c = interleaved_min([run_numba, run_c], CALL_ROUNDS)
    r = bench_report.ratio(
        "m.dma_map_page 4 KiB highmem vs one cffi call", t_nb / CALL_N, t_c / CALL_N, 1.5,
        how=f"min of {CALL_ROUNDS} interleaved rounds of {CALL_N} calls from a Python loop "
            f"(dma-debug table count reset before each round)")
    assert r <= 1.5, f"numba/C = {r:.3f} > 1.5"
