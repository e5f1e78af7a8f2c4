"""emu.exec.dfs (the jitted exploration loop behind explore) against tests/naive_explore.py:
the same schedules in the same order, the same counts, outcomes in order of appearance, the
same minimal failure and lockdep report; with caps, stop_at_first and progress chunks."""

from dataclasses import astuple

import numpy as np
import pytest

from emu import consts as K
from emu.exec import builtin, explore as explore_mod
from emu.exec.explore import explore, replay
from emu.exec.loaded import DEFAULT_MAX_STEPS

from naive_explore import naive_explore, successor

SCENARIOS = {
    "i-page_address": lambda: builtin.race(4, 1, "page_address"),
    "i-kmap_high_get": lambda: builtin.race(4, 1, "kmap_high_get"),
    "ii-page_address": lambda: builtin.race(4, 2, "page_address"),
    "iii-plain": lambda: builtin.irq_getter(False, 4),
    "iii-irq": lambda: builtin.irq_getter(True, 4),
    "stale-read": lambda: _stale_reader(),
    "stale-device-read": lambda: _stale_device_reader(),
    "sg-page_address": lambda: sg_race("page_address"),
    "sg-kmap_high_get": lambda: sg_race("kmap_high_get"),
}


def sg_race(pinning):
    """Scenario (i) with the driver's buffer a scatter-gather list over two highmem pages:
    dma_map_sg(FROM_DEVICE) maps the pinned page 301, then the lazily-mapped page 300, each
    with dma_map_page in turn, while the writer's kmap_high wraps the window."""
    sc = builtin.race(4, 1, pinning)
    sg = [[301, 0, 4096], [300, 0, 4096]]
    sc.tasks[0].ops = [
        {"op": "dma_map_sg", "sg": sg, "direction": "FROM_DEVICE", "as": "s"},
        {"op": "device_write", "dma_addr": "s", "byte": 0xD1, "n": 4096},
        {"op": "device_write", "dma_addr": "s_1", "byte": 0xD0, "n": 4096},
        {"op": "dma_unmap_sg", "sg": sg, "direction": "FROM_DEVICE"}]
    sc.builtin = None
    sc.name = f"sg race ({pinning})"
    return sc


def _stale_reader():
    """A driver that reads its FROM_DEVICE buffer while the device owns it (2.6.30 API: no
    invalidate on unmap), racing a second reader: stale reads in some schedules only."""
    from emu.exec.scenario import Scenario
    sc = Scenario("stale reader", {"last_pkmap": 4, "lowmem_mb": 1, "highmem_mb": 4})
    sc.task("drv", [
        {"op": "dma_map_page", "pfn": 10, "size": 256, "direction": "FROM_DEVICE", "as": "h"},
        {"op": "device_write", "dma_addr": "h", "byte": 0x77, "n": 256},
        {"op": "dma_unmap_page", "dma_addr": "h", "size": 256, "direction": "FROM_DEVICE"}])
    sc.task("peek", [{"op": "read", "va": 0xC000A000, "n": 64},
                     {"op": "read", "va": 0xC000A000, "n": 64}])
    return sc


def _stale_device_reader():
    """A driver whose device reads a TO_DEVICE buffer while a second task writes it through
    the cache: the device reads stale RAM in the schedules where the write comes between the
    map's clean and the device's read."""
    from emu.exec.scenario import Scenario
    sc = Scenario("stale device reader", {"last_pkmap": 4, "lowmem_mb": 1, "highmem_mb": 4})
    sc.task("drv", [
        {"op": "dma_map_page", "pfn": 10, "size": 256, "direction": "TO_DEVICE", "as": "h"},
        {"op": "device_read", "dma_addr": "h", "n": 256},
        {"op": "dma_unmap_page", "dma_addr": "h", "size": 256, "direction": "TO_DEVICE"}])
    sc.task("poke", [{"op": "fill", "va": 0xC000A000, "byte": 0x66, "n": 64}])
    return sc


@pytest.fixture(scope="module")
def loaded():
    return {k: f().build() for k, f in SCENARIOS.items()}


def _as_dict(ex):
    d = {k: getattr(ex, k) for k in ("schedules", "complete", "failures", "outcomes",
                                     "max_lost_bytes", "deadlocks", "lockdep",
                                     "stale_reads")}
    d["minimal"] = astuple(ex.minimal) if ex.minimal else None
    return d


@pytest.mark.parametrize("bound", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_explore_is_the_naive_dfs(loaded, name, bound):
    ld = loaded[name]
    want = naive_explore(ld, bound)
    got = _as_dict(explore(ld, bound))
    assert list(got["outcomes"].items()) == list(want["outcomes"].items())
    assert got == want
    assert got["schedules"] > (1 if bound else 0)


@pytest.mark.parametrize("cap", [1, 2, 7, 10, 300])   # (iii) plain has exactly 10
@pytest.mark.parametrize("name", ["i-page_address", "iii-plain"])
def test_max_schedules_and_stop_at_first(loaded, name, cap):
    ld = loaded[name]
    assert _as_dict(explore(ld, 2, max_schedules=cap)) == naive_explore(ld, 2, cap)
    assert _as_dict(explore(ld, 2, stop_at_first=True)) == naive_explore(ld, 2,
                                                                       stop_at_first=True)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_search_that_covers_everything_by_level_finds_what_the_dfs_finds(loaded, name):
    """With a cap it never reaches, the search goes level by level and still reports what one
    depth-first search within the bound does: the outcomes in another order of appearance,
    and lockdep's report from the first inconsistent schedule of the levels' order."""
    ld = loaded[name]
    by_level, dfs = _as_dict(explore(ld, 2, max_schedules=10**9)), _as_dict(explore(ld, 2))
    assert by_level == dfs | {"outcomes": by_level["outcomes"], "lockdep": by_level["lockdep"]}
    assert by_level["outcomes"] == dfs["outcomes"]          # as dicts: counts, not order
    assert bool(by_level["lockdep"]) == bool(dfs["lockdep"])


def test_a_capped_search_covers_the_fewest_preemptions_first():
    """Capped at the number of schedules with at most one preemption, a search within bound 3
    covered exactly those; depth-first within the bound, the same cap found no failure (the
    DFS varies the last decisions first: 2,000 schedules of late preemptions)."""
    sc = builtin.race(8, 1, "page_address")
    one = explore(sc, 1)
    capped = explore(sc, 3, max_schedules=one.schedules)
    assert not capped.complete and capped.failures == one.failures > 0
    assert capped.outcomes == one.outcomes and capped.minimal == one.minimal
    assert capped.replay == one.replay
    assert (one.covered_bound, capped.covered_bound) == (1, 1)
    assert explore(sc, 3, max_schedules=1).covered_bound == -1     # bound 0 holds several
    assert explore(sc, 3, max_schedules=2000).minimal.preemptions == 1


def test_stop_at_first_finds_a_failure_with_the_fewest_preemptions_quickly():
    """At bound 6, depth-first, the first failure came after 6.66 million schedules (27 s)."""
    sc = builtin.race(8, 1, "page_address")
    one = explore(sc, 1)
    ex = explore(sc, 6, stop_at_first=True)
    assert ex.minimal.preemptions == 1 and ex.schedules <= one.schedules
    assert not ex.complete


def test_an_exact_cap_at_a_level_boundary_is_complete_only_if_nothing_is_left(loaded):
    ld = loaded["iii-plain"]                    # 10 schedules within bound 2
    full = explore(ld, 2)
    assert explore(ld, 2, max_schedules=full.schedules).complete
    zero = explore(ld, 0).schedules
    assert not explore(ld, 2, max_schedules=zero).complete


def _counted_runs(ld, x, bound):
    """The choices of each schedule a search counts, in order (one jitted call each)."""
    out = []
    while True:
        why = ld.dfs(bound, DEFAULT_MAX_STEPS, 1, 0, x)
        if x[K.X_RUNS] > len(out):
            out.append(tuple(int(c) for c in ld.last_log(int(x[K.X_D]))[1]))
        if why & K.DFS_DONE:
            return out


def _by_roots(ld, bound):
    """Each level's schedules searched from the roots the level below recorded, and whether
    they were (not where the records outgrew the level buffer)."""
    from emu.exec.explore import _half, _level_state
    ld.levels = np.zeros(K.LEVEL_WORDS, np.int64)
    roots, out = None, []
    try:
        for k in range(bound + 1):
            x = _level_state(ld, k, roots=roots, half=k + 1)
            out.append((roots is not None, _counted_runs(ld, x, k)))
            at = int(x[K.X_EMIT_AT])
            roots = None if at < 0 else (_half(k + 1)[0], at)
    finally:
        ld.levels = None
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_level_searched_from_its_roots_is_the_level_in_dfs_order(loaded, name):
    """From the roots the level below recorded, a level runs exactly the schedules with that
    many preemptions, in the order a DFS within that bound counts them, and none other."""
    from emu.exec.explore import _level_state
    ld = loaded[name]
    for k, (from_roots, runs) in enumerate(_by_roots(ld, 2)):
        assert from_roots == (k > 0)
        assert runs == _counted_runs(ld, _level_state(ld, k), k), k


def test_levels_whose_roots_outgrow_the_buffer_are_searched_from_the_start(loaded, monkeypatch):
    """With a level buffer too small for level 2's roots, level 3 is a DFS that runs levels
    0-2 again uncounted: the same result."""
    from emu.exec.explore import _level_state
    ld = loaded["i-page_address"]
    monkeypatch.setattr(K, "LEVEL_WORDS", 2 * 10_000)   # level 2 records 342,894 words
    levels = _by_roots(ld, 3)
    assert [r for r, _ in levels] == [False, True, True, False]
    for k, (_, runs) in enumerate(levels):
        assert runs == _counted_runs(ld, _level_state(ld, k), k), k
    assert _as_dict(explore(ld, 3, max_schedules=10**9)) == naive_explore(ld, 3, 10**9)


def test_an_exact_cap_on_a_level_searched_from_the_start_is_complete(loaded, monkeypatch):
    """A level searched from the start (its roots outgrew the buffer) runs the lower levels
    again uncounted; a cap reached at its last counted schedule, with only uncounted ones
    left, covers everything: walk() read min_pre (0 with a state handed in), not the
    state's X_MINPRE, and said incomplete (iii plain: 2 schedules at level 0, 10 in all)."""
    ld = loaded["iii-plain"]
    monkeypatch.setattr(K, "LEVEL_WORDS", 2 * 3)
    for bound in (1, 2, 3):
        ex = explore(ld, bound, max_schedules=10)
        assert _as_dict(ex) == naive_explore(ld, bound, 10)
        assert ex.complete and ex.covered_bound == bound


def test_a_search_by_level_runs_no_schedule_twice():
    """Scenario (i) with kmap_high_get at bound 8: searched level by level, each level
    running the levels below again, it ran 18,722,748 decisions against the DFS's
    12,611,619 (3.3 s against 0.7 s at bound 12); from the roots, as many as the DFS (the
    levels' first choices take a few more checkpoints)."""
    from emu.exec.explore import walk, walk_levels
    ld = builtin.race(8, 1, "kmap_high_get").build()
    dfs = walk(ld, 8, DEFAULT_MAX_STEPS).x
    by_level = walk_levels(ld, 8, DEFAULT_MAX_STEPS, stop_at_first=True).x
    assert by_level[K.X_RUNS] == dfs[K.X_RUNS] == 151_956
    assert by_level[K.X_EXECUTED] < 1.02 * dfs[K.X_EXECUTED]


@pytest.mark.parametrize("bad", [{K.X_ROOT_AT: 1}, {K.X_ROOT_END: 5}, {K.X_ROOT_C: -1},
                                 {K.X_EMIT_AT: 5}, {K.X_EMIT_AT: 0, K.X_EMIT_END: 7}])
def test_dfs_refuses_a_state_whose_roots_lie_outside_the_level_buffer(loaded, bad):
    """Outside a search by level there is no level buffer: no roots, no room for them."""
    ld = loaded["iii-plain"]
    x = ld.dfs_state()
    for slot, value in bad.items():
        x[slot] = value
    with pytest.raises(ValueError, match="x: must be a state from dfs_state"):
        ld.dfs(2, DEFAULT_MAX_STEPS, 1, 0, x)


@pytest.mark.parametrize("kind", [np.int64, np.uint64, np.int32])
def test_max_schedules_takes_numpy_ints(loaded, kind):
    """max_schedules=np.int64(7) said 'must be a positive int or None'."""
    ld = loaded["i-page_address"]
    assert _as_dict(explore(ld, 2, max_schedules=kind(7))) == naive_explore(ld, 2, 7)


def test_chunks_change_nothing(loaded, monkeypatch):
    ld = loaded["ii-page_address"]
    whole = _as_dict(explore(ld, 2))
    for chunk in (1, 3, 1 << 40):
        monkeypatch.setattr(explore_mod, "CHUNK", chunk)
        assert _as_dict(explore(ld, 2, progress=True)) == whole


def test_the_loop_steps_through_the_naive_successors(loaded):
    """One schedule per call: the prefix buffer holds each next schedule in turn."""
    ld = loaded["i-page_address"]
    x = ld.dfs_state()
    prefix = np.zeros(0, np.int64)
    n = 0
    while True:
        why = ld.dfs(2, DEFAULT_MAX_STEPS, 1, 0, x)
        n += 1
        outcome, d = int(x[K.X_OUTCOME]), int(x[K.X_D])
        assert (outcome, d) == ld.run_raw(prefix)[:2]
        nalt, choice, lon, _ = ld.last_log(d)
        prefix = successor(nalt, choice, lon, 2)
        if prefix is None:
            assert why & K.DFS_DONE
            break
        assert why & K.DFS_LIMIT and not why & K.DFS_DONE
        assert ld.next_prefix(x).tolist() == prefix.tolist()
    assert n == int(x[K.X_RUNS]) == explore(ld, 2).schedules


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10", 2 ** 70])
def test_max_steps_is_checked(loaded, bad):
    with pytest.raises(ValueError, match="max_steps"):
        explore(loaded["i-page_address"], 1, max_steps=bad)


@pytest.mark.parametrize("name", ["i-page_address", "ii-page_address", "iii-plain"])
def test_checkpointed_schedules_end_as_runs_from_scratch(loaded, name):
    """Schedules sharing their first preemption go on from a checkpoint (run_schedule). The
    last schedule of each call (calls of 2, 3 and 5 schedules, so mostly a resumed one) ends
    with the machine state, decision log and result of the same schedule run from the
    snapshot by Loaded.run (sched.run from decision 0, no checkpoint); but for the cost and
    profile counters, which the loop leaves as the snapshot's."""
    ld = loaded[name]
    m = ld.machine
    cnt, tail = int(m._S[K.H_S_COUNTERS]), int(m._S[K.H_S_TAIL])
    assert 0 < cnt < tail
    x = ld.dfs_state()
    for call in range(60):
        done = ld.dfs(2, DEFAULT_MAX_STEPS, (2, 3, 5)[call % 3], 0, x) & K.DFS_DONE
        assert np.array_equal(m._S[cnt:tail], ld.snapshot.S[cnt:tail])
        d = int(x[K.X_D])
        log = [a.copy() for a in ld.last_log(d)]
        S, B = m._S[:cnt].copy(), m._B.copy()
        r = ld.run(choices=log[1])
        assert (r.decisions, r.preemptions) == (d, int(x[K.X_NPRE]))
        assert np.array_equal(m._S[:cnt], S) and np.array_equal(m._B, B)
        assert all(np.array_equal(a, b) for a, b in zip(log, ld.last_log(d)))
        if done:
            break
    if name != "iii-plain":                     # (iii): 10 schedules, none sharing
        assert x[K.X_EXECUTED] < 0.9 * x[K.X_DECISIONS]        # checkpoints were used


@pytest.mark.parametrize("name", ["i-page_address", "ii-page_address", "iii-irq"])
def test_no_outcome_depends_on_the_counters(loaded, name):
    """The loop does not restore the counters between schedules, so no kernel decision may
    read them: with every counter of the snapshot scrambled, the same exploration; and runs
    from the snapshot (which restore them) count the same cost, however they were left."""
    ld = loaded[name]
    m = ld.machine
    cnt, tail = int(m._S[K.H_S_COUNTERS]), int(m._S[K.H_S_TAIL])
    want = _as_dict(explore(ld, 2))
    r0 = ld.run(choices=())
    uops0 = m._S[cnt:tail].copy()
    assert uops0.any()
    saved = ld.snapshot.S[cnt:tail].copy()
    junk = np.random.default_rng(5).integers(0, 1 << 40, tail - cnt)
    try:
        ld.snapshot.S[cnt:tail] = junk
        m._S[cnt:tail] = junk
        assert _as_dict(explore(ld, 2)) == want
        ld.run_raw(())
        assert np.array_equal(m._S[cnt:tail], junk)      # left as the snapshot's
    finally:
        ld.snapshot.S[cnt:tail] = saved
    r1 = ld.run(choices=())
    assert np.array_equal(m._S[cnt:tail], uops0)
    assert (r1.decisions, r1.outcome) == (r0.decisions, r0.outcome)


def test_a_scatter_gather_mapping_races_as_dma_map_page_does(loaded):
    """dma_map_sg maps each entry with dma_map_page in turn: with page_address pinning the
    writer's wrap recycles the second entry's slot inside its invalidate loop and data is
    lost; with kmap_high_get the slot stays pinned and no schedule loses anything."""
    ex = explore(loaded["sg-page_address"], 2)
    assert ex.complete and ex.data_lost and ex.deadlocks == 0
    assert ex.minimal.outcome == "done" and ex.minimal.lost_bytes > 0
    ld, r = replay(ex.replay)
    assert r.lost_bytes == ex.minimal.lost_bytes
    assert any("dma_map_sg(sg=[(301, 0, 4096), (300, 0, 4096)], direction=FROM_DEVICE) -> s: "
               "sg[1]" in t for t in r.trace)
    safe = explore(loaded["sg-kmap_high_get"], 2)
    assert safe.complete and safe.failures == 0 and safe.schedules > 1
