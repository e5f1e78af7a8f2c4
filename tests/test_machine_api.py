"""Small public conveniences of Machine and Cache not covered elsewhere."""

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
