"""Per-core cycle costs of each micro-op: the numbers and where each one comes from.

Source: ``../shared/spec/arm-cycle-costs.md`` (cited below as "spec §N"). Every base micro-op of
:data:`emu.consts.UOP_NAMES` has, for each core preset, an entry ``(cycles, mark, source)``:

* ``S``      the number is stated in the cited source;
* ``D``      derived by simple arithmetic from stated facts (the derivation is in the source text);
* ``E``      estimate: no cited source states it; a reasoned default to calibrate or override;
* ``R``      recalled from a vendor manual that could not be checked (treat as ``E``);
* ``S-emu``  stated by an emulator's source (kelpsyberry/dust, an ARM9E-S model), not by ARM.

Conventions (spec §2):

* Cycles are *core* cycles charged to the executing CPU ("issue"). Result latencies are charged
  only where a micro-op stands for a fixed instruction sequence whose next instruction uses the
  result (e.g. ``preempt_disable``); plain ``load`` / ``mrs`` are issue-only, as in spec §1.4.
* Memory-side terms (line fill, write-back of a dirty line, table walk, the drain after a PTE
  write) are bus cycles times the core/bus clock ratio (spec §2.1 "Clock-scaling rule"), computed
  from :data:`CLOCKS`; a core-side part is added, and the total is rounded half up to an int
  once. Overriding ``core_mhz`` / ``bus_mhz`` rescales them.
* emu prices memory-side queues (write buffer, write-back buffer) as fixed adds at their full
  steady-state occupancy, so ``drain_wb`` is the MCR only (spec §2 would model queues).
* Composite micro-ops (:data:`COMPOSITES`) cost the sum of their parts, recomputed from
  overrides unless the composite itself is overridden. A composite's mark is its least certain
  part's (:func:`composite_mark`): ``E`` if any part is ``E``, else ``R`` if any is ``R``, else
  ``user`` if any part is overridden, else ``D`` (parts ``S`` / ``S-emu`` / ``D``: spec §1.4
  "D (from S-emu)"). A sum of estimates is an estimate (the spec's preamble: [E] and [R]
  numbers must be labelled as estimates).
* Base entries are independent of each other: overriding ``writeback`` does not change
  ``dline_clean_dirty`` or ``pte_write`` (whose defaults include a write-back); override those
  too, or change the clocks to rescale every memory-side default together.

Interface used by the machine: :func:`cost_vector` returns the ``NUOPS`` int64 cycle vector for a
core preset, with optional overrides (a dict, e.g. from :func:`load_overrides`).
"""

import math
import numbers
import textwrap
import tomllib
from collections.abc import Mapping

import numpy as np

from .. import consts as K

MARKS = ("S", "D", "E", "R", "S-emu")
MARK_MEANINGS = {
    "S": "stated in the cited source",
    "D": "derived from stated facts",
    "E": "estimate",
    "R": "recalled, unverified",
    "S-emu": "stated by an emulator's source",
}
USER_MARK = "user"          # mark of a row whose value comes from an override
#: A composite's mark: the first of these that one of its parts has, else "D" (least certain
#: first; spec preamble: a number built from [E] or [R] ones is labelled as an estimate).
COMPOSITE_MARK_ORDER = ("E", "R", USER_MARK)
_MARK_RULE = ", then ".join(COMPOSITE_MARK_ORDER) + ", else D"

CORES = ("arm926", "feroceon", "xscale", "sa110")
CORE_TITLES = {
    "arm926": "ARM926EJ-S (ARM9EJ-S core, 5-stage pipeline, ARMv5TEJ)",
    "feroceon": "Marvell Feroceon 88FR131 (Kirkwood 88F6281; L2 present, emu models L1 only)",
    "xscale": "Intel XScale (PXA25x / PXA27x class, ARMv5TE)",
    "sa110": "StrongARM SA-110 (ARMv4, cache-v4wb.S)",
}

# Composite micro-ops: fixed instruction sequences, priced as the sum of their parts
# (arch/arm/include/asm/irqflags.h, asm/spinlock.h; spec §1.1).
COMPOSITES = {
    "irq_disable": ("mrs", "alu", "msr_c"),
    "irq_enable": ("mrs", "alu", "msr_c"),
    "irq_save": ("mrs", "alu", "msr_c"),
    "irq_restore": ("msr_c",),
    "smp_lock": ("ldrex", "alu", "strex", "alu", "branch_nt", "dmb"),   # bne not taken: §1.5
    "smp_unlock": ("dmb", "store", "dsb_sev"),
}
_COMPOSITE_SEQ = {
    "irq_disable": "local_irq_disable(): mrs; orr #PSR_I_BIT; msr cpsr_c",
    "irq_enable": "local_irq_enable(): mrs; bic #PSR_I_BIT; msr cpsr_c",
    "irq_save": "local_irq_save(): mrs flags; orr #PSR_I_BIT; msr cpsr_c",
    "irq_restore": "local_irq_restore(): msr cpsr_c, flags",
    "smp_lock": "arch_spin_lock: ldrex; teq; strexeq; teqeq; bne; smp_mb()",
    "smp_unlock": "arch_spin_unlock: smp_mb(); str; dsb_sev()",
}

BASE_UOPS = tuple(n for n in K.UOP_NAMES if n not in COMPOSITES)
CLOCK_KEYS = ("core_mhz", "bus_mhz")
ACCEPTED_KEYS = K.UOP_NAMES + CLOCK_KEYS
#: Largest cycle count an override may give one micro-op (a composite sums up to 6 parts): far
#: above any real cost, small enough that the int64 cycle counters cannot overflow.
MAX_CYCLES = 1_000_000
#: Accepted clock range in MHz: the memory-side terms scale by core_mhz / bus_mhz (<= 10 000).
MIN_MHZ, MAX_MHZ = 1, 10_000

# ---------------------------------------------------------------------------------------------
# Clocks (spec §1.3 "Typical clocks", §2.1, §2.2)
# ---------------------------------------------------------------------------------------------
#: Worst-case IRQ entry latency (IRQ to the first handler instruction) where a source gives
#: one: ARM9E-S TRM DDI 0165B §5.3, 24 cycles [S] (spec arm-cycle-costs §2.1 and §4.6). The
#: other cores have no such figure; the profiler then adds their best-case ``irq_entry``.
IRQ_ENTRY_WORST = {"arm926": 24}

CLOCKS = {
    "arm926": {
        "core_mhz": 200, "bus_mhz": 100, "mark": "E", "core_mark": "R", "bus_mark": "E",
        "source": "core 200 MHz: ARM926 SoCs run 200-400 MHz, e.g. AT91SAM9 ~200 MHz [R, spec "
                  "§1.3 'Typical clocks', not verified]; bus 100 MHz 32-bit SDRAM: the spec's "
                  "default (spec §2.1 heading) [E]. i.MX27-class: core_mhz=400, bus_mhz=133",
    },
    "feroceon": {
        "core_mhz": 1200, "bus_mhz": 400, "mark": "E", "core_mark": "S", "bus_mark": "E",
        "source": "core 1.2 GHz: Kirkwood [S, https://7-cpu.com/cpu/Kirkwood.html]; bus 400 MHz: "
                  "the memory-side clock emu scales by, taken from 7-cpu's L2 '(400 MHz?)' (its "
                  "own question mark) and DDR2-400 [E]; at 1200/400 the memory terms reproduce "
                  "7-cpu's cycle counts exactly",
    },
    "xscale": {
        "core_mhz": 520, "bus_mhz": 104, "mark": "R", "core_mark": "R", "bus_mark": "R",
        "source": "core 520 MHz: PXA270 typical (312-624 MHz) [R, spec §1.3, not verified]; bus "
                  "104 MHz: PXA27x SDRAM clock at 520 MHz run mode (208 MHz system bus / 2) "
                  "[R, recalled, not verified]; PXA255: core_mhz=400, bus_mhz=100",
    },
    "sa110": {
        "core_mhz": 233, "bus_mhz": 66, "mark": "R", "core_mark": "R", "bus_mark": "R",
        "source": "no SA-110 clock in the spec; core 233 MHz (SA-110 parts 100-233 MHz, the "
                  "EBSA-285/CATS footbridge boards whose FLUSH_BASE the preset uses) and bus "
                  "66 MHz (SA-110 bus clock limit) [R, recalled, not verified]",
    },
}


def _round(x):
    """Round half up to an int (the one rounding step of every computed entry)."""
    return int(math.floor(x + 0.5 + 1e-9))


def _fmt(x):
    return f"{x:.2f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------------------------
# Per-core parameters: (value, mark, source). Entries below are built from these.
# ---------------------------------------------------------------------------------------------
_TRM926 = "ARM9EJ-S TRM DDI 0222B Table 8.2 (spec §1.3)"
_DUST = ("kelpsyberry/dust core/src/cpu/interpreter/arm9/arm/other.rs, ARM946E-S = same ARM9E-S "
         "core (spec §1.3)")
_7CPU = "https://7-cpu.com/cpu/Kirkwood.html (spec §1.3, §2.2)"
_XOPT = ("Intel 80200 / XScale Core Developer's Manual, Optimization Guide §B.5.2/A.5.2 "
         "(spec §1.3)")
_XBR = "Intel PXA255 User Manual Table 11-3; PXA27x Optimization Guide Table 4-3 (spec §1.3)"
_XLAT = "XScale Core Developer's Manual §10.4 'Instruction Latencies' (spec §1.3; not checked)"
_SAREC = "StrongARM SA-110 Technical Reference Manual instruction timing (recalled, not verified)"
_NOV5 = "no source for this core (spec §6: only ARM926 rows are cited)"

_PARAMS = {
    "arm926": {
        "alu": (1, "S", _TRM926 + ": data-processing op, PC not destination"),
        "load": (1, "S", _TRM926 + ": LDR, normal"),
        "store": (1, "S", _TRM926 + ": STR"),
        "load_use": (1, "S", _TRM926 + ": LDR used by the next instruction costs 2"),
        "branch": (3, "E", "taken branch: 5-stage pipeline refill; the TRM branch row is not "
                           "confirmed (spec §2.1 branch_taken 3, §6)"),
        "branch_nt": (1, "E", "an untaken conditional branch, e.g. a loop's exit (spec §2.1 "
                              "branch_not_taken 1)"),
        "refill": (3, "E", "pipeline refill as for a taken branch (spec §2.1)"),
        "pc_load": (4, "D", _TRM926 + ": LDR PC 5 vs LDR 1, i.e. +4 to load the PC"),
        "mrs": (2, "S-emu", _DUST + ": add_bus_cycles(2); the +1 result cycle is not charged "
                                    "(spec §1.4 convention)"),
        "msr_c": (3, "S-emu", _DUST + ": base 1 + add_bus_cycles(1); add_cycles(2) when the "
                                      "control field is written"),
        "mcr": (2, "E", "one CP15 MCR: 'MRC/MCR are like LDR/STR' (dust comment, S-emu) plus "
                        "a busy-wait/tag access; spec §1.3 gives 2 for c7 line ops"),
        "fill_bus": (17, "E", "line fill from SDRAM: ~10 bus cycles of latency to the critical "
                              "word + 7 more words at 1 bus cycle each = 17 (spec §1.3/§2.1: ~20 "
                              "to the critical word, line complete at ~34 at 200/100 MHz); "
                              "critical word first [S, ARM926EJ-S TRM DDI 0198D §4.1]; emu "
                              "charges the line-complete time: its CPU accesses are line-"
                              "sized pieces of copies, which read on past the critical word"),
        "fill_core": (0, "E", ""),
        "wb_bus": (12, "E", "dirty line through the write-back buffer: ~4 setup + 8 beats = 12 "
                            "bus cycles (spec §1.3: ~24 core cycles per dirty line at 200/100 "
                            "MHz in steady state); 8-word WBB [S, SAM9G10 datasheet §11.5]"),
        "walk_bus": (20, "E", "2 descriptor reads from memory at ~10 bus cycles each (spec §1.3: "
                              "~40; Linux cleans the PTE line and drains after set_pte, so walks "
                              "read memory)"),
    },
    "feroceon": {
        "alu": (1, "E", "baseline, as ARMv5 (spec §2.2; variable 6-8-stage pipeline [S, In-Stat "
                        "via design-reuse.com])"),
        "load": (1, "D", _7CPU + ": L1 hit load latency 3 = issue 1 + 2 result latency; the "
                                 "result latency is not charged to a plain load"),
        "store": (1, "E", "assume 1-cycle issue into the write buffer, ARMv5-like; " + _NOV5),
        "load_use": (2, "D", _7CPU + ": L1 latency 3, so the next instruction using the result "
                                     "stalls 2"),
        "branch": (1, "E", "predicted branch (spec §2.2: predicted 1 / mispredicted 4 [E]); "
                           "emu's branches are mostly loop-backs of maintenance loops"),
        "branch_nt": (1, "E", "spec §2.2 (predicted)"),
        "refill": (4, "E", "mispredict penalty 4 (spec §2.2 [E]; 'minimizes the branch penalty', "
                           "In-Stat)"),
        "pc_load": (4, "E", "PC load refills the pipeline: the mispredict penalty (spec §2.2 "
                            "[E])"),
        "mrs": (2, "E", "no public Feroceon timing; assume ARM9E-like 2 (spec §1.3 Feroceon "
                        "table, §2.2)"),
        "msr_c": (3, "E", "no public Feroceon timing; assume ARM9E-like 3 (spec §1.3, §2.2)"),
        "mcr": (2, "E", "spec §1.3 Feroceon 'L1 D line op, clean or absent: 2'"),
        "fill_bus": (31, "D", _7CPU + ": emu models L1 only and emu's L1 misses are mostly reads "
                                      "of DMA'd buffers whose L2 lines the outer ops invalidated "
                                      "(spec §3.2b), so a miss goes to DRAM: L1 latency 3 [S] + "
                                      "L2 increment 21 core cycles (L2 hit 24 = 3 + 21 [S]) = 7 "
                                      "bus cycles at 400 MHz, + DRAM 60 ns [S] = 24 bus cycles "
                                      "(7-cpu total ~96). For L2-resident data override "
                                      "ld_miss = 24 [S]"),
        "fill_core": (3, "S", "L1 hit latency 3, " + _7CPU),
        "wb_bus": (4, "E", "dirty L1 line written into the L2: ~12 core cycles, about half the "
                           "21-cycle L2 read increment (spec §1.3, §2.2 '2 + 12') = 4 bus cycles "
                           "at 400 MHz"),
        "walk_bus": (48, "D", _7CPU + ": L2 TLB miss +120 ns [S] = 48 bus cycles at 400 MHz "
                                      "(~144 core cycles at 1.2 GHz); emu's walks follow a TLB "
                                      "flush, which empties both TLB levels"),
    },
    "xscale": {
        "alu": (1, "S", _XOPT + ": data-processing result latency 1"),
        "load": (1, "R", "issue 1; load-use latency 3 not charged to a plain load, " + _XLAT),
        "store": (1, "E", "assume 1-cycle issue into the coalescing write buffer; " + _NOV5),
        "load_use": (2, "R", "load-use latency 3, so the next instruction using the result "
                             "stalls 2; " + _XLAT),
        "branch": (1, "S", _XBR + ": correctly predicted branch 1 (mispredicted 5); emu's "
                                  "branches are mostly loop-backs, assumed predicted by the BTB"),
        "branch_nt": (1, "S", _XBR + ": correctly predicted branch 1"),
        "refill": (5, "S", _XBR + ": branch mispredict 5"),
        "pc_load": (5, "E", "PC load refills the pipeline like a mispredicted branch (5 [S], "
                            + _XBR + ")"),
        "mrs": (1, "R", "MRS 1 issue / 2 result; the +1 result cycle is not charged (spec §1.4 "
                        "convention); " + _XLAT),
        "msr_c": (2, "R", "MSR 2 issue when the mode does not change (cpsr_c with the I bit "
                          "only); " + _XLAT),
        "mcr": (2, "E", "one CP15 MCR; no XScale CP15 issue timing in the spec, ARM926's "
                        "estimate used (spec §1.3)"),
        "fill_bus": (17, "E", "no XScale memory timing in the spec; ARM926's SDRAM shape (10 bus "
                              "cycles latency + 7 beats, spec §1.3) at the PXA SDRAM clock"),
        "fill_core": (0, "E", ""),
        "wb_bus": (12, "E", "ARM926's ~4 setup + 8 beats (spec §1.3) at the PXA SDRAM clock"),
        "walk_bus": (20, "E", "2 descriptor reads at ~10 bus cycles each, as ARM926 (spec §1.3)"),
    },
    "sa110": {
        "alu": (1, "R", _SAREC + ": single-cycle data processing"),
        "load": (1, "R", _SAREC + ": LDR hit, 1 issue"),
        "store": (1, "R", _SAREC + ": STR into the write buffer, 1 issue"),
        "load_use": (1, "R", _SAREC + ": 1-cycle load-use interlock (5-stage pipeline like "
                                      "ARM9)"),
        "branch": (2, "R", _SAREC + ": taken branch 2 cycles, no branch prediction"),
        "branch_nt": (1, "R", _SAREC + ": untaken branch 1"),
        "refill": (2, "R", "pipeline refill as for a taken branch (2 [R])"),
        "pc_load": (2, "E", "PC load refill assumed as a taken branch (2 [R])"),
        "mrs": (2, "E", "no SA-110 timing in the spec; assume the ARM9E-S value of the other "
                        "5-stage ARMv4/v5 core (dust 2, S-emu)"),
        "msr_c": (3, "E", "no SA-110 timing in the spec; assume the ARM9E-S value (dust 3, "
                          "S-emu)"),
        "mcr": (2, "E", "one CP15 MCR; no SA-110 timing in the spec, ARM926's estimate used"),
        "fill_bus": (17, "E", "no SA-110 memory timing in the spec; ARM926's SDRAM shape (10 bus "
                              "cycles latency + 7 beats, spec §1.3) at the SA-110 bus clock"),
        "fill_core": (0, "E", ""),
        "wb_bus": (12, "E", "ARM926's ~4 setup + 8 beats (spec §1.3) at the SA-110 bus clock"),
        "walk_bus": (20, "E", "2 descriptor reads at ~10 bus cycles each, as ARM926 (spec §1.3)"),
    },
}

# ARMv6+ instructions. None of the four cores implements them (SMP needs ARMv6: spec §1.1
# "#error SMP not supported on pre-ARMv6 CPUs"); emu records them only in its SMP mode
# (ncpus > 1), where they are priced from the spec's ARMv6 estimates for every core.
_V6 = "ARMv6+ instruction, not implemented by this core; recorded only in emu's SMP mode " \
      "(ncpus > 1) and priced from the spec's ARMv6 estimate: "
_V6_CPS = "ARMv6+ instruction, not implemented by this core and not recorded by emu's ARMv5 " \
          "routines (they use mrs/msr, spec §1.1); the spec's ARMv6 estimate: "
_V6_OPS = {
    "cpsid": (2, "E", _V6_CPS + "cpsid alone ~1-2, upper value (spec §1.3 ARM1176)"),
    "cpsie": (2, "E", _V6_CPS + "cpsie alone ~1-2, upper value (spec §1.3 ARM1176)"),
    "ldrex": (3, "E", _V6 + "ldrex ~3 (spec §1.5)"),
    "strex": (3, "E", _V6 + "strex ~3 (spec §1.5)"),
    "dmb": (8, "E", _V6 + "DMB (mcr c7,c10,5) ~5-10, midpoint 7.5 rounded up (spec §1.3)"),
    "dsb_sev": (10, "E", _V6 + "DSB = drain WB (mcr c7,c10,4) with the unlock store pending, "
                             "+ sev; ~10 (spec §1.5)"),
}

_NOT_RUN = {
    "drange": "feroceon",
    "tci": "arm926",
    "dinv_all": "arm926",
    "setway": "feroceon",
    "line_alloc": "xscale",
    "displace": "sa110",
}


def _not_run(cpu, which):
    """A note for micro-ops the core's Linux routines never execute."""
    owner = _NOT_RUN[which]
    if cpu == owner:
        return ""
    return f"not executed on {cpu} (only the {owner} routines record it); "


def _build(cpu, core_mhz, bus_mhz):
    """The base-micro-op table of ``cpu`` at the given clocks: name -> (cycles, mark, source)."""
    P = _PARAMS[cpu]
    v = {k: e[0] for k, e in P.items()}
    ratio = core_mhz / bus_mhz
    clk = f"{_fmt(core_mhz)}/{_fmt(bus_mhz)} MHz"
    t = {}

    def put(name, cycles, mark, source):
        assert mark in MARKS and source
        t[name] = (int(cycles), mark, source)

    def mem(bus, core=0):
        """``core + bus * ratio`` rounded once, and its derivation text."""
        x = core + bus * ratio
        core_txt = f"{core} + " if core else ""
        return _round(x), f"{core_txt}{bus} bus cycles x {clk} = {_fmt(x)} -> {_round(x)}"

    def par(k):
        return P[k]

    # -- plain instructions ------------------------------------------------------------------
    for k in ("alu", "branch", "branch_nt", "load", "store", "mrs", "msr_c"):
        put(k, *par(k))
    for k, e in _V6_OPS.items():
        put(k, *e)
    put("ld_hit", v["load"], P["load"][1], "a load that hits the L1 D-cache: as 'load'. "
        + P["load"][2] + ". emu records one per line-sized piece of a CPU access")
    put("st_hit", v["store"], P["store"][1], "a store that hits: as 'store'. " + P["store"][2])
    if cpu == "arm926":
        put("st_miss", v["store"], "D", "STR 1 [S, " + _TRM926 + "] and no write allocate: the "
            "store goes to the 16-word write buffer [S, ARM926EJ-S TRM DDI 0198D §4.1, 'allocate "
            "on read-miss only'], assuming it has space (spec §2.1 st_miss 1)")
    else:
        put("st_miss", v["store"], "E", "read-allocate preset: the store goes to the write "
            "buffer, 1 issue assuming it has space (as ARM926, spec §2.1 st_miss)")

    # -- instruction sequences (spec §1.4 shapes, this core's instruction costs) ---------------
    lu = f"load-use stall {v['load_use']} [{P['load_use'][1]}]"
    pd = 2 * v["alu"] + v["load"] + v["store"] + v["load_use"]
    put("preempt_disable", pd, "E",
        f"spec §1.4 shape 'bic ti, sp, #8191; ldr; add; str' on thread_info->preempt_count "
        f"(CONFIG_PREEMPT): 2 alu + load + store + {lu} = {pd}" +
        (" (spec §1.4: ~5)" if cpu == "arm926" else ""))
    pe = 3 * v["alu"] + 2 * v["load"] + v["store"] + v["branch_nt"] + 2 * v["load_use"]
    put("preempt_enable", pe, "E",
        f"spec §1.4 shape: bic ti; ldr count; sub; str; ldr flags; tst; bne (not taken) = "
        f"3 alu + 2 load + store + untaken branch {v['branch_nt']} + 2 x {lu} = {pe}" +
        (" (spec §1.4: ~9)" if cpu == "arm926" else ""))
    sw = _V6_OPS["ldrex"][0] + 4 * v["alu"] + v["branch"]
    put("spin_wait", sw, "E",
        f"one pass of a contended spin loop, priced on every core with the ARMv6 "
        f"arch_spin_lock shape (emu models locks SMP/debug-style, exec/locks.py; spec §1.1): "
        f"ldrex {_V6_OPS['ldrex'][0]} "
        f"[E] + teq, wfene, strexeq, teqeq (4 x alu {v['alu']}; the WFE sleep is not modelled) "
        f"+ bne taken {v['branch']} = {sw}")
    hs = 2 * v["load"] + 2 * v["alu"] + v["branch_nt"] + v["branch"] + v["load_use"]
    put("hash_step", hs, "E",
        f"one list_for_each_entry node in page_address() (mm/highmem.c): ldr page; cmp; beq "
        f"(not taken); ldr next; cmp; bne (taken) = 2 load + 2 alu + untaken {v['branch_nt']} "
        f"+ taken {v['branch']} + one {lu} (the other hidden by scheduling) = {hs}")

    # -- memory side (bus cycles x core/bus) ---------------------------------------------------
    fill, fill_txt = mem(v["fill_bus"], v["fill_core"])
    put("ld_miss", fill, P["fill_bus"][1], f"{P['fill_bus'][2]}. {fill_txt}")
    wb, wb_txt = mem(v["wb_bus"])
    put("writeback", wb, P["wb_bus"][1], f"{P['wb_bus'][2]}. {wb_txt}")
    walk, walk_txt = mem(v["walk_bus"])
    put("tlb_walk", walk, P["walk_bus"][1], f"{P['walk_bus'][2]}. {walk_txt}")
    put("displace_load", fill, "E",
        _not_run(cpu, "displace") + "v4wb_flush_kern_cache_all: an LDR from the FLUSH_BASE "
        "window that always misses (the window toggles), priced as a full line fill like "
        f"ld_miss ({fill}); the LDR issue hides in the fill latency; the victim's write-back is "
        "recorded separately as 'writeback'")

    # -- CP15 cache and TLB operations -------------------------------------------------------
    mcr, mm, ms = v["mcr"], P["mcr"][1], P["mcr"][2]
    put("dline_inv", mcr, mm, "invalidate D line by MVA (mcr c7,c6,1): 1 MCR, no bus traffic. "
        + ms)
    put("dline_clean", mcr, mm, "clean D line by MVA (mcr c7,c10,1), line clean or absent: "
        "1 MCR. " + ms)
    put("dline_flush", mcr, mm, "clean+invalidate D line (mcr c7,c14,1; XScale/v4wb: see "
        "dline_clean + dline_inv), line clean or absent: 1 MCR. " + ms)
    cd, cd_txt = mem(v["wb_bus"], mcr)
    for name, what in (("dline_clean_dirty", "clean"), ("dline_flush_dirty", "clean+invalidate")):
        put(name, cd, "E", f"{what} of a dirty line: MCR {mcr} + the line's write-back at "
            f"steady-state occupancy (spec §1.3 / §2.1 '2 + wbb_push'): {cd_txt}")
    put("drain_wb", mcr, "E", "drain write buffer (mcr c7,c10,4): the MCR only; emu charges "
        "every write-back at its full occupancy when it is queued, so nothing is left to wait "
        "for (spec §2.1: 2 + remaining drain time)")
    put("icache_inv", mcr, "E", "invalidate I-cache (mcr c7,c5,0; XScale also the BTB): 1 MCR, "
        "refill misses not modelled")
    put("tlb_inv_page", mcr, "E", "invalidate one TLB entry by MVA (mcr c8,c5,1 / c8,c6,1): "
        "1 MCR (spec §1.3 / §2.1: 2)")
    put("drange_start", mcr, "E", _not_run(cpu, "drange") + "one of the two range-op MCRs "
        "(mcr p15,5,start/top,c15,c13/c14/c15,0/1) of feroceon_range_dma_*_range [S, spec §1.2]; "
        "spec §2.2 '4 + 1 per line' = 2 per MCR")
    put("drange_line", 1, "E", _not_run(cpu, "drange") + "range op, per line in the range "
        "(spec §1.3 / §2.2: ~1 per line + write-backs, recorded separately)")
    put("tci_iter", 1, "E", _not_run(cpu, "tci") + "one 'mrc p15,0,r15,c7,c14,3' "
        "test-clean-invalidate iteration: the MRC issue (spec §1.3: per dirty line mrc 1 + "
        "bne 3 + write-back 24 = 28 on ARM926; bne and write-back are recorded separately)")
    put("dcache_scan", 1, "E", _not_run(cpu, "tci") + "the test-clean-invalidate hardware "
        "walking one D-cache line (spec §1.3: whole D flush ~512 + 28 x dirty lines for 16 KB, "
        "i.e. ~1 cycle per line scanned)")
    # no cost in the spec for a whole-D invalidate: priced as the closest CP15 op, dline_inv
    put("dcache_inv_all", mcr, "E", _not_run(cpu, "dinv_all") + "invalidate the whole D-cache "
        "(mcr c7,c6,0), arm926_flush_kern_cache_all with CONFIG_CPU_DCACHE_WRITETHROUGH "
        "(spec semantics §4.3): 1 MCR, priced as dline_inv (c7,c6,1; spec §1.3 gives no "
        "figure for the whole-cache op)")
    put("setway_op", mcr, "E", _not_run(cpu, "setway") + "clean+invalidate by set/way "
        "(mcr c7,c14,2): 1 MCR (spec §1.3: 512 x (MCR 2 + loop 3) for 16 KB); write-back of a "
        "dirty line recorded separately")
    put("line_alloc", 1, "E", _not_run(cpu, "line_alloc") + "XScale line allocate "
        "(mcr c7,c2,5) issue 1: spec §1.3 estimates ~1.5 per line including the unrolled loop, "
        "but emu records the loop's add + teq/4 + bne/4 (1.5 per line) separately, so ~2.5 per "
        "line in all; the victim's write-back is recorded as 'writeback'")
    pw_core = 2 * v["store"] + 11 * v["alu"] + 2 * mcr + 2 * v["branch"]
    pw, pw_txt = mem(v["wb_bus"], pw_core)
    put("pte_write", pw, "E",
        "set_pte_ext / pte_clear: cpu_*_set_pte_ext = armv3_set_pte_ext (str linux pte; eor; "
        "bic; bic; orr; tst; orrne; tst; orreq; tst; movne; str hw pte) + mov r0,r0 + mcr "
        "c7,c10,1 (clean D entry) + mcr c7,c10,4 (drain) + bl/mov pc,lr (shape from Linux "
        "arch/arm/mm/proc-macros.S and proc-*.S, read in a 3.3.8 copy): 2 store + 11 alu + 2 MCR "
        f"+ 2 branch = {pw_core} core cycles, + the drain waiting for the PTE line/words to "
        f"reach memory, priced as one line write-back: {pw_txt}"
        + ("; the Feroceon L2 PTE clean (write-back L2 configs) is not charged"
           if cpu == "feroceon" else ""))

    # -- exceptions and scheduling -----------------------------------------------------------
    ie = v["refill"] + 2
    if cpu == "arm926":
        put("irq_entry", ie, "E", "IRQ to the first handler instruction, best case ~5 (spec "
            "§2.1); worst case 24 [S, ARM9E-S TRM DDI 0165B §5.3], not charged here; = pipeline "
            "refill 3 + vector fetch and 'b vector_irq' 2")
    else:
        put("irq_entry", ie, "E", f"IRQ to the first handler instruction, best case: pipeline "
            f"refill {v['refill']} [{P['refill'][1]}] + vector fetch and 'b vector_irq' 2 = {ie} "
            "(the rule that gives ARM926's ~5, spec §2.1); no IRQ latency figure for this core")
    ix = v["msr_c"] + 16 + v["pc_load"]
    put("irq_exit", ix, "E",
        f"svc_exit (arch/arm/kernel/entry-header.S): msr spsr_cxsf (as msr_c {v['msr_c']}) + "
        f"ldmia sp, {{r0 - pc}}^ = LDM of 16 registers (n cycles, as ARM9 TRM Table 8.2 LDM) "
        f"+ PC-load refill {v['pc_load']} [{P['pc_load'][1]}] = {ix}; the C irq_exit() and the "
        "register save at entry are not included")
    put("context_switch", 200, "E", "schedule() + switch_to/__switch_to between kernel tasks, "
        "order of magnitude only (no source); override to calibrate")

    missing = set(BASE_UOPS) - set(t)
    extra = set(t) - set(BASE_UOPS)
    assert not missing and not extra, (cpu, missing, extra)
    return {n: t[n] for n in BASE_UOPS}


#: Base micro-op tables at the default clocks: ``TABLES[cpu][name] = (cycles, mark, source)``.
TABLES = {cpu: _build(cpu, CLOCKS[cpu]["core_mhz"], CLOCKS[cpu]["bus_mhz"]) for cpu in CORES}
ARM926 = TABLES["arm926"]       # backward-compatible name of the first draft


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
def _check_cpu(cpu):
    if not isinstance(cpu, str) or cpu not in TABLES:
        raise ValueError(f"cpu={cpu!r}: unknown core preset; accepted values are "
                         + ", ".join(repr(n) for n in CORES))


def _accepted():
    return ", ".join(ACCEPTED_KEYS)


def _check_mhz(name, val):
    if (isinstance(val, bool) or not isinstance(val, numbers.Real)
            or not MIN_MHZ <= val <= MAX_MHZ):          # NaN fails the comparison too
        raise ValueError(f"{name}={val!r}: must be a positive number of MHz in "
                         f"[{MIN_MHZ}, {MAX_MHZ}]")
    return val


def validate_overrides(overrides, where="costs"):
    """Check an override dict.

    Parameters
    ----------
    overrides : Mapping or None
        Micro-op name (base or composite) -> cycles, an int in ``[0, MAX_CYCLES]``; and
        ``core_mhz`` / ``bus_mhz`` -> a number in ``[MIN_MHZ, MAX_MHZ]``.
    where : str
        Prefix of the error message (e.g. the TOML file and section).

    Returns
    -------
    dict
        A plain copy (cycles as ints). ``ValueError`` names the offending key.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{where}={overrides!r}: must be a table of micro-op name = cycles "
                         f"(accepted names: {_accepted()})")
    out = {}
    for key, val in overrides.items():
        if key not in ACCEPTED_KEYS:
            raise ValueError(f"{where}: {key!r}: unknown micro-op; accepted names are "
                             f"{_accepted()}")
        if key in CLOCK_KEYS:
            out[key] = _check_mhz(f"{where}: {key}", val)
            continue
        if isinstance(val, bool) or not isinstance(val, numbers.Integral) \
                or not 0 <= val <= MAX_CYCLES:
            raise ValueError(f"{where}: {key}={val!r}: cycles must be a non-negative int "
                             f"<= {MAX_CYCLES} (MAX_CYCLES)")
        out[key] = int(val)
    return out


# ---------------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------------
def clocks(cpu, overrides=None):
    """The clocks in effect for a core.

    Parameters
    ----------
    cpu : str
        A core preset.
    overrides : Mapping or None
        Cost overrides; their ``core_mhz`` / ``bus_mhz`` replace the preset's.

    Returns
    -------
    dict
        ``CLOCKS[cpu]`` with the overrides, their marks set to ``"user"``.
    """
    _check_cpu(cpu)
    ov = validate_overrides(overrides)
    c = dict(CLOCKS[cpu])
    for k in CLOCK_KEYS:
        if k in ov:
            c[k] = ov[k]
            c["mark"] = USER_MARK
            c[k.split("_")[0] + "_mark"] = USER_MARK
    return c


def cycles_to_us(cpu, cycles, core_mhz=None):
    """Microseconds that some core cycles take.

    Parameters
    ----------
    cpu : str
        A core preset.
    cycles : int or float
        Core cycles.
    core_mhz : float, optional
        The clock to use instead of the preset's.

    Returns
    -------
    float
    """
    _check_cpu(cpu)
    mhz = CLOCKS[cpu]["core_mhz"] if core_mhz is None else _check_mhz("core_mhz", core_mhz)
    return cycles / mhz


def _base(cpu, ov):
    """Base table of ``cpu`` rebuilt at overridden clocks if any (validated ``ov``)."""
    if any(k in ov for k in CLOCK_KEYS):
        c = CLOCKS[cpu]
        return _build(cpu, ov.get("core_mhz", c["core_mhz"]), ov.get("bus_mhz", c["bus_mhz"]))
    return TABLES[cpu]


def _resolve(cpu, overrides):
    """Cycles of every micro-op (base and composite) after overrides; and the overrides."""
    _check_cpu(cpu)
    ov = validate_overrides(overrides)
    cycles = {name: e[0] for name, e in _base(cpu, ov).items()}
    cycles.update({k: v for k, v in ov.items() if k not in CLOCK_KEYS})
    for name, parts in COMPOSITES.items():
        if name not in ov:
            cycles[name] = sum(cycles[p] for p in parts)
    return cycles, ov


def cost_vector(cpu, overrides=None):
    """Cycles per micro-op for a core, as the kernels read them.

    A composite costs the sum of its parts (after overrides) unless it is overridden itself.

    Parameters
    ----------
    cpu : str
        A core preset.
    overrides : Mapping or None
        Micro-op names (base or composite) to cycles; may set ``core_mhz`` / ``bus_mhz`` to
        rescale the memory-side defaults.

    Returns
    -------
    numpy.ndarray
        int64, indexed by ``UOP_*``.
    """
    cycles, _ = _resolve(cpu, overrides)
    return np.array([cycles[name] for name in K.UOP_NAMES], dtype=np.int64)


def composite_mark(part_marks):
    """The confidence mark of a sum of parts: its least certain part's.

    Parameters
    ----------
    part_marks : iterable of str
        The parts' marks (:data:`MARKS` or :data:`USER_MARK`).

    Returns
    -------
    str
        ``"E"`` if any part is ``E``, else ``"R"`` if any is ``R``, else ``"user"`` if any is
        overridden, else ``"D"`` (derived from ``S`` / ``S-emu`` / ``D`` parts).
    """
    marks = set(part_marks)
    return next((m for m in COMPOSITE_MARK_ORDER if m in marks), "D")


def _composite_row(name, cycles, marks, ov):
    """``(mark, source)`` of composite ``name`` from its parts' ``cycles`` and ``marks``."""
    parts = COMPOSITES[name]
    total = sum(cycles[p] for p in parts)
    if name in ov:
        return USER_MARK, f"override (the sum of its parts would be {total})"
    expr = " + ".join(f"{p} {cycles[p]}" for p in parts)
    mark = composite_mark(marks[p] for p in parts)
    why = ", ".join(f"{p} {marks[p]}" for p in dict.fromkeys(parts))
    return mark, (f"sum of {' + '.join(parts)} = {expr} = {total}; {_COMPOSITE_SEQ[name]} "
                  f"(spec §1.1, §1.4); mark {mark}, its least certain part's ({why}; "
                  f"{_MARK_RULE})")


def table(cpu, overrides=None):
    """The cost table of a core, one row per micro-op in ``UOP_NAMES`` order.

    Overridden rows have mark ``"user"``. A composite's source is ``"sum of ..."`` and its
    mark its least certain part's (:func:`composite_mark`; an overridden part counts as
    ``"user"``).

    Parameters
    ----------
    cpu : str
        A core preset.
    overrides : Mapping or None
        As for :func:`cost_vector`.

    Returns
    -------
    list of tuple
        ``(name, cycles, mark, source)`` rows.
    """
    cycles, ov = _resolve(cpu, overrides)
    base = _base(cpu, ov)
    marks = {name: USER_MARK if name in ov else base[name][1] for name in BASE_UOPS}
    rows = []
    for name in K.UOP_NAMES:
        if name in COMPOSITES:
            mark, src = _composite_row(name, cycles, marks, ov)
        else:
            c, mark, src = base[name]
            if name in ov:
                mark, src = USER_MARK, f"override (default {c} [{mark}]: {src})"
        rows.append((name, cycles[name], mark, src))
    return rows


def describe(cpu, overrides=None, width=100):
    """A printable text table of a core's costs (``emu presets --costs``).

    Parameters
    ----------
    cpu : str
        A core preset.
    overrides : Mapping or None
        As for :func:`cost_vector`.
    width : int
        Wrap the prose lines at this width.

    Returns
    -------
    str
    """
    rows = table(cpu, overrides)
    c = clocks(cpu, overrides)
    mhz = c["core_mhz"]
    head = [
        f"{cpu}: {CORE_TITLES[cpu]}",
        f"clocks: core {_fmt(mhz)} MHz [{c['core_mark']}], bus {_fmt(c['bus_mhz'])} MHz "
        f"[{c['bus_mark']}]",
    ]
    head += textwrap.wrap("  " + CLOCKS[cpu]["source"], width, subsequent_indent="  ")
    head += textwrap.wrap("marks: " + "; ".join(f"{m} {MARK_MEANINGS[m]}" for m in MARKS)
                          + f"; {USER_MARK} overridden. A sum of parts has its least "
                          f"certain part's mark: {_MARK_RULE}", width, subsequent_indent="  ")
    cols = f"{'micro-op':18s} {'cycles':>6s} {'ns':>8s}  {'mark':5s}  source"
    lines = head + ["", cols, "-" * min(width, max(len(cols), 60))]
    indent = " " * 43
    for name, cyc, mark, src in rows:
        ns = cycles_to_us(cpu, cyc, mhz) * 1000.0
        first = f"{name:18s} {cyc:6d} {ns:8.1f}  {mark:5s}  "
        wrapped = textwrap.wrap(src, max(20, width - len(first))) or [""]
        lines.append(first + wrapped[0])
        lines += [indent + w for w in wrapped[1:]]
    return "\n".join(lines)


def cost_json(cpu, overrides=None):
    """A core's costs as data (``emu presets --costs --json``).

    Parameters
    ----------
    cpu : str
        A core preset.
    overrides : Mapping or None
        As for :func:`cost_vector`.

    Returns
    -------
    dict
        The clocks and, per micro-op, its cycles, ns, confidence mark and source, as
        :func:`describe` prints them.
    """
    c = clocks(cpu, overrides)
    return {"title": CORE_TITLES[cpu], "core_mhz": c["core_mhz"], "bus_mhz": c["bus_mhz"],
            "core_mark": c["core_mark"], "bus_mark": c["bus_mark"],
            "micro_ops": {name: {"cycles": int(cyc),
                                 "ns": round(cycles_to_us(cpu, cyc, c["core_mhz"]) * 1000, 3),
                                 "mark": mark, "source": src}
                          for name, cyc, mark, src in table(cpu, overrides)}}


def load_overrides(path, cpu=None):
    """Read cost overrides from a TOML file.

    Two layouts, which may be combined: ``[costs]`` applies to every core, ``[<core>]`` (e.g.
    ``[arm926]``) to one core and wins over ``[costs]``::

        [costs]
        mrs = 2
        msr_c = 3

        [feroceon]
        ld_miss = 24
        core_mhz = 1000

    Parameters
    ----------
    path : str or os.PathLike
        The TOML file.
    cpu : str, optional
        The core whose section applies. With None only ``[costs]`` is allowed (a file with
        per-core sections needs ``cpu`` to choose one).

    Returns
    -------
    dict
        The overrides for ``cpu``.

    Raises
    ------
    ValueError
        The file is not valid TOML, or a section or key is not accepted (the message names
        the file, section and key).
    """
    if cpu is not None:
        _check_cpu(cpu)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    sections = ("costs",) + CORES
    out = {}
    for sec, body in doc.items():
        if sec not in sections:
            if isinstance(body, Mapping):
                raise ValueError(f"{path}: [{sec}]: unknown section; accepted sections are "
                                 + ", ".join(f"[{s}]" for s in sections))
            raise ValueError(f"{path}: {sec!r} outside a section: put cost overrides under "
                             "[costs] or a core section (" + ", ".join(f"[{s}]" for s in CORES)
                             + ")")
        if not isinstance(body, Mapping):
            raise ValueError(f"{path}: {sec!r} must be a section ([{sec}]), not a value")
        out[sec] = validate_overrides(body, where=f"{path} [{sec}]")
    if cpu is None:
        per_core = [s for s in out if s != "costs"]
        if per_core:
            raise ValueError(f"{path}: has per-core section(s) "
                             + ", ".join(f"[{s}]" for s in per_core)
                             + "; pass cpu= to choose one (accepted values are "
                             + ", ".join(repr(n) for n in CORES) + ")")
        return dict(out.get("costs", {}))
    merged = dict(out.get("costs", {}))
    merged.update(out.get(cpu, {}))
    return merged
