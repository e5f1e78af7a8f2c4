"""Exact cycle totals of small kernel sequences, per core preset (py65 style).

Every case runs one direct call on a fresh ``Machine(cpu, lowmem_mb=0.25, highmem_mb=1,
last_pkmap=8)`` and asserts two things:

* the micro-ops recorded, per site (routine), equal the hand derivation below, written as
  ``{site: [(uop, count), ...]}`` from the routine's ``uop()`` calls (emu/mm/highmem.py,
  page_address.py, pgtable.py, emu/exec/locks.py, cpu.py, emu/cache/maint.py, kernels.py,
  emu/dma/mapping.py, emu/mm/access.py);
* ``m.cycles[0]`` advanced by exactly ``sum(count * cost[uop])`` with ``cost`` the core's table
  (``emu.cost.tables.cost_vector``), so a change to a routine's instruction shape or to a
  table entry shows up here as a number.

A few ARM926 totals are also written out as literal numbers (spec arm-cycle-costs §1.4: the
irq-safe kmap_lock adds 21 cycles to a kmap_high + kunmap_high pair).

Pages: highmem is pfns 64..319; the pages used sit in distinct page_address hash buckets, so
every hash lookup walks exactly one node (asserted by ``test_pages_use_distinct_buckets``).
Machines run with CONFIG_PREEMPT (``preempt=True``, the default), UP (no ldrex/strex).
"""

import numpy as np
import pytest

from emu import DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, Machine
from emu import consts as K
from emu.cost.tables import cost_vector

CORES = ("arm926", "feroceon", "xscale", "sa110")
P = 100                         # the page most cases map
NEW = 108                       # a page mapped for the first time
WRAP_PAGES = tuple(range(101, 108))   # slots 1..7 of the 8-slot window
LINE = 32
MRS_OVERRIDE = 10

# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def machine(cpu, **kw):
    return Machine(cpu=cpu, lowmem_mb=0.25, highmem_mb=1, last_pkmap=8, **kw)


def costs(cpu, overrides=None):
    v = cost_vector(cpu, overrides)
    return {n: int(v[i]) for i, n in enumerate(K.UOP_NAMES)}


def tally(expected):
    """``{site: [(uop, n), ...]}`` -> ``{site: {uop: n}}`` (summed, zero counts dropped)."""
    out = {}
    for site, seq in expected.items():
        for u, n in seq:
            assert u in K.UOP_NAMES, u
            if n:
                out.setdefault(site, {})
                out[site][u] = out[site].get(u, 0) + n
    return {s: d for s, d in out.items() if d}


def cycles_of(expected, cost):
    return sum(n * cost[u] for seq in expected.values() for u, n in seq)


def measure(m, action):
    """(cycles, {site: {uop: n}}) that ``action(m)`` added on CPU 0, all in task context."""
    c0 = m.cycles[0]
    u0 = m.uop_counts()
    action(m)
    d = m.uop_counts() - u0
    assert not d[:, K.KIND_IRQ].any(), "a direct call recorded IRQ-context micro-ops"
    got = {}
    for s, u in zip(*np.nonzero(d[:, K.KIND_TASK])):
        got.setdefault(K.SITE_NAMES[s], {})[K.UOP_NAMES[u]] = int(d[s, K.KIND_TASK, u])
    return m.cycles[0] - c0, got


# ---------------------------------------------------------------------------------------------
# The derivation, in kernel terms. Each returns a list of (uop, count).
# ---------------------------------------------------------------------------------------------
def lock_kmap(irq):
    """lock_kmap(): spin_lock_irq = local_irq_disable + preempt_disable (UP: no arch lock);
    plain spin_lock = preempt_disable."""
    return ([("irq_disable", 1)] if irq else []) + [("preempt_disable", 1)]


def unlock_kmap(irq):
    """unlock_kmap(): spin_unlock_irq = local_irq_enable + preempt_enable."""
    return ([("irq_enable", 1)] if irq else []) + [("preempt_enable", 1)]


def lock_kmap_any(irq):
    """lock_kmap_any(flags): spin_lock_irqsave = local_irq_save + preempt_disable."""
    return ([("irq_save", 1)] if irq else []) + [("preempt_disable", 1)]


def unlock_kmap_any(irq):
    """unlock_kmap_any(flags): spin_unlock_irqrestore = local_irq_restore + preempt_enable."""
    return ([("irq_restore", 1)] if irq else []) + [("preempt_enable", 1)]


# the page_address hash-bucket and pool locks are always spin_lock_irqsave (mm/highmem.c)
RAW_LOCK_IRQSAVE = [("irq_save", 1), ("preempt_disable", 1)]
RAW_UNLOCK_IRQRESTORE = [("irq_restore", 1), ("preempt_enable", 1)]


def hash_walk(nodes=1):
    """page_slot(): hash_ptr (mul, shift, add = 3 alu); list_for_each_entry: one hash_step per
    node visited, found on the first node (or the end test of an empty bucket) = 1."""
    return [("alu", 3), ("hash_step", nodes)]


# page_address(highmem page): irqsave bucket lock around the walk
PAGE_ADDRESS = RAW_LOCK_IRQSAVE + hash_walk() + RAW_UNLOCK_IRQRESTORE

# set_page_address(page, vaddr): pool_lock { list_del } ; store page, virtual (2) ;
# pas->lock { list_add_tail: 4 stores }
SET_PAGE_ADDRESS_ADD = (RAW_LOCK_IRQSAVE + RAW_UNLOCK_IRQRESTORE + [("store", 2)]
                        + RAW_LOCK_IRQSAVE + [("store", 4)] + RAW_UNLOCK_IRQRESTORE)
# set_page_address(page, NULL): pas->lock { walk; list_del } ; pool_lock { list_add_tail: 4 }
SET_PAGE_ADDRESS_DEL = (RAW_LOCK_IRQSAVE + hash_walk() + RAW_UNLOCK_IRQRESTORE
                        + RAW_LOCK_IRQSAVE + [("store", 4)] + RAW_UNLOCK_IRQRESTORE)

# kmap_high, lock held: pkmap_count[PKMAP_NR(vaddr)]++ with BUG_ON(< 2):
# ldr; add; PKMAP_NR; cmp; str; branch
KMAP_HIGH_COUNT = [("load", 1), ("alu", 3), ("store", 1), ("branch", 1)]
# kunmap_high, lock held: --pkmap_count[nr], the switch on the new count (2 branches)
KUNMAP_HIGH_COUNT = [("load", 1), ("alu", 3), ("store", 1), ("branch", 2)]
# kmap_high_get: "if (vaddr)" test; then as kmap_high's count update with BUG_ON(< 1)
KMAP_HIGH_GET_TEST = [("branch", 1)]
KMAP_HIGH_GET_COUNT = [("load", 1), ("alu", 3), ("store", 1), ("branch", 1)]
# one iteration of map_new_virtual's slot search: ldr last_pkmap_nr, ldr pkmap_count[nr];
# add, and, cmp; str last_pkmap_nr; 2 branches
SCAN_STEP = [("load", 2), ("alu", 3), ("store", 1), ("branch", 2)]
# ... then set_pte (the pte_write micro-op) and pkmap_count[nr] = 1
MAP_SLOT = [("pte_write", 1), ("store", 1)]
# flush_all_zero_pkmaps, per slot: ldr pkmap_count[i]; cmp; branch
ZERO_SCAN_STEP = [("load", 1), ("alu", 1), ("branch", 1)]


def flush_cache_all(cpu, dirty=0):
    """The core's flush_kern_cache_all with ``dirty`` dirty lines in a 512/1024-line D-cache."""
    if cpu == "arm926":
        # 1: mrc p15,0,r15,c7,c14,3; bne 1b -- one iteration per dirty line + the final one,
        # the hardware walking all 512 lines; then mcr c7,c5,0 (I-cache); mcr c7,c10,4
        # (drain); mov pc, lr. The last bne falls through: not taken
        return [("tci_iter", 1 + dirty), ("dcache_scan", 512), ("branch", dirty),
                ("branch_nt", 1),
                ("writeback", dirty), ("icache_inv", 1), ("drain_wb", 1), ("branch", 1)]
    if cpu == "feroceon":
        # 16 KiB, 4 ways, 32 B: 128 sets x 4 ways; per set 2 alu + bcs 1b, per way
        # mcr c7,c14,2 + subs + bcs 2b (each loop's last bcs falls through: 128 + 1 not
        # taken); then I-cache, drain, return
        return [("alu", 128 * 2), ("branch", 127), ("setway_op", 512), ("alu", 512),
                ("branch", 128 * 3), ("branch_nt", 128 + 1), ("writeback", dirty),
                ("icache_inv", 1), ("drain_wb", 1), ("branch", 1)]
    if cpu == "xscale":
        # toggle the clean window (ldr; ldr; eor; add; str); 32 KiB / 32 B = 1024
        # mcr c7,c2,5 line allocates, add per line, teq + bne per 4 (unrolled x4)
        return [("load", 2), ("alu", 2), ("store", 1),
                ("line_alloc", 1024), ("alu", 1024 + 256), ("branch", 255),
                ("branch_nt", 1),
                ("writeback", dirty), ("icache_inv", 1), ("drain_wb", 1), ("branch", 1)]
    assert cpu == "sa110"
    # v4wb: mcr c7,c5,0 first; toggle FLUSH_BASE; 16 KiB / 32 B = 512 displacing loads with
    # cmp + blo each; then drain and return (no I-cache op at the end)
    return [("icache_inv", 1), ("load", 2), ("alu", 2), ("store", 1),
            ("displace_load", 512), ("alu", 512), ("branch", 511), ("branch_nt", 1),
            ("writeback", dirty),
            ("drain_wb", 1), ("branch", 1)]


def flush_tlb_pkmap(cpu, pages=8):
    """flush_tlb_kernel_range(PKMAP_ADDR(0), PKMAP_ADDR(LAST_PKMAP)): drain the WB, then per
    page mcr c8,c5,1 + mcr c8,c6,1 (v4wbi; v4wb: the D entry per page and the I-TLB once);
    add; cmp; blo (the last not taken)."""
    inv = pages + 1 if cpu == "sa110" else 2 * pages
    return [("drain_wb", 1), ("tlb_inv_page", inv), ("alu", 2 * pages), ("branch", pages - 1),
            ("branch_nt", 1)]


def dmac_range(cpu, op, lines=128, dirty=0, partial=0):
    """The core's dma_{inv,clean,flush}_range over ``lines`` lines, ``dirty`` of them dirty;
    ``partial``: how many of the range's ends are not line-aligned (inv cleans those lines
    first with mcrne c7,c10,1; here they are absent from the cache, so clean ones)."""
    if cpu == "feroceon":
        # feroceon_range_dma_*_range: mrs; (inv: tst; tst); cmp; subne; orr; msr cpsr_c;
        # two range MCRs; the hardware walks the lines (write-backs for clean/flush);
        # msr cpsr_c; clean/flush drain the WB (inv does not); mov pc, lr
        seq = [("mrs", 1)] + ([("alu", 2), ("dline_clean", partial)] if op == "inv" else [])
        seq += [("alu", 3), ("msr_c", 1), ("drange_start", 2), ("drange_line", lines),
                ("msr_c", 1), ("branch", 1)]
        if op != "inv":
            seq += [("writeback", dirty), ("drain_wb", 1)]
        return seq
    # inv: tst r0; tst r1; bic r0 -- clean/flush: bic r0; then per line the MCR(s) + add;
    # cmp; blo (the last falls through); then mcr c7,c10,4 and mov pc, lr
    seq = [("alu", 3 if op == "inv" else 1), ("alu", 2 * lines), ("branch", lines - 1),
           ("branch_nt", 1)]
    if op == "inv":
        seq += [("dline_clean", partial), ("dline_inv", lines)]   # dirty lines dropped
    elif op == "clean":
        seq += [("dline_clean", lines - dirty), ("dline_clean_dirty", dirty)]
    elif cpu in ("xscale", "sa110"):
        # xscale_dma_flush_range / v4wb: clean c7,c10,1 then invalidate c7,c6,1 per line
        seq += [("dline_clean", lines - dirty), ("dline_clean_dirty", dirty),
                ("dline_inv", lines)]
    else:
        seq += [("dline_flush", lines - dirty), ("dline_flush_dirty", dirty)]
    if op == "flush" and cpu == "sa110":
        seq += [("icache_inv", 1)]                          # v4wb also invalidates the I-cache
    seq += [("drain_wb", 1), ("branch", 1)]
    return seq


# ---------------------------------------------------------------------------------------------
# The cases: (setup, action, expected(cpu)) with setup/action taking the machine
# ---------------------------------------------------------------------------------------------
def _kmap(m, pfn, times=1):
    for _ in range(times):
        m.kmap_high(pfn)


def _dirty_lowmem_lines(m, n):
    """Make ``n`` lowmem lines dirty (read-allocate cores: read, then write)."""
    for i in range(n):
        va = m.PAGE_OFFSET + 0x8000 + i * LINE
        m.read(va, LINE)
        m.write(va, bytes([0xA0 + i]) * LINE)


def _dirty_page_lines(m, pfn, n):
    """Map ``pfn`` (count 2) and dirty its first ``n`` lines through the pkmap address."""
    v = m.kmap_high(pfn)
    for i in range(n):
        m.read(v + i * LINE, LINE)
        m.write(v + i * LINE, bytes([0xB0 + i]) * LINE)
    return v


def _wrap_setup(m, dirty):
    """Slots 1..7 lazily mapped (count 1), the cursor at 7: the next new mapping wraps."""
    for p in WRAP_PAGES:
        m.kmap_high(p)
    for p in WRAP_PAGES:
        m.kunmap_high(p)
    _dirty_lowmem_lines(m, dirty)


def kmap_high_mapped(irq):
    # kmap_high(P) with P mapped (count 2 -> 3): lock_kmap; page_address; count++; unlock_kmap
    return {"kmap_high": lock_kmap(irq) + KMAP_HIGH_COUNT + unlock_kmap(irq),
            "page_address": PAGE_ADDRESS}


def kunmap_high_mapped(irq):
    # kunmap_high(P), count 3 -> 2 (no waiter to wake)
    return {"kunmap_high": lock_kmap_any(irq) + KUNMAP_HIGH_COUNT + unlock_kmap_any(irq),
            "page_address": PAGE_ADDRESS}


def kmap_high_get_mapped():
    return {"kmap_high_get": lock_kmap_any(True) + KMAP_HIGH_GET_TEST + KMAP_HIGH_GET_COUNT
            + unlock_kmap_any(True),
            "page_address": PAGE_ADDRESS}


def kmap_high_get_unmapped():
    # page_address() returns NULL: no count update; returns 0
    return {"kmap_high_get": lock_kmap_any(True) + KMAP_HIGH_GET_TEST + unlock_kmap_any(True),
            "page_address": PAGE_ADDRESS}


def kmap_high_new(irq):
    # fresh machine: page_address misses (empty bucket), map_new_virtual takes slot 1 at the
    # first try, set_pte, count = 1, set_page_address; then count++ to 2
    return {"kmap_high": lock_kmap(irq) + KMAP_HIGH_COUNT + unlock_kmap(irq),
            "page_address": PAGE_ADDRESS,
            "map_new_virtual": SCAN_STEP + MAP_SLOT,
            "set_page_address": SET_PAGE_ADDRESS_ADD}


def kmap_high_wrap(cpu, irq, dirty):
    # cursor 7 -> 0: flush_all_zero_pkmaps: flush_cache_all; scan 8 slots, free the 7 count-1
    # slots (pte_clear, set_page_address(NULL) each; ARM's pte_clear macro drops the
    # page_address(page) argument unevaluated); one TLB flush of the window; slot 0 is free,
    # so the search ends there
    freed = len(WRAP_PAGES)
    return {"kmap_high": lock_kmap(irq) + KMAP_HIGH_COUNT + unlock_kmap(irq),
            "page_address": PAGE_ADDRESS,
            "map_new_virtual": SCAN_STEP + MAP_SLOT,
            "flush_all_zero_pkmaps": ZERO_SCAN_STEP * 8 + [("pte_write", 1)] * freed,
            "flush_cache_all": flush_cache_all(cpu, dirty),
            "flush_tlb_kernel_range": flush_tlb_pkmap(cpu),
            "set_page_address": SET_PAGE_ADDRESS_DEL * freed + SET_PAGE_ADDRESS_ADD}


def kmap_flush_unused_nothing(cpu, irq):
    # kmap_flush_unused with every slot pinned or free: the cache flush and the scan still
    # run; no slot freed, so no TLB flush
    return {"kmap_flush_unused": lock_kmap(irq) + unlock_kmap(irq),
            "flush_all_zero_pkmaps": ZERO_SCAN_STEP * 8,
            "flush_cache_all": flush_cache_all(cpu)}


DIR_OP = {DMA_FROM_DEVICE: "inv", DMA_TO_DEVICE: "clean", DMA_BIDIRECTIONAL: "flush"}


def dma_map_kmapped(cpu, direction, dirty, lines=128, partial=0):
    # dma_map_page(P, off, size, dir) within one page, P kmapped (count 2):
    # dma_cache_maint_page: one chunk (4 alu, 2 branch); kmap_high_get pins (count 3); the
    # dmac range op over ``lines`` lines (4 KiB: 128), ``partial`` unaligned ends (inv only);
    # kunmap_high (count 2); outer_*_range is an empty hook; dma_map_page itself records
    # nothing
    return {"dma_cache_maint_page": [("alu", 4), ("branch", 2)]
            + dmac_range(cpu, DIR_OP[direction], lines, dirty,
                         partial if direction == DMA_FROM_DEVICE else 0),
            "kmap_high_get": kmap_high_get_mapped()["kmap_high_get"],
            "kunmap_high": kunmap_high_mapped(True)["kunmap_high"],
            "page_address": PAGE_ADDRESS * 2}


def dma_map_unpinned(cpu, direction):
    # without ARCH_NEEDS_KMAP_HIGH_GET (dma_pinning="page_address"): one page_address, no pin
    return {"dma_cache_maint_page": [("alu", 4), ("branch", 2)]
            + dmac_range(cpu, DIR_OP[direction], 128, 0),
            "page_address": PAGE_ADDRESS}


def cpu_access(*pieces, walk=0, writebacks=0):
    """One (ld/st hit/miss micro-op + one load/store per further word) per line-sized piece
    (an LDM/STM of the piece), plus table walks and write-backs of dirty victims."""
    seq = [("tlb_walk", walk), ("writeback", writebacks)]
    for kind, nbytes in pieces:
        words = (nbytes + 3) // 4
        seq += [(kind, 1), ("store" if kind.startswith("st") else "load", words - 1)]
    return {"cpu_access": seq}


LOW = 0xC0000000 + 0x4000           # a lowmem line (linear map), line-aligned


def _set_stride(m):
    c = m.cache.config
    return c.size // c.ways


def _fill_set(m):
    """Read ``ways`` lines of one set (all valid, round-robin pointer back at way 0) and dirty
    the way-0 line."""
    stride = _set_stride(m)
    for w in range(m.cache.config.ways):
        m.read(LOW + w * stride, LINE)
    m.write(LOW, b"\x5a" * LINE)


CASES = {
    # name: (cores' variants (irq flags), setup(m), action(m), expected(cpu, irq))
    "kmap_high of a mapped page": (
        (True, False), lambda m: _kmap(m, P, 1), lambda m: m.kmap_high(P),
        lambda cpu, irq: kmap_high_mapped(irq)),
    "kunmap_high": (
        (True, False), lambda m: _kmap(m, P, 2), lambda m: m.kunmap_high(P),
        lambda cpu, irq: kunmap_high_mapped(irq)),
    "kunmap_high to a lazy mapping (count 1)": (
        (True, False), lambda m: _kmap(m, P, 1), lambda m: m.kunmap_high(P),
        lambda cpu, irq: kunmap_high_mapped(irq)),
    "kmap_high_get of a mapped page": (
        (True,), lambda m: _kmap(m, P, 1), lambda m: m.kmap_high_get(P),
        lambda cpu, irq: kmap_high_get_mapped()),
    "kmap_high_get of an unmapped page": (
        (True,), lambda m: None, lambda m: m.kmap_high_get(P),
        lambda cpu, irq: kmap_high_get_unmapped()),
    "kmap_high mapping a new page": (
        (True, False), lambda m: None, lambda m: m.kmap_high(NEW),
        lambda cpu, irq: kmap_high_new(irq)),
    "kmap_high wrapping (clean cache)": (
        (True, False), lambda m: _wrap_setup(m, 0), lambda m: m.kmap_high(NEW),
        lambda cpu, irq: kmap_high_wrap(cpu, irq, 0)),
    "kmap_high wrapping (2 dirty lines)": (
        (True,), lambda m: _wrap_setup(m, 2), lambda m: m.kmap_high(NEW),
        lambda cpu, irq: kmap_high_wrap(cpu, irq, 2)),
    "kmap_flush_unused with nothing to free": (
        (True, False), lambda m: _kmap(m, P, 1), lambda m: m.kmap_flush_unused(),
        lambda cpu, irq: kmap_flush_unused_nothing(cpu, irq)),
    "kmap of a lowmem page": (
        # ARM kmap(): might_sleep; PageHighMem test (2 alu, branch); page_address(lowmem):
        # PageHighMem; __va(page_to_phys()) = 3 alu, charged to kmap (no hash lookup)
        (True, False), lambda m: None, lambda m: m.kmap(5),
        lambda cpu, irq: {"kmap": [("alu", 2), ("branch", 1), ("alu", 3)]}),
    "kunmap of a lowmem page": (
        (True, False), lambda m: None, lambda m: m.kunmap(5),
        lambda cpu, irq: {"kunmap": [("alu", 2), ("branch", 1)]}),
    "kmap of a mapped highmem page": (
        # kmap's own test, then kmap_high as above
        (True, False), lambda m: _kmap(m, P, 1), lambda m: m.kmap(P),
        lambda cpu, irq: {"kmap": [("alu", 2), ("branch", 1)]} | kmap_high_mapped(irq)),
    "kunmap of a mapped highmem page": (
        (True, False), lambda m: _kmap(m, P, 2), lambda m: m.kunmap(P),
        lambda cpu, irq: {"kunmap": [("alu", 2), ("branch", 1)]} | kunmap_high_mapped(irq)),
    "cpu read miss (linear map)": (
        (True,), lambda m: None, lambda m: m.read(LOW, LINE),
        lambda cpu, irq: cpu_access(("ld_miss", 32))),
    "cpu read hit (linear map)": (
        (True,), lambda m: m.read(LOW, LINE), lambda m: m.read(LOW, LINE),
        lambda cpu, irq: cpu_access(("ld_hit", 32))),
    "cpu write hit (linear map)": (
        (True,), lambda m: m.read(LOW, LINE), lambda m: m.write(LOW, b"\x11" * LINE),
        lambda cpu, irq: cpu_access(("st_hit", 32))),
    "cpu write miss (linear map, no write-allocate)": (
        (True,), lambda m: None, lambda m: m.write(LOW, b"\x22" * LINE),
        lambda cpu, irq: cpu_access(("st_miss", 32))),
    "cpu write across three lines (4 + 32 + 4 bytes)": (
        # lines LOW and LOW+32 cached, LOW+64 not: hit, hit, miss
        (True,), lambda m: m.read(LOW, 2 * LINE), lambda m: m.write(LOW + 28, b"\x33" * 40),
        lambda cpu, irq: cpu_access(("st_hit", 4), ("st_hit", 32), ("st_miss", 4))),
    "cpu read miss evicting a dirty line": (
        (True,), _fill_set, lambda m: m.read(LOW + m.cache.config.ways * _set_stride(m), LINE),
        lambda cpu, irq: cpu_access(("ld_miss", 32), writebacks=1)),
    "cpu read through a new pkmap address (TLB walk, miss)": (
        (True,), lambda m: _kmap(m, P, 1), lambda m: m.read(m.page_address(P), LINE),
        lambda cpu, irq: cpu_access(("ld_miss", 32), walk=1)),
    "cpu read through a walked pkmap address (TLB hit)": (
        (True,), lambda m: (_kmap(m, P, 1), m.read(m.page_address(P), LINE)),
        lambda m: m.read(m.page_address(P), LINE),
        lambda cpu, irq: cpu_access(("ld_hit", 32))),
}
for _d, _name in ((DMA_FROM_DEVICE, "FROM_DEVICE"), (DMA_TO_DEVICE, "TO_DEVICE"),
                  (DMA_BIDIRECTIONAL, "BIDIRECTIONAL")):
    CASES[f"dma_map_page 4 KiB of a kmapped page, {_name}, clean cache"] = (
        (True,), lambda m: _kmap(m, P, 1),
        lambda m, d=_d: m.dma_map_page(P, 0, 4096, d),
        lambda cpu, irq, d=_d: dma_map_kmapped(cpu, d, 0))
    CASES[f"dma_map_page 4 KiB of a kmapped page, {_name}, 2 dirty lines"] = (
        (True,), lambda m: _dirty_page_lines(m, P, 2),
        lambda m, d=_d: m.dma_map_page(P, 0, 4096, d),
        lambda cpu, irq, d=_d: dma_map_kmapped(cpu, d, 2))
    CASES[f"dma_map_page 100 bytes at offset 20 of a kmapped page, {_name}"] = (
        # [v+20, v+120): lines v+0 .. v+96 (4 lines); FROM_DEVICE cleans both partial lines
        (True,), lambda m: _kmap(m, P, 1),
        lambda m, d=_d: m.dma_map_page(P, 20, 100, d),
        lambda cpu, irq, d=_d: dma_map_kmapped(cpu, d, 0, lines=4, partial=2))
    CASES[f"dma_map_page 4 KiB of a lowmem page, {_name}"] = (
        # the linear map: no pin, no page_address lookup (lowmem_page_address)
        (True, False), lambda m: None,
        lambda m, d=_d: m.dma_map_page(5, 0, 4096, d),
        lambda cpu, irq, d=_d: {"dma_cache_maint_page": [("alu", 4), ("branch", 2)]
                                + dmac_range(cpu, DIR_OP[d], 128, 0)})
    CASES[f"dma_map_page 4 KiB of a kmapped page, {_name}, unpinned (page_address)"] = (
        (False,), lambda m: _kmap(m, P, 1),
        lambda m, d=_d: m.dma_map_page(P, 0, 4096, d),
        lambda cpu, irq, d=_d: dma_map_unpinned(cpu, d))

PARAMS = [pytest.param(cpu, name, irq, id=f"{cpu}-{'irq' if irq else 'plain'}-{name}")
          for name, (variants, *_) in CASES.items() for irq in variants for cpu in CORES]


def run_case(cpu, name, irq, overrides=None):
    _, setup, action, expected = CASES[name]
    m = machine(cpu, kmap_high_get=irq, costs=overrides)
    setup(m)
    cyc, got = measure(m, action)
    return cyc, got, expected(cpu, irq)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
def test_pages_use_distinct_buckets():
    def bucket(pfn):
        page = K.MEM_MAP_BASE + pfn * K.STRUCT_PAGE_SIZE
        return ((page * K.GOLDEN_RATIO_PRIME_32) & 0xFFFFFFFF) >> (32 - K.PA_HASH_ORDER)
    pages = (P, NEW) + WRAP_PAGES
    assert len({bucket(p) for p in pages}) == len(pages)
    m = machine("arm926")
    assert all(p in m.highmem_pfns for p in pages)


def test_geometry_the_derivations_assume():
    for cpu, (size, ways) in {"arm926": (16384, 4), "feroceon": (16384, 4),
                              "xscale": (32768, 32), "sa110": (16384, 32)}.items():
        c = machine(cpu).cache.config
        assert (c.size, c.ways, c.line) == (size, ways, LINE), cpu


@pytest.mark.parametrize("cpu, name, irq", PARAMS)
def test_exact_micro_ops_and_cycles(cpu, name, irq):
    cyc, got, expected = run_case(cpu, name, irq)
    assert got == tally(expected)
    assert cyc == cycles_of(expected, costs(cpu))


# Literal ARM926 totals, worked from spec §1.4's instruction costs: irq_disable/enable/save 6,
# irq_restore 3, preempt_disable 5, preempt_enable 9, hash_step 9, pte_write 47, branch 3.
#   page_address            = 6 + 5 + 3 + 9 + 3 + 9                      = 35
#   kmap_high, mapped (irq) = 6 + 5 + (1 + 3 + 1 + 3) + 6 + 9 + 35       = 69
#   kmap_high, mapped plain = 5 + 8 + 9 + 35                             = 57
#   kunmap_high (irq)       = 6 + 5 + (1 + 3 + 1 + 6) + 3 + 9 + 35       = 69
#   kunmap_high plain       = 5 + 11 + 9 + 35                            = 60
#   kmap_high_get, mapped   = 6 + 5 + 3 + 8 + 3 + 9 + 35                 = 69
#   kmap_high, new page     = 34 + 35 + map_new_virtual (2+3+1+6 + 47+1 = 60)
#                             + set_page_address (2 x 23 + 6 = 52)       = 181
ARM926_LITERALS = [
    ("kmap_high of a mapped page", True, 69),
    ("kmap_high of a mapped page", False, 57),
    ("kunmap_high", True, 69),
    ("kunmap_high", False, 60),
    ("kmap_high_get of a mapped page", True, 69),
    ("kmap_high mapping a new page", True, 181),
    ("cpu read hit (linear map)", True, 8),           # ld_hit 1 + 7 x load 1
    ("cpu read miss (linear map)", True, 41),         # ld_miss 34 + 7
]


@pytest.mark.parametrize("name, irq, total", ARM926_LITERALS)
def test_arm926_literal_totals(name, irq, total):
    cyc, _, _ = run_case("arm926", name, irq)
    assert cyc == total


@pytest.mark.parametrize("cpu", CORES)
def test_irq_safe_kmap_lock_adds_exactly_the_masking_to_a_pair(cpu):
    """kmap_high + kunmap_high of a mapped page: ARCH_NEEDS_KMAP_HIGH_GET minus plain =
    irq_disable + irq_enable (lock_kmap) + irq_save + irq_restore (lock_kmap_any)."""
    pair = {}
    for irq in (True, False):
        m = machine(cpu, kmap_high_get=irq)
        m.kmap_high(P)
        c0 = m.cycles[0]
        m.kmap_high(P)
        m.kunmap_high(P)
        pair[irq] = m.cycles[0] - c0
    c = costs(cpu)
    masking = c["irq_disable"] + c["irq_enable"] + c["irq_save"] + c["irq_restore"]
    assert pair[True] - pair[False] == masking
    if cpu == "arm926":
        assert masking == 21 and pair[True] == 138     # spec §1.4: +21 cycles per pair


def _mrs_count(expected):
    """Micro-ops in the sequence whose instructions include an MRS: mrs itself and the
    local_irq_disable / enable / save composites (local_irq_restore is an MSR only)."""
    return sum(n for seq in expected.values() for u, n in seq
               if u in ("mrs", "irq_disable", "irq_enable", "irq_save"))


@pytest.mark.parametrize("cpu, name, irq", PARAMS)
def test_mrs_override_changes_exactly_the_sequences_with_an_mrs(cpu, name, irq):
    base, _, expected = run_case(cpu, name, irq)
    over, got, _ = run_case(cpu, name, irq, {"mrs": MRS_OVERRIDE})
    assert got == tally(expected)                       # same instructions
    assert over == cycles_of(expected, costs(cpu, {"mrs": MRS_OVERRIDE}))
    delta = (MRS_OVERRIDE - costs(cpu)["mrs"]) * _mrs_count(expected)
    assert over - base == delta


def test_mrs_override_leaves_a_load_hit_alone_and_moves_a_pair():
    # the explicit contrast of the test above, on ARM926 (mrs 2 -> 10: +8 per MRS)
    hit = [run_case("arm926", "cpu read hit (linear map)", True, ov)[0]
           for ov in (None, {"mrs": MRS_OVERRIDE})]
    assert hit[0] == hit[1] == 8
    kmap = [run_case("arm926", "kmap_high of a mapped page", True, ov)[0]
            for ov in (None, {"mrs": MRS_OVERRIDE})]
    # lock_kmap's irq_disable, unlock_kmap's irq_enable, page_address's irq_save
    assert kmap[1] - kmap[0] == 3 * 8


def test_composite_override_wins_over_its_parts():
    # overriding irq_save itself (not mrs) changes only irq_save sites
    base, _, expected = run_case("arm926", "kunmap_high", True)
    over, _, _ = run_case("arm926", "kunmap_high", True, {"irq_save": 100})
    n_save = sum(n for seq in expected.values() for u, n in seq if u == "irq_save")
    assert n_save == 2                                  # lock_kmap_any + page_address
    assert over - base == n_save * (100 - 6)
