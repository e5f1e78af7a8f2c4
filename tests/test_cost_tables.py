"""The per-core cycle tables (emu/cost/tables.py): completeness, provenance, composites,
overrides (dicts and TOML files), clocks, and the ARM926 numbers of spec arm-cycle-costs §1.4."""

import numpy as np
import pytest

from emu import consts as K
from emu.cost import tables as T

CORES = ("arm926", "feroceon", "xscale", "sa110")
COMPOSITE_NAMES = ("irq_disable", "irq_enable", "irq_save", "irq_restore", "smp_lock",
                   "smp_unlock")
BASE = tuple(n for n in K.UOP_NAMES if n not in COMPOSITE_NAMES)


def vec(cpu, overrides=None):
    v = T.cost_vector(cpu, overrides)
    return {n: int(v[i]) for i, n in enumerate(K.UOP_NAMES)}


# -- completeness and provenance --------------------------------------------------------------
def test_the_four_presets_have_tables_clocks_and_match_the_cache_presets():
    from emu.cache.config import PRESETS
    assert set(T.TABLES) == set(CORES) == set(T.CLOCKS) == set(PRESETS)
    assert set(T.COMPOSITES) == set(COMPOSITE_NAMES)
    assert T.BASE_UOPS == BASE


@pytest.mark.parametrize("cpu", CORES)
def test_every_core_prices_every_base_micro_op_and_nothing_else(cpu):
    assert tuple(T.TABLES[cpu]) == BASE


@pytest.mark.parametrize("cpu", CORES)
def test_every_entry_is_an_int_with_a_valid_mark_and_a_source(cpu):
    for name, (cycles, mark, source) in T.TABLES[cpu].items():
        assert type(cycles) is int and cycles >= 0, name
        assert mark in T.MARKS, (name, mark)
        assert isinstance(source, str) and len(source.strip()) > 10, name


@pytest.mark.parametrize("cpu", CORES)
def test_table_rows_cover_every_micro_op_in_uop_order_with_composites_derived(cpu):
    rows = T.table(cpu)
    assert [r[0] for r in rows] == list(K.UOP_NAMES)
    v = T.cost_vector(cpu)
    for i, (name, cycles, mark, source) in enumerate(rows):
        assert cycles == v[i]
        assert mark in T.MARKS and source
        if name in T.COMPOSITES:
            parts = T.COMPOSITES[name]
            assert mark == T.composite_mark(T.TABLES[cpu][p][1] for p in parts), name
            assert source.startswith("sum of ") and f"mark {mark}, its least certain" in source


@pytest.mark.parametrize("cpu", CORES)
def test_clocks_carry_marks_and_sources(cpu):
    c = T.CLOCKS[cpu]
    assert c["core_mhz"] > 0 and c["bus_mhz"] > 0
    assert c["core_mhz"] >= c["bus_mhz"]
    assert c["mark"] in T.MARKS and c["core_mark"] in T.MARKS and c["bus_mark"] in T.MARKS
    assert c["source"].strip()


def test_estimates_are_not_passed_off_as_stated():
    # the spec has no cycle figures at all for these; they must not be marked S
    for cpu in CORES:
        for name in ("context_switch", "dline_inv", "drain_wb", "tlb_inv_page", "pte_write",
                     "hash_step", "irq_exit", "ldrex", "dmb"):
            assert T.TABLES[cpu][name][1] in ("E", "R"), (cpu, name)
    for name, (_, mark, _) in T.TABLES["sa110"].items():
        assert mark in ("E", "R"), name        # no SA-110 timing in the spec at all
    assert T.TABLES["arm926"]["mrs"][1] == "S-emu"
    assert T.TABLES["arm926"]["msr_c"][1] == "S-emu"
    assert T.TABLES["arm926"]["irq_entry"][1] == "E"   # the 5 is "~"; only the worst case is S


# -- composites -------------------------------------------------------------------------------
@pytest.mark.parametrize("cpu", CORES)
def test_composites_equal_the_sum_of_their_parts(cpu):
    c = vec(cpu)
    for name, parts in T.COMPOSITES.items():
        assert c[name] == sum(c[p] for p in parts), name


# What spec arm-cycle-costs says of each composite: ARM926's IRQ masking is "D (from S-emu)"
# (§1.4); Feroceon's save/restore E (§1.3: "assumes ARM926-like"); XScale's MRS/MSR are R
# (§1.3); SA-110 has no timing in the spec (E parts); the SMP lock is an estimate (§1.5).
IRQ_MASKING = ("irq_disable", "irq_enable", "irq_save", "irq_restore")
SPEC_COMPOSITE_MARKS = {"arm926": "D", "feroceon": "E", "xscale": "R", "sa110": "E"}


@pytest.mark.parametrize("cpu", CORES)
def test_a_composite_of_estimates_is_marked_an_estimate(cpu):
    """Spec preamble: [E] and [R] numbers must be labelled as estimates; a sum of them is
    one too, not D."""
    rows = {r[0]: r for r in T.table(cpu)}
    for name in IRQ_MASKING:
        assert rows[name][2] == SPEC_COMPOSITE_MARKS[cpu], name
    assert rows["smp_lock"][2] == rows["smp_unlock"][2] == "E"       # ldrex, dmb: E (§1.5)
    js = T.cost_json(cpu)["micro_ops"]
    assert {n: js[n]["mark"] for n in T.COMPOSITES} == {n: rows[n][2] for n in T.COMPOSITES}


@pytest.mark.parametrize("marks, mark", [
    (("S-emu", "S", "S-emu"), "D"), (("D", "S"), "D"), (("S", "E", "R"), "E"),
    (("R", "S", "R"), "R"), (("R", T.USER_MARK), "R"), ((T.USER_MARK, "S"), T.USER_MARK),
    ((T.USER_MARK, "E"), "E"),
])
def test_composite_mark_is_the_least_certain_parts(marks, mark):
    assert T.composite_mark(marks) == mark


def test_an_overridden_part_keeps_a_composites_mark_sensible():
    """An overridden part is 'user'; the composite takes its least certain part's mark, so a
    calibrated mrs makes ARM926's irq_save 'user' but leaves Feroceon's an estimate (its
    msr_c is still E); an overridden composite is 'user' whatever its parts."""
    rows = {r[0]: r for r in T.table("arm926", {"mrs": 2})}
    assert rows["irq_save"][2] == T.USER_MARK and "mrs user" in rows["irq_save"][3]
    assert rows["irq_restore"][2] == "D"                     # msr_c only
    rows = {r[0]: r for r in T.table("feroceon", {"mrs": 2})}
    assert rows["irq_save"][2] == "E" and rows["irq_restore"][2] == "E"
    rows = {r[0]: r for r in T.table("feroceon", {"mrs": 2, "alu": 1, "msr_c": 3})}
    assert rows["irq_save"][2] == T.USER_MARK
    rows = {r[0]: r for r in T.table("xscale", {"irq_save": 5})}
    assert rows["irq_save"][2] == T.USER_MARK and rows["irq_disable"][2] == "R"


def test_overriding_mrs_reprices_the_composites_that_contain_it_only():
    base = vec("arm926")
    c = vec("arm926", {"mrs": 7})
    for name in ("irq_disable", "irq_enable", "irq_save"):
        assert c[name] == base[name] + 5
    assert c["irq_restore"] == base["irq_restore"]          # msr_c only
    assert c["smp_lock"] == base["smp_lock"] and c["smp_unlock"] == base["smp_unlock"]
    assert c["mrs"] == 7


def test_overriding_a_composite_directly_wins_over_its_parts():
    c = vec("arm926", {"mrs": 7, "irq_save": 1})
    assert c["irq_save"] == 1
    assert c["irq_disable"] == 7 + 1 + 3
    rows = {r[0]: r for r in T.table("arm926", {"irq_save": 1})}
    assert rows["irq_save"][1:3] == (1, T.USER_MARK)
    assert "6" in rows["irq_save"][3]                        # says what the sum would be


def test_cost_vector_is_int64_in_uop_order():
    v = T.cost_vector("feroceon", {"alu": 4})
    assert v.dtype == np.int64 and v.shape == (K.NUOPS,)
    assert v[K.UOP_ALU] == 4
    assert v[K.UOP_IRQ_SAVE] == 2 + 4 + 3


# -- the ARM926 numbers of spec §1.4 ----------------------------------------------------------
def test_arm926_irq_masking_composites_match_spec_section_1_4():
    c = vec("arm926")
    assert (c["mrs"], c["alu"], c["msr_c"]) == (2, 1, 3)
    assert c["irq_save"] == 6
    assert c["irq_restore"] == 3
    assert c["irq_disable"] == 6
    assert c["irq_enable"] == 6
    assert (c["preempt_disable"], c["preempt_enable"]) == (5, 9)


def test_arm926_kmap_lock_overhead_of_irq_masking_is_21_cycles_per_pair():
    c = vec("arm926")
    plain = c["preempt_disable"] + c["preempt_enable"]                     # spin_lock + unlock
    irq = c["irq_disable"] + c["preempt_disable"] + c["irq_enable"] + c["preempt_enable"]
    irqsave = c["irq_save"] + c["preempt_disable"] + c["irq_restore"] + c["preempt_enable"]
    assert plain == 14 and irq == 26 and irqsave == 23
    assert irq - plain == 12                 # lock_kmap() in kmap_high
    assert irqsave - plain == 9              # lock_kmap_any() in kunmap_high
    assert (irq - plain) + (irqsave - plain) == 21
    assert T.cycles_to_us("arm926", 21) == pytest.approx(0.105)            # ~105 ns at 200 MHz
    assert T.cycles_to_us("feroceon", 21) * 1000 == pytest.approx(17.5)    # ~18 ns at 1.2 GHz


def test_arm926_memory_side_defaults_match_the_spec():
    c = vec("arm926")
    assert c["ld_miss"] == 34            # 17 bus cycles x 200/100 (spec: line complete ~34)
    assert c["writeback"] == 24          # 12 bus cycles x 2 (spec §1.3 ~24 per dirty line)
    assert c["dline_clean_dirty"] == c["dline_flush_dirty"] == 26   # 2 + wbb_push
    assert c["tlb_walk"] == 40
    # test-clean-invalidate per dirty line: mrc + bne + write-back = 28 (spec §1.3, §1.6)
    assert c["tci_iter"] + c["branch"] + c["writeback"] == 28
    assert c["st_miss"] == 1 and c["ld_hit"] == 1 and c["irq_entry"] == 5


def test_feroceon_defaults_follow_7cpu_and_spec_section_2_2():
    c = vec("feroceon")
    assert c["ld_miss"] == 96            # 3 + 21 + 60 ns at 1.2 GHz
    assert c["tlb_walk"] == 144          # 120 ns at 1.2 GHz
    assert c["dline_clean_dirty"] == 14  # 2 + 12
    assert (c["irq_save"], c["irq_restore"], c["irq_disable"], c["irq_enable"]) == (6, 3, 6, 6)


def test_xscale_branch_is_the_stated_predicted_cost():
    assert T.TABLES["xscale"]["branch"][:2] == (1, "S")
    assert "mispredict" in T.TABLES["xscale"]["branch"][2]


# -- clocks -----------------------------------------------------------------------------------
def test_cycles_to_us():
    assert T.cycles_to_us("arm926", 200) == pytest.approx(1.0)
    assert T.cycles_to_us("feroceon", 12000) == pytest.approx(10.0)      # spec §1.6: ~10 µs
    assert T.cycles_to_us("arm926", 12000) == pytest.approx(60.0)        # spec §1.6: ~60 µs
    assert T.cycles_to_us("xscale", 520) == pytest.approx(1.0)
    assert T.cycles_to_us("arm926", 400, core_mhz=400) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cpu='arm7'"):
        T.cycles_to_us("arm7", 1)
    with pytest.raises(ValueError, match="core_mhz"):
        T.cycles_to_us("arm926", 1, core_mhz=0)


def test_clock_overrides_rescale_memory_terms_only():
    base = vec("arm926")
    c = vec("arm926", {"core_mhz": 400, "bus_mhz": 133})      # i.MX27-class, spec §2.1
    ratio = 400 / 133
    assert c["ld_miss"] == int(17 * ratio + 0.5) == 51
    assert c["writeback"] == int(12 * ratio + 0.5)
    assert c["tlb_walk"] == int(20 * ratio + 0.5)
    assert c["ld_miss"] > 1.4 * base["ld_miss"]
    for name in ("alu", "mrs", "msr_c", "irq_save", "dline_inv", "preempt_enable"):
        assert c[name] == base[name]
    eff = T.clocks("arm926", {"core_mhz": 400})
    assert eff["core_mhz"] == 400 and eff["bus_mhz"] == 100 and eff["core_mark"] == T.USER_MARK
    assert T.TABLES["arm926"]["ld_miss"][0] == 34              # defaults untouched


# -- validation -------------------------------------------------------------------------------
def test_unknown_core_is_rejected_with_the_accepted_names():
    for f in (T.cost_vector, T.table, T.describe):
        with pytest.raises(ValueError, match=r"cpu='cortex_a9'.*'arm926'.*'sa110'"):
            f("cortex_a9")


@pytest.mark.parametrize("bad, match", [
    ({"msr": 2}, r"'msr': unknown micro-op; accepted names are alu, branch.*msr_c"),
    ({"mrs": -1}, r"mrs=-1: cycles must be a non-negative int"),
    ({"mrs": 2.5}, r"mrs=2\.5: cycles must be a non-negative int"),
    ({"mrs": True}, r"mrs=True"),
    ({"mrs": "2"}, r"mrs='2'"),
    ({"core_mhz": 0}, r"core_mhz=0: must be a positive number"),
    ({"bus_mhz": "fast"}, r"bus_mhz='fast'"),
])
def test_bad_overrides_name_the_key(bad, match):
    with pytest.raises(ValueError, match=match):
        T.cost_vector("arm926", bad)


def test_override_must_be_a_mapping():
    with pytest.raises(ValueError, match="must be a table of micro-op name"):
        T.cost_vector("arm926", [("mrs", 2)])


def test_numpy_ints_are_accepted():
    assert vec("arm926", {"mrs": np.int64(4)})["irq_save"] == 8


# -- TOML overrides ---------------------------------------------------------------------------
def write(tmp_path, text, name="costs.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_costs_section(tmp_path):
    p = write(tmp_path, "[costs]\nmrs = 2\nmsr_c = 3\n")
    assert T.load_overrides(p) == {"mrs": 2, "msr_c": 3}
    assert T.load_overrides(p, "xscale") == {"mrs": 2, "msr_c": 3}
    c = vec("xscale", T.load_overrides(p, "xscale"))
    assert c["irq_save"] == 2 + 1 + 3


def test_load_per_core_sections_win_over_costs(tmp_path):
    p = write(tmp_path, "[costs]\nmrs = 4\nalu = 2\n\n[arm926]\nmrs = 2\n\n"
                        "[feroceon]\nld_miss = 24\ncore_mhz = 1000\n")
    assert T.load_overrides(p, "arm926") == {"mrs": 2, "alu": 2}
    assert T.load_overrides(p, "feroceon") == {"mrs": 4, "alu": 2, "ld_miss": 24,
                                                "core_mhz": 1000}
    assert T.load_overrides(p, "sa110") == {"mrs": 4, "alu": 2}
    c = vec("feroceon", T.load_overrides(p, "feroceon"))
    assert c["ld_miss"] == 24 and c["irq_disable"] == 4 + 2 + 3
    with pytest.raises(ValueError, match=r"per-core section.*\[arm926\].*pass cpu="):
        T.load_overrides(p)


def test_load_rejects_an_unknown_micro_op_naming_file_section_and_key(tmp_path):
    p = write(tmp_path, "[arm926]\nmrs = 2\nmsr_cpsr = 3\n")
    with pytest.raises(ValueError) as e:
        T.load_overrides(p, "arm926")
    msg = str(e.value)
    assert "costs.toml [arm926]" in msg and "'msr_cpsr'" in msg and "msr_c" in msg


def test_load_validates_sections_of_other_cores_too(tmp_path):
    p = write(tmp_path, "[arm926]\nmrs = 2\n[xscale]\nmrs = -3\n")
    with pytest.raises(ValueError, match=r"\[xscale\]: mrs=-3"):
        T.load_overrides(p, "arm926")


@pytest.mark.parametrize("text, match", [
    ("[costs]\nmrs = 2.0\n", r"mrs=2\.0: cycles must be a non-negative int"),
    ("[costs]\nmrs = -2\n", r"mrs=-2"),
    ("[costs]\nmrs = \"2\"\n", r"mrs='2'"),
    ("[cortex_a9]\nmrs = 2\n", r"\[cortex_a9\]: unknown section; accepted sections are "
                               r"\[costs\], \[arm926\]"),
    ("mrs = 2\n", r"'mrs' outside a section"),
    ("[costs]\nmrs = \n", r"not valid TOML"),
    ("costs = 3\n", r"'costs' must be a section"),
])
def test_load_errors(tmp_path, text, match):
    p = write(tmp_path, text)
    with pytest.raises(ValueError, match=match):
        T.load_overrides(p, "arm926")


def test_load_unknown_core_argument(tmp_path):
    p = write(tmp_path, "[costs]\nmrs = 2\n")
    with pytest.raises(ValueError, match=r"cpu='arm7'.*accepted values"):
        T.load_overrides(p, "arm7")


def test_empty_file_gives_no_overrides(tmp_path):
    p = write(tmp_path, "")
    assert T.load_overrides(p) == {} and T.load_overrides(p, "sa110") == {}


# -- describe ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cpu", CORES)
def test_describe_lists_every_micro_op_with_clocks_and_marks(cpu):
    text = T.describe(cpu)
    assert text.splitlines()[0].startswith(cpu + ":")
    assert f"core {T.CLOCKS[cpu]['core_mhz']} MHz" in text
    lines = text.splitlines()
    for name in K.UOP_NAMES:
        assert any(line.startswith(f"{name} ") for line in lines), name


def test_describe_shows_overrides():
    text = T.describe("arm926", {"mrs": 9})
    row = next(line for line in text.splitlines() if line.startswith("mrs "))
    assert " 9 " in row and T.USER_MARK in row
    row = next(line for line in text.splitlines() if line.startswith("irq_save "))
    assert " 13 " in row


def test_machine_accepts_the_tables():
    """The machine loads the vector into its header (emu/machine.py)."""
    import emu
    m = emu.Machine(cpu="feroceon", last_pkmap=8, costs={"mrs": 5})
    assert int(m._S[K.H_COST + K.UOP_MRS]) == 5
    assert int(m._S[K.H_COST + K.UOP_IRQ_SAVE]) == 5 + 1 + 3
    with pytest.raises(ValueError, match="'bogus': unknown micro-op"):
        emu.Machine(cpu="arm926", costs={"bogus": 1})


# -- limits: costs and clocks that would overflow the int64 vector or the cycle counters ------
@pytest.mark.parametrize("bad, match", [
    ({"mrs": 2**70}, r"mrs=1180591620717411303424: cycles must be a non-negative int <= 1000000"),
    ({"mrs": 2**62}, r"mrs=4611686018427387904: cycles must be"),
    ({"irq_save": T.MAX_CYCLES + 1}, r"irq_save=1000001"),
    ({"mrs": np.uint64(2**64 - 1)}, r"mrs=.*18446744073709551615"),
    ({"bus_mhz": 1e-300}, r"bus_mhz=1e-300: must be a positive number of MHz in \[1, 10000\]"),
    ({"bus_mhz": 0.5}, r"bus_mhz=0\.5"),
    ({"bus_mhz": float("nan")}, r"bus_mhz=nan"),
    ({"core_mhz": float("inf")}, r"core_mhz=inf"),
    ({"core_mhz": 1e300}, r"core_mhz=1e\+300"),
    ({"core_mhz": 2**70}, r"core_mhz=1180591620717411303424"),
    ({"core_mhz": True}, r"core_mhz=True"),
])
def test_overrides_past_the_limits_are_rejected(bad, match):
    with pytest.raises(ValueError, match=r"^costs: " + match):
        T.cost_vector("arm926", bad)


@pytest.mark.parametrize("cpu", CORES)
def test_overrides_at_the_limits_stay_below_max_cycles(cpu):
    for c, b in ((T.MAX_MHZ, T.MIN_MHZ), (T.MIN_MHZ, T.MAX_MHZ)):
        v = vec(cpu, {"core_mhz": c, "bus_mhz": b})
        assert 0 <= min(v.values()) and max(v.values()) <= T.MAX_CYCLES
    v = vec(cpu, {n: T.MAX_CYCLES for n in BASE})
    assert max(v.values()) == 6 * T.MAX_CYCLES             # smp_lock sums six parts


@pytest.mark.parametrize("mhz", [float("nan"), float("inf"), 0.5, 1e300, -1])
def test_cycles_to_us_rejects_a_bad_clock(mhz):
    with pytest.raises(ValueError, match=r"^core_mhz="):
        T.cycles_to_us("arm926", 1, core_mhz=mhz)


def test_smp_lock_s_bne_falls_through_on_the_winning_pass():
    """arch_spin_lock's final bne is not taken when the strex succeeded (spec §1.5 "bne (not
    taken)"): arm926 ldrex 3 + teq 1 + strexeq 3 + teqeq 1 + bne 1 + dmb 8 = 17."""
    v = T.cost_vector("arm926")
    assert T.COMPOSITES["smp_lock"][4] == "branch_nt"
    assert v[K.UOP_SMP_LOCK] == 17 and v[K.UOP_BRANCH_NT] == 1 and v[K.UOP_BRANCH] == 3
