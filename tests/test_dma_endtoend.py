"""End-to-end streaming DMA: device → RAM → CPU and CPU → RAM → device, checked by the bytes the
other side sees and by the integrity oracle (spec §3.1-3.5, §3.9, §3.11).

A correct driver sequence must give correct data on every core, direction, API model, pinning
scheme and page kind:

* TO_DEVICE: the CPU writes the buffer (through cached, dirty lines) → ``dma_map_page`` →
  ``device.read`` sees the CPU's bytes;
* FROM_DEVICE: ``dma_map_page`` → ``device.write`` → ``dma_unmap_page`` → a CPU read through a
  mapping returns the device's bytes;
* BIDIRECTIONAL: both, the device reading the CPU's bytes and then overwriting them;

and in every case the CPU's bytes *around* an unaligned buffer (in its partial edge lines)
survive, ``m.findings()`` stays empty and ``m.check_integrity() == 0``.

Page kinds: lowmem (linear map); highmem kmapped (pkmap count >= 2 throughout); highmem lazily
mapped (kunmapped, count 1: the DMA maintains through the kept address, pinned by
``kmap_high_get`` or not); highmem unmapped (no pkmap address: ``flush_cache_kmaps`` wrote the
CPU's lines back when the slot was freed, and the DMA does only the outer op).

Parametrized combinations (core, direction, API, pinning, page kind, alignment):
4 cores x 3 directions x 2 APIs x (lowmem + 3 highmem kinds x 2 pinnings) x 3 alignments = 504,
i.e. 4 x 3 x 2 x 4 x 3 = 288 (core, direction, api, page kind, alignment) combinations, each
highmem one under both pinning schemes. Plus the stale-read cases (CPU reads the buffer while
the device owns it): 4 cores x 2 directions x 2 APIs x 3 page kinds x 2 alignments = 96.
A hypothesis test runs the same driver sequence on random (core, direction, API, pinning,
page kind) with any offset in [0, 6000] and size in [1, 9000] (up to 5 pages, offsets past the
first page included).
"""

import itertools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emu

# NUMBA_DISABLE_JIT=1 runs the kernels as Python: fewer random examples then
JIT = os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0")

CORES = ["arm926", "feroceon", "xscale", "sa110"]
DIRS = {"to": emu.DMA_TO_DEVICE, "from": emu.DMA_FROM_DEVICE, "bidi": emu.DMA_BIDIRECTIONAL}
APIS = ["2.6.30", "v3"]
PINNINGS = {"kmap_high_get": dict(kmap_high_get=True, dma_pinning="kmap_high_get"),
            "page_address": dict(kmap_high_get=False, dma_pinning="page_address")}
KINDS = ["lowmem", "kmapped", "lazy", "unmapped"]
ALIGNS = {"page": (0, 4096), "unaligned": (4, 100), "two pages": (100, 8000)}
LINE = 32
LOW_PFN, HIGH_PFN = 10, 100        # pages 0-63 lowmem, 64-319 highmem


def machine(cpu, api, pinning="kmap_high_get"):
    return emu.Machine(cpu=cpu, lowmem_mb=0.25, highmem_mb=1, last_pkmap=8, dma_api=api,
                       **PINNINGS[pinning])


def combos():
    for cpu, dname, api, kind, align in itertools.product(CORES, DIRS, APIS, KINDS, ALIGNS):
        for pin in (["kmap_high_get"] if kind == "lowmem" else list(PINNINGS)):
            yield cpu, dname, api, pin, kind, align


COMBOS = list(combos())


def test_combination_count():
    keys = {(c, d, a, k, al) for c, d, a, _, k, al in COMBOS}
    assert len(keys) == 4 * 3 * 2 * 4 * 3 == 288
    assert len(COMBOS) == 504


# ---------------------------------------------------------------------------------------------
# a buffer and the CPU's view of it
# ---------------------------------------------------------------------------------------------


class Buffer:
    """``size`` bytes at ``offset`` of page ``pfn`` (and following pages), of a page kind."""

    def __init__(self, m, kind, offset, size):
        self.m, self.kind, self.offset, self.size = m, kind, offset, size
        self.pfn = LOW_PFN if kind == "lowmem" else HIGH_PFN
        self.pieces = []                        # (pfn, offset in page, length, buffer offset)
        pos, pfn, off = 0, self.pfn + offset // 4096, offset % 4096
        while pos < size:
            n = min(size - pos, 4096 - off)
            self.pieces.append((pfn, off, n, pos))
            pos, pfn, off = pos + n, pfn + 1, 0

    def spans(self):
        """Per page: (pfn, line-aligned lo, hi) covering the buffer's lines in that page."""
        for pfn, off, n, _ in self.pieces:
            yield pfn, off & ~(LINE - 1), min(4096, (off + n + LINE - 1) & ~(LINE - 1))

    # -- mappings ------------------------------------------------------------------------------
    def map_for_cpu(self):
        """Make every page addressable for the CPU; returns {pfn: vaddr}."""
        return {pfn: self.m.kmap(pfn) for pfn, _, _, _ in self.pieces}

    def release(self):
        """Bring the pages to the buffer's page kind after CPU access."""
        m = self.m
        if self.kind in ("lazy", "unmapped"):
            for pfn, _, _, _ in self.pieces:
                m.kunmap(pfn)
        if self.kind == "unmapped":
            m.kmap_flush_unused()               # flush_cache_kmaps() + free the count-1 slots
        for pfn, _, _, _ in self.pieces:
            addr = m.page_address(pfn)
            if self.kind == "lowmem":
                assert addr == m.PAGE_OFFSET + (pfn << 12)
            elif self.kind == "kmapped":
                assert m.pkmap_count[(addr - m.PKMAP_BASE) >> 12] >= 2
            elif self.kind == "lazy":
                assert m.pkmap_count[(addr - m.PKMAP_BASE) >> 12] == 1
            else:
                assert addr == 0

    def cpu_access(self):
        """(Re)map for a CPU access: lowmem and kmapped pages are mapped already; a lazily
        mapped page is revived (count 1 -> 2, same address); an unmapped one gets a slot."""
        if self.kind in ("lowmem", "kmapped"):
            return {pfn: self.m.page_address(pfn) for pfn, _, _, _ in self.pieces}
        return self.map_for_cpu()

    # -- CPU view -----------------------------------------------------------------------------
    def cpu_fill(self, data, around):
        """Read the buffer's lines into the cache, then write ``data`` into the buffer and
        ``around`` into the rest of its edge lines: every covered line ends up dirty."""
        va = self.map_for_cpu() if self.kind != "lowmem" else self.cpu_access()
        m = self.m
        for pfn, lo, hi in self.spans():
            m.read(va[pfn] + lo, hi - lo)
            m.write(va[pfn] + lo, around[(pfn, lo)])
        for pfn, off, n, pos in self.pieces:
            m.write(va[pfn] + off, data[pos:pos + n])
        return va

    def cpu_read(self, va):
        """(buffer bytes, {(pfn, lo): edge-line bytes}) as the CPU reads them."""
        m = self.m
        out = bytearray()
        lines = {}
        for pfn, off, n, _ in self.pieces:
            out += m.read(va[pfn] + off, n)
        for pfn, lo, hi in self.spans():
            lines[(pfn, lo)] = m.read(va[pfn] + lo, hi - lo)
        return bytes(out), lines

    def around(self, byte):
        """Bytes for each covered span: ``byte`` everywhere (the buffer part is overwritten)."""
        return {(pfn, lo): bytes([byte]) * (hi - lo) for pfn, lo, hi in self.spans()}

    def expected_lines(self, around, data):
        """Each span's bytes once ``data`` sits in the buffer and ``around`` around it."""
        out = {}
        for (pfn, off, n, pos), (_, lo, hi) in zip(self.pieces, self.spans()):
            b = bytearray(around[(pfn, lo)])
            b[off - lo:off - lo + n] = data[pos:pos + n]
            out[(pfn, lo)] = bytes(b)
        return out


def data_of(size, seed):
    return bytes((seed + 7 * i + (i >> 8)) & 0xFF or 1 for i in range(size))


def assert_clean_oracle(m):
    assert m.findings() == []
    assert m.check_integrity() == 0
    assert m.findings() == []


# ---------------------------------------------------------------------------------------------
# the correct driver sequences
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cpu,dname,api,pin,kind,align", COMBOS)
def test_correct_driver_sequence(cpu, dname, api, pin, kind, align):
    driver_sequence(cpu, DIRS[dname], api, pin, kind, *ALIGNS[align])


@settings(max_examples=400 if JIT else 20, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(cpu=st.sampled_from(CORES), d=st.sampled_from(list(DIRS.values())),
       api=st.sampled_from(APIS), pin=st.sampled_from(list(PINNINGS)),
       kind=st.sampled_from(KINDS), off=st.integers(0, 6000), size=st.integers(1, 9000))
def test_correct_driver_sequence_any_offset_and_size(cpu, d, api, pin, kind, off, size):
    driver_sequence(cpu, d, api, pin, kind, off, size)


def driver_sequence(cpu, d, api, pin, kind, off, size):
    m = machine(cpu, api, pin)
    buf = Buffer(m, kind, off, size)
    cpu_data = data_of(size, 0x31)
    dev_data = data_of(size, 0xC4)
    around = buf.around(0xA7)

    # the CPU prepares the buffer (for FROM_DEVICE: stale junk the device will overwrite)
    buf.cpu_fill(cpu_data, around)
    buf.release()

    pkmap = (m.pkmap_count.tolist(), [m.page_address(p) for p, _, _, _ in buf.pieces])
    h = m.dma_map_page(buf.pfn, off, size, d)
    assert h == (buf.pfn << 12) + off
    if d != emu.DMA_FROM_DEVICE:
        assert m.device.read(h, size) == cpu_data          # CPU -> RAM -> device
    if d != emu.DMA_TO_DEVICE:
        m.device.write(h, dev_data)
    m.dma_unmap_page(h, size, d)
    assert m.dma_debug_errors == 0
    # every pin was released: the pkmap window is as the DMA found it
    assert (m.pkmap_count.tolist(), [m.page_address(p) for p, _, _, _ in buf.pieces]) == pkmap

    got, lines = buf.cpu_read(buf.cpu_access())
    want = cpu_data if d == emu.DMA_TO_DEVICE else dev_data
    assert got == want                                     # device -> RAM -> CPU
    assert lines == buf.expected_lines(around, want)       # bytes around the buffer kept
    assert_clean_oracle(m)


@pytest.mark.parametrize("cpu", CORES)
@pytest.mark.parametrize("api", APIS)
def test_sync_for_cpu_and_for_device_reuse_a_lowmem_mapping(cpu, api):
    """A long-lived FROM_DEVICE mapping, synced for the CPU after each transfer and back for
    the device: each round the CPU sees the device's new bytes when it does not touch the
    buffer while the device owns it."""
    m = machine(cpu, api)
    buf = Buffer(m, "lowmem", 4, 100)
    va = buf.cpu_fill(data_of(100, 1), buf.around(0xA7))
    h = m.dma_map_page(LOW_PFN, 4, 100, emu.DMA_FROM_DEVICE)
    for r in range(3):
        dev = data_of(100, 0x40 + r)
        m.device.write(h, dev)
        m.dma_sync_single_for_cpu(h, 100, emu.DMA_FROM_DEVICE)
        assert buf.cpu_read(va)[0] == dev
        m.dma_sync_single_for_device(h, 100, emu.DMA_FROM_DEVICE)
    m.dma_unmap_page(h, 100, emu.DMA_FROM_DEVICE)
    assert m.dma_debug_errors == 0
    assert_clean_oracle(m)


@pytest.mark.parametrize("cpu", CORES)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("dname", ["to", "from"])
def test_scatter_gather_over_every_page_kind(cpu, api, dname):
    """dma_map_sg over a lowmem, a kmapped, a lazily mapped and an unmapped highmem entry."""
    d = DIRS[dname]
    m = machine(cpu, api)
    entries = [("lowmem", LOW_PFN, 40, 200), ("kmapped", 100, 0, 4096),
               ("lazy", 110, 4, 100), ("unmapped", 120, 100, 1000)]
    bufs, datas = [], []
    for i, (kind, pfn, off, n) in enumerate(entries):
        b = Buffer(m, kind, off, n)
        b.pfn = pfn
        b.pieces = [(pfn, off, n, 0)]
        b.cpu_fill(data_of(n, 0x10 + i), b.around(0xA7))
        bufs.append(b)
        datas.append(data_of(n, 0x80 + i))
    for b in bufs:
        b.release()
    sg = [(pfn, off, n) for _, pfn, off, n in entries]
    handles = m.dma_map_sg(sg, d)
    assert handles == [(pfn << 12) + off for _, pfn, off, _ in entries]
    for i, (h, (_, _, _, n)) in enumerate(zip(handles, entries)):
        if d == emu.DMA_TO_DEVICE:
            assert m.device.read(h, n) == data_of(n, 0x10 + i)
        else:
            m.device.write(h, datas[i])
    m.dma_unmap_sg(sg, d)
    for i, b in enumerate(bufs):
        want = data_of(b.size, 0x10 + i) if d == emu.DMA_TO_DEVICE else datas[i]
        assert b.cpu_read(b.cpu_access())[0] == want
    assert m.dma_debug_errors == 0
    assert_clean_oracle(m)


# ---------------------------------------------------------------------------------------------
# the driver bug: the CPU reads the buffer while the device owns it
# ---------------------------------------------------------------------------------------------

STALE = list(itertools.product(CORES, ["from", "bidi"], APIS, ["lowmem", "kmapped", "lazy"],
                               ["page", "unaligned"]))


@pytest.mark.parametrize("cpu,dname,api,kind,align", STALE)
def test_cpu_read_while_the_device_owns_the_buffer(cpu, dname, api, kind, align):
    """After dma_map_page the CPU reads the buffer (a driver bug): its lines are cached with
    the old bytes. 2.6.30's dma_unmap_page does nothing, so the CPU's next read returns those
    stale bytes and the oracle reports a stale read; the v3 unmap invalidates them again
    (``__dma_page_dev_to_cpu``), so the read is correct."""
    d = DIRS[dname]
    off, size = ALIGNS[align]
    m = machine(cpu, api)
    buf = Buffer(m, kind, off, size)
    around = buf.around(0xA7)
    buf.cpu_fill(data_of(size, 0x31), around)
    buf.release()
    h = m.dma_map_page(buf.pfn, off, size, d)

    old, _ = buf.cpu_read(buf.cpu_access())                # the bug: lines cached again
    buf.release()
    assert m.findings() == []                              # RAM still holds what was read
    dev = data_of(size, 0xC4)
    m.device.write(h, dev)
    m.dma_unmap_page(h, size, d)

    va = buf.cpu_access()
    got = b"".join(m.read(va[pfn] + o, n) for pfn, o, n, _ in buf.pieces)
    reads = m.stale_reads()
    lines = buf.cpu_read(va)[1]
    stale = sum(a != b for a, b in zip(old, dev))
    assert stale > 0
    if api == "2.6.30":
        assert got == old != dev
        assert reads and all(f.kind == "stale-read" for f in reads)
        assert {f.pfn for f in reads} == {buf.pfn}
        assert sum(f.bad_bytes for f in reads) == stale
        for f in reads:                                    # expected = device, found = cache
            o = f.pa - ((buf.pfn << 12) + off)
            if 0 <= o and o + len(f.expected) <= size:
                assert f.expected == dev[o:o + len(f.expected)]
                assert f.found == old[o:o + len(f.found)]
        assert m.lost_writes() == []
    else:
        assert got == dev
        assert lines == buf.expected_lines(around, dev)
        assert m.findings() == []
    assert m.check_integrity() == 0                        # nothing written was lost
