"""Golden tests: the worked pkmap transitions of spec §1.12 (and the consequences listed in
§1.6-§1.9), replayed on ``emu.Machine`` with the spec's page model: pages 0-63 lowmem (linear
address 0xC0000000 + P*4096), pages >= 64 highmem, LAST_PKMAP 512, window at 0xBFE00000.

Each step asserts the return value, ``last_pkmap_nr``, every non-zero ``pkmap_count`` with the
page its slot maps, ``page_address`` and the ``mm_stats`` deltas (set_pte / pte_clear /
flush_cache_kmaps / TLB flush), so an extra or missing flush shows.
"""

import numpy as np
import pytest

import emu
from emu import consts as K

PKMAP_BASE = 0xBFE00000


def pkmap_addr(nr):
    return PKMAP_BASE + nr * 4096


def machine(**kw):
    kw.setdefault("last_pkmap", 512)
    return emu.Machine(lowmem_mb=0.25, highmem_mb=4, **kw)


def slots(m):
    """{slot: (count, page)} for every non-zero count (the spec's ``counts={1:2/p100}``)."""
    return {int(i): (int(m.pkmap_count[i]), m.pkmap_page(int(i)))
            for i in np.flatnonzero(m.pkmap_count)}


class Step:
    """Run one call and check what it changed in ``mm_stats``."""

    def __init__(self, m):
        self.m = m

    def __call__(self, fn, *args, **expect_deltas):
        before = self.m.mm_stats
        ret = fn(*args)
        after = self.m.mm_stats
        delta = {k: after[k] - before[k] for k in after if after[k] != before[k]}
        delta.pop("tlb_walks", None)
        delta.pop("tlb_hits", None)
        assert delta == expect_deltas, f"{fn.__name__}{args}: mm_stats changed by {delta}"
        return ret


FLUSH_NOTHING = dict(flush_all_zero_pkmaps=1, cache_flushes=1)             # no TLB flush


def flush_freed(n):
    return dict(flush_all_zero_pkmaps=1, cache_flushes=1, pte_clear=n, tlb_flushes=1)


# ---------------------------------------------------------------------------------------------
# §1.12, first listing, step by step
# ---------------------------------------------------------------------------------------------


def test_first_mapping_goes_to_slot_1():
    m = machine()
    assert m.PKMAP_BASE == PKMAP_BASE and m.LAST_PKMAP == 512 and m.PAGE_OFFSET == 0xC0000000
    assert m.last_pkmap_nr == 0 and not m.pkmap_count.any()
    assert all(m.pkmap_page(i) == -1 for i in range(512))
    step = Step(m)
    assert step(m.kmap, 100, set_pte=1) == 0xBFE01000
    assert m.last_pkmap_nr == 1
    assert slots(m) == {1: (2, 100)}
    assert m.page_address(100) == 0xBFE01000
    assert m.pkmap_page(0) == -1


def test_worked_transitions_section_1_12():
    m = machine()
    step = Step(m)
    # > kmap 100     ret=0xbfe01000  last_pkmap_nr=1 counts={1:2/p100}
    assert step(m.kmap_high, 100, set_pte=1) == 0xBFE01000
    assert (m.last_pkmap_nr, slots(m)) == (1, {1: (2, 100)})
    # > kmap 101     ret=0xbfe02000  last_pkmap_nr=2 counts={1:2/p100, 2:2/p101}
    assert step(m.kmap_high, 101, set_pte=1) == 0xBFE02000
    assert (m.last_pkmap_nr, slots(m)) == (2, {1: (2, 100), 2: (2, 101)})
    # > kmap 100     ret=0xbfe01000  counts={1:3/p100, 2:2/p101}   (no new PTE, cursor stays)
    assert step(m.kmap_high, 100) == 0xBFE01000
    assert (m.last_pkmap_nr, slots(m)) == (2, {1: (3, 100), 2: (2, 101)})
    # > kunmap 100   counts={1:2/p100, ...}
    assert step(m.kunmap_high, 100) is None
    assert slots(m) == {1: (2, 100), 2: (2, 101)}
    # > kunmap 100   counts={1:1/p100, ...}   lazily mapped: PTE and page_address stay
    step(m.kunmap_high, 100)
    assert slots(m) == {1: (1, 100), 2: (2, 101)}
    assert m.page_address(100) == 0xBFE01000 and m.pkmap_page(1) == 100
    # > get 100      ret=0xbfe01000  counts={1:2/p100, ...}   pinned
    assert step(m.kmap_high_get, 100) == 0xBFE01000
    assert slots(m) == {1: (2, 100), 2: (2, 101)}
    # > get 102      ret=0   not mapped: nothing changes
    assert step(m.kmap_high_get, 102) == 0
    assert slots(m) == {1: (2, 100), 2: (2, 101)} and m.page_address(102) == 0
    # > put 100      counts={1:1/p100, ...}
    step(m.kunmap_high, 100)
    assert slots(m) == {1: (1, 100), 2: (2, 101)}
    # > flush  flush_cache_kmaps(); pte_clear nr=1; flush_tlb_kernel_range   counts={2:2/p101}
    step(m.kmap_flush_unused, **flush_freed(1))
    assert (m.last_pkmap_nr, slots(m)) == (2, {2: (2, 101)})
    assert m.page_address(100) == 0 and m.pkmap_page(1) == -1
    assert m.page_address(101) == 0xBFE02000
    # > kmap 102     ret=0xbfe03000  last_pkmap_nr=3   slot 1 not reused yet
    assert step(m.kmap_high, 102, set_pte=1) == 0xBFE03000
    assert (m.last_pkmap_nr, slots(m)) == (3, {2: (2, 101), 3: (2, 102)})
    # > kunmap 100 (count already 0 after flush) -> BUG_ON(!vaddr); nothing changes
    with pytest.raises(emu.KernelBug, match=r"kunmap_high: page 100 has no virtual address "
                                            r"\(BUG_ON\(!vaddr\)\)"):
        step(m.kunmap_high, 100)
    assert (m.last_pkmap_nr, slots(m)) == (3, {2: (2, 101), 3: (2, 102)})
    # > kunmap when count==1 -> would become 0: BUG(); emu leaves the count at 1
    step(m.kunmap_high, 102)
    assert slots(m)[3] == (1, 102)
    with pytest.raises(emu.KernelBug, match=r"unbalanced kunmap of page 102.*pkmap_count\[3\] "
                                            r"is 1"):
        step(m.kunmap_high, 102)
    assert (m.last_pkmap_nr, slots(m)) == (3, {2: (2, 101), 3: (1, 102)})
    assert m.page_address(102) == 0xBFE03000


def test_flush_with_nothing_lazily_mapped_flushes_cache_but_not_tlb():
    m = machine()
    step = Step(m)
    step(m.kmap_flush_unused, **FLUSH_NOTHING)        # empty window
    step(m.kmap, 100, set_pte=1)
    step(m.kmap_flush_unused, **FLUSH_NOTHING)        # slot 1 at count 2: untouched
    assert slots(m) == {1: (2, 100)} and m.last_pkmap_nr == 1
    step(m.kunmap, 100)
    step(m.kmap_flush_unused, **flush_freed(1))
    assert slots(m) == {} and m.last_pkmap_nr == 1    # kmap_flush_unused leaves the cursor
    step(m.kmap_flush_unused, **FLUSH_NOTHING)


def test_flush_frees_every_count_1_slot_with_one_tlb_flush():
    m = machine()
    step = Step(m)
    for p in range(100, 110):
        step(m.kmap, p, set_pte=1)
    for p in (101, 103, 104, 109):
        step(m.kunmap, p)
    step(m.kmap_flush_unused, **flush_freed(4))
    assert slots(m) == {nr: (2, 99 + nr) for nr in (1, 3, 6, 7, 8, 9)}
    assert [m.page_address(p) for p in (101, 103, 104, 109)] == [0, 0, 0, 0]
    assert m.page_address(102) == pkmap_addr(3)


# ---------------------------------------------------------------------------------------------
# §1.6 consequences: round-robin, wraps, revival, count-1 slots only through a flush
# ---------------------------------------------------------------------------------------------


def test_revival_of_a_count_1_slot_needs_no_new_pte():
    m = machine()
    step = Step(m)
    step(m.kmap, 100, set_pte=1)
    step(m.kmap, 101, set_pte=1)
    step(m.kunmap, 100)
    assert step(m.kmap, 100) == 0xBFE01000            # count 1 -> 2, same slot
    assert (m.last_pkmap_nr, slots(m)) == (2, {1: (2, 100), 2: (2, 101)})


def test_every_wrap_flushes_and_count_1_slots_come_back_only_through_it():
    # LAST_PKMAP 4: slots 1, 2, 3, then the wrap to 0 runs flush_all_zero_pkmaps
    m = machine(last_pkmap=4)
    step = Step(m)
    assert step(m.kmap, 100, set_pte=1) == pkmap_addr(1)
    step(m.kunmap, 100)                                # slot 1 at count 1
    assert step(m.kmap, 101, set_pte=1) == pkmap_addr(2)
    assert step(m.kmap, 102, set_pte=1) == pkmap_addr(3)
    # cursor 3 -> 0: flush frees slot 1 (p100 loses its address); slot 0 is free
    assert step(m.kmap, 103, set_pte=1, **flush_freed(1)) == pkmap_addr(0)
    assert m.last_pkmap_nr == 0 and m.page_address(100) == 0
    assert slots(m) == {0: (2, 103), 2: (2, 101), 3: (2, 102)}
    # the slot freed by the flush is the next one the cursor reaches
    assert step(m.kmap, 104, set_pte=1) == pkmap_addr(1)
    assert m.last_pkmap_nr == 1
    # kmap 100 again: a new mapping; every slot is pinned now -> WouldSleep (below)
    with pytest.raises(emu.WouldSleep):
        m.kmap(100)


def test_wrap_onto_a_busy_slot_0_still_flushes_and_moves_on():
    m = machine(last_pkmap=4)
    step = Step(m)
    for p, nr in ((100, 1), (101, 2), (102, 3)):
        assert step(m.kmap, p, set_pte=1) == pkmap_addr(nr)
    assert step(m.kmap, 103, set_pte=1, **FLUSH_NOTHING) == pkmap_addr(0)
    step(m.kunmap, 100)                                # slot 1 -> count 1
    step(m.kunmap, 101)                                # slot 2 -> count 1
    # cursor 0 -> 1 (count 1, not free) -> 2 (count 1) -> 3 (busy) -> 0: flush frees 1 and 2,
    # slot 0 busy -> slot 1
    assert step(m.kmap, 104, set_pte=1, **flush_freed(2)) == pkmap_addr(1)
    assert m.last_pkmap_nr == 1
    assert slots(m) == {0: (2, 103), 1: (2, 104), 3: (2, 102)}


def test_wrap_and_sleep_section_1_12():
    """§1.12 "Wrap / sleep": slots 1..511 at count 2; kmap 611 wraps to slot 0 with a cache
    flush and no TLB flush; kmap 612 finds every slot pinned (emu: WouldSleep after the scan,
    cursor 511); kunmap 300 drops slot 201 to 1; kmap 612 again flushes and takes slot 201."""
    m = machine()
    step = Step(m)
    for p in range(100, 611):                          # 511 pages -> slots 1..511
        assert step(m.kmap_high, p, set_pte=1) == pkmap_addr(p - 99)
    assert m.last_pkmap_nr == 511 and m.pkmap_count[0] == 0
    assert (m.pkmap_count[1:] == 2).all()
    # > kmap 611   flush_cache_kmaps() (no TLB flush: nothing at count 1); ret=0xbfe00000
    assert step(m.kmap_high, 611, set_pte=1, **FLUSH_NOTHING) == 0xBFE00000
    assert m.last_pkmap_nr == 0 and slots(m)[0] == (2, 611)
    # > kmap 612   flush_cache_kmaps(); sleeps (last_pkmap_nr=511)
    counts = m.pkmap_count.copy()
    with pytest.raises(emu.WouldSleep, match=r"kmap_high\(page 612\).*pinned slots: 0-511$"):
        step(m.kmap_high, 612, sleeps=1, **FLUSH_NOTHING)
    assert m.last_pkmap_nr == 511
    assert (m.pkmap_count == counts).all()
    assert m.page_address(612) == 0
    # > kunmap 300 (slot 201: 2 -> 1); no task is queued after a direct call, so no wake_up
    step(m.kunmap_high, 300)
    assert slots(m)[201] == (1, 300)
    # resumed (here: called again): flush_cache_kmaps(); pte_clear nr=201; flush_tlb_kernel_range;
    # ret=0xbfec9000; last_pkmap_nr=201
    assert step(m.kmap_high, 612, set_pte=1, **flush_freed(1)) == 0xBFEC9000
    assert m.last_pkmap_nr == 201
    assert slots(m)[201] == (2, 612)
    assert m.page_address(300) == 0 and m.page_address(612) == 0xBFEC9000


def test_would_sleep_names_the_pinned_slots_and_keeps_the_scan_effects_small_window():
    m = machine(last_pkmap=8)
    for p in range(100, 107):
        m.kmap(p)                                      # slots 1..7
    m.kmap_high_get(103)                               # slot 4 at count 3
    assert m.kmap(107) == pkmap_addr(0)                # wrap: slot 0
    m.kunmap(104)
    m.kmap_high(104)                                   # count 1 -> 2 again
    before = m.mm_stats
    with pytest.raises(emu.WouldSleep, match=r"pinned slots: 0-7"):
        m.kmap(108)
    after = m.mm_stats
    # cursor 0 -> 1..7 (7 steps), wrap -> flush, then 0..7: a full pass ends at 7
    assert m.last_pkmap_nr == 7
    assert after["cache_flushes"] - before["cache_flushes"] == 1
    assert after["tlb_flushes"] == before["tlb_flushes"]
    assert after["sleeps"] - before["sleeps"] == 1
    assert list(m.pkmap_count) == [2, 2, 2, 2, 3, 2, 2, 2]
    # a second attempt wraps right away (cursor 7 -> 0), flushes again and sleeps again
    with pytest.raises(emu.WouldSleep):
        m.kmap_high(108)
    assert m.last_pkmap_nr == 7 and m.mm_stats["cache_flushes"] == after["cache_flushes"] + 1
    # an already mapped page is still kmapped without a scan when every slot is pinned
    assert m.kmap(100) == pkmap_addr(1) and m.pkmap_count[1] == 3


# ---------------------------------------------------------------------------------------------
# kmap_high_get (§1.8)
# ---------------------------------------------------------------------------------------------


def test_kmap_high_get_returns_0_for_unmapped_pages_and_changes_nothing():
    m = machine()
    step = Step(m)
    assert step(m.kmap_high_get, 100) == 0
    assert m.last_pkmap_nr == 0 and not m.pkmap_count.any() and m.page_address(100) == 0
    step(m.kmap, 101, set_pte=1)
    step(m.kunmap, 101)
    step(m.kmap_flush_unused, **flush_freed(1))
    assert step(m.kmap_high_get, 101) == 0             # freed by the flush: no mapping left
    with pytest.raises(emu.KernelBug):                 # and so nothing to balance
        m.kunmap_high(101)


def test_kmap_high_get_pins_a_count_1_slot_against_the_flush():
    m = machine()
    step = Step(m)
    step(m.kmap, 100, set_pte=1)
    step(m.kunmap, 100)
    assert slots(m) == {1: (1, 100)}
    assert step(m.kmap_high_get, 100) == 0xBFE01000   # 1 -> 2: pinned
    assert slots(m) == {1: (2, 100)}
    step(m.kmap_flush_unused, **FLUSH_NOTHING)         # nothing at count 1: no TLB flush
    assert m.page_address(100) == 0xBFE01000 and m.pkmap_page(1) == 100
    step(m.kunmap_high, 100)                           # the put
    step(m.kmap_flush_unused, **flush_freed(1))
    assert m.page_address(100) == 0 and m.pkmap_page(1) == -1


def test_kmap_high_get_pins_against_a_wrap():
    m = machine(last_pkmap=4)
    m.kmap(100)                                        # slot 1
    m.kunmap(100)
    assert m.kmap_high_get(100) == pkmap_addr(1)       # pinned at 2
    m.kmap(101)
    m.kmap(102)                                        # slots 2, 3
    assert m.kmap(103) == pkmap_addr(0)                # the wrap's flush spares slot 1
    assert m.page_address(100) == pkmap_addr(1) and m.pkmap_count[1] == 2


def test_kmap_high_get_on_a_busy_slot_adds_a_user():
    m = machine()
    m.kmap(100)
    assert m.kmap_high_get(100) == 0xBFE01000
    assert m.kmap_high_get(100) == 0xBFE01000
    assert m.pkmap_count[1] == 4
    for _ in range(3):
        m.kunmap_high(100)
    assert m.pkmap_count[1] == 1
    with pytest.raises(emu.KernelBug):
        m.kunmap_high(100)


# ---------------------------------------------------------------------------------------------
# lowmem (§1.11): kmap is page_address, kunmap does nothing
# ---------------------------------------------------------------------------------------------


def test_lowmem_kmap_and_kunmap_touch_nothing():
    m = machine()
    step = Step(m)
    for p in (0, 1, 5, 63):
        assert step(m.kmap, p) == 0xC0000000 + p * 4096
        assert m.page_address(p) == 0xC0000000 + p * 4096
    for _ in range(3):                                  # "unbalanced" kunmap of lowmem: nothing
        step(m.kunmap, 5)
    assert m.last_pkmap_nr == 0 and not m.pkmap_count.any()
    assert m.lowmem_pfns == range(0, 64) and m.highmem_pfns == range(64, 1088)
    assert m.page_address(64) == 0                      # the first highmem page, not mapped


# ---------------------------------------------------------------------------------------------
# kmap_high_get=False: no kmap_high_get(), plain spin_lock
# ---------------------------------------------------------------------------------------------


def _irq_uops(m, site):
    u = m.uop_counts()[K.SITE_NAMES.index(site), K.KIND_TASK]
    return {n: int(u[K.UOP_NAMES.index(n)])
            for n in ("irq_disable", "irq_enable", "irq_save", "irq_restore")}


def test_without_kmap_high_get():
    m = machine(kmap_high_get=False)
    assert m.dma_pinning == "page_address"
    with pytest.raises(emu.EmuError, match="kmap_high_get"):
        m.kmap_high_get(100)
    assert m.last_pkmap_nr == 0 and not m.pkmap_count.any()
    # the §1.12 listing without the get/put steps behaves the same
    step = Step(m)
    assert step(m.kmap_high, 100, set_pte=1) == 0xBFE01000
    assert step(m.kmap_high, 101, set_pte=1) == 0xBFE02000
    step(m.kunmap_high, 100)
    step(m.kmap_flush_unused, **flush_freed(1))
    assert step(m.kmap_high, 102, set_pte=1) == 0xBFE03000
    assert slots(m) == {2: (2, 101), 3: (2, 102)}
    with pytest.raises(emu.KernelBug):
        m.kunmap_high(100)
    # lock_kmap()/lock_kmap_any() are plain spin_lock: no IRQ masking in these routines
    for site in ("kmap_high", "kunmap_high", "kmap_flush_unused"):
        assert set(_irq_uops(m, site).values()) == {0}, site


def test_with_kmap_high_get_the_kmap_lock_masks_irqs():
    m = machine()
    m.kmap_high(100)
    m.kunmap_high(100)
    m.kmap_high_get(100)
    m.kunmap_high(100)
    m.kmap_flush_unused()
    # lock_kmap() = spin_lock_irq; lock_kmap_any() = spin_lock_irqsave (hm:70-87)
    assert _irq_uops(m, "kmap_high") == dict(irq_disable=1, irq_enable=1, irq_save=0,
                                             irq_restore=0)
    assert _irq_uops(m, "kmap_flush_unused") == dict(irq_disable=1, irq_enable=1, irq_save=0,
                                                     irq_restore=0)
    assert _irq_uops(m, "kunmap_high") == dict(irq_disable=0, irq_enable=0, irq_save=2,
                                               irq_restore=2)
    assert _irq_uops(m, "kmap_high_get") == dict(irq_disable=0, irq_enable=0, irq_save=1,
                                                 irq_restore=1)
