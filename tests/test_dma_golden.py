"""Golden tests for ``dma_map_page``: which cache line operations one call performs, per core.

Written by hand from spec §3.1-3.4 (direction → op, the per-chunk order pin → L1 op → unpin →
outer op, the highmem split), §3.10 (worked example) and §4 (per-core ``dma_*_range``):

* DMA_FROM_DEVICE → ``dma_inv_range``: partial first/last lines are cleaned (written back) and
  then invalidated with the rest; dirty lines wholly inside the buffer are dropped;
* DMA_TO_DEVICE → ``dma_clean_range``: every covered line is written back and stays cached;
* DMA_BIDIRECTIONAL → ``dma_flush_range``: every covered line is written back and invalidated
  (arm926/feroceon ``c7,c14,1`` — feroceon as one range op —, xscale/v4wb ``c7,c10,1`` then
  ``c7,c6,1`` per line);
* every op but feroceon's range invalidate ends with a drain.

The machines have pages 0-63 in lowmem (``lowmem_mb=0.25``) as in the spec's page model, so
page 10 is linear at 0xc000a000 and page 100 is highmem at physical 0x64000.
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emu
from emu.exec.scenario import Scenario

# NUMBA_DISABLE_JIT=1 runs the kernels as Python: fewer random examples then
JIT = os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0")

CORES = ["arm926", "feroceon", "xscale", "sa110"]
DIRS = {"from": emu.DMA_FROM_DEVICE, "to": emu.DMA_TO_DEVICE, "bidi": emu.DMA_BIDIRECTIONAL}
LINE = 32
POISON = b"Z" * LINE
LOW_PFN = 10
LOW_VA = 0xC000A000

# (offset, size) of a buffer in page 10
CASES = {
    "whole page": (0, 4096),
    "spec 3.10: offset 4 size 100": (4, 100),
    "line aligned": (64, 128),
    "unaligned start only": (8, 56),          # [8, 64)
    "unaligned end only": (32, 40),           # [32, 72)
    "inside one line": (36, 8),               # both partial edges are the same line
    "one byte": (31, 1),
    "crosses into the next lowmem page": (4000, 200),
}


def machine(cpu="arm926", **kw):
    args = dict(cpu=cpu, lowmem_mb=0.25, highmem_mb=1, last_pkmap=8)
    args.update(kw)
    return emu.Machine(**args)


def delta(before, after):
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def pattern(va):
    """32 recognisable bytes for the line at ``va`` (never the poison byte)."""
    return (va & 0xFFFFFFFF).to_bytes(4, "little") * (LINE // 4)


def make_dirty(m, lo, hi):
    """Read lines [lo, hi) into the cache (read-allocate), then overwrite them: all dirty."""
    m.read(lo, hi - lo)
    m.write(lo, b"".join(pattern(va) for va in range(lo, hi, LINE)))


def covered(start, end):
    """Line addresses the bottom-tested range loop visits for [start, end)."""
    return list(range(start & ~(LINE - 1), max(end, start + 1), LINE))


def expected_delta(cpu, d, start, end):
    lines = covered(start, end)
    n = len(lines)
    if d == emu.DMA_FROM_DEVICE:
        edge_ops = [va for va, partial in ((start, start % LINE), (end, end % LINE)) if partial]
        edges = {va & ~(LINE - 1) for va in edge_ops}
        want = {"range_ops": 1, "line_invalidates": n, "line_cleans": len(edge_ops),
                "writebacks": len(edges), "bytes_written": LINE * len(edges),
                "dirty_discards": n - len(edges)}
        if cpu != "feroceon":               # feroceon_range_dma_inv_range has no drain
            want["drains"] = 1
    elif d == emu.DMA_TO_DEVICE:
        want = {"range_ops": 1, "line_cleans": n, "writebacks": n, "bytes_written": LINE * n,
                "drains": 1}
    else:
        want = {"range_ops": 1, "writebacks": n, "bytes_written": LINE * n, "drains": 1}
        if cpu in ("xscale", "sa110"):      # c7,c10,1 then c7,c6,1 per line
            want.update(line_cleans=n, line_invalidates=n)
        else:                               # c7,c14,1 per line / c15,c15 range op
            want["line_flushes"] = n
    return {k: v for k, v in want.items() if v}


@pytest.mark.parametrize("cpu", CORES)
@pytest.mark.parametrize("dname", list(DIRS))
@pytest.mark.parametrize("case", list(CASES))
def test_dma_map_page_lowmem_line_ops(cpu, dname, case):
    check_lowmem_map(cpu, DIRS[dname], *CASES[case])


@settings(max_examples=300 if JIT else 20, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(cpu=st.sampled_from(CORES), d=st.sampled_from(list(DIRS.values())),
       off=st.integers(0, 8000), size=st.integers(1, 5000))
def test_dma_map_page_lowmem_line_ops_any_range(cpu, d, off, size):
    check_lowmem_map(cpu, d, off, size)


def check_lowmem_map(cpu, d, off, size):
    m = machine(cpu)
    start, end = LOW_VA + off, LOW_VA + off + size
    lines = covered(start, end)
    lo, hi = lines[0] - LINE, lines[-1] + 2 * LINE      # plus one untouched line each side
    make_dirty(m, lo, hi)
    assert all(m.cache.probe(va).dirty for va in range(lo, hi, LINE))
    before, outer0 = m.cache.stats, m.outer_calls

    handle = m.dma_map_page(LOW_PFN, off, size, d)

    assert handle == (LOW_PFN << 12) + off
    assert delta(before, m.cache.stats) == expected_delta(cpu, d, start, end)
    op = {emu.DMA_FROM_DEVICE: "inv", emu.DMA_TO_DEVICE: "clean",
          emu.DMA_BIDIRECTIONAL: "flush"}[d]
    outer = m.outer_calls
    assert {k: outer[k] - outer0[k] for k in ("inv", "clean", "flush")} == {
        k: int(k == op) for k in ("inv", "clean", "flush")}      # lowmem: one outer op
    assert outer["last_range"] == (handle, handle + size)

    def ram(va):
        return m.phys_read(va - LOW_VA + (LOW_PFN << 12), LINE)

    for va in range(lo, hi, LINE):
        rec = m.cache.probe(va)
        if va not in lines:                 # neighbours: untouched, still dirty
            assert rec is not None and rec.dirty and rec.data == pattern(va), hex(va)
            assert ram(va) == POISON
        elif d == emu.DMA_TO_DEVICE:        # written back and kept, clean
            assert rec is not None and not rec.dirty and rec.data == pattern(va), hex(va)
            assert ram(va) == pattern(va)
        elif d == emu.DMA_BIDIRECTIONAL:    # written back and invalidated
            assert rec is None, hex(va)
            assert ram(va) == pattern(va)
        else:                               # inv: partial edge lines written back first
            assert rec is None, hex(va)
            edge = (va == lines[0] and start % LINE) or (va == lines[-1] and end % LINE)
            assert ram(va) == (pattern(va) if edge else POISON), hex(va)
    # dropped interior lines lay inside the buffer the device now owns: no finding
    assert m.findings() == []
    assert m.check_integrity() == 0


@pytest.mark.parametrize("cpu", CORES)
def test_from_device_edge_lines_keep_the_cpu_bytes_around_the_buffer(cpu):
    """The partial first and last lines hold unrelated CPU data (asm/cacheflush.h contract):
    after dma_map_page(FROM_DEVICE) those bytes are in RAM, and the device's bytes land in
    between; nothing the CPU wrote outside the buffer is lost."""
    m = machine(cpu)
    make_dirty(m, LOW_VA, LOW_VA + 4 * LINE)
    m.write(LOW_VA, b"head")                   # bytes before the buffer (offset 0..3)
    m.write(LOW_VA + 0x68, b"tail")           # bytes after it (buffer is [4, 104))
    h = m.dma_map_page(LOW_PFN, 4, 100, emu.DMA_FROM_DEVICE)
    m.device.write(h, b"\xd0" * 100)
    m.dma_unmap_page(h, 100, emu.DMA_FROM_DEVICE)
    got = m.read(LOW_VA, 4 * LINE)
    assert got[:4] == b"head"
    assert got[4:104] == b"\xd0" * 100
    assert got[104:108] == b"tail"
    assert got[108:128] == pattern(LOW_VA + 3 * LINE)[12:]
    assert m.findings() == [] and m.check_integrity() == 0


# ---------------------------------------------------------------------------------------------
# spec §3.10: the worked example, both calls
# ---------------------------------------------------------------------------------------------


def test_spec_3_10_lowmem_page_10_offset_4_size_100_from_device():
    m = machine("arm926")
    make_dirty(m, 0xC000A000, 0xC000A0A0)
    before = m.cache.stats
    h = m.dma_map_page(10, 4, 100, emu.DMA_FROM_DEVICE)
    assert h == 0xA004
    # L1 dma_inv_range(0xc000a004, 0xc000a068): clean 0xc000a000 and 0xc000a060, invalidate
    # the 4 lines 0xc000a000..0xc000a060, drain; then outer_inv_range(0xa004, 0xa068)
    assert delta(before, m.cache.stats) == {
        "range_ops": 1, "line_cleans": 2, "line_invalidates": 4, "drains": 1,
        "writebacks": 2, "bytes_written": 64, "dirty_discards": 2}
    assert [m.cache.probe(va) is None for va in range(0xC000A000, 0xC000A0A0, 32)] == [
        True, True, True, True, False]
    assert m.phys_read(0xA000, 32) == pattern(0xC000A000)         # cleaned edge
    assert m.phys_read(0xA060, 32) == pattern(0xC000A060)         # cleaned edge
    assert m.phys_read(0xA020, 64) == b"Z" * 64                   # dropped interior
    assert m.outer_calls == {"inv": 1, "clean": 0, "flush": 0, "last_range": (0xA004, 0xA068)}
    assert m.pkmap_count.tolist() == [0] * 8                      # lowmem: no pkmap traffic


def _lazily_mapped_p100(cpu="arm926", **kw):
    m = machine(cpu, **kw)
    assert m.kmap(100) == 0xBFE01000
    m.kunmap(100)
    assert m.pkmap_count[1] == 1 and m.page_address(100) == 0xBFE01000
    return m


@pytest.mark.parametrize("cpu", CORES)
def test_spec_3_10_highmem_page_100_lazily_mapped_from_device(cpu):
    m = _lazily_mapped_p100(cpu)
    before, mm0 = m.cache.stats, m.mm_stats
    h = m.dma_map_page(100, 0, 4096, emu.DMA_FROM_DEVICE)
    assert h == 0x64000
    want = {"range_ops": 1, "line_invalidates": 128}
    if cpu != "feroceon":
        want["drains"] = 1
    assert delta(before, m.cache.stats) == want
    assert m.outer_calls == {"inv": 1, "clean": 0, "flush": 0,
                             "last_range": (0x64000, 0x65000)}
    assert m.pkmap_count.tolist() == [0, 1, 0, 0, 0, 0, 0, 0]     # pinned and released
    assert m.page_address(100) == 0xBFE01000
    assert delta(mm0, m.mm_stats) == {}                           # no flush, no PTE change


def _p100_dma_scenario(direction, offset=0, size=4096, **machine_kw):
    mk = dict(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8)
    mk.update(machine_kw)
    sc = Scenario(machine=mk, setup=[{"op": "kmap_high", "pfn": 100},
                                     {"op": "kunmap_high", "pfn": 100}])
    sc.task("dma", [{"op": "dma_map_page", "pfn": 100, "offset": offset, "size": size,
                     "direction": direction}])
    return sc.build()


def test_spec_3_10_kmap_high_get_pins_count_2_during_the_invalidate_loop():
    """Stop the (resumable) dma_map_page after each step: while any of the 128 lines is
    being invalidated, slot 1 is pinned at count 2; the outer op comes after the unpin."""
    ld = _p100_dma_scenario("FROM_DEVICE")
    m = ld.machine
    seen = []
    for k in range(1, 200):
        r = ld.run(max_steps=k)
        inv = m.cache.stats["line_invalidates"]
        seen.append((int(m.pkmap_count[1]), inv, m.outer_calls["inv"]))
        if r.outcome == "done":
            break
    assert r.outcome == "done"
    during = [s for s in seen if 0 < s[1] < 128]
    assert during and all(c == 2 and outer == 0 for c, _, outer in during)
    assert seen[0][0] in (1, 2)                                   # before or at the pin
    assert (2, 128, 0) in seen                                    # loop done, still pinned
    assert (1, 128, 0) in seen                                    # unpinned, outer not yet
    assert seen[-1] == (1, 128, 1)
    assert m.outer_calls["last_range"] == (0x64000, 0x65000)


def test_spec_3_10_racy_pinning_touches_no_pkmap_count():
    """dma_pinning="page_address": the same call maintains the same 128 lines through the
    unpinned address; pkmap_count stays 1 all along."""
    ld = _p100_dma_scenario("FROM_DEVICE", kmap_high_get=False, dma_pinning="page_address")
    m = ld.machine
    for k in range(1, 200):
        r = ld.run(max_steps=k)
        assert m.pkmap_count[1] == 1
        if r.outcome == "done":
            break
    assert r.outcome == "done"
    assert m.cache.stats["line_invalidates"] == 128
    assert m.outer_calls["inv"] == 1


# ---------------------------------------------------------------------------------------------
# spec §3.4: the highmem split
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cpu", CORES)
def test_spec_3_4_split_page_100_offset_100_size_8000_to_device(cpu):
    m = _lazily_mapped_p100(cpu)
    assert m.page_address(101) == 0
    # dirty lines of page 100 through its (lazily kept) pkmap address
    m.kmap(100)
    make_dirty(m, 0xBFE01040, 0xBFE010A0)          # 0x40 (outside), 0x60 and 0x80 (inside)
    m.kunmap(100)
    before = m.cache.stats
    h = m.dma_map_page(100, 100, 8000, emu.DMA_TO_DEVICE)
    assert h == 0x64064
    # chunk 1: dma_clean_range(0xbfe01064, 0xbfe02000) = lines 0xbfe01060..0xbfe01fe0 (125);
    # chunk 2 (page 101, unmapped): no L1 op at all
    assert delta(before, m.cache.stats) == {"range_ops": 1, "line_cleans": 125, "drains": 1,
                                            "writebacks": 2, "bytes_written": 64}
    assert m.phys_read(0x64060, 64) == pattern(0xBFE01060) + pattern(0xBFE01080)
    assert m.phys_read(0x64040, 32) == POISON
    assert m.cache.probe(0xBFE01040).dirty                       # before the buffer
    assert not m.cache.probe(0xBFE01060).dirty
    # outer_clean_range on both physical chunks, the second one last
    assert m.outer_calls == {"inv": 0, "clean": 2, "flush": 0,
                             "last_range": (0x65000, 0x65FA4)}
    assert m.pkmap_count.tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert m.page_address(101) == 0
    assert m.findings() == [] and m.check_integrity() == 0


def test_spec_3_4_split_first_outer_range_is_the_first_chunk():
    """outer_calls keeps only the last range: stop after the first outer op to see chunk 1's
    ``[0x64064, 0x65000)`` (3996 bytes); chunk 2's is ``[0x65000, 0x65fa4)`` (4004 bytes)."""
    ld = _p100_dma_scenario("TO_DEVICE", offset=100, size=8000)
    m = ld.machine
    ranges = []
    for k in range(1, 400):
        r = ld.run(max_steps=k)
        oc = m.outer_calls
        if oc["clean"] and (not ranges or ranges[-1] != (oc["clean"], oc["last_range"])):
            ranges.append((oc["clean"], oc["last_range"]))
        if r.outcome == "done":
            break
    assert r.outcome == "done"
    assert ranges == [(1, (0x64064, 0x65000)), (2, (0x65000, 0x65FA4))]
    assert m.cache.stats["line_cleans"] == 125


def test_split_with_both_pages_mapped_maintains_each_chunk_through_its_own_address():
    m = machine("arm926")
    v100 = m.kmap(100)
    v101 = m.kmap(101)
    assert (v100, v101) == (0xBFE01000, 0xBFE02000)
    before = m.cache.stats
    m.dma_map_page(100, 100, 8000, emu.DMA_TO_DEVICE)
    # two range ops: 125 lines of page 100 + [0, 4004) of page 101 = 126 lines
    assert delta(before, m.cache.stats) == {"range_ops": 2, "line_cleans": 125 + 126,
                                            "drains": 2}
    assert m.outer_calls["clean"] == 2
    assert m.pkmap_count.tolist()[1:3] == [2, 2]


def test_lowmem_range_across_pages_is_one_l1_op_and_one_outer_op():
    m = machine("arm926")
    before = m.cache.stats
    m.dma_map_page(10, 100, 8000, emu.DMA_TO_DEVICE)
    # dma_clean_range(0xc000a064, 0xc000bfa4): lines 0xc000a060..0xc000bfa0
    assert delta(before, m.cache.stats) == {"range_ops": 1, "line_cleans": 251, "drains": 1}
    assert m.outer_calls == {"inv": 0, "clean": 1, "flush": 0,
                             "last_range": (0xA064, 0xA064 + 8000)}


@pytest.mark.parametrize("dname", list(DIRS))
def test_unmapped_highmem_page_gets_only_the_outer_op(dname):
    m = machine("arm926")
    before = m.cache.stats
    h = m.dma_map_page(200, 8, 64, DIRS[dname])
    assert h == (200 << 12) + 8
    assert delta(before, m.cache.stats) == {}
    op = {"from": "inv", "to": "clean", "bidi": "flush"}[dname]
    assert m.outer_calls[op] == 1 and m.outer_calls["last_range"] == (h, h + 64)
    assert m.pkmap_count.tolist() == [0] * 8


@pytest.mark.parametrize("cpu", CORES)
@pytest.mark.parametrize("dname", list(DIRS))
def test_highmem_kmapped_page_same_line_ops_as_lowmem(cpu, dname):
    """A kmapped highmem page (count 2) gets the core's range op through its pkmap address,
    exactly as lowmem does through the linear map (offset 4, size 100)."""
    d = DIRS[dname]
    m = machine(cpu)
    va = m.kmap(100)
    make_dirty(m, va, va + 4 * LINE)
    before = m.cache.stats
    m.dma_map_page(100, 4, 100, d)
    assert delta(before, m.cache.stats) == expected_delta(cpu, d, va + 4, va + 104)
    assert m.pkmap_count[1] == 2
    assert m.findings() == [] and m.check_integrity() == 0


# ---------------------------------------------------------------------------------------------
# v3 ownership model (spec §3.9): map = dmac_map_area per chunk, then ONE outer op for the
# whole range — outer inv for FROM_DEVICE, outer clean otherwise; unmap = outer inv unless
# TO_DEVICE
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dname,outer_op", [("from", "inv"), ("to", "clean"), ("bidi", "clean")])
def test_v3_map_outer_op_per_direction(dname, outer_op):
    m = machine("arm926", dma_api="v3")
    h = m.dma_map_page(LOW_PFN, 4, 100, DIRS[dname])
    assert m.outer_calls == {**{"inv": 0, "clean": 0, "flush": 0}, outer_op: 1,
                             "last_range": (h, h + 100)}


def test_v3_highmem_split_has_one_outer_op_for_the_whole_range():
    m = _lazily_mapped_p100("arm926", dma_api="v3")
    before = m.cache.stats
    m.dma_map_page(100, 100, 8000, emu.DMA_TO_DEVICE)
    assert delta(before, m.cache.stats) == {"range_ops": 1, "line_cleans": 125, "drains": 1}
    assert m.outer_calls == {"inv": 0, "clean": 1, "flush": 0,
                             "last_range": (0x64064, 0x64064 + 8000)}


@pytest.mark.parametrize("dname,l1,outer", [("from", 1, 1), ("bidi", 1, 1), ("to", 0, 0)])
def test_v3_unmap_invalidates_unless_to_device(dname, l1, outer):
    m = machine("arm926", dma_api="v3")
    h = m.dma_map_page(LOW_PFN, 0, 4096, DIRS[dname])
    before, outer0 = m.cache.stats, m.outer_calls
    m.dma_unmap_page(h, 4096, DIRS[dname])
    want = {"range_ops": 1, "line_invalidates": 128, "drains": 1} if l1 else {}
    assert delta(before, m.cache.stats) == want
    assert m.outer_calls["inv"] - outer0["inv"] == outer
    assert m.outer_calls["clean"] == outer0["clean"] and m.outer_calls["flush"] == outer0["flush"]


# ---------------------------------------------------------------------------------------------
# 2.6.30 (spec §3.5): dma_unmap_page and dma_sync_single_for_cpu touch no cache ("nothing to
# do"; commit 309dbbab "don't touch cache on dma_*_for_cpu()")
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cpu", CORES)
@pytest.mark.parametrize("dname", list(DIRS))
@pytest.mark.parametrize("pfn", [LOW_PFN, 100])
def test_2630_unmap_and_sync_for_cpu_do_no_cache_maintenance(cpu, dname, pfn):
    d = DIRS[dname]
    m = machine(cpu)
    va = m.kmap(pfn)
    h = m.dma_map_page(pfn, 0, 4096, d)
    m.read(va, 256)                        # lines cached again (the driver bug of §3.11)
    before, outer0, count0 = m.cache.stats, m.outer_calls, m.pkmap_count.tolist()
    m.dma_sync_single_for_cpu(h, 4096, d)
    m.dma_unmap_page(h, 4096, d)
    assert delta(before, m.cache.stats) == {}
    assert m.outer_calls == outer0
    assert m.pkmap_count.tolist() == count0
    assert all(m.cache.probe(v) is not None for v in range(va, va + 256, LINE))
