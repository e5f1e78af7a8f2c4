"""emu as a backend inside another Python program: machines are freed when dropped, pickle
and deep-copy to independent machines, run side by side in threads, and take numpy-typed
arguments as Python ones."""

import copy
import gc
import pickle
import threading
import weakref

import numba
import numpy as np
import pytest

import emu
from emu.cache import Cache


def _small(**kw):
    return emu.Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8, **kw)


def _workload(m, seed, n=60):
    """A seeded mix of mappings, CPU stores and loads, DMA and cache ops; what it read and
    the machine's counters, as one comparable value."""
    out = []
    for _ in _steps(m, seed, n, out):
        pass
    return out


def _steps(m, seed, n, out):
    """:func:`_workload` one iteration at a time (a generator), appending to ``out``."""
    rng = np.random.default_rng(seed)
    hp, pinned = list(m.highmem_pfns), []
    for i in range(n):
        yield
        if len(pinned) >= 5:
            m.kunmap(pinned.pop(0))
        p = hp[int(rng.integers(len(hp)))]
        v = m.kmap(p)
        pinned.append(p)
        m.write(v + int(rng.integers(4000)), rng.bytes(int(rng.integers(1, 90))))
        out.append(m.read(v, 96))
        if i % 5 == 0:
            h = m.dma_map_page(p, 0, 4096, emu.DMA_BIDIRECTIONAL)
            m.device.write(h + 64, rng.bytes(32))
            m.dma_unmap_page(h, 4096, emu.DMA_BIDIRECTIONAL)
            m.cache.flush_range(v, v + 256)
    for p in pinned:
        m.kunmap(p)
    out += [m.cache.stats, m.cycles, m.mm_stats, m.pkmap_count.tolist(), m.findings()]


def test_a_dropped_machine_is_freed_without_waiting_for_the_garbage_collector():
    """Machine.cache's callback and Machine.device held the machine (reference cycles): a
    program making machines in a loop kept dozens of them (their RAM and shadow) alive until
    Python's cycle collector ran (900 MB peak for 300 default machines, 160 MB after)."""
    gc.disable()
    try:
        m = _small()
        v = m.kmap(m.highmem_pfns[0])
        m.write(v, b"abc")
        m.cache.inv_range(v, v + 32)
        m.device.read(0, 4)
        ref = weakref.ref(m)
        del m
        assert ref() is None
    finally:
        gc.enable()


def test_a_device_outlives_a_dropped_machine_reference():
    dev = _small().device
    dev.write(0x1000, b"dma")
    assert dev.read(0x1000, 3) == b"dma"


@pytest.mark.parametrize("clone", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_a_machine_has_one_device(clone):
    """``m.device is m.device`` was False: each access built a new Device. A clone has its
    own, over its own RAM; ``copy.copy`` (another handle on the same machine) shares it."""
    m = _small()
    dev = m.device
    assert m.device is dev and copy.copy(m).device is dev
    c = clone(m)
    assert c.device is c.device and c.device is not dev
    c.device.write(0x1000, b"cl")
    assert c.device.read(0x1000, 2) == b"cl" and dev.read(0x1000, 2) != b"cl"
    ram = m.pfn_to_phys(m.highmem_pfns[-1]) + m.PAGE_SIZE
    with pytest.raises(ValueError, match=rf"^dma_addr={ram - 1:#x}: dma_addr \+ n \(0x2\) "
                                         rf"must lie within RAM \[0, {ram:#x}\)$"):
        dev.read(ram - 1, 2)


@pytest.mark.parametrize("clone", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_a_machine_clones_to_an_independent_machine_in_the_same_state(clone):
    """pickle raised "cannot pickle '_dynfunc._Closure' object" (the compiled entry point)."""
    m = _small(seed=3)
    _workload(m, 1)
    c = clone(m)
    assert c.cache._S is c._S and c.cache._B is c._B
    assert np.array_equal(c._S, m._S) and np.array_equal(c._B, m._B)
    assert _workload(c, 2) == _workload(m, 2)                # same state, same future
    c.read(c.PAGE_OFFSET, 32)                                # allocate the line, then
    c.write(c.PAGE_OFFSET, b"clone only")                    # dirty it
    assert m.read(m.PAGE_OFFSET, 10) != b"clone only"        # independent arrays
    before = len(m.lost_writes())
    c.cache.inv_range(c.PAGE_OFFSET, c.PAGE_OFFSET + 4096)   # the clone's oracle judges it
    assert len(c.lost_writes()) == before + 1 and len(m.lost_writes()) == before


def test_a_clone_carries_only_the_ram_that_was_written():
    """Pickling copied B whole: a default standalone Cache (4 GiB of RAM) took 11 s and
    4.3 GB to deep-copy, a default Machine (16 + 16 MiB, and the oracle's shadow) pickled to
    ~70 MB."""
    c = Cache()
    c.ram_write(0xFFFF_FFF0, b"end of RAM")
    c.store(0x1000, b"cached")
    d = pickle.loads(blob := pickle.dumps(c))
    assert len(blob) < 1 << 20
    assert d.stats == c.stats and d.config == c.config
    assert d.ram_read(0xFFFF_FFF0, 10) == b"end of RAM" and d.load(0x1000, 6) == b"cached"
    m = emu.Machine()
    v = m.kmap(m.highmem_pfns[-1])
    m.write(v + 4000, b"last page")
    m.write(m.PAGE_OFFSET + 4090, b"across a page")
    blob = pickle.dumps(m)
    assert len(blob) < 1 << 20
    c = pickle.loads(blob)
    assert np.array_equal(c._S, m._S) and np.array_equal(c._B, m._B)
    assert c.read(v + 4000, 9) == b"last page" and c.cache.config == m.cache.config
    assert c.read(c.PAGE_OFFSET + 4090, 13) == b"across a page"


def test_a_shallow_copy_shares_the_machine_state():
    m = _small()
    c = copy.copy(m)
    assert c._S is m._S and c._B is m._B and c.cache is m.cache
    c.write(c.PAGE_OFFSET, b"shared")
    assert m.read(m.PAGE_OFFSET, 6) == b"shared"
    k = Cache(size=1024, ways=2, ram_size=1 << 16)
    assert copy.copy(k)._B is k._B


def test_machines_in_threads_give_the_results_they_give_alone():
    """A machine is not thread-safe, but separate machines in separate threads share no
    state (emu's kernels keep all of it in each machine's arrays)."""
    seeds = range(4)
    alone = {s: _workload(_small(seed=s), s) for s in seeds}
    got, errors = {}, []

    def run(s):
        try:
            for k in range(3):
                got[s, k] = _workload(_small(seed=s), s)
        except Exception as e:                              # pragma: no cover - reported
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(got[s, k] == alone[s] for s in seeds for k in range(3))


def test_a_machine_of_one_geometry_does_not_change_another():
    """Machines of different cores and sizes, used interleaved, run as each does alone."""
    kinds = [dict(cpu="xscale", ncpus=2, seed=5), dict(cpu="sa110", seed=6),
             dict(cpu="feroceon", stats=False, seed=7)]
    alone = [_workload(_small(**kw), i) for i, kw in enumerate(kinds)]
    outs = [[] for _ in kinds]
    gens = [_steps(_small(**kw), i, 60, outs[i]) for i, kw in enumerate(kinds)]
    while gens:                                             # one step of each in turn
        for g in list(gens):
            if next(g, StopIteration) is StopIteration:
                gens.remove(g)
    assert outs == alone


def test_cache_geometry_takes_numpy_ints():
    """Cache(size=np.int64(1024)) said 'must be a power of two (a positive int)'."""
    c = Cache(size=np.int64(1024), ways=np.uint32(2), line=np.int16(32), ram_size=np.int64(1 << 16),
              events=np.uint8(4), dirty_granule=np.int64(16))
    assert (c.config.size, c.config.ways, c.config.line) == (1024, 2, 32)
    assert type(c.config.size) is int and c.config == Cache(size=1024, ways=2, line=32,
                                                             dirty_granule=16).config
    c.store(0, b"ab")
    assert c.load(0, 2) == b"ab"


def _readonly(a):
    a = np.array(a, dtype=np.int64)
    a.flags.writeable = False
    return a


def test_kernels_get_one_array_type_whatever_the_caller_passes():
    """A writeable uint8 array (Machine.phys_write, device.write) or a read-only int64 one
    (Loaded.run choices, Cache.replay traces from np.frombuffer or a read-only np.load) is a
    new argument type to numba, which compiled the kernel again on its first call (the
    scheduler: ~17 s, silently) and cached one more version."""
    import numba

    from emu.cache.cache import _as_bytes
    from emu.exec.loaded import check_choices

    w = np.frombuffer(b"abcd", np.uint8).copy()
    assert numba.typeof(_as_bytes(w)) == numba.typeof(_as_bytes(b"abcd"))
    assert w.flags.writeable                                 # the caller's array as it was
    assert numba.typeof(check_choices(_readonly([0, 1]))) == numba.typeof(check_choices([0, 1]))
    c = Cache(size=1024, ways=2, ram_size=1 << 16)
    ro = c._trace(_readonly([0, 1]), _readonly([0, 32]), _readonly([4, 4]))
    assert [numba.typeof(a) for a in ro] == [numba.typeof(a) for a in
                                             c._trace([0, 1], [0, 32], [4, 4])]


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no compiled versions without the JIT")
def test_a_read_only_choices_array_runs_the_compiled_scheduler():
    from emu.exec import sched
    from emu.exec.builtin import race
    ld = race(4, 1, "page_address").build()
    ld.run(choices=[0, 0])
    before = len(sched.run.signatures)
    assert ld.run(choices=_readonly([0, 0])) == ld.run(choices=[0, 0])
    assert len(sched.run.signatures) == before
