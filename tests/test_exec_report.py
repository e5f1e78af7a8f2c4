"""The readable trace (emu/exec/report.py): each step names its context's own step number (the
N of a schedule's "after step N of TASK") and, for a step of a program, the op it starts."""

import pytest

from emu import consts as K
from emu.exec.builtin import race
from emu.exec.explore import describe_choices, explicit_choices, explore
from emu.exec.report import op_text
from emu.exec.scenario import Scenario

M = {"last_pkmap": 4, "lowmem_mb": 1, "highmem_mb": 4}


def mixed():
    """Ops of every shape: a lowmem kmap (its routine returns without yielding, so the next
    op starts in the same step), ops that run in place, a fill (two program rows), a
    repeat, a wait for an IRQ whose handler runs twice."""
    sc = Scenario("mixed", dict(M))
    sc.task("t", [{"op": "kmap", "pfn": 10, "as": "lo"},
                  {"op": "device_write", "dma_addr": 0xA000, "byte": 1, "n": 64},
                  {"op": "kmap", "pfn": 11},
                  {"op": "fill", "va": "lo", "byte": 2, "n": 64},
                  {"op": "kmap_high", "pfn": 300, "repeat": 2, "as": "v"},
                  {"op": "device_start", "dma_addr": 0xB000, "byte": 3, "n": 32, "line": 0},
                  {"op": "wait_irq", "line": 0},
                  {"op": "kunmap", "pfn": 300},
                  {"op": "device_write", "dma_addr": 0xA000, "byte": 1, "n": 64}])
    sc.task("u", [{"op": "kmap_high", "pfn": 400},
                  {"op": "device_read", "dma_addr": 0xA000, "n": 8},
                  {"op": "kmap_high", "pfn": 401}])
    sc.irq("h", [{"op": "device_write", "dma_addr": 0xA000, "byte": 4, "n": 8},
                 {"op": "kmap_high_get", "pfn": 300, "as": "p"},
                 {"op": "kunmap_high", "pfn": 300}], line=0, count=2)
    return sc.build(trace_events=1 << 16)


def step_lines(r):
    return [ln for ln in r.trace if ln.startswith("step ")]


def program_row(ld, r, k, c):
    """The program row context ``c`` starts at step ``k`` of run ``r``, read from its program
    frame after running the decisions before (F_A0, plus one when F_A1 says the routine of
    row F_A0 has returned). ``max_steps`` counts decisions, IRQ raises included."""
    d = [i for i, a in enumerate(r.actions) if a < K.ACT_IRQ][k - 1]
    if d == 0:
        return 0
    ld.run(K.SCHED_DFS, r.choices, final=False, max_steps=d)
    S = ld.machine._S
    cr = ld.ctx_rec(c)
    sp = int(S[cr + K.CTX_SP])
    if sp == 0:                                 # a handler about to be entered
        return 0
    f = cr + K.CTX_FRAMES + (sp - 1) * K.FW
    assert K.ROUTINE_NAMES[int(S[f + K.F_ROUTINE])] == "program"
    return int(S[f + K.F_A0]) + int(S[f + K.F_A1])


def row_labels(ld, c):
    """Row -> the label readable_trace gives it (a fill is two rows)."""
    who = (ld.scenario.tasks + ld.scenario.irqs)[c - 1]
    out = []
    for i, op in enumerate(who.ops):
        for k in range(op.get("repeat", 1)):
            o = {x: v for x, v in op.items() if x not in ("repeat", "step")}
            if k:
                o["pfn"] += k
                o["as"] = f"{o['as']}_{k}"
            head = f"op {i}" + (f" (repeat {k})" if k else "") + " " + op_text(o)
            out += [head + ": read", head + ": write"] if o["op"] == "fill" else [head]
    return out + ["program: returns (every op done)"]


@pytest.mark.parametrize("schedule", [
    [],
    ["after step 11 of t run u", "after step 3 of u raise IRQ h", "after step 5 of u run t"],
])
def test_program_steps_name_the_op_the_program_frame_starts(schedule):
    ld = mixed()
    choices = explicit_choices(ld, schedule)
    r = ld.run(K.SCHED_DFS, choices, trace=True)
    assert r.outcome == "done", r.message
    checked = set()
    for k, line in enumerate(step_lines(r), 1):
        name = line.split()[3]
        what = line.split("#", 1)[1].split(None, 1)[1].rsplit("  [cycle", 1)[0]
        if not (what.startswith("op ") or what.startswith("program")):
            continue
        c = ld.names.index(name)
        want = row_labels(ld, c)[program_row(ld, r, k, c)]
        assert what == want, (k, line)
        checked.add(what)
    assert {"op 6 wait_irq(line=0)", "op 4 (repeat 1) kmap_high(pfn=301) -> v_1",
            "op 3 fill(va=lo, byte=0x02, n=64): write",
            "op 1 kmap_high_get(pfn=300) -> p"} <= checked, checked


def test_an_irq_handler_that_runs_twice_starts_its_program_again():
    ld = mixed()
    sched = ["after step 11 of t run u", "after step 2 of u raise IRQ h",
             "after step 3 of u raise IRQ h"]
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, sched), trace=True)
    assert r.outcome == "done", r.message
    h = [ln.split("#", 1)[1].split(None, 1)[1].rsplit("  [cycle", 1)[0]
         for ln in step_lines(r) if ln.split()[3] == "h"]
    first = "op 0 device_write(dma_addr=0xa000, byte=0x04, n=8)"
    assert h.count(first) == 2 and h[0] == first, h
    assert h.count("program: returns (every op done)") == 2


def test_op_text_shows_the_fields_as_given():
    assert op_text({"op": "dma_map_page", "pfn": 300, "size": 4096,
                    "direction": "FROM_DEVICE", "as": "h"}) == \
        "dma_map_page(pfn=300, size=4096, direction=FROM_DEVICE) -> h"
    assert op_text({"op": "write", "va": 0xC0001000, "data": "a1a2"}) == \
        "write(va=0xc0001000, data=<2 bytes>)"
    assert op_text({"op": "fill", "va": "v+8", "byte": 0xAB, "n": 64}) == \
        "fill(va=v+8, byte=0xab, n=64)"


def own_steps(r):
    """(name, own step number) of every step line, in order."""
    return [(ln.split()[3], int(ln.split()[4].lstrip("#"))) for ln in step_lines(r)]


def test_own_step_numbers_count_each_context_separately():
    ld = race(8, 1, "page_address").build(trace_events=1 << 16)
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 5 of dma run writer"]),
               trace=True)
    seen = {}
    for name, n in own_steps(r):
        seen[name] = seen.get(name, 0) + 1
        assert n == seen[name]
    steps = own_steps(r)
    k = steps.index(("dma", 5))
    assert steps[k + 1] == ("writer", 1)


def test_a_step_number_copied_from_the_trace_preempts_right_after_that_line():
    """The global step number of writer's 3rd step is not 3 (dma ran first): a directive
    takes the number after the '#'."""
    ld = race(8, 1, "page_address").build(trace_events=1 << 16)
    first = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 2 of dma run writer"]),
                   trace=True)
    line = next(ln for ln in step_lines(first) if ln.split()[3] == "writer"
                and ln.split()[4] == "#3")
    assert int(line.split()[1]) != 3
    again = ld.run(K.SCHED_DFS, explicit_choices(
        ld, ["after step 2 of dma run writer", "after step 3 of writer run dma"]), trace=True)
    steps = own_steps(again)
    k = steps.index(("writer", 3))
    assert steps[k + 1] == ("dma", 3)


def test_minimal_schedules_name_the_own_step_numbers_of_the_trace():
    """describe_choices' "after step N of T run U" is the line of T's #N, followed by U; and
    the printed schedule reads back to the same choices."""
    sc = race(8, 2, "page_address")
    ex = explore(sc, bound=1)
    ld = sc.build(trace_events=1 << 16)
    r = ld.run(K.SCHED_DFS, ex.minimal.choices, trace=True)
    steps = own_steps(r)
    assert ex.switches
    for s in ex.switches:
        w = s.split()
        if w[0] != "after" or w[5] != "run":
            continue
        k = steps.index((w[4], int(w[2])))
        assert steps[k + 1][0] == w[6], (s, steps[k:k + 2])
    again = explicit_choices(ld, ex.switches)
    n = len(again)
    assert again == list(ex.minimal.choices[:n]) and not any(ex.minimal.choices[n:])
    assert describe_choices(ld, again) == ex.switches


def test_an_op_a_step_starts_after_a_routine_returned_is_named():
    """kmap()'s last step returns to the program, which starts the next op in that same step:
    the trace names it below the step, so a BUG there is not shown under the op before
    (dma_sync_single_for_device of a highmem buffer BUGs in 2.6.30)."""
    sc = Scenario("sync", dict(M))
    sc.task("drv", [{"op": "dma_map_page", "pfn": 300, "size": 64, "direction": "TO_DEVICE",
                     "as": "h"},
                    {"op": "kmap", "pfn": 300, "as": "v"},
                    {"op": "kunmap", "pfn": 300},
                    {"op": "dma_sync_single_for_device", "dma_addr": "h", "size": 64,
                     "direction": "TO_DEVICE"}])
    ld = sc.build(trace_events=1 << 16)
    r = ld.run(K.SCHED_DFS, [], trace=True)
    assert r.outcome == "error" and "dma_cache_maint" in r.message
    starts = [ln.strip() for ln in r.trace if "starts op" in ln]
    assert starts[-1] == "drv: starts op 3 dma_sync_single_for_device(dma_addr=h, size=64, " \
                         "direction=TO_DEVICE)", r.trace
    assert "drv: starts op 2 kunmap(pfn=300)" in starts
    ops = [ln.split("#", 1)[1].split(None, 1)[1].rsplit("  [cycle", 1)[0].split(": ")[0]
           for ln in step_lines(r)] + [s.split(": starts ", 1)[1] for s in starts]
    for i, op in enumerate(sc.tasks[0].ops):          # every op is named once, somewhere
        assert sum(x == f"op {i} {op_text(op)}" for x in ops) == 1, (i, ops)


def test_a_spurious_raise_says_so_in_the_trace():
    """A raise that was one of the line's own while its device's transfer was in flight
    ('raise spurious IRQ h') is marked spurious; the device's completion after it, and a
    raise of a line with no transfer, read as they did."""
    sc = Scenario("shared device line", {"last_pkmap": 8})
    sc.task("t", [{"op": "device_start", "dma_addr": 0xA000, "byte": 0xC3, "n": 64, "line": 0},
                  {"op": "wait_irq", "line": 0, "count": 2}])
    sc.irq("h", [{"op": "read", "va": 0xC000A000, "n": 4}], line=0, count=1)
    sc.irq("g", [{"op": "read", "va": 0xC000A000, "n": 4}], line=1)
    ld = sc.build(trace_events=1 << 14)
    r = ld.run(K.SCHED_DFS, explicit_choices(
        ld, ["after step 1 of t raise spurious IRQ h", "after step 2 of h raise IRQ g"]),
        trace=True)
    assert r.outcome == "done", r.message
    assert [ln for ln in r.trace if "raised" in ln] == [
        "             IRQ line 0 raised (spurious: one of the line's own raises; the device's "
        "transfer stays in flight), for cpu0",
        "             IRQ line 1 raised, for cpu0",
        "             IRQ line 0 raised (device wrote 64 bytes), for cpu0"]


def _restarting_device():
    """A task starts a transfer; the completion handler starts the next one on the same line,
    every time (a streaming device: nothing stops it)."""
    sc = Scenario("streaming", {"last_pkmap": 8})
    start = {"op": "device_start", "dma_addr": 0xA000, "byte": 0xC3, "n": 64, "line": 0,
             "cycles": 100}
    sc.task("t", [start])
    sc.irq("h", [start], line=0)
    return sc


@pytest.mark.parametrize("mode", [K.SCHED_DFS, K.SCHED_TIMED])
def test_a_run_the_handlers_keep_going_says_so(mode):
    """Once the task had finished, the handler's restarts kept the run going until the log
    was full (DFS) or the step limit (timed); the message said to shorten the scenario or
    called it a livelock."""
    ld = _restarting_device().build()
    r = ld.run(mode, [])
    assert r.outcome == ("log-full" if mode == K.SCHED_DFS else "step-limit")
    assert r.message.startswith("the IRQ handlers kept the run going after every task had "
                                "finished")
    assert "shorten the scenario" not in r.message and "livelock" not in r.message


def test_a_log_full_run_with_tasks_left_still_says_shorten_the_scenario():
    sc = Scenario("big", {"last_pkmap": 8, "lowmem_mb": 4})
    sc.task("t", [{"op": "write", "va": 0xC0000000, "byte": 1, "n": 1 << 21}])
    r = sc.build().run(K.SCHED_DFS, [])
    assert r.outcome == "log-full" and "shorten the scenario" in r.message
