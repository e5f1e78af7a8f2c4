"""Small public conveniences of Machine and Cache not covered elsewhere."""

import re

import numpy as np
import pytest

import emu
from emu.cache import Cache


def test_breakdown_prices_every_micro_op_with_the_cost_table():
    m = emu.Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8)
    m.kmap_high(m.highmem_pfns[0])
    b = m.breakdown()
    total = sum(cyc for site in b.values() for kind in site.values()
                for _, cyc in kind.values())
    assert total == m.cycles[0]
    assert b["kmap_high"]["task"]["irq_disable"] == (1, 6)      # mrs + orr + msr_c on ARM926


def test_discard_log_can_be_cleared_and_counts_what_overflowed():
    c = Cache(size=1024, ways=4, ram_size=1 << 16, events=2)
    for a in range(0, 4 * 32, 32):
        c.load(a, 1)
        c.store(a, b"x")
    c.inv_range(0, 4 * 32)
    assert len(c.discards()) == 2 and c.discards_dropped == 2
    c.clear_discards()
    assert c.discards() == [] and c.discards_dropped == 0


def test_reset_stats_zeroes_the_counters_only():
    c = Cache(size=1024, ways=4, ram_size=1 << 16)
    c.load(0, 4)
    line = c.probe(0)
    c.reset_stats()
    assert set(c.stats.values()) == {0}
    assert c.probe(0) == line


# ---------------------------------------------------------------------------------------------
# Machine.cache.replay: a trace is checked against the machine's RAM before anything runs
# ---------------------------------------------------------------------------------------------

RAM = (64 + 256) * 4096
BAD_TRACES = [
    (([0, 1], [2**62, 2**62], [2**62, 2**62]), r"^addrs\[0\]=0x4000000000000000: must be in "
                                               r"\[0x0, 0x140000\)"),
    (([1, 1], [0x100, 0x200], [4, 2**62]), r"^sizes\[1\]=4611686018427387904"),
    (([1, 1], [0x100, RAM - 2], [4, 4]), r"^addrs\[1\]=0x13fffe: with sizes\[1\]=4 passes"),
    ((None, None), r"^kinds: must be a 1-D array of ints"),
    (({0: 1}, {0: 2}), r"^kinds: must be a 1-D array"),
    ((["a"], [0]), r"^kinds\[0\]='a': must be an int in \[0, 6\)"),
    (([0], [2**64]), r"^addrs\[0\]=0x10000000000000000"),
    (([0.7], [0]), r"^kinds\[0\]=0\.7"),
    (([6], [0]), r"^kinds\[0\]=6: must be in \[0, 6\)"),
]


@pytest.mark.parametrize("args, match", BAD_TRACES, ids=[str(i) for i in range(len(BAD_TRACES))])
def test_machine_cache_replay_rejects_bad_traces_and_changes_nothing(args, match):
    m = emu.Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8)
    m.write(m.page_address(3), b"dirty")
    raw = (m._S.copy(), m._B.copy())
    with pytest.raises(ValueError, match=match):
        m.cache.replay(*args)
    assert np.array_equal(raw[0], m._S) and np.array_equal(raw[1], m._B)
    m.cache.flush_all()                          # used to write back to pa 2**62 and crash
    assert m.phys_read(3 * 4096, 5) == b"dirty"
    assert m.cache.replay([0, 1], [0x100, RAM - 4], [4, 4]) == 2


def test_a_direct_cache_op_after_a_routine_is_charged_to_the_user():
    """SITE "user" is for direct cache calls outside any kernel routine: after m.write (the
    cpu_access routine) an inv_range's micro-ops and the dirty line it drops are the user's."""
    m = emu.Machine(lowmem_mb=1, highmem_mb=1)
    va = m.kmap(300)
    m.read(va, 32)                          # allocate the line (read-allocate)...
    m.write(va, b"\x11" * 32)               # ...and dirty it
    before = m.breakdown().get("cpu_access", {})
    m.cache.inv_range(va, va + 32)
    b = m.breakdown()
    assert b["user"]["task"]["dline_inv"][0] == 1
    assert b.get("cpu_access", {}) == before
    (f,) = m.findings()
    assert f.kind == "lost-write" and f.site == "user"


@pytest.mark.parametrize("name,value,arg", [
    ("dma_pinning", "page_address", "dma_pinning"), ("ncpus", 2, "ncpus"), ("seed", 5, "seed"),
    ("cpu", "xscale", "cpu"), ("kmap_high_get_enabled", False, "kmap_high_get"),
    ("dma_api", "v3", "dma_api"), ("cache", None, "cpu"),
    ("memmap", None, "lowmem_mb, highmem_mb, last_pkmap, page_offset")])
def test_a_setting_cannot_be_changed_after_the_machine_is_built(name, value, arg):
    """Assigning a setting would be silently ignored (the state was built for the old value):
    it raises, names the constructor argument, and leaves the setting as it was."""
    m = emu.Machine(lowmem_mb=1, highmem_mb=1, last_pkmap=8)
    before = getattr(m, name)
    match = rf"Machine\.{name} is fixed .*Machine\({re.escape(arg)}="
    with pytest.raises(AttributeError, match=match):
        setattr(m, name, value)
    assert getattr(m, name) is before
    assert m.dma_pinning == "kmap_high_get" and m.ncpus == 1 and m.seed == 0


def test_a_cache_config_cannot_be_replaced():
    """A standalone cache's arrays are laid out for its config: replacing it raises."""
    c = Cache.from_preset("arm926")
    cfg = c.config
    with pytest.raises(AttributeError, match=r"Cache\.config is fixed when the cache is made"):
        c.config = Cache.from_preset("xscale").config
    assert c.config is cfg and c.line == 32


@pytest.mark.parametrize("name, value", [("dma_debug_strict", False), ("preempt", False),
                                         ("oracle", False), ("last_pkmap", 4),
                                         ("lowmem_mb", 2), ("stats", False), ("timeslice", 9),
                                         ("kmap_high_get", False)])
def test_machine_arguments_that_are_no_attribute_are_fixed_too(name, value):
    # assigning one made a new attribute nothing read (m.kmap_high_get hid the method)
    m = emu.Machine(lowmem_mb=1, highmem_mb=1, dma_debug_strict=True)
    with pytest.raises(AttributeError, match=rf"Machine\.{name} is fixed when the machine is "
                                             rf"built: make a new Machine\({name}=\.\.\.\)"):
        setattr(m, name, value)
    assert name not in vars(m)
    assert m.kmap_high_get(300) == 0                      # still the method
    m.label = "mine"                                       # other attributes are the user's
    assert m.label == "mine"


@pytest.mark.parametrize("name, value", [("write_back", False), ("ways", 8), ("size", 32768),
                                         ("line", 64), ("replacement", "random"),
                                         ("write_allocate", True), ("seed", 3)])
def test_cache_arguments_are_fixed_too(name, value):
    # c.write_back = False made a new attribute the cache never read
    c = Cache()
    cfg = c.config
    with pytest.raises(AttributeError, match=rf"Cache\.{name} is fixed when the cache is made.*"
                                             rf"Cache\({name}=\.\.\.\)"):
        setattr(c, name, value)
    assert name not in vars(c) and c.config is cfg and c.line == 32
    c.label = "mine"                                       # other attributes are the user's
    assert c.label == "mine"


def test_a_direct_call_deadlock_names_the_lock_holder():
    """A direct call on a machine whose last scenario run stopped with a task holding
    kmap_lock names that task (and where it took the lock), not "context 1"."""
    from emu import consts as K
    from emu.exec.scenario import Scenario
    sc = Scenario("holder", {"last_pkmap": 8})
    sc.task("writer", [{"op": "kmap_high", "pfn": 300}])
    ld = sc.build(trace_events=1 << 12)
    for steps in range(1, 20):
        ld.run(K.SCHED_DFS, [], max_steps=steps)
        if ld.machine._S[int(ld.machine._S[K.H_R_LOCK]) + K.LK_OWNER] == 1:
            break
    else:
        pytest.fail("writer never held kmap_lock at a step's end")
    with pytest.raises(emu.Deadlock, match=r"^direct call would spin forever on kmap_lock, "
                                           r"held by writer \(taken in kmap_high\)$"):
        ld.machine.kmap_high(301)
