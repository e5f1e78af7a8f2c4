"""The seed patch's race (highmem-atomic-kmap-page-pinning.patch), replayed by hand with direct
calls — no interleaving executor.

The patch's sequence: ``dma_map_page(P, FROM_DEVICE)`` takes ``vaddr = page_address(P)`` of a
kunmapped (count 1) highmem page and starts invalidating its lines; meanwhile ``kmap_high(Q)``
wraps the cursor, ``flush_all_zero_pkmaps()`` frees P's slot and hands the same vaddr to Q;
Q's user dirties lines through it (ARM926 is read-allocate, so read then write, spec §3.11);
the resumed loop then discards Q's dirty lines. Here the resumed loop is the core's own
``dma_inv_range`` over P's old vaddr range (``m.cache.inv_range``), since a fresh
``dma_map_page(P)`` would now find ``page_address(P) == 0`` and do no L1 op at all.

With ``kmap_high_get`` pinning (2.6.30, the Machine default) P's slot stays at count >= 2
while the loop runs, so the flush cannot free it: Q gets another slot, or ``kmap_high(Q)``
would sleep (``emu.WouldSleep`` naming the pinned slots) when every slot is pinned.

Machine: LAST_PKMAP = 8 (slots 0-7, PKMAP_BASE 0xbfe00000), pages >= 64 highmem.
"""

import pytest

import emu

P, Q = 100, 200
FILLERS = [101, 102, 103, 104, 105, 106]     # pinned in slots 2..7
SLOT0 = 107                                  # pinned in slot 0 after the first wrap
Q_WRITES = [(0x000, b"Q-first-line-data-0123456789abcd"),   # whole line 0
            (0x104, b"dirty-middle"),                      # inside line 8
            (0xFF0, b"last-line-tail!!")]                  # second half of line 127


def racy_machine():
    return emu.Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8, kmap_high_get=False,
                       dma_pinning="page_address")


def pin_everything_but_p(m):
    """P in slot 1 (then kunmapped: count 1), fillers pinned in 2..7, and slot 0 pinned after
    a wrap. Cursor ends at 0, so the next new mapping scans 1.. and wraps again."""
    assert m.kmap(P) == m.PKMAP_BASE + 0x1000
    for pfn in FILLERS:
        m.kmap(pfn)
    assert m.kmap(SLOT0) == m.PKMAP_BASE                 # the first wrap: slot 0 is free
    assert m.last_pkmap_nr == 0
    m.kunmap(P)
    assert m.pkmap_count.tolist() == [2, 1, 2, 2, 2, 2, 2, 2]


def dirty_q(m, va):
    """Q's user: read the lines (allocate), then write into them (hit: dirty lines)."""
    for off, data in Q_WRITES:
        m.read(va + (off & ~31), 32)
        m.write(va + off, data)
        assert m.cache.probe(va + off).dirty


def test_recycled_vaddr_loses_q_dirty_lines_to_the_unpinned_invalidate():
    m = racy_machine()
    pin_everything_but_p(m)
    vaddr = m.page_address(P)                    # dma_map_page: unpinned page_address(P)
    assert vaddr == 0xBFE01000

    mm0 = m.mm_stats
    qva = m.kmap_high(Q)                         # cursor 0 -> 1..7 busy -> wraps to 0 ...
    mm = m.mm_stats
    assert mm["flush_all_zero_pkmaps"] - mm0["flush_all_zero_pkmaps"] == 1
    assert mm["tlb_flushes"] - mm0["tlb_flushes"] == 1     # P's slot was at count 1
    assert qva == vaddr                          # ... and Q gets P's old slot and vaddr
    assert m.page_address(P) == 0
    assert m.pkmap_page(1) == Q and m.pkmap_count[1] == 2

    dirty_q(m, qva)

    # a fresh dma_map_page(P) now does no L1 op: P has no address any more
    before = m.cache.stats
    h = m.dma_map_page(P, 0, 4096, emu.DMA_FROM_DEVICE)
    assert {k: v - before[k] for k, v in m.cache.stats.items() if v != before[k]} == {}
    assert m.outer_calls["inv"] == 1 and m.outer_calls["last_range"] == (0x64000, 0x65000)
    assert m.findings() == []
    m.dma_unmap_page(h, 4096, emu.DMA_FROM_DEVICE)

    # the preempted loop resumes over P's old range, i.e. now over Q's lines
    m.cache.inv_range(vaddr, vaddr + 4096)
    assert m.cache.stats["dirty_discards"] - before["dirty_discards"] == 3

    lost = m.lost_writes()
    assert [f.kind for f in lost] == ["lost-write"] * 3
    qpa = Q << 12
    ram = m.phys_read(qpa, 4096)
    total = 0
    for f, (off, data) in zip(sorted(lost, key=lambda f: f.pa), Q_WRITES):
        line = off & ~31
        assert f.pfn == Q
        assert f.pa == qpa + line
        assert f.va == vaddr + line
        # expected: the line as Q's user left it; found: what RAM holds (never written back)
        k = off - line
        assert f.expected[k:k + len(data)] == data
        assert f.found == ram[line:line + 32]
        assert f.found[k:k + len(data)] == b"Z" * len(data)      # poison: fresh RAM
        assert f.bad_bytes == len(data)
        total += f.bad_bytes
    assert total == sum(len(d) for _, d in Q_WRITES)
    assert [f for f in m.findings() if f.kind == "stale-read"] == []
    assert m.findings()[0].dma_range is None          # dropped by a bare inv_range call

    # the final check counts the same bytes: neither in the cache nor in RAM
    assert m.check_integrity() == total
    assert m.read(qva, 32) == b"Z" * 32               # Q's user reads back poison


def test_same_sequence_without_q_dirty_lines_loses_nothing():
    """Control: Q's stores that miss the cache (ARM926 does not allocate on write) go to
    RAM, so the stale invalidate has nothing of Q's to drop."""
    m = racy_machine()
    pin_everything_but_p(m)
    vaddr = m.page_address(P)
    qva = m.kmap_high(Q)
    assert qva == vaddr
    for off, data in Q_WRITES:
        m.write(qva + off, data)                      # write misses: no line allocated
        assert m.cache.probe(qva + off) is None
    m.cache.inv_range(vaddr, vaddr + 4096)
    assert m.lost_writes() == []
    assert m.check_integrity() == 0


def test_kmap_high_get_pinning_keeps_q_off_p_slot_when_another_is_free():
    """2.6.30: dma_map_page pins P's slot with kmap_high_get (count 1 -> 2) for the whole
    loop; the wrap's flush cannot free it and Q gets the next free slot instead."""
    m = emu.Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8)   # kmap_high_get pinning
    assert m.kmap(P) == 0xBFE01000
    for pfn in FILLERS[:-1]:                        # slots 2..6 pinned
        m.kmap(pfn)
    assert m.kmap(FILLERS[-1]) == 0xBFE07000        # slot 7
    assert m.kmap(SLOT0) == 0xBFE00000              # the first wrap
    m.kunmap(FILLERS[-1])                           # slot 7 released: count 1
    m.kunmap(P)
    assert m.pkmap_count.tolist() == [2, 1, 2, 2, 2, 2, 2, 1]

    vaddr = m.kmap_high_get(P)                      # what dma_map_page does first
    assert vaddr == 0xBFE01000 and m.pkmap_count[1] == 2
    qva = m.kmap_high(Q)                            # wraps, flushes: slot 7 freed, not 1
    assert qva == 0xBFE07000 != vaddr
    assert m.page_address(P) == vaddr and m.page_address(FILLERS[-1]) == 0
    dirty_q(m, qva)
    m.cache.inv_range(vaddr, vaddr + 4096)          # the loop, over P's own lines only
    m.kunmap_high(P)                                # dma_map_page's unpin
    assert m.pkmap_count[1] == 1
    assert m.lost_writes() == []
    assert m.check_integrity() == 0
    assert m.read(qva + 0x104, 12) == b"dirty-middle"


def test_kmap_high_get_pinning_with_every_slot_pinned_makes_kmap_high_sleep():
    m = emu.Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8)
    pin_everything_but_p(m)
    vaddr = m.kmap_high_get(P)                      # dma_map_page pins P's slot
    assert vaddr == 0xBFE01000
    assert m.pkmap_count.tolist() == [2] * 8
    with pytest.raises(emu.WouldSleep, match=r"pinned slots: 0-7"):
        m.kmap_high(Q)
    assert m.page_address(P) == vaddr and m.page_address(Q) == 0
    assert m.pkmap_page(1) == P
    m.kunmap_high(P)
    assert m.pkmap_count.tolist() == [2, 1, 2, 2, 2, 2, 2, 2]
    # once the DMA has unpinned, Q can have the slot: the flush happens only now
    assert m.kmap_high(Q) == vaddr
    assert m.page_address(P) == 0
    assert m.findings() == [] and m.check_integrity() == 0


def test_dma_map_page_itself_is_safe_sequentially_under_both_schemes():
    """Run to completion (no preemption), dma_map_page(P) never touches another page's lines:
    the race needs the recycle to happen *inside* the loop."""
    for kw in (dict(), dict(kmap_high_get=False, dma_pinning="page_address")):
        m = emu.Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8, **kw)
        pin_everything_but_p(m)
        h = m.dma_map_page(P, 0, 4096, emu.DMA_FROM_DEVICE)
        qva = m.kmap_high(Q)
        assert qva == 0xBFE01000
        dirty_q(m, qva)
        m.device.write(h, b"\xd0" * 4096)
        m.dma_unmap_page(h, 4096, emu.DMA_FROM_DEVICE)
        assert m.lost_writes() == []
        assert m.check_integrity() == 0
