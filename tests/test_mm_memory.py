"""CPU memory access through the MMU, the pkmap TLB and the VIVT D-cache (``m.read`` /
``m.write``), against RAM as a bus master sees it (``m.phys_read``).

* Data stored through a pkmap address reaches RAM once ``flush_cache_kmaps()`` ran (a wrap or
  ``kmap_flush_unused``); before that it may sit dirty in the cache. All presets are
  read-allocate (ARM926 TRM §4.1, spec §3.11): a store that misses goes straight to RAM, so a
  test reads the line first to get a dirty line.
* A stale pkmap address still translates through the TLB after ``pte_clear`` until the TLB
  flush, then faults with the kernel's oops wording.
* Lowmem round trips through the linear map; never-written RAM reads as the poison 0x5A.
* Accesses spanning lines and pages; accesses to unmapped addresses fault and change nothing.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import pytest

import emu

POISON = 0x5A
PKMAP_BASE = 0xBFE00000
PAGE_OFFSET = 0xC0000000
PRESETS = ("arm926", "feroceon", "xscale", "sa110")


def machine(**kw):
    kw.setdefault("last_pkmap", 8)
    return emu.Machine(lowmem_mb=0.25, highmem_mb=4, **kw)


def ram(m, pfn, off=0, n=4096):
    return m.phys_read(pfn * 4096 + off, n)


def pattern(n, salt=0):
    return bytes((salt + 7 * k + 1) & 0xFF for k in range(n))


def snapshot(m, pfns=()):
    """Everything an access could change: cache lines, counters, TLBs, PTEs, RAM of pages."""
    cache = {k: v.tobytes() for k, v in m.cache.state().items()}
    return (cache, m.cache.stats, m.mm_stats, m.last_pkmap_nr, m.pkmap_count.tolist(),
            [m.pkmap_page(i) for i in range(m.LAST_PKMAP)],
            [m.tlb_page(i, c) for c in range(m.ncpus) for i in range(m.LAST_PKMAP)],
            [ram(m, p) for p in pfns])


# ---------------------------------------------------------------------------------------------
# write-back through pkmap addresses
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cpu", PRESETS)
def test_dirty_pkmap_data_reaches_ram_when_the_slot_is_flushed(cpu):
    m = machine(cpu=cpu)
    va = m.kmap(100)
    assert va == 0xBFE01000
    data = pattern(64, 3)
    assert m.read(va + 64, 64) == bytes([POISON]) * 64          # read-allocates two lines
    m.write(va + 64, data)                                       # hits: dirty in the cache
    assert m.read(va + 64, 64) == data
    assert ram(m, 100, 64, 64) == bytes([POISON]) * 64           # RAM has not seen it yet
    line = m.cache.probe(va + 64)
    assert line is not None and line.dirty and line.pa == 100 * 4096 + 64
    m.kunmap(100)                                                # count 1: still mapped
    assert ram(m, 100, 64, 64) == bytes([POISON]) * 64
    m.kmap_flush_unused()                                        # flush_cache_kmaps, pte_clear
    assert ram(m, 100, 64, 64) == data
    assert m.cache.probe(va + 64) is None or not m.cache.probe(va + 64).dirty
    assert m.page_address(100) == 0
    # mapped again (another slot), the CPU sees the same bytes
    va2 = m.kmap(100)
    assert va2 == 0xBFE02000
    assert m.read(va2 + 64, 64) == data


@pytest.mark.parametrize("cpu", PRESETS)
def test_store_miss_goes_straight_to_ram(cpu):
    m = machine(cpu=cpu)
    va = m.kmap(100)
    m.write(va + 100, b"straight")                # no line cached: read-allocate only
    assert m.cache.probe(va + 100) is None
    assert ram(m, 100, 100, 8) == b"straight"
    assert m.read(va + 100, 8) == b"straight"


def test_a_wrap_writes_back_dirty_lines_of_still_pinned_slots():
    m = machine(last_pkmap=4)
    va = m.kmap(100)                              # slot 1, stays pinned
    m.read(va, 32)
    m.write(va, pattern(32))
    assert ram(m, 100, 0, 32) == bytes([POISON]) * 32
    m.kmap(101)
    m.kmap(102)                                   # slots 2, 3
    flushes = m.mm_stats["cache_flushes"]
    assert m.kmap(103) == PKMAP_BASE              # the wrap to slot 0 flushes the whole cache
    assert m.mm_stats["cache_flushes"] == flushes + 1
    assert ram(m, 100, 0, 32) == pattern(32)
    assert m.page_address(100) == va and m.read(va, 32) == pattern(32)


def test_a_recycled_slot_shows_the_new_page_not_the_old_lines():
    """VIVT: slot 1 first maps p100 (lines cached and dirty), then p104. The flush before the
    reuse must leave no line of p100 under the slot's virtual address."""
    m = machine(last_pkmap=4)
    va = m.kmap(100)
    m.read(va, 4096)
    m.write(va, pattern(4096, 1))
    m.kunmap(100)
    m.kmap(101), m.kmap(102), m.kmap(103)         # slots 2, 3, then 0 (the wrap frees slot 1)
    assert m.kmap(104) == va
    assert m.read(va, 4096) == bytes([POISON]) * 4096
    assert ram(m, 100) == pattern(4096, 1)
    m.write(va + 8, b"p104")
    m.kunmap(104)
    m.kmap_flush_unused()
    assert ram(m, 104, 8, 4) == b"p104"
    assert ram(m, 100) == pattern(4096, 1)


# ---------------------------------------------------------------------------------------------
# the TLB: stale translations until flush_tlb_kernel_range
# ---------------------------------------------------------------------------------------------


def test_stale_pkmap_address_faults_after_the_flush():
    m = machine()
    va = m.kmap(100)
    m.write(va + 16, b"data")
    assert m.read(va + 16, 4) == b"data"
    assert m.tlb_page(1) == 100                   # the access walked the table
    m.kunmap(100)
    assert m.read(va + 16, 4) == b"data"          # count 1: lazily mapped, still usable
    m.kmap_flush_unused()
    assert m.pkmap_page(1) == -1 and m.tlb_page(1) == -1
    before = snapshot(m, [100])
    with pytest.raises(emu.PageFault, match=r"^Unable to handle kernel paging request at "
                                            r"virtual address bfe01010$"):
        m.read(va + 16, 4)
    with pytest.raises(emu.PageFault, match=r"virtual address bfe01000$"):
        m.write(va, b"late")
    assert snapshot(m, [100]) == before


def test_tlb_entry_outlives_pte_clear_until_the_tlb_flush():
    """pte_clear() leaves every CPU's TLB entry (spec §1.4, §2); only the window TLB flush drops
    it. A direct call never stops between the two, so this drives emu's own pgtable kernels on
    the machine's state (from a jitted shim: they are kernel helpers) to open the window."""
    from emu.mm import pgtable

    pte_clear = numba.njit(lambda S, nr: pgtable.pte_clear(S, nr))
    flush_tlb_kernel_range = numba.njit(lambda S, a, b: pgtable.flush_tlb_kernel_range(S, a, b))

    m = machine(ncpus=2)
    va = m.kmap(100)
    m.write(va, b"old page")
    assert m.read(va, 8) == b"old page"
    assert (m.tlb_page(1, 0), m.tlb_page(1, 1)) == (100, -1)
    clears = m.mm_stats["pte_clear"]
    pte_clear(m._S, 1)
    assert m.mm_stats["pte_clear"] == clears + 1
    assert m.pkmap_page(1) == -1
    assert m.tlb_page(1) == 100                   # the TLB still holds the translation
    assert m.read(va, 8) == b"old page"           # ... and the CPU still uses it
    m.write(va, b"via TLB!")
    assert m.read(va, 8) == b"via TLB!"
    m.cache.flush_all()
    assert ram(m, 100, 0, 8) == b"via TLB!"
    with pytest.raises(emu.PageFault, match="bfe02000"):       # no TLB entry, no PTE
        m.read(va + 4096, 1)
    tlb_flushes = m.mm_stats["tlb_flushes"]
    flush_tlb_kernel_range(m._S, PKMAP_BASE, PKMAP_BASE + m.LAST_PKMAP * 4096)
    assert m.mm_stats["tlb_flushes"] == tlb_flushes + 1
    assert m.tlb_page(1, 0) == -1 and m.tlb_page(1, 1) == -1
    with pytest.raises(emu.PageFault, match=r"^Unable to handle kernel paging request at "
                                            r"virtual address bfe01000$"):
        m.read(va, 8)


def test_set_pte_after_a_flush_is_seen_through_a_fresh_walk():
    m = machine(last_pkmap=4)
    va = m.kmap(100)
    m.read(va, 1)
    assert m.tlb_page(1) == 100
    m.kunmap(100)
    for p in (101, 102, 103):
        m.kmap(p)                                 # the wrap frees slot 1 and flushes the TLB
    assert m.tlb_page(1) == -1
    assert m.kmap(104) == va
    assert m.tlb_page(1) == -1                    # set_pte does not fill the TLB
    m.write(va, b"104")
    assert m.tlb_page(1) == 104
    assert m.read(va, 3) == b"104"


# ---------------------------------------------------------------------------------------------
# lowmem, poison, spans
# ---------------------------------------------------------------------------------------------


def test_lowmem_round_trip_through_the_linear_map():
    m = machine()
    va = m.kmap(5)
    assert va == PAGE_OFFSET + 5 * 4096
    assert m.read(va, 16) == bytes([POISON]) * 16
    m.write(va + 1000, b"lowmem bytes")
    assert m.read(va + 1000, 12) == b"lowmem bytes"
    assert ram(m, 5, 1000, 12) == b"lowmem bytes"              # store missed: RAM directly
    m.read(va + 2048, 32)
    m.write(va + 2048, b"dirty")                               # hit: dirty line
    assert ram(m, 5, 2048, 5) == bytes([POISON]) * 5
    m.kmap_flush_unused()                                      # flush_cache_all covers lowmem
    assert ram(m, 5, 2048, 5) == b"dirty"
    assert m.mm_stats["tlb_walks"] == 0                        # section-mapped, no pkmap TLB


def test_never_written_ram_reads_as_poison():
    m = machine()
    assert m.phys_read(0, 64) == bytes([POISON]) * 64
    assert m.phys_read(1087 * 4096, 4096) == bytes([POISON]) * 4096
    assert m.read(PAGE_OFFSET, 4096) == bytes([POISON]) * 4096
    assert m.read(PAGE_OFFSET + 63 * 4096 + 4000, 96) == bytes([POISON]) * 96
    va = m.kmap(1087)
    assert m.read(va, 4096) == bytes([POISON]) * 4096
    m.phys_write(1087 * 4096 + 4095, b"\x00")
    m.kmap_flush_unused()                          # drop the lines read above
    assert m.read(va + 4094, 2) == bytes([POISON, 0])


def test_accesses_spanning_lines_and_pages_lowmem():
    m = machine()
    va = PAGE_OFFSET + 5 * 4096 + 4000                         # pages 5 and 6, 4 lines + edges
    data = pattern(300, 9)
    m.read(va, 300)                                            # cache every line first
    m.write(va, data)
    assert m.read(va, 300) == data
    assert m.read(va + 17, 50) == data[17:67]
    m.cache.flush_all()
    assert ram(m, 5, 4000, 96) == data[:96] and ram(m, 6, 0, 204) == data[96:]
    assert ram(m, 5, 3999, 1) == bytes([POISON]) and ram(m, 6, 204, 1) == bytes([POISON])


def test_accesses_spanning_adjacent_pkmap_slots():
    m = machine()
    a = m.kmap(200)
    b = m.kmap(150)
    assert b == a + 4096                          # slots 1 and 2
    data = pattern(200, 5)
    m.write(a + 4000, data)                       # tail of page 200, head of page 150
    assert m.read(a + 4000, 200) == data
    assert m.read(b, 104) == data[96:]
    m.kunmap(200), m.kunmap(150)
    m.kmap_flush_unused()
    assert ram(m, 200, 4000, 96) == data[:96] and ram(m, 150, 0, 104) == data[96:]


def test_access_from_the_last_slot_runs_into_lowmem():
    m = machine(last_pkmap=512)
    for p in range(100, 611):                    # slots 1..511
        m.kmap(p)
    top = m.page_address(610)
    assert top == 0xBFFFF000
    data = pattern(200, 11)
    m.write(top + 4000, data)                    # page 610's tail, then lowmem page 0
    assert m.read(top + 4000, 200) == data
    assert m.read(PAGE_OFFSET, 104) == data[96:]
    m.kmap_flush_unused()
    assert ram(m, 610, 4000, 96) == data[:96] and ram(m, 0, 0, 104) == data[96:]


# ---------------------------------------------------------------------------------------------
# unmapped addresses
# ---------------------------------------------------------------------------------------------

UNMAPPED = [
    (0x00000000, "user space (NULL)"),
    (0x00008000, "user space"),
    (0x7FFFF000, "user space top"),
    (0xBFDFF000, "module area just below PKMAP_BASE"),
    (0xBFE00000, "pkmap slot 0, never mapped"),
    (0xBFE05000, "pkmap slot 5, never mapped"),
    (0xC0040000, "past the end of lowmem (0.25 MiB)"),
    (0xD0000000, "vmalloc area"),
    (0xFFFF0000, "vectors page"),
]


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
@pytest.mark.parametrize("va,what", UNMAPPED, ids=[w for _, w in UNMAPPED])
def test_unmapped_addresses_fault_and_change_nothing(va, what, write):
    m = machine()
    a = m.kmap(100)
    m.read(a, 64)
    m.write(a, b"dirty line")                     # some cache and TLB state to preserve
    m.write(PAGE_OFFSET + 4096, b"lowmem")
    before = snapshot(m, [0, 1, 100])
    for off, n in ((0, 4), (123, 1), (4095, 2)):
        with pytest.raises(emu.PageFault, match=rf"^Unable to handle kernel paging request at "
                                                rf"virtual address {va + off:08x}$"):
            if write:
                m.write(va + off, b"\xEE" * n)
            else:
                m.read(va + off, n)
    assert snapshot(m, [0, 1, 100]) == before


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_span_into_an_unmapped_page_faults_there_and_moves_nothing(write):
    m = machine()
    a = m.kmap(100)                               # slot 1 mapped; slot 2 not
    m.read(a + 4064, 32)
    lowtop = PAGE_OFFSET + 64 * 4096
    before = snapshot(m, [63, 100])
    cases = ((a + 4000, 200, a + 4096), (lowtop - 10, 20, lowtop),
             (PKMAP_BASE - 8, 16, PKMAP_BASE - 8))
    for start, n, fault in cases:
        with pytest.raises(emu.PageFault, match=rf"virtual address {fault:08x}$"):
            if write:
                m.write(start, b"\xEE" * n)
            else:
                m.read(start, n)
    assert snapshot(m, [63, 100]) == before


def test_zero_length_accesses_are_harmless():
    m = machine()
    before = snapshot(m)
    assert m.read(0xBFE03000, 0) == b""
    m.write(0x1000, b"")
    assert snapshot(m) == before


# ---------------------------------------------------------------------------------------------
# addresses between the last slot and PAGE_OFFSET (LAST_PKMAP < 512)
# ---------------------------------------------------------------------------------------------

_PAST_WINDOW = textwrap.dedent("""
    import sys
    import numpy as np
    import emu
    last = int(sys.argv[1])
    m = emu.Machine(lowmem_mb=0.25, highmem_mb=4, last_pkmap=last)
    m.kmap(100)
    ram0 = m.phys_read(0, 1088 * 4096)
    pa0 = [m.page_address(p) for p in range(64, 1088)]
    bad = []
    for va in range(0xBFE00000 + last * 4096, 0xC0000000, 4096):
        for op in ("read", "write"):
            try:
                if op == "read":
                    m.read(va, 4)
                else:
                    m.write(va, b"\\xAA" * 4)
                bad.append(f"{op} {va:#x} did not fault")
            except emu.PageFault as e:
                if f"{va:08x}" not in str(e):
                    bad.append(f"{op} {va:#x}: {e}")
    m.cache.flush_all()
    if m.phys_read(0, 1088 * 4096) != ram0:
        d = np.flatnonzero(np.frombuffer(m.phys_read(0, 1088 * 4096), np.uint8)
                           != np.frombuffer(ram0, np.uint8))
        bad.append(f"RAM of pages {sorted(set((d // 4096).tolist()))[:8]} changed")
    if [m.page_address(p) for p in range(64, 1088)] != pa0:
        bad.append("page_address hash changed")
    print("BAD " + "; ".join(bad[:6]) if bad else "OK")
""")


@pytest.mark.parametrize("last", [4, 256])
def test_addresses_past_the_last_slot_fault_and_change_nothing(last):
    """With LAST_PKMAP < 512 the window is [PKMAP_BASE, PKMAP_ADDR(LAST_PKMAP)) (spec §2
    PKMAP_ADDR); above it, up to PAGE_OFFSET, nothing is mapped. Runs in a child process: emu
    once indexed its TLB/PTE arrays with such slot numbers unchecked, which wrote other pages
    and could crash the interpreter (a regression must not take the test session down)."""
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", _PAST_WINDOW, str(last)], cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"child died with status {r.returncode}: {r.stderr[-500:]}"
    assert r.stdout.strip().splitlines()[-1] == "OK", r.stdout[-1500:]


def test_written_and_touched_flags_are_masks_of_512_byte_blocks():
    """A page's H_B_RAMDIRTY and H_B_TOUCHED bytes carry one bit per 512-byte block, so a
    snapshot restore and the final check cover only the blocks written: a CPU store into
    block 3, a device write across blocks 6-7 and into the next page, a RAM-only write."""
    m = machine()
    S, B = m._S, m._B
    rd, tb = int(S[emu.consts.H_B_RAMDIRTY]), int(S[emu.consts.H_B_TOUCHED])
    pa = 40 * 4096
    B[rd:rd + int(S[emu.consts.H_NPAGES])] = 0
    B[tb:tb + int(S[emu.consts.H_NPAGES])] = 0
    m.phys_write(pa + 3 * 512 + 7, b"\x01\x02")
    assert (B[rd + 40], B[tb + 40]) == (1 << 3, 1 << 3)
    m.device.write(pa + 6 * 512 + 500, bytes(524 + 4096 + 10))  # to page 42's block 0
    assert (B[rd + 40], B[tb + 40]) == ((1 << 3) | 0xC0, (1 << 3) | 0xC0)
    assert (B[rd + 41], B[tb + 41]) == (0xFF, 0xFF)
    assert (B[rd + 42], B[tb + 42]) == (1, 1)
    m.cache.ram_write(pa + 4096 * 2 + 1024, b"\x09")          # what a lost write looks like
    assert (B[rd + 42], B[tb + 42]) == (1 | 1 << 2, 1 | 1 << 2)
