"""The built-in race scenarios (emu.exec.builtin) explored by emu.exec.race.run_race.

(i)  UP, dma_map_page(FROM_DEVICE) vs kmap_high: with ``dma_pinning="page_address"`` one
     preemption loses the writer's 128 dirty bytes; ``"kmap_high_get"`` never loses data.
(ii) the same on 2 CPUs.
(iii) kmap_high_get from an IRQ handler: plain kmap_lock deadlocks (and lockdep complains even
     when it does not); the IRQ-disabling lock never deadlocks.
"""

import pytest

from emu import consts as K
from emu.exec import builtin
from emu.exec.builtin import DMA_PAGE, FILL_OFFSET, WRITER_PAGE
from emu.exec.explore import explicit_choices, explore, read_token
from emu.exec.race import run_race
from emu.exec.scenario import Scenario

BOUND = 2
SIZES = (8, 512)
WRITER_BYTES = 128                   # the writer dirties 128 bytes of its page
IRQ_DEADLOCK_TEXT = "CPU0: lock(kmap_lock); <Interrupt> lock(kmap_lock); *** DEADLOCK ***"


@pytest.fixture(scope="module")
def race():
    """Every variant explored once: {(scenario, dma_pinning or kmap_high_get, L): result}."""
    res = run_race(bound=BOUND, sizes=SIZES, smp_sizes=SIZES)
    out = {}
    for r in res:
        key = (r.scenario, r.kmap_high_get if r.scenario == "iii" else r.dma_pinning,
               r.last_pkmap)
        assert key not in out
        out[key] = r
    return out


RACY = [(s, L) for s in ("i", "ii") for L in SIZES]


def test_every_variant_is_reported(race):
    assert set(race) == {(s, p, L) for s in ("i", "ii") for p in ("page_address",
                                                                  "kmap_high_get")
                         for L in SIZES} | {("iii", False, 8), ("iii", True, 8)}
    for r in race.values():
        assert r.complete and r.schedules_explored > 1
        assert r.ncpus == (2 if r.scenario == "ii" else 1)


@pytest.mark.parametrize("sid, L", RACY)
def test_page_address_pinning_loses_the_writers_data(race, sid, L):
    r = race[(sid, "page_address", L)]
    assert r.kmap_high_get is False
    assert r.data_lost and r.lost_bytes == WRITER_BYTES
    assert not r.deadlock
    assert r.preemptions == 1
    assert r.minimal_schedule == ["after step 1 of dma run writer"]
    assert r.replay.startswith("emu1:")


@pytest.mark.parametrize("sid, L", RACY)
def test_kmap_high_get_pinning_never_loses_data(race, sid, L):
    r = race[(sid, "kmap_high_get", L)]
    assert r.kmap_high_get is True
    assert not r.data_lost and r.lost_bytes == 0
    assert not r.deadlock
    assert r.minimal_schedule == [] and r.replay == "" and r.preemptions == 0
    assert not r.lockdep


@pytest.mark.parametrize("sid, L", RACY)
def test_the_fix_explores_the_sleeping_writer(race, sid, L):
    """With the page pinned the writer has to sleep in kmap_high until the DMA is unmapped;
    the schedules where it does are part of the exploration and all complete."""
    sc = builtin.race(L, 1 if sid == "i" else 2, "kmap_high_get")
    ld = sc.build(trace_events=1 << 16)
    if sid == "i":
        # after step 1 the DMA task holds kmap_lock (irqsave): nothing else runs on its CPU
        with pytest.raises(ValueError, match="writer cannot run there"):
            explicit_choices(ld, ["after step 1 of dma run writer"])
    else:
        # on its own CPU the writer can run, but spins on the lock the DMA task holds
        r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 1 of dma run writer"]),
                   trace=True)
        assert r.outcome == "done" and r.lost_bytes == 0
        assert any("writer: spins on kmap_lock held by dma" in s for s in r.trace)
    # after step 2 the page is pinned and the invalidate loop runs
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 2 of dma run writer"]),
               trace=True)
    assert r.outcome == "done" and r.lost_bytes == 0
    text = "\n".join(r.trace)
    assert "writer: sleeps on pkmap_map_wait (kmap_high page 1200)" in text
    assert text.index("sleeps on pkmap_map_wait") < text.index("wakes writer")


def test_no_preemption_no_loss():
    """Bound 0 (the non-preemptive schedules only) never shows the race."""
    for ncpus in (1, 2):
        ex = explore(builtin.race(8, ncpus, "page_address"), bound=0)
        assert ex.complete and not ex.data_lost and ex.max_lost_bytes == 0
        assert ex.schedules == 2                # only which task starts is free


def test_irq_getter_plain_lock_deadlocks(race):
    r = race[("iii", False, 8)]
    assert r.deadlock and not r.data_lost
    assert r.preemptions == 1
    assert r.minimal_schedule == ["after step 1 of worker raise IRQ nic"]
    assert r.lockdep
    sc, ch = read_token(r.replay)
    assert sc.builtin == ["irq_getter", False, 8]
    rr = sc.build().run(K.SCHED_DFS, ch)
    assert rr.outcome == "irq-deadlock"
    assert IRQ_DEADLOCK_TEXT in rr.message


def test_irq_getter_irq_lock_never_deadlocks(race):
    r = race[("iii", True, 8)]
    assert not r.deadlock and not r.data_lost
    assert r.minimal_schedule == [] and r.replay == ""
    assert not r.lockdep


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "irq"])
def irq_getter(request):
    return request.param, builtin.irq_getter(request.param).build()


def test_lockdep_splat_without_deadlock(irq_getter):
    """The IRQ raised while kmap_lock is free: no deadlock, but the lock was taken in hardirq
    context and elsewhere with IRQs enabled, which lockdep reports (plain lock only)."""
    khg, ld = irq_getter
    ch = explicit_choices(ld, ["after step 2 of worker raise IRQ nic"])
    r = ld.run(K.SCHED_DFS, ch)
    assert r.outcome == "done" and not r.deadlock
    assert K.ACT_IRQ in r.actions
    if khg:
        assert r.lockdep == ""
    else:
        assert "WARNING: inconsistent lock state" in r.lockdep
        assert "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage." in r.lockdep
        assert "(kmap_lock){?.+.}" in r.lockdep
        assert "lock(kmap_lock);" in r.lockdep and "<Interrupt>" in r.lockdep
        assert "*** DEADLOCK ***" in r.lockdep


def test_no_lockdep_splat_when_no_irq_was_raised(irq_getter):
    khg, ld = irq_getter
    r = ld.run()
    assert K.ACT_IRQ not in r.actions
    assert r.lockdep == ""


def test_irq_lock_variant_lockdep_clean_in_every_schedule(irq_getter):
    khg, ld = irq_getter
    ex = explore(ld, bound=BOUND)
    assert ex.complete
    if khg:
        assert ex.lockdep == "" and ex.deadlocks == 0
        assert ex.outcomes == {"done": ex.schedules}
    else:
        assert ex.lockdep and ex.deadlocks > 0
        assert ex.outcomes.get("irq-deadlock", 0) == ex.deadlocks


# ---------------------------------------------------------------------------------------------
# The failing schedule of (i)/(ii): its trace and the oracle's findings
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=RACY, ids=[f"{s}-L{L}" for s, L in RACY])
def failing(request, race):
    """Replay of the minimal failing schedule with its trace."""
    sid, L = request.param
    r = race[(sid, "page_address", L)]
    sc, ch = read_token(r.replay)
    assert sc.builtin == ["race", L, 1 if sid == "i" else 2, "page_address"]
    ld = sc.build(trace_events=1 << 20)
    slot = (ld.machine.page_address(DMA_PAGE) - ld.machine.PKMAP_BASE) >> 12
    run = ld.run(K.SCHED_DFS, ch, trace=True)
    return sid, L, ld, slot, run


@pytest.mark.parametrize("key", [("i", "page_address", 8), ("ii", "page_address", 512),
                                 ("iii", False, 8)])
def test_minimal_schedule_as_explicit_schedule_reproduces_the_failure(race, key):
    """What emu race prints as the minimal schedule, given back as explicit directives
    (``emu run --schedule``), is the failing schedule of the replay token."""
    r = race[key]
    sc, ch = read_token(r.replay)
    ld = sc.build()
    want = ld.run(K.SCHED_DFS, ch)
    got = ld.run(K.SCHED_DFS, explicit_choices(ld, r.minimal_schedule))
    assert (got.outcome, got.lost_bytes, got.deadlock, got.preemptions, got.actions) == \
        (want.outcome, want.lost_bytes, want.deadlock, want.preemptions, want.actions)
    assert got.lost_bytes == r.lost_bytes


def test_replay_reproduces_the_loss(failing):
    sid, L, ld, slot, r = failing
    assert r.outcome == "done"
    assert r.lost_bytes == WRITER_BYTES and r.data_lost and not r.deadlock
    assert r.preemptions == 1


def test_failing_trace_names_preemption_remap_and_discards(failing):
    sid, L, ld, slot, r = failing
    t = r.trace
    assert slot == 1                             # the lazily mapped DMA page (setup)

    def first(pred, start=0):
        for i in range(start, len(t)):
            if pred(t[i]):
                return i
        raise AssertionError(f"not found after line {start}")

    switch = first(lambda s: " writer " in s and s.rstrip().endswith("<-- switch"))
    # the DMA task had started (page_address already taken) when the writer preempted it
    assert any(" dma " in s for s in t[:switch])
    assert any(f"dma: page_address(page {DMA_PAGE}) = {ld.machine.PKMAP_BASE + slot * 4096:#010x}"
               f", not pinned" in s for s in t[:switch])
    clear = first(lambda s: f"writer: pte_clear slot {slot} (was page {DMA_PAGE})" in s, switch)
    setp = first(lambda s: f"writer: set_pte slot {slot} -> page {WRITER_PAGE}" in s, clear)
    assert f"(vaddr {ld.machine.PKMAP_BASE + slot * 4096:#010x})" in t[setp]
    drops = [i for i, s in enumerate(t) if "!! dirty line" in s]
    assert len(drops) == WRITER_BYTES // 32
    assert all(i > setp for i in drops)
    va = ld.machine.PKMAP_BASE + slot * 4096 + FILL_OFFSET
    for k, i in enumerate(drops):
        assert f"dirty line {va + 32 * k:#010x} (page {WRITER_PAGE}," in t[i]
        assert "discarded by the invalidate" in t[i]
        assert "OUTSIDE the DMA buffer" in t[i]
        # discarded by the (resumed) DMA task's maintenance loop
        step = max(j for j in range(i) if t[j].startswith("step"))
        assert " dma " in t[step] and "dma_cache_maint_page" in t[step]


def test_oracle_findings_name_the_writers_page(failing):
    sid, L, ld, slot, r = failing
    lost = [f for f in r.findings if f.kind == "lost-write"]
    assert sum(f.bad_bytes for f in lost) == WRITER_BYTES
    m = ld.machine
    base = m.pfn_to_phys(WRITER_PAGE) + FILL_OFFSET
    assert sorted(f.pa for f in lost) == [base + 32 * k for k in range(4)]
    for f in lost:
        assert f.pfn == WRITER_PAGE
        assert f.expected == b"\xab" * 32
        assert f.found != f.expected and b"\xab" not in f.found
        assert f.found == m.phys_read(f.pa, 32)          # what RAM holds: the write is gone
        assert f.site == "dma_cache_maint_page"
        assert ld.names[f.ctx] == "dma"
        assert f.dma_range == (m.pfn_to_phys(DMA_PAGE), m.pfn_to_phys(DMA_PAGE) + 4096)
    # and at the end the writer's page really lacks its bytes (kmap it again and read)
    assert m.read(m.kmap(WRITER_PAGE) + FILL_OFFSET, WRITER_BYTES) != b"\xab" * WRITER_BYTES


def test_explore_returns_the_minimal_failure():
    ex = explore(builtin.race(8, 1, "page_address"), bound=1)
    assert ex.complete and ex.data_lost and ex.max_lost_bytes == WRITER_BYTES
    assert ex.minimal.preemptions == 1 and ex.minimal.lost_bytes == WRITER_BYTES
    assert ex.minimal.outcome == "done" and not ex.minimal.deadlock
    assert ex.switches == ["after step 1 of dma run writer"]
    assert 0 < ex.failures < ex.schedules


def test_max_schedules_marks_the_exploration_incomplete():
    ex = explore(builtin.race(8, 1, "page_address"), bound=2, max_schedules=5)
    assert ex.schedules == 5 and not ex.complete


def test_explore_validates_its_arguments():
    sc = builtin.race(8, 1, "page_address")
    with pytest.raises(ValueError, match="bound=-1"):
        explore(sc, bound=-1)
    with pytest.raises(ValueError, match="max_schedules=0"):
        explore(sc, bound=1, max_schedules=0)


@pytest.mark.parametrize("call, match", [
    (lambda: builtin.race(6), "last_pkmap=6: must be a power of two"),
    (lambda: builtin.race(8192), "last_pkmap=8192"),
    (lambda: builtin.race(8, 1, "kmap"), "dma_pinning='kmap': accepted values"),
    (lambda: builtin.irq_getter(True, 3), "last_pkmap=3"),
    (lambda: builtin.race(8, "x"), "ncpus='x': must be an int"),
    (lambda: builtin.race(8, 0), "ncpus=0"),
    (lambda: builtin.irq_getter(1), "kmap_high_get=1: must be True or False"),
])
def test_builtin_scenarios_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("pin, lost", [("page_address", True), ("kmap_high_get", False)])
def test_the_race_with_the_smallest_window(pin, lost):
    """LAST_PKMAP 2 (slot 0 pinned, the DMA page lazily in slot 1): the writer's wrap still
    frees the DMA page's slot, and the fix still holds."""
    ex = explore(builtin.race(2, 1, pin), bound=2)
    assert ex.complete and ex.data_lost == lost
    assert (ex.max_lost_bytes > 0) == lost


@pytest.mark.parametrize("pin, lost", [("page_address", True), ("kmap_high_get", False)])
def test_the_race_with_a_window_larger_than_arms(pin, lost):
    """LAST_PKMAP 1024 (x86's size; the window starts 4 MiB below PAGE_OFFSET): the writer's
    page lies past the 1022 pinned ones, its wrap takes the DMA page's slot 1 all the same."""
    sc = builtin.race(1024, 1, pin)
    ex = explore(sc, bound=2)
    assert ex.complete and ex.data_lost == lost and ex.schedules == (1483 if lost else 736)
    if lost:
        r = sc.build(trace_events=1 << 20).run(K.SCHED_DFS, ex.minimal.choices, trace=True)
        assert r.lost_bytes == WRITER_BYTES
        wp = builtin.writer_page(1024)
        assert wp > builtin.PIN_BASE + 1022
        assert f"writer: set_pte slot 1 -> page {wp}" in "\n".join(r.trace)


def _dma_window(pin, cpu, offset, size, direction="FROM_DEVICE"):
    """(i) with the DMA buffer at ``offset``, ``size`` bytes, ``direction``, on core ``cpu``."""
    d = builtin.race(8, 1, pin).variant(cpu=cpu).to_dict()
    for op in next(t for t in d["task"] if t["name"] == "dma")["ops"]:
        if "size" in op:
            op["size"] = size
        if "direction" in op:
            op["direction"] = direction
        if op["op"] == "dma_map_page":
            op["offset"] = offset
        if op["op"] == "device_write":
            op["n"] = size
    return Scenario.from_dict(d)


@pytest.mark.parametrize("cpu, offset, size, lost", [
    ("arm926", FILL_OFFSET, 32, 32),        # one line: the loop has no "between two lines"
    ("feroceon", 0, 4096, WRITER_BYTES),    # one hardware range op for the whole page
])
@pytest.mark.parametrize("pin", ["page_address", "kmap_high_get"])
def test_the_window_between_page_address_and_the_first_line(pin, cpu, offset, size, lost):
    """Pitre: re-checking the mapping "still leaves a window" between the test and the cache
    instruction. Preempted right after page_address(), a one-line invalidate (or Feroceon's
    single range op) discards the writer's lines through the recycled address; pinned, no."""
    ex = explore(_dma_window(pin, cpu, offset, size), bound=2)
    assert ex.complete
    if pin == "page_address":
        assert ex.data_lost and ex.max_lost_bytes == lost
        assert ex.switches == ["after step 1 of dma run writer"]
    else:
        assert not ex.data_lost and ex.failures == 0


@pytest.mark.parametrize("cpu", ["arm926", "feroceon"])
def test_the_window_between_the_edge_cleans_and_the_invalidate(cpu):
    """A buffer that starts and ends mid-line: dma_inv_range cleans both partial lines, then
    invalidates from the first (a line loop; on Feroceon one range op with IRQs masked, after
    the cleans). Preempted between the two (step 2 of dma; step 1 is the page_address
    lookup), the writer dirties all three lines through the recycled address, and the
    invalidate drops them all, the edge lines included."""
    ex = explore(_dma_window("page_address", cpu, FILL_OFFSET + 12, 64), bound=2)
    assert ex.complete and ex.max_lost_bytes == 3 * 32
    assert ex.switches == ["after step 2 of dma run writer"]
    assert ex.minimal.lost_bytes == 3 * 32
    ex = explore(_dma_window("kmap_high_get", cpu, FILL_OFFSET + 12, 64), bound=2)
    assert ex.complete and ex.failures == 0


@pytest.mark.parametrize("cpu", ["xscale", "sa110"])
def test_the_window_between_a_lines_clean_and_its_invalidate(cpu):
    """XScale's and v4wb's dma_flush_range clean a line (c7,c10,1), then invalidate it
    (c7,c6,1): two instructions, with a scheduling point between them. Preempted there
    (BIDIRECTIONAL, 2.6.30), the writer dirties the line through the recycled address and
    the invalidate drops it; the lines after it are cleaned first, so one line is lost.
    kmap_high_get pins the page: nothing."""
    ex = explore(_dma_window("page_address", cpu, 0, 4096, "BIDIRECTIONAL"), bound=2)
    assert ex.complete and ex.data_lost and ex.max_lost_bytes == 32
    r = ex.minimal
    assert r.lost_bytes == 32 and len(ex.switches) == 1
    # the lost line is the first of the writer's fill, cleaned just before the switch: step
    # 1 is the lookup, then two steps a line: clean line k at 2k + 2 (FILL_OFFSET = 2048)
    assert ex.switches == [f"after step {2 * (FILL_OFFSET // 32) + 2} of dma run writer"]
    t = "\n".join(_dma_window("page_address", cpu, 0, 4096, "BIDIRECTIONAL")
                  .build(trace_events=1 << 20).run(K.SCHED_DFS, r.choices, trace=True).trace)
    va = t.split("dirty line ")[1].split()[0]
    pa = DMA_PAGE * K.PAGE_SIZE + FILL_OFFSET
    assert "discarded by the invalidate" in t
    assert f"dma: cache maintenance at {va} for pa {pa:#x} (page {DMA_PAGE}): the invalidate " \
           "after its clean" in t
    ex = explore(_dma_window("kmap_high_get", cpu, 0, 4096, "BIDIRECTIONAL"), bound=2)
    assert ex.complete and ex.failures == 0


def test_a_flush_on_arm926_is_one_instruction_a_line():
    """arm926_dma_flush_range cleans and invalidates a line in one c7,c14,1: no window, so
    BIDIRECTIONAL with page_address loses nothing there (2.6.30 has no unmap invalidate)."""
    ex = explore(_dma_window("page_address", "arm926", 0, 4096, "BIDIRECTIONAL"), bound=2)
    assert ex.complete and not ex.data_lost


def test_maintenance_trace_lines_pair_each_line_with_its_own_pa(failing):
    """Each "cache maintenance at VA for pa PA" names the line's own physical address (it
    kept the chunk's start before), so VA - PA is the same on every line of a chunk."""
    t = failing[4].trace
    pairs = [(int(s.split(" at ")[1].split()[0], 16), int(s.split(" for pa ")[1].split()[0], 16))
             for s in t if "cache maintenance at" in s]
    assert len(pairs) > 100 and len({va - pa for va, pa in pairs}) == 1
