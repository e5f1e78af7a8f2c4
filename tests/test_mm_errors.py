"""Errors of the mm layer: bad ``Machine`` arguments raise ``ValueError`` naming the argument;
bad page frame numbers, slot numbers and addresses raise ``ValueError`` naming theirs; kernel
BUGs raise ``KernelBug``; and after every rejected call the machine is exactly as it was
(pkmap_count, cursor, PTEs, TLBs, page_address of every page, mm_stats, the whole D-cache and
the RAM the machine touched) and keeps working.
"""

import re

import numpy as np
import pytest

import emu

LOW_MB, HIGH_MB = 0.25, 4
NPAGES = 64 + 1024


def machine(**kw):
    kw.setdefault("last_pkmap", 8)
    kw.setdefault("lowmem_mb", LOW_MB)
    kw.setdefault("highmem_mb", HIGH_MB)
    return emu.Machine(**kw)


# ---------------------------------------------------------------------------------------------
# Machine(...) arguments
# ---------------------------------------------------------------------------------------------

BAD_MACHINE_ARGS = [
    ("cpu", dict(cpu="arm7tdmi")),
    ("cpu", dict(cpu="")),
    ("cpu", dict(cpu=None)),
    ("cpu", dict(cpu="ARM926")),
    ("last_pkmap", dict(last_pkmap=3)),
    ("last_pkmap", dict(last_pkmap=12)),
    ("last_pkmap", dict(last_pkmap=1)),
    ("last_pkmap", dict(last_pkmap=0)),
    ("last_pkmap", dict(last_pkmap=-8)),
    ("last_pkmap", dict(last_pkmap=8192)),
    ("last_pkmap", dict(last_pkmap=8.0)),
    ("last_pkmap", dict(last_pkmap="8")),
    ("last_pkmap", dict(last_pkmap=True)),
    ("lowmem_mb", dict(lowmem_mb=0)),
    ("lowmem_mb", dict(lowmem_mb=-1)),
    ("lowmem_mb", dict(lowmem_mb=0.001)),               # not a multiple of 4 KiB
    ("lowmem_mb", dict(lowmem_mb="16")),
    ("lowmem_mb", dict(lowmem_mb=None)),
    ("lowmem_mb", dict(lowmem_mb=True)),
    ("lowmem_mb", dict(lowmem_mb=1024)),                # linear map past 0xF0000000
    ("highmem_mb", dict(highmem_mb=-4)),
    ("highmem_mb", dict(highmem_mb=1 / 3)),
    ("highmem_mb", dict(highmem_mb="4")),
    ("highmem_mb", dict(highmem_mb=False)),
    ("highmem_mb", dict(highmem_mb=4096)),              # RAM past 4 GiB
    ("ncpus", dict(ncpus=0)),
    ("ncpus", dict(ncpus=-1)),
    ("ncpus", dict(ncpus=1000)),
    ("ncpus", dict(ncpus=2.0)),
    ("ncpus", dict(ncpus="2")),
    ("ncpus", dict(ncpus=True)),
    ("kmap_high_get", dict(kmap_high_get=1)),
    ("kmap_high_get", dict(kmap_high_get="yes")),
    ("kmap_high_get", dict(kmap_high_get=None)),
    ("dma_pinning", dict(dma_pinning="kmap")),
    ("dma_pinning", dict(dma_pinning=0)),
    ("dma_pinning", dict(kmap_high_get=False, dma_pinning="kmap_high_get")),
    ("seed", dict(seed=-1)),
    ("seed", dict(seed=1.5)),
    # not finite, or too big to become a page count / an int64 header slot
    ("lowmem_mb", dict(lowmem_mb=float("inf"))),
    ("lowmem_mb", dict(lowmem_mb=1e308)),
    ("lowmem_mb", dict(lowmem_mb=float("nan"))),
    ("highmem_mb", dict(highmem_mb=float("inf"))),
    ("highmem_mb", dict(highmem_mb=-float("inf"))),
    ("highmem_mb", dict(highmem_mb=1e308)),
    ("highmem_mb", dict(highmem_mb=float("nan"))),
    ("highmem_mb", dict(highmem_mb=2**80)),
    ("page_offset", dict(page_offset=3221225472.0)),
    ("page_offset", dict(page_offset="0xC0000000")),
    ("page_offset", dict(page_offset=True)),
    ("page_offset", dict(page_offset=0xD0000000)),
    ("page_offset", dict(page_offset=2**70)),
    ("timeslice", dict(timeslice=2**70)),
    ("timeslice", dict(timeslice=2**63)),
    ("timeslice", dict(timeslice=-1)),
    ("timeslice", dict(timeslice=1.5)),
    ("program_rows", dict(program_rows=2**70)),
    ("data_bytes", dict(data_bytes=2**70)),
    ("trace_events", dict(trace_events=2**70)),
]


@pytest.mark.parametrize("name,kw", BAD_MACHINE_ARGS,
                         ids=[f"{n}={list(kw.values())[-1]!r}" for n, kw in BAD_MACHINE_ARGS])
def test_bad_machine_argument_names_it(name, kw):
    with pytest.raises(ValueError, match=rf"^{name}="):
        machine(**kw)


def test_bad_cpu_lists_the_presets():
    with pytest.raises(ValueError, match=r"'arm926'.*'feroceon'.*'xscale'.*'sa110'"):
        machine(cpu="cortex-a8")


def test_good_machine_arguments():
    for last in (2, 4, 64, 512, 1024, 4096, np.int64(8), np.uint16(64)):
        m = machine(last_pkmap=last)
        assert m.LAST_PKMAP == last and type(m.LAST_PKMAP) is int
        # ARM's window is the PMD below PAGE_OFFSET; a larger one ends there too
        assert m.PKMAP_BASE == 0xC0000000 - max(2 << 20, int(last) * 4096)
        assert m.kmap(64) == m.PKMAP_BASE + 4096            # the first slot handed out is 1
    for cpu in ("arm926", "feroceon", "xscale", "sa110"):
        assert machine(cpu=cpu).cpu == cpu
    m = machine(highmem_mb=0)
    assert m.highmem_pfns == range(64, 64)
    m = machine(kmap_high_get=False, dma_pinning="page_address")
    assert not m.kmap_high_get_enabled
    m = machine(kmap_high_get=True, dma_pinning="page_address")
    assert m.dma_pinning == "page_address" and m.kmap_high_get(100) == 0
    assert machine(ncpus=8).ncpus == 8


BAD_COSTS = [
    ({"mrs": 2**70}, r"^costs: mrs=1180591620717411303424: cycles must be a non-negative int"),
    ({"mrs": 2**62}, r"^costs: mrs=4611686018427387904: .*<= 1000000"),
    ({"mrs": 1_000_001}, r"^costs: mrs=1000001"),
    ({"bus_mhz": 1e-300}, r"^costs: bus_mhz=1e-300: must be a positive number of MHz in"),
    ({"bus_mhz": float("nan")}, r"^costs: bus_mhz=nan"),
    ({"core_mhz": float("inf")}, r"^costs: core_mhz=inf"),
    ({"core_mhz": 1e300}, r"^costs: core_mhz=1e\+300"),
]


@pytest.mark.parametrize("costs, match", BAD_COSTS, ids=[repr(c) for c, _ in BAD_COSTS])
def test_bad_costs_name_the_key(costs, match):
    with pytest.raises(ValueError, match=match):
        machine(costs=costs)


def test_good_machine_arguments_at_the_limits():
    m = machine(lowmem_mb=np.float64(0.25), highmem_mb=np.int64(1),
                page_offset=np.int64(0x80000000), timeslice=2**63 - 1)
    assert m.PAGE_OFFSET == 0x80000000 and len(m.highmem_pfns) == 256
    m = machine(costs={"mrs": 1_000_000, "bus_mhz": 1, "core_mhz": 10_000})
    m.kmap_high(64)
    assert 0 < m.cycles[0] < 2**40


# ---------------------------------------------------------------------------------------------
# a machine with some state, and "nothing changed" checks
# ---------------------------------------------------------------------------------------------

PAGES = list(range(0, 64, 9)) + list(range(64, 80)) + [NPAGES - 1]


@pytest.fixture
def busy():
    """Slots at count 2, 3 and 1, dirty cache lines (lowmem and pkmap), TLB entries."""
    m = machine(ncpus=2)
    a = m.kmap(64)                       # slot 1, count 2
    m.kmap(65)
    m.kmap(65)                           # slot 2, count 3
    m.kmap(66)
    m.kunmap(66)                         # slot 3, count 1
    for va in (a, m.page_address(66), 0xC0000000 + 9 * 4096):
        m.read(va, 64)
        m.write(va + 8, b"dirty!")
    m.write(a + 2048, b"ram")            # store miss: RAM
    assert m.cache.stats["stores"] and any(line.dirty for line in m.cache.lines())
    return m


def snapshot(m):
    cache = {k: v.tobytes() for k, v in m.cache.state().items()}
    return dict(
        counts=m.pkmap_count.tolist(), cursor=m.last_pkmap_nr, mm=m.mm_stats,
        ptes=[m.pkmap_page(i) for i in range(m.LAST_PKMAP)],
        tlbs=[m.tlb_page(i, c) for c in range(m.ncpus) for i in range(m.LAST_PKMAP)],
        page_address=[m.page_address(p) for p in PAGES], cache=cache, cstats=m.cache.stats,
        ram=[m.phys_read(p * 4096, 4096) for p in (9, 64, 65, 66)],
    )


def assert_unchanged(m, before):
    after = snapshot(m)
    for k in before:
        assert after[k] == before[k], f"{k} changed"


def assert_still_works(m):
    """kmap_lock was released and the direct task is runnable again."""
    va = m.kmap(70)
    m.write(va, b"ok")
    assert m.read(va, 2) == b"ok"
    m.kunmap(70)


# ---------------------------------------------------------------------------------------------
# bad page frame numbers
# ---------------------------------------------------------------------------------------------

BAD_PFNS = [-1, NPAGES, NPAGES + 1, 10**12, -10**12, True, False, 100.0, "100", None,
            np.int64(-1), np.int64(NPAGES), [100]]

PFN_CALLS = ["kmap", "kunmap", "kmap_high", "kunmap_high", "kmap_high_get", "page_address",
             "pfn_to_phys"]


@pytest.mark.parametrize("call", PFN_CALLS)
def test_bad_pfn_is_rejected_and_changes_nothing(busy, call):
    before = snapshot(busy)
    for pfn in BAD_PFNS:
        with pytest.raises(ValueError, match=r"^pfn="):
            getattr(busy, call)(pfn)
    assert_unchanged(busy, before)
    assert_still_works(busy)


@pytest.mark.parametrize("call", ["kmap_high", "kunmap_high", "kmap_high_get"])
def test_lowmem_pfn_to_a_highmem_routine_is_rejected(busy, call):
    before = snapshot(busy)
    for pfn in (0, 9, 63, np.int64(63)):
        with pytest.raises(ValueError, match=rf"^pfn={int(pfn)}: {call}\(\) takes a highmem "
                                             r"page.*range\(64, 1088\)"):
            getattr(busy, call)(pfn)
    assert_unchanged(busy, before)


def test_numpy_integer_pfns_are_accepted():
    m = machine()
    assert m.kmap(np.int64(100)) == m.kmap(100) == 0xBFE01000
    assert m.pkmap_count[1] == 3
    assert m.kmap_high_get(np.int32(100)) == 0xBFE01000
    m.kunmap_high(np.uint16(100))
    assert m.page_address(np.int64(100)) == 0xBFE01000
    assert m.pfn_to_phys(np.int64(5)) == 5 * 4096


def test_highmem_routines_on_a_machine_without_highmem():
    m = machine(highmem_mb=0)
    with pytest.raises(ValueError, match=r"^pfn=64"):
        m.kmap_high(64)
    with pytest.raises(ValueError, match=r"^pfn=5: kmap_high\(\) takes a highmem page"):
        m.kmap_high(5)
    assert m.kmap(5) == 0xC0005000


# ---------------------------------------------------------------------------------------------
# bad slot numbers, CPUs, addresses
# ---------------------------------------------------------------------------------------------


def test_bad_slot_and_cpu_numbers(busy):
    before = snapshot(busy)
    for nr in (-1, 8, 512, True, 1.0, "1"):
        with pytest.raises(ValueError, match=r"^nr="):
            busy.pkmap_page(nr)
        with pytest.raises(ValueError, match=r"^nr="):
            busy.tlb_page(nr)
    for cpu in (-1, 2, True, "0"):
        with pytest.raises(ValueError, match=r"^cpu="):
            busy.tlb_page(1, cpu)
    assert_unchanged(busy, before)


def test_bad_access_arguments(busy):
    before = snapshot(busy)
    a = busy.page_address(64)
    bad = [
        ("vaddr", lambda: busy.read(-1, 4)),
        ("vaddr", lambda: busy.read(1 << 32, 4)),
        ("vaddr", lambda: busy.write(a + 0.0, b"x")),
        ("vaddr", lambda: busy.read(None, 4)),
        ("n", lambda: busy.read(a, -1)),
        ("n", lambda: busy.read(a, 2.0)),
        ("n", lambda: busy.read(0xFFFFFFFC, 8)),           # passes the end of 32-bit space
        ("n", lambda: busy.write(0xFFFFFFFF, b"ab")),
        ("data", lambda: busy.write(a, [1, 2, 3])),
        ("data", lambda: busy.write(a, "text")),
        ("data", lambda: busy.write(a, np.zeros((2, 2), np.uint8))),
        ("paddr", lambda: busy.phys_read(-1, 1)),
        ("paddr", lambda: busy.phys_read(NPAGES * 4096 - 2, 4)),
        ("paddr", lambda: busy.phys_write(NPAGES * 4096, b"x")),
        ("n", lambda: busy.phys_read(0, -4)),
    ]
    for name, call in bad:
        with pytest.raises(ValueError, match=rf"^{name}[=:]"):
            call()
    assert_unchanged(busy, before)
    assert_still_works(busy)


# ---------------------------------------------------------------------------------------------
# kernel BUGs, sleeps and faults change nothing (and the machine keeps working)
# ---------------------------------------------------------------------------------------------


def test_kernel_bugs_change_nothing(busy):
    before = snapshot(busy)
    cases = [
        (busy.kunmap_high, 67,
         r"^kunmap_high: page 67 has no virtual address \(BUG_ON\(!vaddr\)\)$"),
        (busy.kunmap, 67, r"page 67 has no virtual address"),
        (busy.kunmap_high, 66, r"^kunmap_high: unbalanced kunmap of page 66: pkmap_count\[3\] "
                               r"is 1 and would drop to 0"),
        (busy.kunmap, 66, r"unbalanced kunmap of page 66"),
        (busy.kunmap_high, NPAGES - 1, r"page 1087 has no virtual address"),
    ]
    for fn, pfn, msg in cases:
        for _ in range(2):
            with pytest.raises(emu.KernelBug, match=msg):
                fn(pfn)
    assert_unchanged(busy, before)
    assert_still_works(busy)
    # the count-1 slot of page 66 is still the same lazily kept mapping
    assert busy.pkmap_count[3] == 1 and busy.page_address(66) == 0xBFE03000


def test_page_faults_change_nothing(busy):
    before = snapshot(busy)
    for va in (0x0, 0xBFE05000, 0xC0040000, 0xE0000000):
        with pytest.raises(emu.PageFault):
            busy.read(va, 4)
        with pytest.raises(emu.PageFault):
            busy.write(va, b"\x01\x02")
    assert_unchanged(busy, before)
    assert_still_works(busy)


def test_missing_kmap_high_get_changes_nothing():
    m = machine(kmap_high_get=False)
    m.kmap(100)
    m.kunmap(100)
    before = snapshot(m)
    for pfn in (100, 101):
        with pytest.raises(emu.EmuError, match=r"kmap_high_get=False") as e:
            m.kmap_high_get(pfn)
        assert type(e.value) is emu.EmuError
    assert_unchanged(m, before)
    assert_still_works(m)


def test_would_sleep_keeps_only_the_scan_effects_and_the_machine_recovers(busy):
    # busy: slot 1 p64 (2), slot 2 p65 (3), slot 3 p66 (1), cursor 3
    for p, nr in ((70, 4), (71, 5), (72, 6), (73, 7), (74, 0), (75, 3)):
        assert busy.kmap(p) == 0xBFE00000 + nr * 4096    # the wrap to 0 freed slot 3
    assert busy.pkmap_count.tolist() == [2, 2, 3, 2, 2, 2, 2, 2]
    assert busy.last_pkmap_nr == 3 and busy.page_address(66) == 0
    busy.read(0xC0009000 + 256, 32)
    busy.write(0xC0009000 + 256, b"dirty again")        # a dirty line for the sleep's flush
    before = snapshot(busy)
    with pytest.raises(emu.WouldSleep, match=r"^kmap_high\(page 89\) would sleep.*"
                                             r"pinned slots: 0-7$"):
        busy.kmap(89)
    after = snapshot(busy)
    # effects of the scan: cursor 3 -> 7, wrap (flush_all_zero_pkmaps, cache flush), 0..7
    assert after["cursor"] == 7
    delta = {k: after["mm"][k] - before["mm"][k] for k in after["mm"]}
    assert {k: v for k, v in delta.items() if v} == dict(flush_all_zero_pkmaps=1,
                                                          cache_flushes=1, sleeps=1)
    for k in ("counts", "ptes", "tlbs", "page_address"):
        assert after[k] == before[k], k
    assert not any(line.dirty for line in busy.cache.lines())
    assert busy.phys_read(9 * 4096 + 256, 11) == b"dirty again"
    assert busy.page_address(89) == 0
    # release one slot: the next kmap wraps, frees it and takes it
    busy.kunmap(64)
    assert busy.kmap(89) == 0xBFE01000
    assert busy.page_address(64) == 0 and busy.last_pkmap_nr == 1


BAD_PHYS = [
    ("n", lambda m: m.phys_read(0, 2**64)),
    ("n", lambda m: m.phys_read(0, NPAGES * 4096 + 1)),
    ("n", lambda m: m.phys_read(0, np.uint64(2**64 - 1))),
    ("len(data)", lambda m: m.phys_write(0, bytes(NPAGES * 4096 + 1))),
    ("paddr", lambda m: m.phys_read(2**64, 1)),
    ("paddr", lambda m: m.phys_read(NPAGES * 4096 - 2, 4)),
    ("paddr", lambda m: m.phys_write(4096.0, b"x")),
]


@pytest.mark.parametrize("name, call", BAD_PHYS, ids=[f"{i}-{n}" for i, (n, _) in
                                                      enumerate(BAD_PHYS)])
def test_bad_phys_access_names_the_bad_argument(busy, name, call):
    raw = (busy._S.copy(), busy._B.copy())
    before = snapshot(busy)
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}="):
        call(busy)
    assert np.array_equal(raw[0], busy._S) and np.array_equal(raw[1], busy._B)
    assert_unchanged(busy, before)
    assert_still_works(busy)


def test_pkmap_count_view_cannot_be_made_writable():
    m = machine()
    v = m.pkmap_count
    with pytest.raises(ValueError):
        v[1] = 99
    with pytest.raises(ValueError):
        v.flags.writeable = True
    m.kmap(64)
    assert v[1] == 2                        # a live view all the same (mapped + one user)


def test_a_memory_map_takes_numpy_numbers_and_keeps_python_ones():
    """``MemoryMap`` (what the built-in scenarios check sizes with) took numpy ints for
    ``last_pkmap`` but refused them for ``lowmem_mb``; numpy values are kept as Python ones."""
    from emu.mm.memmap import MemoryMap
    mm = MemoryMap(np.int64(1), np.float64(2.5), np.int32(8), np.int64(0xC0000000))
    assert (mm.lowmem_mb, mm.highmem_mb, mm.last_pkmap, mm.page_offset) == \
        (1, 2.5, 8, 0xC0000000)
    assert [type(v) for v in (mm.lowmem_mb, mm.highmem_mb, mm.last_pkmap, mm.page_offset)] \
        == [int, float, int, int]
    assert mm.npages == 256 + 640
    for kw, name in ((dict(lowmem_mb=np.True_), "lowmem_mb"),
                     (dict(page_offset=0xC0000000 + 0.0), "page_offset")):
        with pytest.raises(ValueError, match=rf"^{name}="):
            MemoryMap(**kw)
