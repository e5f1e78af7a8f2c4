"""Per-core cycle costs of each micro-op (data; see ../shared/spec/arm-cycle-costs.md).

Interface used by the machine: :func:`cost_vector` returns the ``NUOPS`` int64 cycle vector
for a core preset, with optional overrides.
"""

import numpy as np

from .. import consts as K

# (cycles, mark, source) per micro-op; marks: S stated, D derived, E estimate, R recalled,
# S-emu stated by an emulator (kelpsyberry/dust).
ARM926 = {
    "alu": (1, "S", "ARM9EJ-S TRM DDI 0222B Table 8.2"),
    "branch": (3, "E", "5-stage refill; TRM branch row not confirmed (spec §2.1)"),
    "load": (1, "S", "ARM9EJ-S TRM Table 8.2 (LDR, normal)"),
    "store": (1, "S", "ARM9EJ-S TRM Table 8.2 (STR)"),
    "mrs": (2, "S-emu", "kelpsyberry/dust ARM9E-S model"),
    "msr_c": (3, "S-emu", "kelpsyberry/dust ARM9E-S model"),
    "cpsid": (2, "E", "ARMv6 only; unused on v5"),
    "cpsie": (2, "E", "ARMv6 only; unused on v5"),
    "preempt_disable": (5, "E", "spec §1.4: bic; ldr; add; str on thread_info"),
    "preempt_enable": (9, "E", "spec §1.4: dec + store + load flags + test + branch"),
    "ldrex": (3, "E", "spec §1.5 (ARMv6 sequence, borrowed for SMP runs)"),
    "strex": (3, "E", "spec §1.5"),
    "dmb": (8, "E", "spec §1.3 ARMv6 barriers 5-10"),
    "dsb_sev": (10, "E", "spec §1.5 drain + sev"),
    "spin_wait": (10, "E", "one pass of the ldrex/wfe spin loop"),
    "ld_hit": (1, "S", "ARM9EJ-S TRM Table 8.2"),
    "ld_miss": (34, "E", "spec §2.1: 20 to critical word, line busy until 34"),
    "st_hit": (1, "S", "ARM9EJ-S TRM Table 8.2"),
    "st_miss": (1, "S", "spec §2.1 st_miss: no write allocate, goes to the write buffer"),
    "writeback": (24, "E", "spec §1.3: ~24 cycles per dirty line through the WBB"),
    "dline_inv": (2, "E", "spec §2.1 cp15_dline_inv_mva"),
    "dline_clean": (2, "E", "spec §2.1 cp15_dline_clean_mva (clean or absent)"),
    "dline_clean_dirty": (26, "E", "spec §2.1: 2 + wbb_push"),
    "dline_flush": (2, "E", "spec §2.1: same as clean"),
    "dline_flush_dirty": (26, "E", "spec §2.1: same as clean"),
    "drange_start": (2, "E", "range-op MCR (Feroceon only)"),
    "drange_line": (1, "E", "range op, per line"),
    "drain_wb": (2, "E", "spec §2.1: 2 + remaining drain time"),
    "icache_inv": (2, "E", "one MCR"),
    "tci_iter": (1, "E", "spec §1.3: ~1 per line scanned"),
    "setway_op": (2, "E", "one MCR"),
    "line_alloc": (2, "E", "one MCR"),
    "displace_load": (1, "E", "the LDR; the miss is counted as ld_miss"),
    "tlb_inv_page": (2, "E", "spec §2.1 cp15_tlb_inv_entry"),
    "tlb_walk": (40, "E", "spec §2.1: 2 uncached descriptor reads"),
    "pte_write": (30, "E", "str + clean D line + drain (cpu_arm926_set_pte)"),
    "hash_step": (4, "E", "ldr page; cmp; ldr next; branch"),
    "irq_entry": (5, "S", "ARM9E-S TRM §5.3 best case; worst 24"),
    "irq_exit": (10, "E", "restore and return from exception"),
    "context_switch": (200, "E", "schedule() and switch_to, roughly"),
}

# Composite micro-ops: fixed instruction sequences, priced as the sum of their parts
# (arch/arm/include/asm/irqflags.h, asm/spinlock.h; spec arm-cycle-costs §1.1).
COMPOSITES = {
    "irq_disable": ("mrs", "alu", "msr_c"),
    "irq_enable": ("mrs", "alu", "msr_c"),
    "irq_save": ("mrs", "alu", "msr_c"),
    "irq_restore": ("msr_c",),
    "smp_lock": ("ldrex", "alu", "strex", "alu", "branch", "dmb"),
    "smp_unlock": ("dmb", "store", "dsb_sev"),
}

TABLES = {"arm926": ARM926, "feroceon": ARM926, "xscale": ARM926, "sa110": ARM926}


def cost_vector(cpu, overrides=None):
    """Cycles per micro-op for core ``cpu`` as an int64 array indexed by ``UOP_*``."""
    cycles = {name: entry[0] for name, entry in TABLES[cpu].items()}
    cycles.update(overrides or {})
    for name, parts in COMPOSITES.items():
        if name not in (overrides or {}):
            cycles[name] = sum(cycles[p] for p in parts)
    return np.array([cycles[name] for name in K.UOP_NAMES], dtype=np.int64)
