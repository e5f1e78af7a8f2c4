"""The cache layer's kernels against a straightforward C reference (native/cache_ref.c).

Ratios come from this process: numba and C run interleaved (numba, C, numba, C, ...) in a
``time.perf_counter`` loop inside each benchmark, and the ratio is min(numba) / min(C) over the
rounds. Interleaving keeps a noisy shared machine from favouring one side. The
``benchmark`` fixture additionally times the numba side for pytest-benchmark's own table.

With ``--benchmark-disable`` (the project default) every body runs once as a smoke test and no
target is asserted.
"""


import numba
import numpy as np
import pytest

from benchmarks.compare import assert_same, interleaved_min
from benchmarks.native.build import Native
from emu import consts as K
from emu._jit import njit as emu_njit
from emu.cache import Cache
from emu.cache import kernels as _k
from emu.cache import maint as _m
from emu.cache.maint import RANGE_DONE, RANGE_START, dma_range
from emu.cost.account import set_kind, set_site

JIT = not numba.config.DISABLE_JIT
OP_INV = K.OP_INV

INV_START = 0x10000
INV_BYTES = 4096                  # 128 lines of 32 bytes
INV_REPS = 2000 if JIT else 2     # dma_range calls per timed batch (both sides)
INV_ROUNDS = 21

REPLAY_N = 10_000_000 if JIT else 20_000
REPLAY_WSET = 4 * 16384           # working set: 4x the 16 KiB cache
REPLAY_ROUNDS = 5
REPLAY_CHUNKS = 10

CALL_N = 2000                     # Python calls per timed sample
CALL_ROUNDS = 21

BENCH_RAM = 1 << 24


def _bench_cache():
    return Cache.from_preset("arm926", ram_size=BENCH_RAM)



@emu_njit
def _inv_batch(S, B, start, end, reps):
    """``reps`` calls of the arm926 ``dma_inv_range`` inside jitted code (compiled with emu's
    own settings: ``cache=True``, and no NRT, so the call adds no reference counting)."""
    for _ in range(reps):
        dma_range(S, B, OP_INV, start, end)


# ---------------------------------------------------------------------------------------------
# 1. 4 KiB inv_range batched inside compiled code
# ---------------------------------------------------------------------------------------------


def test_inv_range_4k_batched(benchmark, bench_report):
    c = _bench_cache()
    for va in range(INV_START, INV_START + INV_BYTES, 64):      # every other line cached, dirty
        c.load(va, 1)                                           # (arm926 allocates on reads only)
        c.store(va, b"\x01\x02")
    assert c.stats["dirty_discards"] == 0 and len(c.lines()) == INV_BYTES // 64
    S, B = c._S, c._B
    S2, B2 = S.copy(), B.copy()
    nat = Native(S2, B2)
    end = INV_START + INV_BYTES

    def run_numba():
        _inv_batch(S, B, INV_START, end, INV_REPS)

    def run_c():
        nat.lib.ref_bench_inv(nat.S_p, nat.B_p, INV_START, end, INV_REPS)

    benchmark.pedantic(run_numba, rounds=INV_ROUNDS if benchmark.enabled else 1,
                       warmup_rounds=1 if benchmark.enabled else 0)
    run_c()
    if benchmark.disabled:
        # Same calls on equal copies: the states must agree (the smoke test's check).
        assert np.array_equal(S, S2) and np.array_equal(B, B2)
        return
    t_nb, t_c = interleaved_min([run_numba, run_c], INV_ROUNDS)
    r = bench_report.ratio(
        "inv_range 4 KiB (arm926, 16 KiB 4-way), per call", t_nb / INV_REPS, t_c / INV_REPS, 1.0,
        how=f"min of {INV_ROUNDS} interleaved rounds of {INV_REPS} calls in a jitted / C loop")
    assert r <= 1.0, f"numba/C = {r:.3f} > 1.0"


# ---------------------------------------------------------------------------------------------
# 2. Trace replay of 10 M accesses
# ---------------------------------------------------------------------------------------------


def _make_trace(hot_fraction, seed=20090304):
    """10 M loads/stores (30 % stores, 1..8 bytes). ``hot_fraction`` of them fall in an
    8 KiB hot region (it fits the 16 KiB cache), the rest anywhere in a 64 KiB working set
    (4x the cache). 0.99 gives a ~98 % hit rate, typical of an L1 D trace (SPEC-style L1 D
    miss rates are 1-5 %); 0.0 is the miss-heavy case, reported for the record."""
    rng = np.random.default_rng(seed)
    kinds = (rng.random(REPLAY_N) < 0.3).astype(np.int64)              # 30 % stores
    sizes = rng.integers(1, 9, REPLAY_N, dtype=np.int64)                 # 1..8 bytes
    cold = 0x100000 + rng.integers(0, REPLAY_WSET - 8, REPLAY_N, dtype=np.int64)
    hot = 0x200000 + rng.integers(0, 8192 - 8, REPLAY_N, dtype=np.int64)
    addrs = np.where(rng.random(REPLAY_N) < hot_fraction, hot, cold)
    return kinds, addrs, sizes


@pytest.fixture(scope="module")
def trace():
    return _make_trace(0.99)


@pytest.fixture(scope="module")
def miss_trace():
    return _make_trace(0.0)


def test_replay_10m(benchmark, bench_report, trace):
    _replay_bench(benchmark, bench_report, trace, "typical locality", 60, 1.1)


def test_replay_10m_miss_heavy(benchmark, bench_report, miss_trace):
    """For the record: a 64 KiB random working set (most accesses miss); no target."""
    _replay_bench(benchmark, bench_report, miss_trace, "working set 4x the cache", None, None)


def _replay_bench(benchmark, bench_report, trace, label, min_rate, max_ratio):
    kinds, addrs, sizes = trace
    c = _bench_cache()
    S, B = c._S, c._B
    S2, B2 = S.copy(), B.copy()
    nat = Native(S2, B2)
    n = len(kinds)
    # The trace in REPLAY_CHUNKS consecutive pieces: each piece is timed interleaved (numba, C)
    # and a side's time is the sum over pieces of its best round, which keeps a preempted
    # piece from spoiling a whole 10 M round on a shared machine.
    bounds = np.linspace(0, n, REPLAY_CHUNKS + 1).astype(np.int64)
    pieces = [(kinds[a:b], addrs[a:b], sizes[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    cpieces = [(nat.ptr(k), nat.ptr(a), nat.ptr(z), len(k)) for k, a, z in pieces]
    kp, ap, sp = nat.ptr(kinds), nat.ptr(addrs), nat.ptr(sizes)

    def run_numba():
        return _k.replay(S, B, kinds, addrs, sizes)

    def run_c():
        return nat.lib.ref_replay(nat.S_p, nat.B_p, kp, ap, sp, n)

    assert benchmark.pedantic(run_numba, rounds=3 if benchmark.enabled else 1) == n
    assert run_c() == n
    if benchmark.disabled:
        assert np.array_equal(S, S2) and np.array_equal(B, B2)
        return
    t_nb = t_c = 0.0
    for (k, a, z), (cpk, cpa, cpz, m) in zip(pieces, cpieces):
        b_nb, b_c = interleaved_min(
            [lambda: _k.replay(S, B, k, a, z),
             lambda: nat.lib.ref_replay(nat.S_p, nat.B_p, cpk, cpa, cpz, m)], REPLAY_ROUNDS)
        t_nb += b_nb
        t_c += b_c
    how = (f"sum over {REPLAY_CHUNKS} consecutive trace pieces of the min of {REPLAY_ROUNDS} "
           f"interleaved rounds")
    hits = (S[S[K.H_R_CSTAT] + K.CS_LOAD_HITS] + S[S[K.H_R_CSTAT] + K.CS_STORE_HITS]) / max(
        1, S[S[K.H_R_CSTAT] + K.CS_LOADS] + S[S[K.H_R_CSTAT] + K.CS_STORES])
    label = f"{label}, hit rate {100 * hits:.0f} %"
    rate = bench_report.rate(f"replay {n / 1e6:g} M accesses ({label})",
                             n / t_nb / 1e6, n / t_c / 1e6, min_rate, "M acc", how=how)
    r = bench_report.ratio(f"replay ({label}), time per access", t_nb / n, t_c / n, max_ratio,
                           how=how)
    if min_rate is not None:
        assert rate >= min_rate, f"{rate:.1f} M accesses/s < {min_rate}"
        assert r <= max_ratio, f"numba/C = {r:.3f} > {max_ratio}"


# ---------------------------------------------------------------------------------------------
# 3. One Python call of Cache.inv_range vs one cffi call
# ---------------------------------------------------------------------------------------------


def test_inv_range_python_call(benchmark, bench_report):
    c = _bench_cache()
    ref = _bench_cache()
    nat = Native(ref._S, ref._B)
    start, end = INV_START, INV_START + INV_BYTES
    inv = c.inv_range
    f, Sp, Bp = nat.lib.ref_dma_range, nat.S_p, nat.B_p

    def run_numba():
        for _ in range(CALL_N):
            inv(start, end)

    def run_c():
        for _ in range(CALL_N):
            f(Sp, Bp, OP_INV, start, end)

    benchmark(inv, start, end)
    f(Sp, Bp, OP_INV, start, end)
    if benchmark.disabled:
        return
    t_nb, t_c = interleaved_min([run_numba, run_c], CALL_ROUNDS)
    r = bench_report.ratio(
        "Cache.inv_range 4 KiB, one Python call vs one cffi call", t_nb / CALL_N, t_c / CALL_N,
        1.5, how=f"min of {CALL_ROUNDS} interleaved rounds of {CALL_N} calls from a Python loop")
    assert r <= 1.5, f"numba/C = {r:.3f} > 1.5"


# ---------------------------------------------------------------------------------------------
# The C reference is the same algorithm: identical operations give byte-identical S and B
# ---------------------------------------------------------------------------------------------

GEOMETRIES = {
    "arm926-16k4w": dict(size=16384, ways=4, line=32, style="arm926", dirty_granule=16),
    "feroceon-16k4w": dict(size=16384, ways=4, line=32, style="feroceon"),
    "xscale-32k32w": dict(size=32768, ways=32, line=32, style="xscale", dirty_granule=16,
                          window=0xFFFE0000),
    "v4wb-16k32w": dict(size=16384, ways=32, line=32, style="v4wb", window=0xF9000000),
    "arm926-4k2w-l16-wa": dict(size=4096, ways=2, line=16, style="arm926", dirty_granule=4,
                               write_allocate=True),
    "xscale-2k8w-l64-wt": dict(size=2048, ways=8, line=64, style="xscale", write_back=False,
                               window=0x80000000),
    "v4wb-1k1w-wa": dict(size=1024, ways=1, line=32, style="v4wb", write_allocate=True,
                         dirty_granule=8, window=0xC0000000),
    "arm926-512b2w-l8-wa": dict(size=512, ways=2, line=8, style="arm926", dirty_granule=4,
                                write_allocate=True),                   # full-line replay stores
    "feroceon-8k16w-l64": dict(size=8192, ways=16, line=64, style="feroceon", dirty_granule=16),
    "arm926-2k4w-wt": dict(size=2048, ways=4, line=32, style="arm926", write_back=False),
}
CHECK_RAM = 1 << 22
CHECK_OPS = 1500 if JIT else 120


def _check_cache(cfg, repl, seed):
    """A standalone ``Cache`` for the equality check.

    The kernels write through ``S[H_B_RAMDIRTY]`` when it is non-zero; a standalone cache must
    have that machine-only slot inside its header, reading 0 (else the write lands wherever a
    region value points, possibly outside ``B``: fail here instead of crashing).
    """
    c = Cache(**cfg, replacement=repl, ram_size=CHECK_RAM, events=16, seed=seed)
    slot = getattr(K, "H_B_RAMDIRTY", None)
    if slot is not None:
        assert slot < int(c._S[K.H_R_TAG]) and c._S[slot] == 0, (
            f"standalone Cache: header slot H_B_RAMDIRTY={slot} lies in a region (header ends at "
            f"{int(c._S[K.H_R_TAG])})")
    return c




@pytest.mark.parametrize("repl", K.REPL_NAMES)
@pytest.mark.parametrize("geom", list(GEOMETRIES))
def test_native_matches_numba(native, geom, repl):
    cfg = GEOMETRIES[geom]
    seed = list(GEOMETRIES).index(geom) * 16 + K.REPL_NAMES.index(repl)
    rng = np.random.default_rng(seed)
    c = _check_cache(cfg, repl, seed)
    S1, B1 = c._S, c._B
    line, size = c.line, cfg["size"]
    # Costs, a site and a context, so the accounting and event records carry real values.
    S1[K.H_COST:K.H_COST + K.NUOPS] = rng.integers(0, 40, K.NUOPS)
    r = int(S1[K.H_B_RAM])
    B1[r:r + CHECK_RAM] = rng.integers(0, 256, CHECK_RAM, dtype=np.uint8)
    S2, B2 = S1.copy(), B1.copy()
    nat = Native(S2, B2)
    lib, Sp, Bp = nat.lib, nat.S_p, nat.B_p

    span = 4 * size
    deltas = (0, 0, 0x100000, 0x203000)                  # VA != PA, and aliases of one PA
    data = rng.integers(0, 256, 256, dtype=np.uint8)
    out1 = np.zeros(256, np.uint8)
    out2 = np.zeros(256, np.uint8)
    o2p, dp = nat.ptr(out2), nat.ptr(data)

    def both(slot, value):
        S1[slot] = value
        S2[slot] = value

    for step in range(CHECK_OPS):
        both(K.H_STEP, step)
        site, kind = int(rng.integers(0, K.NSITES)), int(rng.integers(0, K.NKINDS))
        for S_ in (S1, S2):
            set_site(S_, site)
            set_kind(S_, kind)
        both(K.H_CUR_CTX, int(rng.integers(0, 5)))
        what = int(rng.choice(9, p=[0.28, 0.28, 0.14, 0.1, 0.06, 0.02, 0.04, 0.04, 0.04]))
        va = int(rng.integers(0, span))
        pa = va + int(rng.choice(deltas))
        off = va & (line - 1)
        if what == 0:                                    # load within one line
            n = int(rng.integers(0, line - off + 1))
            h1 = _k.cache_load(S1, B1, va, pa, n, out1, 0)
            h2 = lib.ref_load(Sp, Bp, va, pa, n, o2p, 0)
            assert bool(h1) == bool(h2) and np.array_equal(out1[:n], out2[:n]), (step, "load")
        elif what == 1:                                  # store within one line
            n = int(rng.integers(1, line - off + 1))
            so = int(rng.integers(0, 256 - n + 1))
            h1 = _k.cache_store(S1, B1, va, pa, n, data, so)
            h2 = lib.ref_store(Sp, Bp, va, pa, n, dp, so)
            assert bool(h1) == bool(h2), (step, "store")
        elif what == 2:                                  # CP15 line op by MVA
            op = int(rng.integers(0, 3))
            assert _k.line_op(S1, B1, op, va) == lib.ref_line_op(Sp, Bp, op, va), (step, "line")
        elif what in (3, 4):                             # dma_*_range, maybe resumable steps
            op = int(rng.integers(0, 3))
            end = va + int(rng.integers(0, 6 * line))
            both(K.H_DMA_LO, va)
            both(K.H_DMA_HI, end)
            if what == 3:
                _m.dma_range(S1, B1, op, va, end)
                lib.ref_dma_range(Sp, Bp, op, va, end)
            else:
                both(K.H_YIELD, 1)
                cur1 = cur2 = RANGE_START
                while cur1 != RANGE_DONE:
                    cur1 = _m.dma_range_step(S1, B1, op, va, end, cur1)
                    cur2 = lib.ref_dma_range_step(Sp, Bp, op, va, end, cur2)
                    assert cur1 == cur2, (step, "range step")
                    S1[K.H_STEP] += 1
                    S2[K.H_STEP] += 1
                both(K.H_YIELD, 0)
            both(K.H_DMA_LO, -1)
            both(K.H_DMA_HI, -1)
        elif what == 5:
            _m.flush_kern_cache_all(S1, B1)
            lib.ref_flush_kern_cache_all(Sp, Bp)
        elif what == 6:
            _k.line_alloc(S1, B1, va)
            lib.ref_line_alloc(Sp, Bp, va)
        elif what == 7:
            assert _k.find(S1, va - off) == lib.ref_find(Sp, va - off), (step, "find")
        else:                                  # a short trace (all Dinero kinds), may straddle lines
            m = int(rng.integers(1, 60))
            kinds = rng.choice(np.array([0, 0, 0, 1, 1, 1, 2, 3, 4, 5], np.int64), m)
            addrs = rng.integers(0, span, m, dtype=np.int64)
            sizes = rng.integers(0, 2 * line + 2, m, dtype=np.int64)
            assert _k.replay(S1, B1, kinds, addrs, sizes) == m
            assert lib.ref_replay(Sp, Bp, nat.ptr(kinds), nat.ptr(addrs), nat.ptr(sizes), m) == m
        if step % 100 == 99:
            assert_same(S1, B1, S2, B2, f"{geom}/{repl} after op {step}")
    assert_same(S1, B1, S2, B2, f"{geom}/{repl} at the end")
    st = c.stats
    assert st["loads"] and st["line_fills"]                 # the sequence did exercise the cache
