"""emu.exec.snapshot: what restores put back. The exploration loop copies only the cache lines
the kernels marked changed (``H_B_CMARK``), so every line a run changes must be marked: here on
a machine whose snapshot holds a warm cache (dirty and clean lines the tasks invalidate, clean,
flush, write to and evict, and a pkmap wrap that flushes the whole cache), on every core
preset."""

import numpy as np
import pytest

from emu import consts as K
from emu.cache.config import PRESETS
from emu.exec.loaded import DEFAULT_MAX_STEPS
from emu.exec.scenario import Scenario

from test_cache_marks import line_rows

PAGE_OFFSET = 0xC0000000


def low(pfn, off=0):
    """Linear-map address of lowmem page ``pfn``."""
    return PAGE_OFFSET + (pfn << K.PAGE_SHIFT) + off


def warm(cpu, wrap):
    """Three tasks over a cache the setup left warm. Pages 10, 12 and 14 hold dirty lines,
    pages 11 and 14 clean ones; pages 15-19 share their sets (a 16 KiB 4-way cache repeats every 4
    KiB), so reading them evicts; highmem pages 300-302 fill LAST_PKMAP 4's slots 1-3, 300
    lazily, so with ``wrap`` the kmap_high of 303 wraps and flushes the whole cache (which
    marks every valid line: without it the other kernels' marks are on their own)."""
    sc = Scenario(name=f"warm cache ({cpu})", machine={
        "cpu": cpu, "last_pkmap": 4, "lowmem_mb": 1, "highmem_mb": 4})
    sc.setup = [
        {"op": "fill", "va": low(10), "byte": 0x10, "n": 256},
        {"op": "read", "va": low(11), "n": 256},
        {"op": "fill", "va": low(12, 64), "byte": 0x12, "n": 128},
        {"op": "fill", "va": low(14), "byte": 0x14, "n": 128},
        {"op": "read", "va": low(14, 1024), "n": 128},
        {"op": "kmap", "pfn": 300, "as": "h"},
        {"op": "fill", "va": "h+512", "byte": 0x30, "n": 64},
        {"op": "kmap", "pfn": 301},
        {"op": "kmap", "pfn": 302},
        {"op": "kunmap", "pfn": 300},
    ]
    sc.task("dma", [
        {"op": "dma_map_page", "pfn": 10, "offset": 0, "size": 4096,
         "direction": "FROM_DEVICE", "as": "d"},
        {"op": "device_write", "dma_addr": "d", "byte": 0xD0, "n": 4096},
        {"op": "dma_unmap_page", "dma_addr": "d", "size": 4096, "direction": "FROM_DEVICE"},
    ])
    sc.task("cpu", [
        {"op": "fill", "va": low(11, 32), "byte": 0x11, "n": 96},
        {"op": "read", "va": low(15), "n": 64},
        {"op": "read", "va": low(16), "n": 64},
        {"op": "read", "va": low(17), "n": 64},
        {"op": "read", "va": low(18), "n": 64},
        {"op": "read", "va": low(19), "n": 64},
    ] + [
        {"op": "kmap_high", "pfn": 303, "as": "v"},
        {"op": "fill", "va": "v", "byte": 0x33, "n": 64},
        {"op": "kunmap_high", "pfn": 303},
    ] * wrap)
    sc.task("maint", [
        {"op": "dma_map_page", "pfn": 12, "offset": 0, "size": 4096,
         "direction": "TO_DEVICE", "as": "c"},
        {"op": "dma_map_page", "pfn": 14, "offset": 0, "size": 4096,
         "direction": "BIDIRECTIONAL", "as": "b"},
        {"op": "dma_unmap_page", "dma_addr": "c", "size": 4096, "direction": "TO_DEVICE"},
        {"op": "dma_unmap_page", "dma_addr": "b", "size": 4096, "direction": "BIDIRECTIONAL"},
    ])
    return sc


@pytest.fixture(scope="module", params=[(c, w) for c in sorted(PRESETS) for w in (False, True)],
                ids=lambda p: f"{p[0]}-{'wrap' if p[1] else 'nowrap'}")
def loaded(request):
    return warm(*request.param).build()


def test_the_snapshot_holds_a_warm_cache(loaded):
    S = loaded.snapshot.S
    n = int(S[K.H_C_NLINES])
    valid = S[int(S[K.H_R_TAG]):int(S[K.H_R_TAG]) + n] != K.TAG_INVALID
    dirty = S[int(S[K.H_R_DIRTY]):int(S[K.H_R_DIRTY]) + n] != 0
    assert (valid & dirty).sum() >= 8 and (valid & ~dirty).sum() >= 8


@pytest.mark.parametrize("seed", range(8))
def test_every_line_a_run_changes_is_marked(loaded, seed):
    """A full restore clears the marks; after a seeded random run, each line that differs from
    the snapshot's is marked. Changed lines include lines the snapshot held (the kernels'
    invalidates, cleans, flushes, stores and evictions reach the warm lines)."""
    m, snap = loaded.machine, loaded.snapshot
    r = loaded.run(K.SCHED_RANDOM, (), 3000, seed=seed)
    assert r.outcome == "done", r.message
    n = int(m._S[K.H_C_NLINES])
    changed = (line_rows(m._S, m._B) != line_rows(snap.S, snap.B)).any(axis=1)
    mk = int(m._S[K.H_B_CMARK])
    marked = m._B[mk:mk + n] != 0
    assert not (changed & ~marked).any(), np.flatnonzero(changed & ~marked)
    was_valid = snap.S[int(snap.S[K.H_R_TAG]):int(snap.S[K.H_R_TAG]) + n] != K.TAG_INVALID
    assert (changed & was_valid).sum() >= 8


def _state(m, cnt):
    """What a schedule leaves that the next could see: S up to the counters, the cache lines
    and their marks, the written-block and touched flags, RAM and shadow of the pages the
    scenario uses."""
    S, B = m._S, m._B
    npages = int(S[K.H_NPAGES])
    out = [S[:cnt].copy(), line_rows(S, B)]
    for slot, n in ((K.H_B_CMARK, int(S[K.H_C_NLINES])), (K.H_B_RAMDIRTY, npages),
                    (K.H_B_TOUCHED, npages)):
        out.append(B[int(S[slot]):int(S[slot]) + n].copy())
    for pfn in list(range(10, 20)) + list(range(300, 304)):
        for slot in (K.H_B_RAM, K.H_B_SHADOW):
            o = int(S[slot]) + (pfn << K.PAGE_SHIFT)
            out.append(B[o:o + K.PAGE_SIZE].copy())
    return out


def test_restores_of_marked_lines_end_as_full_restores(loaded):
    """Every DFS schedule of bound 1, in calls of one to four schedules (a call's first
    restore copies every line, the others only the marked ones): each call's last schedule
    leaves the state, log and result of the same schedule run by Loaded.run (a full restore),
    counters aside."""
    m = loaded.machine
    cnt = int(m._S[K.H_S_COUNTERS])
    x = loaded.dfs_state()
    call = 0
    while True:
        done = loaded.dfs(1, DEFAULT_MAX_STEPS, 1 + call % 4, 0, x) & K.DFS_DONE
        call += 1
        d = int(x[K.X_D])
        log = [a.copy() for a in loaded.last_log(d)]
        got = _state(m, cnt)
        r = loaded.run(choices=log[1])
        assert (r.decisions, r.preemptions) == (d, int(x[K.X_NPRE]))
        want = _state(m, cnt)
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), call
        assert all(np.array_equal(a, b) for a, b in zip(log, loaded.last_log(d)))
        if done:
            break
    assert x[K.X_RUNS] >= 100 and x[K.X_EXECUTED] < x[K.X_DECISIONS]


def test_the_line_arrays_lie_together(loaded):
    """Restores of marked lines copy S around ``[H_R_TAG, H_R_RR)`` and the four line arrays
    inside it line by line (emu/cache/state.py lays them out so): nothing else may be there."""
    S = loaded.machine._S
    n = int(S[K.H_C_NLINES])
    offsets = [int(S[s]) for s in (K.H_R_TAG, K.H_R_LPA, K.H_R_DIRTY, K.H_R_STAMP, K.H_R_RR)]
    assert offsets == [offsets[0] + k * n for k in range(5)]
    assert int(S[K.H_S_COUNTERS]) > offsets[4]      # RR and what follows: copied whole


def _summary(ex):
    return (ex.schedules, ex.failures, ex.outcomes, ex.max_lost_bytes, ex.deadlocks)


def test_a_fresh_loaded_scenarios_first_checkpoint_holds_its_lines():
    """The first checkpoint a Loaded saves goes to arrays nothing was saved to yet: its cache
    lines must still come from the machine (they once did not, and a dirty line the schedule
    had read came back as zeros: 64 bytes "lost" that no replay could reproduce)."""
    from emu.exec.explore import explore
    from naive_explore import naive_explore

    def scenario():
        sc = Scenario("first checkpoint", {"last_pkmap": 8}, setup=[
            {"op": "kmap", "pfn": 351, "as": "v"},
            {"op": "fill", "va": "v", "byte": 0x8F, "n": 64},
            {"op": "kunmap", "pfn": 351}])
        sc.task("t0", [{"op": "read", "va": low(1), "n": 32}])
        sc.task("t1", [{"op": "kmap_flush_unused"}])
        return sc
    ex = explore(scenario(), bound=2)
    assert (ex.schedules, ex.failures, ex.max_lost_bytes) == (6, 0, 0)
    naive = naive_explore(scenario().build(), 2)
    assert (naive["schedules"], naive["failures"]) == (6, 0)


def _random_scenario(seed):
    """Two or three short tasks over a cache the setup left dirty: reads, fills, a DMA
    invalidate, kmap_flush_unused; seeded."""
    rng = np.random.default_rng(seed)
    pages = [int(p) for p in rng.choice(np.arange(1, 40), 4, replace=False)]
    sc = Scenario(f"random {seed}", {"last_pkmap": 4, "cpu": str(rng.choice(sorted(PRESETS)))},
                  setup=[{"op": "fill", "va": low(p, 64 * int(rng.integers(8))),
                          "byte": int(rng.integers(256)), "n": 64} for p in pages[:3]])
    for t in range(int(rng.integers(2, 4))):
        ops = []
        for _ in range(int(rng.integers(1, 4))):
            p, off = pages[int(rng.integers(4))], 32 * int(rng.integers(16))
            kind = int(rng.integers(4))
            if kind == 0:
                ops.append({"op": "read", "va": low(p, off), "n": 32})
            elif kind == 1:
                ops.append({"op": "fill", "va": low(p, off), "byte": t + 1, "n": 32})
            elif kind == 2:
                ops.append({"op": "dma_map_page", "pfn": p, "offset": 0, "size": 1024,
                            "direction": "FROM_DEVICE"})
            else:
                ops.append({"op": "kmap_flush_unused"})
        sc.task(f"t{t}", ops)
    return sc


@pytest.mark.parametrize("seed", range(24))
def test_a_fresh_loaded_explores_as_a_used_one(seed):
    """Exploring a freshly built scenario (its first checkpoint saved into zeroed arrays)
    finds what exploring one that has saved checkpoints before finds."""
    from emu.exec.explore import explore
    used = _random_scenario(seed).build()
    explore(used, bound=2)
    assert _summary(explore(_random_scenario(seed).build(), bound=2)) == \
        _summary(explore(used, bound=2))
