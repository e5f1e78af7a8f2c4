"""The oracle's final check (``emu.dma.oracle.final_check`` via ``Machine.check_integrity``)
against the naive model in ``tests/naive_oracle.py``: random CPU writes, writes straight into
the cache (so RAM, cache and shadow disagree), dirty aliases of one physical line at several
virtual addresses, RAM written behind the oracle's back, and flushes."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import emu
from naive_oracle import naive_final_check

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
PAGE_CHOICES = (0, 1, 9, 17, 200)           # lowmem pages (scattered: the scans skip 8 at a time)
VA_PAGES = 64                               # virtual pages the direct cache stores use


def machine(cpu):
    return emu.Machine(cpu=cpu, lowmem_mb=1, highmem_mb=1, last_pkmap=8)


def _apply(m, op):
    kind, page, off, data = op
    pa = page * 4096 + off
    if kind == "write":                     # through the TLB, shadow updated
        m.write(m.memmap.page_offset + pa, data)
    elif kind == "cache":                   # a line filled at some alias, shadow not updated
        va = ((off * 131 + page * 7 + len(data)) % VA_PAGES) * 4096 + off
        n = min(len(data), 4096 - off)
        m.cache.load(va, n, pa=pa)          # read-allocate cores fill on the load
        m.cache.store(va, data[:n], pa=pa)
    elif kind == "phys":                    # RAM and shadow both updated
        m.phys_write(pa, data)
    elif kind == "ram":                     # RAM only: what a lost write looks like
        m.cache.ram_write(pa, data)
    else:
        m.cache.flush_all()


ops = st.lists(st.tuples(st.sampled_from(["write", "cache", "cache", "phys", "ram", "flush"]),
                         st.sampled_from(PAGE_CHOICES), st.integers(0, 4095),
                         st.binary(min_size=1, max_size=80)), min_size=1, max_size=30)


@pytest.mark.parametrize("cpu", ["arm926", "feroceon", "xscale", "sa110"])
@settings(max_examples=40, **SETTINGS)
@given(ops)
def test_final_check_matches_the_naive_model(cpu, seq):
    m = machine(cpu)
    for op in seq:
        _apply(m, op)
    want_total, want = naive_final_check(m)
    before = len(m.findings())
    assert m.check_integrity() == want_total
    got = [(f.pa, f.va, f.expected, f.found, f.bad_bytes) for f in m.findings()[before:]]
    assert [g[:2] + g[4:] for g in got] == [w[:2] + w[4:] for w in want]
    assert got == want


def test_later_alias_wins_where_two_dirty_lines_hold_one_physical_line():
    """Two virtual aliases of one physical line, both dirty on overlapping bytes: the final
    check lays them over RAM in line-index order, as the cache layer's flush would."""
    m = machine("arm926")
    m.phys_write(0x2000, bytes(128))                  # page 2 touched, RAM == shadow == 0
    for va, data in ((0x10040, b"\x11" * 8), (0x23040, b"\x22" * 4)):
        m.cache.load(va, 32, pa=0x2040)               # arm926 allocates on reads only
        m.cache.store(va, data, pa=0x2040)
    total, want = naive_final_check(m)
    a, b = (r for r in m.cache.lines() if r.dirty)   # one set: the second fill is the later way
    assert (a.vtag, b.vtag) == (0x10040, 0x23040) and a.set == b.set
    # b's dirty granule (bytes 0-15: arm926 keeps a dirty bit per half line) is laid last:
    # its four 0x22 and the zeros it loaded hide a's 0x11 bytes 4-7
    assert total == 4 and m.check_integrity() == 4
    f = m.findings()[-1]
    assert f.kind == "lost-at-end" and f.pa == 0x2040 and f.va == 0x23040
    assert f.found[:8] == b"\x22" * 4 + bytes(4) and (f.found, f.bad_bytes) == want[0][3:]


@pytest.mark.parametrize("cpu", ["arm926", "xscale"])
def test_the_oracle_judges_every_discard_past_the_event_logs_capacity(cpu):
    """A FROM_DEVICE mapping may drop the CPU's dirty lines inside the buffer (the device
    owns those bytes). After 4,096 such drops (the discard log's capacity) the oracle used to
    stop judging them, and the final check then reported the accepted bytes as lost."""
    m = emu.Machine(cpu=cpu, lowmem_mb=1, highmem_mb=1, last_pkmap=8)
    p = m.lowmem_pfns[100]
    va = m.kmap(p)
    for i in range(80):                             # 80 x 128 dirty lines dropped
        m.read(va, 4096)
        m.write(va, bytes([i]) * 4096)
        h = m.dma_map_page(p, 0, 4096, emu.DMA_FROM_DEVICE)
        m.dma_unmap_page(h, 4096, emu.DMA_FROM_DEVICE)
    assert m.check_integrity() == 0 and m.findings() == []


def test_a_scheduled_run_judges_every_discard_past_the_event_logs_capacity():
    from emu.exec.scenario import Scenario
    va = 0xC0000000 + 100 * 4096
    ops = []
    for i in range(40):
        ops += [{"op": "fill", "va": va, "byte": i, "n": 4096},
                {"op": "dma_map_page", "pfn": 100, "direction": "FROM_DEVICE", "as": f"h{i}"},
                {"op": "dma_unmap_page", "dma_addr": f"h{i}", "direction": "FROM_DEVICE"}]
    r = Scenario("drops", {"last_pkmap": 8}).task("t", ops).build().run()
    assert (r.outcome, r.lost_bytes, r.findings) == ("done", 0, [])


def test_byte_totals_count_findings_past_the_logs_capacity():
    """The findings log keeps its first FIND_CAPACITY records; a run's stale and lost byte
    totals used to sum only those (9 stale reads of 4 KiB reported 32,768 bytes)."""
    from emu.exec.scenario import Scenario
    from emu.machine import FIND_CAPACITY
    va = 0xC0000000 + 100 * 4096
    # a device write under the CPU's cached copy, never invalidated: each 4 KiB read of
    # the cached lines is 128 stale-read findings of 32 bytes
    ops = [{"op": "read", "va": va, "n": 4096},
           {"op": "device_write", "dma_addr": 100 * 4096, "byte": 0xEE, "n": 4096}]
    ops += [{"op": "read", "va": va, "n": 4096}] * 9
    r = Scenario("stale", {"last_pkmap": 8}).task("t", ops).build().run()
    assert len(r.findings) == FIND_CAPACITY < 9 * 128
    assert r.stale_reads == 9 * 4096


# ---------------------------------------------------------------------------------------------
# Stale device reads: RAM older than the CPU's latest stores when a device reads it
# ---------------------------------------------------------------------------------------------

def _late_write(m):
    """A highmem TO_DEVICE buffer the CPU writes again after dma_map_page cleaned it (a driver
    bug): the new bytes sit dirty in the cache, RAM still holds the old ones."""
    p = m.highmem_pfns[0]
    va = m.kmap(p)
    m.read(va, 256)
    m.write(va, b"\x11" * 256)
    h = m.dma_map_page(p, 0, 256, emu.DMA_TO_DEVICE)
    m.read(va, 64)
    m.write(va + 8, b"\x22" * 40)                  # bytes 8..47: two lines, still dirty
    return h


@pytest.mark.parametrize("cpu", ["arm926", "feroceon", "xscale", "sa110"])
def test_a_device_read_of_ram_older_than_dirty_cpu_stores_is_a_stale_device_read(cpu):
    m = machine(cpu)
    h = _late_write(m)
    assert m.device.read(h, 256) == b"\x11" * 256           # what the device really gets
    f = m.findings()
    assert [(x.kind, x.pa - h, x.bad_bytes, x.va) for x in f] == \
        [("stale-device-read", 0, 24, -1), ("stale-device-read", 32, 16, -1)]  # a line each
    assert f[0].expected == b"\x11" * 8 + b"\x22" * 24 and f[0].found == b"\x11" * 32
    assert m.stale_reads() == f and m.lost_writes() == []


def test_a_device_read_after_the_clean_finds_nothing():
    m = machine("arm926")
    p = m.highmem_pfns[0]
    va = m.kmap(p)
    m.read(va, 256)
    m.write(va, b"\x11" * 256)
    h = m.dma_map_page(p, 0, 256, emu.DMA_TO_DEVICE)
    assert m.device.read(h, 256) == b"\x11" * 256 and m.findings() == []


def test_a_scenario_whose_device_reads_stale_bytes_fails():
    """The device_read op: the schedule fails, the run counts the bytes, explore() counts the
    schedule among those with stale reads."""
    from emu.exec.explore import explore
    from emu.exec.scenario import Scenario
    sc = Scenario("late write", {"last_pkmap": 8}).task("drv", [
        {"op": "kmap", "pfn": 300, "as": "v"},
        {"op": "fill", "va": "v", "byte": 0x11, "n": 256},
        {"op": "dma_map_page", "pfn": 300, "size": 256, "direction": "TO_DEVICE", "as": "h"},
        {"op": "fill", "va": "v", "byte": 0x22, "n": 64},
        {"op": "device_read", "dma_addr": "h", "n": 256},
        {"op": "dma_unmap_page", "dma_addr": "h", "size": 256, "direction": "TO_DEVICE"}])
    r = sc.build().run()
    assert r.outcome == "done" and r.failed and r.lost_bytes == 0 and r.stale_reads == 64
    assert [(f.kind, f.pa, f.va) for f in r.findings] == \
        [("stale-device-read", 300 << 12, -1), ("stale-device-read", (300 << 12) + 32, -1)]
    ex = explore(sc, bound=0)
    assert (ex.failures, ex.stale_reads) == (1, 1)
    sc.tasks[0].ops[3:4] = []                                  # no late write: nothing stale
    assert not sc.build().run().failed


# ---------------------------------------------------------------------------------------------
# Reads during DMA: a CPU load of bytes a device_start transfer in flight is still to write
# ---------------------------------------------------------------------------------------------

def _early_reader(read_at, va=0xC000A000, n=4, count=None):
    """A driver that maps page 10 for a 64-byte device write, starts the transfer, waits for
    its line's handler and unmaps; a read of ``n`` bytes at ``va`` is op ``read_at``. The
    line fires ``count`` times on its own too."""
    from emu.exec.scenario import Scenario
    ops = [
        {"op": "dma_map_page", "pfn": 10, "size": 64, "direction": "FROM_DEVICE", "as": "h"},
        {"op": "device_start", "dma_addr": "h", "byte": 0xC3, "n": 64, "line": 0},
        {"op": "wait_irq", "line": 0, "count": 1},
        {"op": "dma_unmap_page", "dma_addr": "h", "size": 64, "direction": "FROM_DEVICE"}]
    ops.insert(read_at, {"op": "read", "va": va, "n": n})
    sc = Scenario("early read", {"last_pkmap": 8}).task("drv", ops)
    return sc.irq("irqh", [{"op": "read", "va": 0xC000B000, "n": 4}], line=0, count=count)


def test_a_read_before_the_device_completes_is_a_read_during_dma():
    """The read gets memory's old bytes where the driver wants the device's; the shadow
    cannot tell, since it changes only when the device writes. The finding holds the
    device's bytes as expected, the load's as found, the transfer's range as its DMA range;
    the run fails and its bytes count among the stale ones."""
    from emu import consts as K
    ld = _early_reader(2).build()
    r = ld.run(K.SCHED_DFS, [])                     # the read runs before the device's raise
    assert r.outcome == "done" and r.failed and r.lost_bytes == 0 and r.stale_reads == 4
    assert [(f.kind, f.pa, f.va, f.expected, f.found, f.bad_bytes, f.dma_range, f.site)
            for f in r.findings] == [("read-during-dma", 0xA000, 0xC000A000, b"\xc3" * 4,
                                      b"\x5a" * 4, 4, (0xA000, 0xA040), "cpu_access")]
    assert ld.machine.stale_reads() == r.findings


def test_only_the_bytes_the_transfer_writes_count():
    """A read across the end of the transfer's range: the bytes inside it only; a read
    just past it: nothing."""
    from emu import consts as K
    r = _early_reader(2, 0xC000A03C, 8).build().run(K.SCHED_DFS, [])
    assert [(f.kind, f.pa, f.va, f.bad_bytes) for f in r.findings] == \
        [("read-during-dma", 0xA03C, 0xC000A03C, 4)]
    assert not _early_reader(2, 0xC000A040, 8).build().run(K.SCHED_DFS, []).failed


def test_exploring_finds_reads_during_dma_and_passes_reads_after_completion():
    """Read before the wait: every schedule where the device completes after the read fails
    (the minimal one takes no switch); read after the unmap: none does."""
    from emu.exec.explore import explore
    ex = explore(_early_reader(2), 2)
    assert ex.complete and ex.failures == ex.stale_reads == ex.schedules - 1 > 0
    assert ex.switches == [] and not ex.data_lost
    ex = explore(_early_reader(4), 2)
    assert ex.complete and ex.failures == ex.stale_reads == 0 and ex.schedules > 0


def test_a_spurious_completion_then_a_read_is_a_read_during_dma():
    """The driver the dma-debug in-flight check catches at unmap, without the unmap: a
    spurious raise of the line ends the wait, and the read takes the old bytes."""
    from emu import consts as K
    from emu.exec.explore import explicit_choices
    ld = _early_reader(3, count=1).build()                     # read after the wait
    assert not ld.run(K.SCHED_DFS, []).failed
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 3 of drv raise spurious IRQ irqh"]))
    assert [f.kind for f in r.findings] == ["read-during-dma"] and r.stale_reads == 4


def test_bytes_both_stale_and_in_flight_count_once():
    """A load of cached bytes older than memory (a device_write under the CPU's line) that
    a transfer in flight is also still to write: two findings, but the run's stale total
    counts each byte once (the read-during-dma finding counts none of the stale ones)."""
    from emu import consts as K
    from emu.exec.scenario import Scenario
    sc = Scenario("both", {"last_pkmap": 8}).task("drv", [
        {"op": "read", "va": 0xC000A000, "n": 4},                 # caches the line
        {"op": "device_write", "dma_addr": 0xA000, "byte": 0xEE, "n": 64},
        {"op": "device_start", "dma_addr": 0xA000, "byte": 0xC3, "n": 8, "line": 0},
        {"op": "read", "va": 0xC000A000, "n": 16},                # stale; 8 bytes in flight
        {"op": "wait_irq", "line": 0}])
    sc.irq("irqh", [], line=0)
    r = sc.build().run(K.SCHED_DFS, [])
    assert [(f.kind, f.pa, f.bad_bytes) for f in r.findings] == \
        [("stale-read", 0xA000, 16), ("read-during-dma", 0xA000, 0)]
    assert r.stale_reads == 16 and r.failed
