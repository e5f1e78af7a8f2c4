"""Scenarios a kernel developer writes on their own (beyond the built-in (i)-(iii)), each with
what 2.6.30 does and so what emu must report: kmap_flush_unused() freeing a DMA page's slot
mid-loop, an IRQ handler's DMA pin making a task sleep and its kunmap_high waking it (SMP), a
FROM_DEVICE buffer sharing a cache line with CPU data, three CPUs racing one recycled slot,
TO_DEVICE under a churning pkmap window (no false stale device reads), lowmem as a control."""

import pytest

from emu import consts as K
from emu.exec.builtin import race
from emu.exec.explore import explicit_choices, explore, replay
from emu.exec.scenario import Scenario

FLUSH_UNUSED = """
name = "kmap_flush_unused vs dma"
setup = [ { op = "kmap", pfn = 300 }, { op = "kmap", pfn = 301, repeat = 3 },
          { op = "kunmap", pfn = 300 } ]
[machine]
last_pkmap = 4
highmem_mb = 4
dma_pinning = "%s"
kmap_high_get = %s
[[task]]
name = "dma"
ops = [ { op = "dma_map_page", pfn = 300, direction = "FROM_DEVICE", as = "h" },
        { op = "device_write", dma_addr = "h", byte = 0xD0, n = 4096 },
        { op = "dma_unmap_page", dma_addr = "h", direction = "FROM_DEVICE" } ]
[[task]]
name = "flusher"
ops = [ { op = "kmap_flush_unused" }, { op = "kmap", pfn = 700, as = "v" },
        { op = "fill", va = "v+1024", byte = 0x77, n = 96 }, { op = "kunmap", pfn = 700 } ]
"""


def _toml(tmp_path, text, name="sc.toml"):
    p = tmp_path / name
    p.write_text(text)
    return Scenario.from_toml(p)


def test_kmap_flush_unused_frees_the_slot_under_an_unpinned_invalidate(tmp_path):
    """No wrap needed: kmap_flush_unused() clears the lazily-mapped DMA page's slot (count 1),
    the next kmap gets the same vaddr, and the resumed invalidate drops what it dirtied."""
    sc = _toml(tmp_path, FLUSH_UNUSED % ("page_address", "false"))
    ex = explore(sc, bound=2)
    assert ex.max_lost_bytes == 96 and ex.switches == ["after step 1 of dma run flusher"]
    assert ex.minimal.lost_bytes == 96
    ld, r = replay(ex.replay)
    assert r.lost_bytes == 96 and {f.pfn for f in r.findings} == {700}
    assert any("pte_clear slot 1 (was page 300)" in ln for ln in r.trace)
    ex = explore(_toml(tmp_path, FLUSH_UNUSED % ("kmap_high_get", "true")), bound=2)
    assert ex.failures == 0 and ex.schedules > 0


SLEEPER = """
name = "irq pin wakes a sleeper"
setup = [ { op = "kmap", pfn = 300 }, { op = "kmap", pfn = 301 }, { op = "kunmap", pfn = 300 } ]
[machine]
last_pkmap = 2
ncpus = 2
[[task]]
name = "A"
cpu = 0
ops = [ { op = "kmap", pfn = 302, as = "v" }, { op = "fill", va = "v", byte = 0xA2, n = 64 },
        { op = "kunmap", pfn = 302 } ]
[[task]]
name = "idle1"
cpu = 1
ops = [ { op = "read", va = 0xc0001000, n = 32 } ]
[[irq]]
name = "nic"
cpu = 1
ops = [ { op = "dma_map_page", pfn = 300, size = 256, direction = "FROM_DEVICE", as = "h" },
        { op = "device_write", dma_addr = "h", byte = 0xD0, n = 256 },
        { op = "dma_unmap_page", dma_addr = "h", size = 256, direction = "FROM_DEVICE" } ]
"""


def test_an_irq_handlers_dma_pin_makes_a_task_sleep_and_its_kunmap_high_wakes_it(tmp_path):
    """LAST_PKMAP 2, slot 0 pinned, slot 1 lazily maps the NIC's page: while the handler on
    CPU1 holds slot 1 with kmap_high_get, A's kmap on CPU0 finds every slot pinned and
    sleeps; the handler's kunmap_high (2 -> 1) wakes it from hardirq context, and A gets
    slot 1 after the wrap's flush. No schedule deadlocks or loses anything."""
    sc = _toml(tmp_path, SLEEPER)
    ld = sc.build(trace_events=1 << 16)
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["at start raise IRQ nic",
                                                  "after step 3 of nic run A"]), trace=True)
    assert r.outcome == "done" and not r.failed, r.message
    t = "\n".join(r.trace)
    assert "A: sleeps on pkmap_map_wait (kmap_high page 302)" in t
    assert t.index("A: sleeps") < t.index("nic: wakes A") < t.index(
        "A: set_pte slot 1 -> page 302")
    ex = explore(sc, bound=3)
    assert ex.failures == 0 and ex.deadlocks == 0 and not ex.lockdep


SHARED_LINE = """
name = "partial line"
setup = [ { op = "kmap", pfn = 300, as = "b" }, { op = "fill", va = "b", byte = 0x11, n = 4096 } ]
[machine]
last_pkmap = 4
[[task]]
name = "drv"
ops = [ { op = "dma_map_page", pfn = 300, offset = 100, size = 200, direction = 2, as = "h" },
        { op = "device_write", dma_addr = "h", byte = 0xD0, n = 200 },
        { op = "dma_unmap_page", dma_addr = "h", size = 200, direction = "FROM_DEVICE" },
        { op = "kmap", pfn = 300, as = "v" },
        { op = "read", va = "v+100", n = 200 },
        { op = "kunmap", pfn = 300 } ]
[[task]]
name = "cpu"
ops = [ { op = "kmap", pfn = 300, as = "v" }, { op = "fill", va = "v+96", byte = 0x22, n = 4 },
        { op = "kunmap", pfn = 300 } ]
"""


def test_a_dma_buffer_sharing_a_cache_line_with_cpu_data(tmp_path):
    """Bytes 96..99 share the buffer's first line (96..127). The map cleans and invalidates
    that edge line; the CPU's read-modify-write during the DMA brings it back with pre-DMA
    bytes; the driver's read after unmap (2.6.30 does not invalidate) gets 28 stale bytes,
    and the dirty half-line (ARM926: a dirty bit per 16 bytes) would write 12 old bytes over
    the device's."""
    ex = explore(_toml(tmp_path, SHARED_LINE), bound=2)
    assert ex.switches == ["after step 4 of drv run cpu"] and ex.minimal.lost_bytes == 12
    assert ex.stale_reads > 0 and ex.max_lost_bytes == 12
    ld, r = replay(ex.replay)
    got = [(f.kind, f.pa - (300 << 12), f.bad_bytes) for f in r.findings]
    assert got == [("stale-read", 100, 28), ("lost-at-end", 96, 12)]
    assert r.findings[1].expected == b"\x22" * 4 + b"\xd0" * 28
    assert r.findings[1].found == b"\x22" * 4 + b"\x11" * 12 + b"\xd0" * 16


@pytest.mark.parametrize("pin, lost", [("page_address", 128), ("kmap_high_get", 0)])
def test_three_cpus_race_for_the_recycled_slot(pin, lost):
    """Scenario (ii) with a third CPU mapping another page: the loss (page_address) and its
    absence (kmap_high_get) are the two-CPU ones; the minimal schedule is (ii)'s."""
    sc = race(8, 2, pin).variant(ncpus=3)
    sc.task("writer2", [{"op": "kmap_high", "pfn": 1252, "as": "v"},
                        {"op": "fill", "va": "v+1024", "byte": 0xA2, "n": 64},
                        {"op": "kunmap_high", "pfn": 1252}], cpu=2)
    ex = explore(sc, bound=1)
    assert ex.max_lost_bytes == lost and ex.deadlocks == 0
    if lost:
        assert ex.switches == ["after step 1 of dma run writer"]
        assert replay(ex.replay)[1].lost_bytes == lost
    else:
        assert ex.failures == 0


def _to_device(cpu, pin, late_write):
    khg = pin == "kmap_high_get"
    sc = Scenario("to_device", {"cpu": cpu, "last_pkmap": 4, "highmem_mb": 4,
                                "kmap_high_get": khg, "dma_pinning": pin},
                  setup=[{"op": "kmap", "pfn": 300, "as": "b"},
                         {"op": "fill", "va": "b", "byte": 0x11, "n": 4096},
                         {"op": "kmap", "pfn": 301, "repeat": 3},
                         {"op": "kunmap", "pfn": 300}])
    ops = [{"op": "dma_map_page", "pfn": 300, "direction": "TO_DEVICE", "as": "h"},
           {"op": "device_read", "dma_addr": "h", "n": 4096},
           {"op": "dma_unmap_page", "dma_addr": "h", "direction": "TO_DEVICE"}]
    if late_write:                  # the driver writes its buffer after mapping it (a bug)
        ops[1:1] = [{"op": "kmap", "pfn": 300, "as": "v"},
                    {"op": "fill", "va": "v+64", "byte": 0x22, "n": 32},
                    {"op": "kunmap", "pfn": 300}]
    sc.task("dma", ops)
    sc.task("writer", [{"op": "kmap_high", "pfn": 700, "as": "v"},
                       {"op": "fill", "va": "v+2048", "byte": 0xAB, "n": 128},
                       {"op": "kunmap_high", "pfn": 700}])
    return sc


@pytest.mark.parametrize("cpu", ["arm926", "xscale"])
@pytest.mark.parametrize("pin", ["page_address", "kmap_high_get"])
def test_to_device_under_a_churning_window_sends_the_cpus_bytes(cpu, pin):
    """A wrap's flush_cache_all writes the lazily-mapped buffer back before its slot is
    reused, and a clean of the recycled alias only writes the writer's lines back: the device
    always reads the CPU's bytes. The driver writing after the map is a stale device read at
    once (no preemption)."""
    assert explore(_to_device(cpu, pin, False), bound=2).failures == 0
    ex = explore(_to_device(cpu, pin, True), bound=0)
    assert ex.failures == ex.stale_reads == ex.schedules and ex.max_lost_bytes == 0
    r = replay(ex.replay)[1]
    assert [(f.kind, f.pa - (300 << 12), f.bad_bytes) for f in r.findings] == \
        [("stale-device-read", 64, 32)]


@pytest.mark.parametrize("direction", ["FROM_DEVICE", "BIDIRECTIONAL"])
def test_a_lowmem_dma_buffer_never_loses_data(direction):
    """The control: the same race with the DMA buffer in lowmem (always linearly mapped, never
    recycled) loses nothing, on the two-op XScale flush too."""
    sc = race(8, 1, "page_address").variant(cpu="xscale")
    sc.setup += [{"op": "kmap", "pfn": 100, "as": "lb"},
                 {"op": "fill", "va": "lb", "byte": 0x44, "n": 4096}]
    dma = sc.tasks[0]
    dma.ops = [dict(o) for o in dma.ops]
    dma.ops[0].update(pfn=100, direction=direction)
    dma.ops[2].update(direction=direction)
    ex = explore(sc, bound=2)
    assert ex.failures == 0 and ex.schedules > 1000
