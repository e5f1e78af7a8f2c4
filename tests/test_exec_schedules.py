"""Schedules (emu.exec.explore / emu.exec.loaded) and the kernel rules the executor enforces.

* the default DFS run is non-preemptive; explicit schedules switch exactly where they say;
* seeded random runs and traces are deterministic; replay tokens round-trip;
* no preemption while kmap_lock is held with IRQs off; kmap_high sleeps and is woken by
  kunmap_high (spec §1.6, §1.9, §1.12 wrap/sleep); wait_irq / device_start; IRQ deadlocks,
  deadlocks and kernel BUGs end a run with a message naming them.
"""

import base64
import hashlib
import json
import re
import tomllib
import zlib

import numpy as np
import pytest

from emu import consts as K
from emu.exec import builtin
from emu.exec.explore import (describe_choices, explicit_choices, explore, make_token,
                              read_token, replay, run_random)
from emu.exec.trace import trace_events
from emu.exec.loaded import DEFAULT_MAX_STEPS
from emu.exec.scenario import Scenario
from emu.exec.sched import alternatives

PKMAP_BASE = 0xBFE00000
IRQ0 = K.ACT_IRQ + 0
T1, T2, NIC = 1, 2, 3          # context ids: tasks in order, then IRQ handlers


def two_tasks(**machine):
    """Two tasks on CPU 0 mapping, dirtying and unmapping a page each; an IRQ handler that
    pins t1's page with kmap_high_get."""
    sc = Scenario("two", machine={"last_pkmap": 8, **machine})
    sc.task("t1", [{"op": "kmap_high", "pfn": 300, "as": "v"},
                   {"op": "fill", "va": "v+2048", "byte": 0xAB, "n": 64},
                   {"op": "kunmap_high", "pfn": 300}])
    sc.task("t2", [{"op": "kmap_high", "pfn": 301, "as": "v"},
                   {"op": "write", "va": "v", "data": "01020304"},
                   {"op": "kunmap_high", "pfn": 301}])
    sc.irq("nic", [{"op": "kmap_high_get", "pfn": 300}], line=0)
    return sc


@pytest.fixture(scope="module")
def two():
    return two_tasks().build(trace_events=1 << 16)


@pytest.fixture(scope="module")
def default_two(two):
    r = two.run()
    assert r.outcome == "done", r.message
    return r


def runs(actions):
    """Collapse an action list into [(action, count), ...]."""
    out = []
    for a in actions:
        if out and out[-1][0] == a:
            out[-1][1] += 1
        else:
            out.append([a, 1])
    return [tuple(x) for x in out]


# ---------------------------------------------------------------------------------------------
# Default and explicit schedules
# ---------------------------------------------------------------------------------------------


def test_default_run_is_non_preemptive(two, default_two):
    r = default_two
    assert r.preemptions == 0
    assert r.choices == [0] * r.decisions
    assert [a for a, _ in runs(r.actions)] == [T1, T2]       # t1 to the end, then t2
    assert IRQ0 not in r.actions
    alts = [two.alternatives_at(d) for d in range(r.decisions)]
    assert any(n > 1 for n, _ in alts), "the default never had a choice: vacuous test"
    for d, (n, a) in enumerate(alts):
        assert a[0] == r.actions[d]                         # the default is listed first


def test_default_run_is_repeatable(two, default_two):
    assert two.run() == default_two


def test_explicit_switch_after_step_n(two, default_two):
    t2_steps = default_two.actions.count(T2)
    ch = explicit_choices(two, ["after step 2 of t1 run t2"])
    r = two.run(K.SCHED_DFS, ch)
    assert r.outcome == "done"
    assert r.preemptions == 1
    # exactly there, then non-preemptive again: t2 to the end, then the rest of t1
    assert runs(r.actions) == [(T1, 2), (T2, t2_steps), (T1, default_two.actions.count(T1) - 2)]


def test_explicit_switch_dict_form_is_the_same(two):
    s = explicit_choices(two, ["after step 3 of t1 run t2"])
    d = explicit_choices(two, [{"after": "t1", "step": 3, "run": "t2"}])
    assert s == d
    assert two.run(K.SCHED_DFS, d).actions[:4] == [T1, T1, T1, T2]


def test_explicit_raise_irq(two):
    ch = explicit_choices(two, ["after step 2 of t1 raise IRQ nic"])
    assert ch == explicit_choices(two, [{"after": "t1", "step": 2, "irq": "nic"}])
    r = two.run(K.SCHED_DFS, ch, trace=True)
    assert r.outcome == "done"
    assert r.preemptions == 1
    assert r.actions[:3] == [T1, T1, IRQ0]
    # the handler runs to its end before t1 resumes
    seq = runs(r.actions)
    assert seq[0] == (T1, 2) and seq[1] == (IRQ0, 1) and seq[2][0] == NIC and seq[3][0] == T1
    text = "\n".join(r.trace)
    # not "t1: IRQ line 0 raised": the line is raised for a CPU, whoever runs there
    assert "             IRQ line 0 raised, for cpu0\n" in text and "t1: IRQ" not in text
    assert "enters IRQ handler (line 0)" in text
    assert "returns from IRQ handler (line 0)" in text


def test_two_directives_count_steps_from_the_start_of_the_run(two):
    """"after step N of T" is T's N-th step of the run: t2 runs exactly 2 steps here."""
    ch = explicit_choices(two, ["after step 2 of t1 run t2", "after step 2 of t2 run t1"])
    r = two.run(K.SCHED_DFS, ch)
    assert r.actions[:5] == [T1, T1, T2, T2, T1], r.actions


def test_describe_choices_round_trips_through_explicit_choices(two):
    """The switches emu prints for a schedule (emu race / explore "minimal_schedule") can be
    given back to ``emu run --schedule`` and select the same schedule."""
    ch = [0, 0, 1, 0, 1]                 # t1 2 steps, t2 2 steps, back to t1
    assert two.run(K.SCHED_DFS, ch).actions[:5] == [T1, T1, T2, T2, T1]
    words = describe_choices(two, ch)
    assert words == ["after step 2 of t1 run t2", "after step 2 of t2 run t1"]
    assert explicit_choices(two, words) == ch


def test_describe_choices_single_switch_round_trip(two):
    ch = explicit_choices(two, ["after step 3 of t1 run t2"])
    words = describe_choices(two, ch)
    assert words == ["after step 3 of t1 run t2"]
    assert explicit_choices(two, words) == ch


SMP_FREE_CHOICES = """
name = "two CPUs, three tasks, an IRQ"
setup = [{ op = "kmap", pfn = 300, as = "buf" }, { op = "fill", va = "buf", byte = 34, n = 512 },
         { op = "kmap", pfn = 301, repeat = 5 }, { op = "kunmap", pfn = 300 }]
[machine]
last_pkmap = 8
lowmem_mb = 1
highmem_mb = 4
ncpus = 2
dma_pinning = "page_address"
[[task]]
name = "dma"
cpu = 0
ops = [{ op = "dma_map_page", pfn = 300, size = 4096, direction = "FROM_DEVICE", as = "h" },
       { op = "dma_unmap_page", dma_addr = "h", size = 4096, direction = "FROM_DEVICE" }]
[[task]]
name = "writer"
cpu = 1
ops = [{ op = "kmap_high", pfn = 1200, as = "v" }, { op = "fill", va = "v+1024", byte = 171, n = 96 },
       { op = "kunmap_high", pfn = 1200 }]
[[task]]
name = "w2"
cpu = 1
ops = [{ op = "kmap_high", pfn = 1201, as = "u" }, { op = "write", va = "u", data = "deadbeef" },
       { op = "kunmap_high", pfn = 1201 }]
[[irq]]
name = "nic"
line = 2
cpu = %d
ops = [{ op = "kmap_high_get", pfn = 300 }, { op = "kunmap_high", pfn = 300 }]
"""


def _prefixes(ld, bound):
    """Every schedule of a ``bound`` exploration, as its choice prefix."""
    out = [[]]
    x = ld.dfs_state()
    while not ld.dfs(bound, DEFAULT_MAX_STEPS, 1, 0, x) & K.DFS_DONE:
        out.append(ld.next_prefix(x).tolist())
    return out


def _round_trip(ld, prefixes):
    """Each schedule's printed entries select it again; yields them."""
    for pre in prefixes:
        r = ld.run(K.SCHED_DFS, pre, final=False)
        choices = ld.last_log(r.decisions)[1].tolist()
        while choices and choices[-1] == 0:
            choices.pop()
        words = describe_choices(ld, choices)
        assert explicit_choices(ld, words) == choices, words
        yield words


@pytest.mark.parametrize("irq_cpu", [0, 1])
def test_every_schedule_round_trips_through_its_description(tmp_path, irq_cpu):
    """The printed schedule is the schedule: on two CPUs with three tasks and an IRQ, which
    task starts, which runs next when one finishes and where a line is raised are choices
    too (no preemption); each is printed, so the printed entries select the schedule again."""
    p = tmp_path / "smp.toml"
    p.write_text(SMP_FREE_CHOICES % irq_cpu)
    ld = Scenario.from_toml(p).build()
    kinds = set()
    for words in _round_trip(ld, _prefixes(ld, 1)[::2]):
        kinds |= {w.split()[0] + (" raise" if "raise" in w else "") for w in words}
    assert kinds == {"at", "at raise", "after", "after raise"}, kinds


def test_minimal_schedule_without_preemption_is_printed_and_reproduces(tmp_path):
    """A failure that needs only free choices (no preemption) still has a schedule to print."""
    p = tmp_path / "smp.toml"
    p.write_text(SMP_FREE_CHOICES % 0)
    sc = Scenario.from_toml(p)
    ex = explore(sc, bound=0)
    assert ex.failures and ex.minimal.preemptions == 0 and ex.switches
    ld = sc.build()
    want = ld.run(K.SCHED_DFS, ex.minimal.choices)
    got = ld.run(K.SCHED_DFS, explicit_choices(ld, ex.switches))
    assert got.failed and (got.outcome, got.message, got.actions) == \
        (want.outcome, want.message, want.actions)


def test_at_start_forms(tmp_path):
    p = tmp_path / "smp.toml"
    p.write_text(SMP_FREE_CHOICES % 0)
    ld = Scenario.from_toml(p).build()
    ch = explicit_choices(ld, ["at start run w2"])
    assert ch == explicit_choices(ld, [{"at": "start", "run": "w2"}])
    assert ld.run(K.SCHED_DFS, ch).actions[0] == ld.names.index("w2")
    assert describe_choices(ld, ch) == ["at start run w2"]
    with pytest.raises(ValueError, match="'at start' may only open the schedule"):
        explicit_choices(ld, ["after step 2 of dma run writer", "at start run w2"])
    with pytest.raises(ValueError, match="'at start' may only open the schedule"):
        explicit_choices(ld, ["at start run w2", "at start run writer"])
    # a raise at start, then who runs first: both at the start
    ch = explicit_choices(ld, ["at start raise IRQ nic", "at start run nic"])
    assert describe_choices(ld, ch) == ["at start raise IRQ nic"]
    # the line fires once: raising it again is not among the choices, and the message says so
    with pytest.raises(ValueError, match=r"IRQ nic cannot be raised there: nic has been "
                                         r"raised as often as its count allows \(possible "
                                         r"there: run nic"):
        explicit_choices(ld, ["at start raise IRQ nic", "at start raise IRQ nic"])
    with pytest.raises(ValueError, match="'at start run OTHER'"):
        explicit_choices(ld, ["at start w2"])


def test_empty_schedule_is_the_default(two, default_two):
    assert explicit_choices(two, []) == []


BAD_DIRECTIVES = [
    ("junk", ["after step N of TASK run OTHER"]),
    ("after step x of t1 run t2", ["after step N of TASK run OTHER"]),
    ("after step 2 of zz run t2", ["unknown task or handler 'zz'", "t1, t2, nic"]),
    ("after step 2 of t1 run zz", ["unknown task or handler 'zz'"]),
    ("after step 99 of t1 run t2", ["t1 does not reach step 99"]),
    # t1 holds kmap_lock with IRQs off after its first step
    ("after step 1 of t1 run t2", ["t2 cannot run there", "possible there: run t1"]),
    ("after step 1 of t1 raise IRQ nic", ["IRQ nic cannot be raised there: CPU0 has IRQs "
                                          "masked at that point", "possible there: run t1"]),
    # a switch to itself is none; raise IRQ names a handler
    ("after step 2 of t1 run t1", ["switches t1 to itself", "name another context"]),
    ("after step 2 of t1 raise IRQ t2", ["t2 is a task, not an IRQ handler",
                                         "'raise IRQ' takes a handler (nic)"]),
    ({"after": "t1"}, ["expected {'after': TASK, 'step': N, 'run': OTHER}"]),
    (5, ["schedule entry 5"]),
]


@pytest.mark.parametrize("directive, parts", BAD_DIRECTIVES,
                         ids=[str(d) for d, _ in BAD_DIRECTIVES])
def test_invalid_directives(two, directive, parts):
    with pytest.raises(ValueError) as ei:
        explicit_choices(two, [directive])
    for p in parts:
        assert p in str(ei.value), f"{p!r} not in {str(ei.value)!r}"


# ---------------------------------------------------------------------------------------------
# Seeded random runs, trace hashes
# ---------------------------------------------------------------------------------------------

P_SWITCH = 0.2
SEEDS = range(6)


@pytest.fixture(scope="module")
def race_i():
    """Built-in scenario (i), LAST_PKMAP 8, the racy pinning, with a trace buffer."""
    return builtin.race(8, 1, "page_address").build(trace_events=1 << 16)


def _random(ld, seed, trace=True):
    return ld.run(K.SCHED_RANDOM, (), int(P_SWITCH * 1_000_000), seed, trace=trace)


def trace_hash(ld, r):
    h = hashlib.sha256("\n".join(r.trace).encode())
    h.update(np.asarray(trace_events(ld.machine._S), dtype=np.int64).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def random_runs(race_i):
    return {s: (_random(race_i, s), trace_hash(race_i, _random(race_i, s))) for s in SEEDS}


def test_same_seed_same_run(race_i, random_runs):
    for s in SEEDS[:3]:
        again = _random(race_i, s)
        assert again == random_runs[s][0]                   # choices, findings, trace, ...
        assert again.trace


def test_run_random_is_the_seeded_run(race_i, random_runs):
    rs = run_random(race_i, seed=2, runs=3, p_switch=P_SWITCH)
    assert len(rs) == 3
    for i, r in enumerate(rs):
        want = random_runs[2 + i][0]
        assert (r.choices, r.actions, r.findings, r.lost_bytes, r.outcome) == \
            (want.choices, want.actions, want.findings, want.lost_bytes, want.outcome)


def test_different_seeds_differ(random_runs):
    choices = {tuple(r.choices) for r, _ in random_runs.values()}
    hashes = {h for _, h in random_runs.values()}
    assert len(choices) > 1
    assert len(hashes) > 1


def test_same_scenario_and_seed_give_the_same_trace_hash(random_runs):
    """A separately built machine of the same scenario, same seed: same trace hash."""
    fresh = builtin.race(8, 1, "page_address").build(trace_events=1 << 16)
    for s in (0, 3):
        r = _random(fresh, s)
        assert r.trace
        assert trace_hash(fresh, r) == random_runs[s][1]


def test_trace_hash_covers_the_event_buffer(race_i, random_runs):
    r = _random(race_i, 0)
    assert len(trace_events(race_i.machine._S)) > len(r.trace) // 2


def test_p_switch_must_be_a_probability(race_i):
    with pytest.raises(ValueError, match="p_switch"):
        run_random(race_i, p_switch=1.5)


# ---------------------------------------------------------------------------------------------
# Replay tokens
# ---------------------------------------------------------------------------------------------


def test_builtin_token_is_short_and_replays(race_i):
    sc = race_i.scenario
    ch = explicit_choices(race_i, ["after step 1 of dma run writer"])
    tok = make_token(sc, ch)
    assert tok.startswith("emu1:") and len(tok) < 120
    sc2, ch2 = read_token(tok)
    assert ch2 == ch
    assert sc2.builtin == sc.builtin
    assert sc2.to_dict() == sc.to_dict()
    want = race_i.run(K.SCHED_DFS, ch, trace=True)
    got = sc2.build(trace_events=1 << 16).run(K.SCHED_DFS, ch2, trace=True)
    assert want.lost_bytes == 128
    assert got == want


@pytest.mark.parametrize("change", ["irq", "task", "machine"])
def test_a_changed_builtin_scenario_token_replays_the_changed_scenario(change):
    # the token used to name the built-in alone: it replayed the unchanged race(), which
    # lacks the added handler ("token: corrupted (choices[132]=1: decision 132 has only 1
    # alternative)") or runs another machine
    sc = builtin.race(4, 2, "page_address")
    if change == "irq":
        sc.irq("nic", [{"op": "kmap_high_get", "pfn": 300}], line=0, cpu=1)
        sc.machine["kmap_high_get"] = True
    elif change == "task":
        sc.task("more", [{"op": "kmap", "pfn": 301}, {"op": "kunmap", "pfn": 301}], cpu=1)
    else:
        sc.machine["cpu"] = "xscale"
    ex = explore(sc, bound=1)
    assert ex.replay
    sc2, _ = read_token(ex.replay)
    assert sc2.to_dict() == sc.to_dict()
    _, r = replay(ex.replay)
    assert (r.outcome, r.lost_bytes) == (ex.minimal.outcome, ex.minimal.lost_bytes)
    assert builtin.race(4, 2, "page_address").builtin          # an unchanged one stays short
    assert len(explore(builtin.race(4, 2, "page_address"), bound=1).replay) < 120


def test_user_scenario_token_embeds_the_scenario(two):
    ch = explicit_choices(two, ["after step 2 of t1 raise IRQ nic"]) + [0, 0]
    tok = make_token(two.scenario, ch)
    b64 = tok[len("emu1:"):]
    body = json.loads(zlib.decompress(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))))
    assert "s" in body and "b" not in body
    sc2, ch2 = read_token(tok)
    assert ch2 == ch                                         # trailing zeros kept
    assert sc2.builtin is None
    assert sc2.to_dict() == two.scenario.to_dict()
    want = two.run(K.SCHED_DFS, ch, trace=True)
    assert sc2.build(trace_events=1 << 16).run(K.SCHED_DFS, ch2, trace=True) == want


def test_variant_of_a_builtin_embeds_the_scenario():
    sc = builtin.race(8, 1, "page_address").variant(last_pkmap=16)
    sc2, _ = read_token(make_token(sc, [0, 1]))
    assert sc2.machine["last_pkmap"] == 16


def _tok(body):
    return "emu1:" + base64.urlsafe_b64encode(zlib.compress(json.dumps(body).encode())).decode()


@pytest.fixture(scope="module")
def good_token():
    return make_token(builtin.race(8, 1, "page_address"), [0, 1])


CORRUPT = {
    "empty": lambda t: "",
    "prefix only": lambda t: "emu1:",
    "wrong prefix": lambda t: "emu2:" + t[5:],
    "not base64": lambda t: "emu1:!!!!",
    "truncated": lambda t: t[:-6],
    "flipped char": lambda t: t[:20] + ("A" if t[20] != "A" else "B") + t[21:],
    "not a string": lambda t: None,
}


@pytest.mark.parametrize("how", list(CORRUPT))
def test_corrupted_tokens_raise_value_error(good_token, how):
    with pytest.raises(ValueError, match="token"):
        read_token(CORRUPT[how](good_token))


BAD_BODIES = {
    "no choices": {"b": ["race", 8, 1, "page_address"], "n": 1},
    "no scenario": {"c": [], "n": 0},
    "bad builtin args": {"b": ["race", "x"], "c": [], "n": 0},
    "unknown builtin": {"b": ["nope"], "c": [], "n": 0},
    "not an object": [1, 2],
}


@pytest.mark.parametrize("how", list(BAD_BODIES))
def test_tokens_with_a_valid_envelope_but_a_bad_body_raise_value_error(how):
    """A token that decompresses but is not a replay body is corrupted too (ValueError, so
    ``emu replay`` reports it instead of crashing)."""
    with pytest.raises(ValueError):
        read_token(_tok(BAD_BODIES[how]))


# ---------------------------------------------------------------------------------------------
# Kernel rules in the executor
# ---------------------------------------------------------------------------------------------


def _S(ld):
    return ld.machine._S


def lock_owner(ld):
    S = _S(ld)
    return int(S[int(S[K.H_R_LOCK]) + K.LK_OWNER])


def cpu_field(ld, cpu, field):
    S = _S(ld)
    return int(S[int(S[K.H_R_CPU]) + cpu * K.CPU_W + field])


def ctx_state(ld, c):
    S = _S(ld)
    return int(S[int(S[K.H_R_CTX]) + c * K.CTX_W + K.CTX_STATE])


def states_before_each_decision(ld, choices, probe):
    """[(alternatives at decision d, probe(ld) just before decision d)] for a whole run."""
    full = ld.run(K.SCHED_DFS, choices, final=False)
    alts = [ld.alternatives_at(d)[1] for d in range(full.decisions)]
    out = []
    for d in range(full.decisions):
        if d == 0:
            ld.snapshot.restore(ld.machine)
        else:
            r = ld.run(K.SCHED_DFS, choices, max_steps=d, final=False)
            assert r.outcome == "step-limit" and r.decisions == d
        out.append((alts[d], probe(ld)))
    return full, out


def listed_afresh(ld):
    """The actions enabled in the machine's state now, as the executor's own listing gives
    them (emu.exec.sched.alternatives, which a step of a line loop lets it skip)."""
    buf = np.zeros(K.MAXALT, np.int64)
    n, _ = alternatives(_S(ld), buf, True)
    return buf[:n].tolist()


def fillers(trace_events=0):
    """Two tasks writing and reading 256 bytes (8 lines) of a page each, and an IRQ."""
    sc = Scenario("fillers", machine={"last_pkmap": 8})
    for t, pfn in (("t1", 300), ("t2", 301)):
        sc.task(t, [{"op": "kmap_high", "pfn": pfn, "as": "v"},
                    {"op": "fill", "va": "v+1000", "byte": 0xAB, "n": 256},
                    {"op": "read", "va": "v+1000", "n": 256},
                    {"op": "kunmap_high", "pfn": pfn}])
    sc.irq("nic", [{"op": "kmap_high_get", "pfn": 300}], line=0)
    return sc.build(trace_events)


def dma_round(pfn, offset, size, direction):
    """dma_map_page then dma_unmap_page of one buffer (its handle named ``h``)."""
    return [{"op": "dma_map_page", "pfn": pfn, "offset": offset, "size": size,
             "direction": direction, "as": "h"},
            {"op": "dma_unmap_page", "dma_addr": "h", "size": size, "direction": direction}]


def mixed(ncpus, trace_events=0):
    """Line loops everywhere: tasks filling, reading and syncing mapped highmem pages for DMA
    on one or two CPUs, and an IRQ handler running dma_map_page on a lowmem page."""
    sc = Scenario("mixed", machine={"last_pkmap": 8, "ncpus": ncpus})
    sc.task("t1", [{"op": "kmap_high", "pfn": 300, "as": "v"},
                   {"op": "fill", "va": "v+100", "byte": 0x11, "n": 256},
                   *dma_round(300, 512, 1024, "FROM_DEVICE"),
                   {"op": "read", "va": "v+100", "n": 200},
                   {"op": "kunmap_high", "pfn": 300}])
    sc.task("t2", [{"op": "kmap_high", "pfn": 302, "as": "w"},
                   {"op": "fill", "va": "w", "byte": 0x22, "n": 300},
                   *dma_round(302, 0, 2048, "TO_DEVICE"),
                   {"op": "kunmap_high", "pfn": 302}], cpu=ncpus - 1)
    sc.irq("nic", dma_round(10, 0, 512, "FROM_DEVICE"), line=0, cpu=0)
    return sc.build(trace_events)


@pytest.mark.parametrize("which", ["race_i", "fillers", "mixed-UP", "mixed-SMP"])
def test_alternatives_kept_over_a_line_loop_are_the_ones_listed_afresh(which, race_i):
    """After a step that only went on with a cache-maintenance loop or a CPU access the
    executor keeps the last decision's alternatives (H_SAME_SET); they must be what listing
    the state afresh gives, at every decision of preempting random runs (tasks, an IRQ
    handler, one CPU or two)."""
    ld = {"race_i": lambda: race_i, "fillers": fillers, "mixed-UP": lambda: mixed(1),
          "mixed-SMP": lambda: mixed(2)}[which]()
    kept = preemptions = 0
    for seed in SEEDS:
        r = _random(ld, seed, trace=False)
        preemptions += r.preemptions
        arow = ld._log[4][:r.decisions]                 # the row each decision's list is in
        kept += int(np.count_nonzero(arow != np.arange(r.decisions)))
        full, seen = states_before_each_decision(ld, r.choices, listed_afresh)
        assert full.choices == r.choices
        for d, (logged, fresh) in enumerate(seen):
            assert logged == fresh, f"seed {seed}, decision {d}"
    assert kept > 0 and preemptions > 0, "no decision kept its alternatives: vacuous test"


def state_after(ld, choices, trace, seed=None, p_switch=0):
    """S (its trace buffer and switch left out), B and the decision log after a DFS-mode run
    of ``choices`` (its final check included), or a random one of ``seed``."""
    if seed is None:
        r = ld.run(K.SCHED_DFS, choices, trace=trace)
    else:
        r = ld.run(K.SCHED_RANDOM, (), p_switch, seed, trace=trace)
    S = ld.machine._S.copy()
    tr = int(S[K.H_R_TRACE])
    S[tr:tr + K.TR_HDR + int(S[tr + K.TR_CAP]) * K.TR_W] = 0
    log = [a[:r.decisions].copy() for a in ld._log[:5]]
    rows = [ld.alternatives_at(d) for d in range(r.decisions)]
    return r, S, ld.machine._B.copy(), log, rows


@pytest.mark.parametrize("mode", ["replay", "random", "random-p0"])
@pytest.mark.parametrize("which", ["race_i", "fillers", "mixed-UP", "mixed-SMP"])
def test_steps_run_without_the_scheduler_leave_what_step_by_step_runs_leave(which, mode,
                                                                             race_i):
    """Where the schedule takes the default at decisions that keep their alternatives, sched.run
    lets run_step go on through them (H_BATCH), logging each, unless the trace is on. So a
    run with the trace off must leave the machine, every counter and clock, the random
    generator and the decision log exactly as the same run with the trace on, decision by
    decision: a replay of a random run's choices, a random run, one that never switches."""
    ld = {"race_i": lambda: race_i, "fillers": lambda: fillers(1 << 16),
          "mixed-UP": lambda: mixed(1, 1 << 16), "mixed-SMP": lambda: mixed(2, 1 << 16)}[which]()
    p = 0 if mode == "random-p0" else int(P_SWITCH * K.P_SWITCH_SCALE)
    batched = 0
    for seed in SEEDS:
        choices = _random(ld, seed, trace=False).choices
        how = dict(seed=None) if mode == "replay" else dict(seed=seed, p_switch=p)
        r0, S0, B0, log0, rows0 = state_after(ld, choices, False, **how)
        r1, S1, B1, log1, rows1 = state_after(ld, choices, True, **how)
        choices = r0.choices
        assert (r0.outcome, r0.decisions, r0.preemptions, r0.lost_bytes) == \
            (r1.outcome, r1.decisions, r1.preemptions, r1.lost_bytes)
        assert r0.findings == r1.findings and r0.actions == r1.actions
        for a, b in zip(log0, log1):
            np.testing.assert_array_equal(a, b)
        assert rows0 == rows1
        np.testing.assert_array_equal(S0, S1)
        np.testing.assert_array_equal(B0, B1)
        # decisions that kept the last one's list and took the default: run without sched.run
        batched += sum(1 for d in range(1, r0.decisions)
                       if log0[4][d] != d and choices[d] == 0 and log0[4][d - 1] != d - 1)
    assert batched > 0, "no run of kept default decisions: vacuous test"


@pytest.mark.parametrize("schedule", [[], ["after step 2 of t1 run t2"],
                                      ["after step 2 of t1 raise IRQ nic"]])
def test_no_preemption_while_kmap_lock_is_held_with_irqs_off(two, schedule):
    ch = explicit_choices(two, schedule)
    full, seen = states_before_each_decision(
        two, ch, lambda ld: (lock_owner(ld), cpu_field(ld, 0, K.CPU_IRQOFF)))
    held = [(a, owner) for a, (owner, off) in seen if owner >= 0]
    assert held, "kmap_lock never held at a scheduling point: vacuous test"
    for a, (owner, off) in seen:
        if owner >= 0:
            assert off == 1                                  # spin_lock_irq(save)
            assert a == [owner], f"alternatives {a} while context {owner} holds kmap_lock"
    assert any(len(a) > 1 for a, (owner, _) in seen if owner < 0)


def test_plain_kmap_lock_disables_preemption_but_not_irqs():
    """Without ARCH_NEEDS_KMAP_HIGH_GET the lock is plain spin_lock: the other task cannot
    run (preempt_count), but the IRQ line can still be raised."""
    sc = Scenario("plain", machine={"last_pkmap": 8, "kmap_high_get": False,
                                    "dma_pinning": "page_address"})
    sc.task("t1", [{"op": "kmap_high", "pfn": 300}, {"op": "kunmap_high", "pfn": 300}])
    sc.task("t2", [{"op": "kmap_high", "pfn": 301}])
    sc.irq("nic", [{"op": "read", "va": 0xC0001000, "n": 4}], line=0)
    ld = sc.build()
    full, seen = states_before_each_decision(
        ld, [], lambda ld: (lock_owner(ld), cpu_field(ld, 0, K.CPU_IRQOFF)))
    held = [a for a, (owner, off) in seen if owner >= 0]
    assert held
    for a, (owner, off) in seen:
        if owner >= 0:
            assert off == 0
            assert sorted(a) == [owner, IRQ0]


@pytest.fixture(scope="module", params=[4, 8])
def sleeper(request):
    """Spec §1.12 wrap/sleep with LAST_PKMAP L: every slot pinned (count 2), ``mapper`` needs
    a new slot and sleeps; ``releaser``'s kunmap_high drops page 301's slot to 1 and wakes it."""
    L = request.param
    sc = Scenario(f"sleep L={L}", machine={"last_pkmap": L, "highmem_mb": 4},
                  setup=[{"op": "kmap", "pfn": 300, "repeat": L}])
    sc.task("mapper", [{"op": "kmap_high", "pfn": 612, "as": "v"},
                       {"op": "write", "va": "v", "data": "aa"}])
    sc.task("releaser", [{"op": "kunmap_high", "pfn": 301}])
    ld = sc.build(trace_events=1 << 16)
    return L, ld


def test_setup_pins_every_slot(sleeper):
    L, ld = sleeper
    m = ld.machine
    assert all(int(c) == 2 for c in m.pkmap_count)
    assert m.last_pkmap_nr == 0
    assert m.pkmap_page(0) == 300 + L - 1 and m.pkmap_page(2) == 301


def test_kmap_high_sleeps_until_kunmap_high_wakes_it(sleeper):
    L, ld = sleeper
    MAPPER, RELEASER = 1, 2
    full, seen = states_before_each_decision(ld, [], lambda ld: ctx_state(ld, MAPPER))
    assert full.outcome == "done"
    asleep = [a for a, st in seen if st == K.CTX_SLEEPING]
    assert asleep, "the mapper never slept"
    for a in asleep:
        assert a == [RELEASER]                               # only the waker can run
    # the mapper's first steps come before the release, the rest after it
    seq = runs(full.actions)
    assert [x for x, _ in seq] == [MAPPER, RELEASER, MAPPER]

    r = ld.run(trace=True)
    text = r.trace
    idx = {}
    for key in ("sleeps on pkmap_map_wait (kmap_high page 612)", "releaser: wakes mapper",
                "pte_clear slot 2 (was page 301)", "set_pte slot 2 -> page 612"):
        hits = [i for i, ln in enumerate(text) if key in ln]
        assert len(hits) == 1, (key, hits)
        idx[key] = hits[0]
    order = sorted(idx, key=idx.get)
    assert order == list(idx), order
    # before sleeping: the wrap flushed the cache but had nothing at count 1 to unmap
    before = text[:idx["sleeps on pkmap_map_wait (kmap_high page 612)"]]
    assert any("flush_cache_kmaps()" in ln for ln in before)
    assert not any("flush_tlb_kernel_range" in ln for ln in before)
    # after the wake: flush, pte_clear of slot 2, TLB flush of the whole window, set_pte
    after = [ln.split(": ", 1)[1] for ln in text[idx["releaser: wakes mapper"]:]
             if ln.startswith("             mapper: ")]
    top = PKMAP_BASE + L * 4096
    want = ["flush_cache_kmaps(): flush_cache_all()", "pte_clear slot 2 (was page 301)",
            f"flush_tlb_kernel_range({PKMAP_BASE:#010x}, {top:#010x})",
            "set_pte slot 2 -> page 612 (vaddr 0xbfe02000)"]
    assert [ln for ln in after if ln in want] == want

    m = ld.machine
    assert m.page_address(612) == PKMAP_BASE + 2 * 4096
    assert m.last_pkmap_nr == 2
    assert m.pkmap_page(2) == 612 and int(m.pkmap_count[2]) == 2
    assert m.page_address(301) == 0
    assert m.read(PKMAP_BASE + 2 * 4096, 1) == b"\xaa"


def test_kmap_high_wake_every_schedule_completes(sleeper):
    L, ld = sleeper
    ex = explore(ld, bound=2)
    assert ex.complete and ex.schedules > 1
    assert ex.outcomes == {"done": ex.schedules}


def test_all_tasks_asleep_is_a_deadlock():
    sc = Scenario("stuck", machine={"last_pkmap": 4},
                  setup=[{"op": "kmap", "pfn": 300, "repeat": 4}])
    sc.task("m1", [{"op": "kmap_high", "pfn": 400}])
    sc.task("m2", [{"op": "kmap_high", "pfn": 401}])
    r = sc.build().run()
    assert r.outcome == "deadlock" and r.deadlock and not r.data_lost
    assert "m1 sleeps on pkmap_map_wait" in r.message
    assert "m2 sleeps on pkmap_map_wait" in r.message


def test_wake_up_wakes_every_waiter():
    """wake_up() on pkmap_map_wait wakes all sleepers (spec §1.9); the first to run takes the
    freed slot, the other finds every slot pinned again and goes back to sleep."""
    sc = Scenario("two sleepers", machine={"last_pkmap": 4},
                  setup=[{"op": "kmap", "pfn": 300, "repeat": 4}])
    sc.task("m1", [{"op": "kmap_high", "pfn": 400}])
    sc.task("m2", [{"op": "kmap_high", "pfn": 401}])
    sc.task("releaser", [{"op": "kunmap_high", "pfn": 301}])
    ld = sc.build(trace_events=1 << 16)
    r = ld.run(trace=True)
    text = "\n".join(r.trace)
    assert "releaser: wakes m1" in text and "releaser: wakes m2" in text
    assert text.count("m1: sleeps on pkmap_map_wait") + \
        text.count("m2: sleeps on pkmap_map_wait") == 3
    assert r.outcome == "deadlock"
    m = ld.machine
    winner = m.pkmap_page(2)
    assert winner in (400, 401)
    loser = "m2" if winner == 400 else "m1"
    assert f"{loser} sleeps on pkmap_map_wait" in r.message
    # with a second page released both get a slot, in every schedule
    sc.task("releaser2", [{"op": "kunmap_high", "pfn": 302}])
    ex = explore(sc, bound=1)
    assert ex.complete and ex.outcomes == {"done": ex.schedules}


def test_step_limit_ends_a_run(two):
    r = two.run(max_steps=3)
    assert r.outcome == "step-limit" and r.decisions == 3 and r.failed
    assert "step limit" in r.message


def dma_driver(device_start=True):
    """A driver task: map a highmem page for the device, start the transfer, wait for the
    completion IRQ, unmap, then read the page through kmap."""
    ops = [{"op": "dma_map_page", "pfn": 300, "direction": "FROM_DEVICE", "as": "h"}]
    if device_start:
        ops.append({"op": "device_start", "dma_addr": "h", "byte": 0xC3, "n": 4096,
                    "line": 0})
    ops += [{"op": "wait_irq", "line": 0},
            {"op": "dma_unmap_page", "dma_addr": "h", "direction": "FROM_DEVICE"},
            {"op": "kmap", "pfn": 300, "as": "v"},
            {"op": "read", "va": "v", "n": 64}]
    sc = Scenario("driver", machine={"last_pkmap": 8})
    sc.task("drv", ops)
    # count=0: the line can only fire once device_start armed it
    sc.irq("nic", [{"op": "read", "va": 0xC0001000, "n": 4}], line=0, count=0)
    return sc


@pytest.fixture(scope="module")
def driver():
    return dma_driver().build(trace_events=1 << 16)


def test_wait_irq_blocks_until_the_handler_ran(driver):
    DRV, HANDLER = 1, 2
    full, seen = states_before_each_decision(driver, [], lambda ld: ctx_state(ld, DRV))
    assert full.outcome == "done", full.message
    assert seen[0][0] == [DRV]                               # the line is not armed yet
    waiting = [i for i, (a, st) in enumerate(seen) if st == K.CTX_WAIT_IRQ]
    assert waiting
    for i in waiting:
        assert DRV not in seen[i][0]
    assert seen[waiting[0]][0] == [IRQ0]
    # the task resumes only after the handler returned
    first_after = waiting[-1] + 1
    assert full.actions[waiting[0]] == IRQ0
    assert set(full.actions[waiting[0] + 1:first_after]) == {HANDLER}
    assert DRV in full.actions[first_after:]


def test_device_start_and_wait_irq_move_the_data_and_raise_the_line(driver):
    r = driver.run(trace=True)
    assert r.outcome == "done" and not r.findings
    text = "\n".join(r.trace)
    assert "starts a device transfer of 4096 bytes to 0x12c000" in text
    assert "IRQ line 0 raised (device wrote 4096 bytes), for cpu0" in text
    assert text.index("device wrote") < text.index("enters IRQ handler (line 0)") \
        < text.index("returns from IRQ handler (line 0)") < text.index("nic: wakes drv")
    m = driver.machine
    assert m.phys_read(m.pfn_to_phys(300), 4096) == b"\xc3" * 4096
    assert m.read(m.page_address(300), 64) == b"\xc3" * 64


def test_device_completion_every_schedule(driver):
    ex = explore(driver, bound=2)
    assert ex.complete and ex.outcomes == {"done": ex.schedules}
    assert ex.max_lost_bytes == 0


def test_wait_irq_without_a_device_is_a_deadlock():
    r = dma_driver(device_start=False).build().run()
    assert r.outcome == "deadlock" and r.deadlock
    assert "drv waits for IRQ line 0" in r.message


def two_transfers_on_one_line():
    """A driver starting a second transfer on line 0 before the first one has landed."""
    sc = Scenario("two transfers", machine={"last_pkmap": 8})
    sc.task("drv", [{"op": "device_start", "dma_addr": 0xA000, "byte": 0xA1, "n": 64,
                     "line": 0},
                    {"op": "device_start", "dma_addr": 0xB000, "byte": 0xB2, "n": 64,
                     "line": 0},
                    {"op": "wait_irq", "line": 0, "count": 2}])
    sc.irq("nic", [{"op": "kmap_flush_unused"}], line=0, count=0)
    return sc


@pytest.mark.parametrize("mode", [K.SCHED_DFS, K.SCHED_TIMED])
def test_device_start_on_a_line_with_a_transfer_in_flight_is_an_error(mode):
    # a line holds one transfer: the second device_start replaced the first, whose data
    # never landed (every schedule 'done'), and a timed run reported a deadlock
    ld = two_transfers_on_one_line().build()
    r = ld.run(mode)
    assert r.outcome == "error", (r.outcome, r.message)
    assert r.message == ("task 'drv' op 1: device_start on line 0 while the line's previous "
                         "transfer (64 bytes to 0xa000) is still in flight: a line has one "
                         "transfer at a time (wait_irq for it first, or use another line)")
    ex = explore(two_transfers_on_one_line(), bound=2)      # unless the first one landed
    assert ex.complete and ex.outcomes["error"] >= 1 and ex.failures == ex.outcomes["error"]


def test_device_start_after_the_previous_transfer_landed():
    sc = Scenario("transfers in turn", machine={"last_pkmap": 8})
    sc.task("drv", [{"op": "device_start", "dma_addr": 0xA000, "byte": 0xA1, "n": 64,
                     "line": 0},
                    {"op": "wait_irq", "line": 0},
                    {"op": "device_start", "dma_addr": 0xB000, "byte": 0xB2, "n": 64,
                     "line": 0},
                    {"op": "wait_irq", "line": 0, "count": 2}])
    sc.irq("nic", [{"op": "kmap_flush_unused"}], line=0, count=0)
    for mode in (K.SCHED_DFS, K.SCHED_TIMED):
        ld = sc.build()
        r = ld.run(mode)
        assert r.outcome == "done", r.message
        m = ld.machine
        assert m.phys_read(0xA000, 64) == b"\xa1" * 64 and m.phys_read(0xB000, 64) == b"\xb2" * 64
    ex = explore(sc, bound=2)
    assert ex.complete and ex.outcomes == {"done": ex.schedules}


IRQ_DEADLOCK_TEXT = "CPU0: lock(kmap_lock); <Interrupt> lock(kmap_lock); *** DEADLOCK ***"


def lock_in_irq(kmap_high_get):
    sc = Scenario("irqlock", machine={"last_pkmap": 8, "kmap_high_get": kmap_high_get,
                                      "dma_pinning": "kmap_high_get" if kmap_high_get
                                      else "page_address"})
    sc.task("worker", [{"op": "kmap_high", "pfn": 300}, {"op": "kunmap_high", "pfn": 300}])
    sc.irq("nic", [{"op": "kmap_flush_unused"}], line=0)
    return sc.build()


def test_irq_handler_spinning_on_the_interrupted_tasks_lock_is_irq_deadlock():
    ld = lock_in_irq(False)
    ch = explicit_choices(ld, ["after step 1 of worker raise IRQ nic"])
    r = ld.run(K.SCHED_DFS, ch)
    assert r.outcome == "irq-deadlock" and r.deadlock
    assert IRQ_DEADLOCK_TEXT in r.message
    assert "worker holds kmap_lock" in r.message and "nic" in r.message
    assert r.actions[-1] == 2                                # the handler (ctx 2) spun last


def test_irq_disabling_lock_makes_that_schedule_impossible():
    ld = lock_in_irq(True)
    with pytest.raises(ValueError, match="IRQ nic cannot be raised there"):
        explicit_choices(ld, ["after step 1 of worker raise IRQ nic"])
    ex = explore(ld, bound=2)
    assert ex.complete and ex.deadlocks == 0 and ex.outcomes == {"done": ex.schedules}


def test_builtin_iii_irq_deadlock_message():
    ld = builtin.irq_getter(False).build()
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 1 of worker raise IRQ nic"]))
    assert r.outcome == "irq-deadlock" and r.deadlock
    assert IRQ_DEADLOCK_TEXT in r.message
    assert "kmap_high_get" in r.message                      # where the handler spins


def test_kernel_bug_in_a_task_ends_the_run_with_an_error():
    sc = Scenario("bug", machine={"last_pkmap": 8})
    sc.task("t", [{"op": "kmap", "pfn": 300}, {"op": "kunmap", "pfn": 300},
                  {"op": "kunmap", "pfn": 300}])
    sc.task("other", [{"op": "kmap_high", "pfn": 301}])
    r = sc.build().run()
    assert r.outcome == "error" and not r.deadlock
    assert r.message.startswith("t: kernel BUG: kunmap_high: unbalanced kunmap of page 300")
    assert "BUG()" in r.message
    assert 2 not in r.actions                                # the run stopped at the BUG
    assert r.failed


def test_kunmap_of_an_unmapped_page_is_bug_on():
    sc = Scenario("bug2", machine={"last_pkmap": 8})
    sc.task("t", [{"op": "kunmap_high", "pfn": 300}])
    r = sc.build().run()
    assert r.outcome == "error"
    assert "kunmap_high: page 300 has no virtual address (BUG_ON(!vaddr))" in r.message


def test_kunmap_from_an_irq_handler_is_a_bug():
    sc = Scenario("bug3", machine={"last_pkmap": 8}, setup=[{"op": "kmap", "pfn": 300}])
    sc.task("t", [{"op": "kmap_flush_unused"}])
    sc.irq("nic", [{"op": "kunmap", "pfn": 300}], line=0)
    ld = sc.build()
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 2 of t raise IRQ nic"]))
    assert r.outcome == "error"
    assert r.message.startswith("nic: kernel BUG: kunmap: page 300")
    assert "BUG_ON(in_interrupt())" in r.message


def test_exploration_counts_bugs_as_failures():
    sc = Scenario("bug4", machine={"last_pkmap": 8})
    sc.task("t", [{"op": "kunmap_high", "pfn": 300}])
    sc.task("u", [{"op": "kmap_high", "pfn": 300}])
    ex = explore(sc, bound=1)
    assert ex.failures >= 1 and ex.outcomes.get("error", 0) >= 1
    assert ex.minimal is not None and ex.minimal.outcome == "error"


def test_run_raw_accepts_any_int_sequence_of_choices():
    from emu.exec.builtin import race
    ld = race(8, 1, "page_address").build()
    assert ld.run_raw(()) == ld.run_raw(np.zeros(0, np.int64))
    assert ld.run_raw([0, 1]) == ld.run_raw(np.array([0, 1]))


def test_replay_function_reproduces_the_exploration_failure():
    from emu.exec.builtin import race
    from emu.exec.explore import explore, replay
    ex = explore(race(8, 1, "page_address"), bound=1, stop_at_first=True)
    ld, r = replay(ex.replay)
    assert r.data_lost and r.lost_bytes == ex.max_lost_bytes
    assert r.trace and ld.scenario.name == ex.scenario
    _, again = replay(ex.replay, trace=False)
    assert again.trace == [] and again.lost_bytes == r.lost_bytes


# ---------------------------------------------------------------------------------------------
# Bad arguments: a ValueError naming the argument, and the machine as it was
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain():
    """two_tasks() without a trace buffer, and its default run."""
    ld = two_tasks().build()
    return ld, ld.run()


def _state(ld):
    return ld.machine._S.copy(), ld.machine._B.copy()


def _check_untouched(ld, before, default):
    """The machine state is ``before``, and a good run is still the default one."""
    assert np.array_equal(ld.machine._S, before[0]) and np.array_equal(ld.machine._B, before[1])
    assert ld.run() == default
    assert ld.run_raw(()) == (K.RUN_DONE, default.decisions, 0, 0)


BAD_CHOICES = [[-1], [0, -1], [2 ** 70], [99] * 5, [1_000_000], [K.MAXALT], [1.5], [0, True],
               [None], ["1"], np.array([0.5]), np.array([K.MAXALT], np.uint8),
               None, "01", 3, {0: 1}, [[0]]]
BAD_RUN_ARGS = ([({"choices": c}, "choices") for c in BAD_CHOICES]
                + [({"mode": m}, "mode=") for m in (99, -1, 3, "dfs", 1.0, True, None)]
                + [({"max_steps": s}, "max_steps=") for s in ("x", -1, 0, 1.5, 2 ** 70, None)]
                + [({"p_switch": p}, "p_switch=") for p in (-1, 0.5, K.P_SWITCH_SCALE + 1, "x")]
                + [({"seed": s}, "seed=") for s in (-1, 1.5, "x")])


@pytest.mark.parametrize("kw, name", BAD_RUN_ARGS, ids=[repr(kw) for kw, _ in BAD_RUN_ARGS])
def test_run_rejects_bad_arguments_and_leaves_the_machine_alone(plain, kw, name):
    ld, default = plain
    before = _state(ld)
    with pytest.raises(ValueError, match=re.escape(name)):
        ld.run(**kw)
    _check_untouched(ld, before, default)


@pytest.mark.parametrize("kw, name", [(kw, n) for kw, n in BAD_RUN_ARGS
                                      if set(kw) <= {"choices", "max_steps"}],
                         ids=[repr(kw) for kw, _ in BAD_RUN_ARGS
                              if set(kw) <= {"choices", "max_steps"}])
def test_run_raw_rejects_bad_arguments_and_leaves_the_machine_alone(plain, kw, name):
    ld, default = plain
    before = _state(ld)
    with pytest.raises(ValueError, match=re.escape(name)):
        ld.run_raw(kw.get("choices", ()), **{k: v for k, v in kw.items() if k != "choices"})
    _check_untouched(ld, before, default)


@pytest.mark.parametrize("how", ["run", "run_raw"])
def test_an_int64_array_of_choices_is_checked_by_the_run(plain, how):
    """A logged schedule (an int64 array) goes to the scheduler unchecked, as run_raw's hot
    path wants it: a negative choice stops the run at its decision, as a choice the decision
    does not have does (the machine back at the snapshot)."""
    ld, default = plain
    choices = np.array([0, -1], np.int64)
    with pytest.raises(ValueError, match=re.escape("choices[1]=-1: must be an int >= 0")):
        ld.run(choices=choices) if how == "run" else ld.run_raw(choices)
    assert ld.run() == default and ld.run_raw(()) == (K.RUN_DONE, default.decisions, 0, 0)


def test_a_bad_choice_names_its_index():
    with pytest.raises(ValueError, match=re.escape("choices[3]=-1: must be")):
        two_tasks().build().run(choices=[0, 0, 0, -1])


@pytest.mark.parametrize("one, extra", [(True, 0), (False, 0), (False, 5)],
                         ids=["only-one", "next", "far"])
@pytest.mark.parametrize("how", ["run", "run_raw", "dfs"])
def test_a_choice_its_decision_does_not_have_stops_the_run(plain, how, one, extra):
    """Known only when the run gets there: the scheduler stops at it (it would read past the
    alternatives), the machine goes back to the snapshot and Python names the choice."""
    ld, default = plain
    ld.run()
    d = next(d for d in range(default.decisions) if (ld.alternatives_at(d)[0] == 1) == one)
    n = ld.alternatives_at(d)[0]
    choices = [0] * d + [n + extra]
    msg = f"[{d}]={n + extra}: decision {d} has only {n} alternative{'' if one else 's'}"
    ex = explore(ld, 1)
    with pytest.raises(ValueError, match=re.escape(msg)) as ei:
        if how == "run":
            ld.run(choices=choices)
        elif how == "run_raw":
            ld.run_raw(np.array(choices))
        else:
            ld.dfs(1, 1000, 10, 0, ld.dfs_state(choices))
    assert str(ei.value).startswith("prefix" if how == "dfs" else "choices")
    assert ld.run() == default and ld.run(choices=choices[:-1]) == default
    assert explore(ld, 1).outcomes == ex.outcomes


def test_the_scheduler_itself_stops_at_a_negative_choice(plain):
    """Python checks choices before a run; the kernel does not rely on it (a buffer handed
    to dfs() is not checked element by element)."""
    ld, default = plain
    buf = np.zeros(1 << 16, np.int64)
    buf[2] = -3
    x = ld.dfs_state()
    x[K.X_PLEN] = 3
    with pytest.raises(ValueError, match=re.escape("prefix[2]=-3: must be an int >= 0")):
        ld.dfs(0, 1000, 1, K.DFS_NO_NEXT, x, buf)
    assert ld.run() == default


BAD_DFS = [
    (lambda ld: ld.dfs(2 ** 70, 1000, 1, 0, ld.dfs_state()), "bound="),
    (lambda ld: ld.dfs(-1, 1000, 1, 0, ld.dfs_state()), "bound="),
    (lambda ld: ld.dfs(1, "x", 1, 0, ld.dfs_state()), "max_steps="),
    (lambda ld: ld.dfs(1, 1000, 0, 0, ld.dfs_state()), "limit="),
    (lambda ld: ld.dfs(1, 1000, 1, -1, ld.dfs_state()), "ask="),
    (lambda ld: ld.dfs(1, 1000, 1, 0, np.zeros(3, np.int64)), "x:"),
    (lambda ld: ld.dfs(1, 1000, 1, 0, [0] * K.X_W), "x:"),
    (lambda ld: ld.dfs(1, 1000, 1, 0, ld.dfs_state(), np.zeros(8, np.int64)), "prefix:"),
    (lambda ld: ld.dfs(1, 1000, 1, 0, ld.dfs_state(), [0] * (1 << 16)), "prefix:"),
    (lambda ld: ld.dfs_state([-1]), "prefix[0]=-1"),
    (lambda ld: ld.dfs_state(None), "prefix=None"),
    (lambda ld: ld.dfs_state((), -1), "floor="),
    (lambda ld: ld.dfs_state((), 2 ** 70), "floor="),
]


def _sc(ld):
    return ld.scenario


BAD_API = [
    (lambda ld: explore(None), "scenario=None: must be a Scenario or a Loaded scenario"),
    (lambda ld: explore("i"), "scenario='i'"),
    (lambda ld: explore({}), "scenario={}"),
    (lambda ld: explore(ld, bound=2 ** 70), "bound="),
    (lambda ld: explore(ld, bound=-1), "bound=-1"),
    (lambda ld: explore(ld, bound=1.5), "bound=1.5"),
    (lambda ld: explore(ld, bound="2"), "bound='2'"),
    (lambda ld: explore(ld, max_steps=2 ** 70), "max_steps="),
    (lambda ld: run_random(None), "scenario=None"),
    (lambda ld: run_random(ld, p_switch="x"), "p_switch='x'"),
    (lambda ld: run_random(ld, p_switch=None), "p_switch=None"),
    (lambda ld: run_random(ld, p_switch=float("nan")), "p_switch=nan"),
    (lambda ld: run_random(ld, p_switch=-0.1), "p_switch=-0.1"),
    (lambda ld: run_random(ld, p_switch=True), "p_switch=True"),
    (lambda ld: run_random(ld, max_steps="x"), "max_steps='x'"),
    (lambda ld: run_random(ld, max_steps=2 ** 70), "max_steps="),
    (lambda ld: run_random(ld, max_steps=0), "max_steps=0"),
    (lambda ld: run_random(ld, max_steps=-5), "max_steps=-5"),
    (lambda ld: run_random(ld, seed=-1), "seed=-1"),
    (lambda ld: run_random(ld, runs=0), "runs=0"),
    (lambda ld: explicit_choices(ld, None), "directives=None"),
    (lambda ld: explicit_choices(ld, "after step 1 of t1 run t2"), "directives="),
    (lambda ld: explicit_choices(_sc(ld), []), "ld="),
    (lambda ld: make_token(ld.scenario, [0, -1]), "choices[1]=-1"),
    (lambda ld: make_token(ld.scenario, None), "choices=None"),
    (lambda ld: make_token(ld.scenario, [0] * ((1 << 16) + 1)), "choices: 65537 of them"),
]


@pytest.mark.parametrize("call, name", BAD_DFS + BAD_API,
                         ids=[n + str(i) for i, (_, n) in enumerate(BAD_DFS + BAD_API)])
def test_schedule_api_rejects_bad_arguments(plain, call, name):
    ld, default = plain
    before = _state(ld)
    with pytest.raises(ValueError, match=re.escape(name)):
        call(ld)
    _check_untouched(ld, before, default)


BAD_STEPS = [({"after": "t1", "step": "x", "run": "t2"}, "step='x': must be an int"),
             ({"after": "t1", "step": 1.7, "run": "t2"}, "step=1.7: must be an int"),
             ({"after": "t1", "step": True, "run": "t2"}, "step=True"),
             ({"after": "t1", "step": 0, "run": "t2"}, "step=0: must be in [1, "),
             ({"after": "t1", "step": 2 ** 70, "irq": "nic"}, "step="),
             ("after step 0 of t1 run t2", "step=0"),
             ("after step -2 of t1 raise IRQ nic", "step=-2")]


@pytest.mark.parametrize("directive, msg", BAD_STEPS, ids=[str(d) for d, _ in BAD_STEPS])
def test_directive_step_must_be_a_positive_int(plain, directive, msg):
    ld, default = plain
    with pytest.raises(ValueError, match=re.escape(msg)) as ei:
        explicit_choices(ld, [directive])
    assert str(ei.value).startswith(f"schedule entry {directive!r}")
    assert ld.run() == default


def _tok_bytes(blob):
    return "emu1:" + base64.urlsafe_b64encode(zlib.compress(blob)).decode()


RACE = ["race", 8, 1, "page_address"]
BAD_TOKEN_BODIES = {
    "huge n": {"b": RACE, "c": [], "n": 10 ** 10},
    "n past the log": {"b": RACE, "c": [], "n": (1 << 16) + 1},
    "negative n": {"b": RACE, "c": [], "n": -1},
    "float n": {"b": RACE, "c": [], "n": 2.0},
    "bool n": {"b": RACE, "c": [], "n": True},
    "choice 99": {"b": RACE, "c": [[1, 99]], "n": 3},
    "negative choice": {"b": RACE, "c": [[1, -1]], "n": 3},
    "bool choice": {"b": RACE, "c": [[1, True]], "n": 3},
    "index past n": {"b": RACE, "c": [[3, 1]], "n": 3},
    "not pairs": {"b": RACE, "c": [[1, 1, 1]], "n": 3},
}


@pytest.mark.parametrize("how", list(BAD_TOKEN_BODIES))
def test_token_fields_out_of_range_are_corrupted(how):
    with pytest.raises(ValueError, match="token: corrupted"):
        read_token(_tok(BAD_TOKEN_BODIES[how]))


def test_token_that_decompresses_past_the_cap_is_corrupted():
    body = json.dumps({"b": RACE, "c": [], "n": 0}).encode()
    with pytest.raises(ValueError, match="token: corrupted"):
        read_token(_tok_bytes(body + b" " * (1 << 25)))


def test_token_whose_choice_its_decision_does_not_have_does_not_replay():
    """Within [0, MAXALT) the token reads; the replay finds that decision 0 of (i) has fewer
    alternatives (it said ``done`` before)."""
    from emu.exec.explore import replay
    n = builtin.race(8, 1, "page_address").build()
    r = n.run()
    d = next(d for d in range(r.decisions) if n.alternatives_at(d)[0] > 1)
    k = n.alternatives_at(d)[0]
    tok = _tok({"b": RACE, "c": [[d, k]], "n": d + 1})
    assert read_token(tok)[1] == [0] * d + [k]
    with pytest.raises(ValueError, match=re.escape(f"token: corrupted (choices[{d}]={k}: "
                                                   f"decision {d} has only {k} alternatives")):
        replay(tok, trace=False)


def test_a_step_limit_failure_replays_as_one():
    """The token keeps a step limit that is not the default."""
    from emu.exec.builtin import race
    from emu.exec.explore import replay
    ex = explore(race(8, 1, "kmap_high_get"), bound=0, max_steps=20)
    assert ex.minimal is not None and ex.minimal.outcome == "step-limit"
    _, r = replay(ex.replay, trace=False)
    assert r.outcome == "step-limit" and r.failed
    assert read_token(make_token(race(8), [0, 1], 20))[1] == [0, 1]


def _steps_name_their_events_context(lines):
    """Each numbered step's header names the context every event under it comes from (an
    IRQ's entry and return are events of no step: a raise is a decision without one)."""
    who, checked = None, 0
    for line in lines:
        words = line.split()
        if words and words[0] == "step" and len(words) > 3:
            who = words[3]
        elif who and line.startswith("             ") and words[0].endswith(":") \
                and "IRQ handler" not in line:
            assert words[0][:-1] == who, (who, line)
            checked += 1
    return checked


@pytest.mark.parametrize("which", ["irq returned", "smp"])
def test_a_step_header_names_the_context_that_runs_it(which):
    """The step's trace event is made after its context is entered: after an IRQ handler
    returns, or when the other CPU ran last, the header used to name the previous one."""
    from emu.exec.builtin import irq_getter, race
    if which == "irq returned":
        ld = irq_getter(True, 8).build(trace_events=1 << 16)
        r = ld.run(choices=explicit_choices(ld, ["after step 2 of worker raise IRQ nic"]),
                   trace=True)
    else:
        ex = explore(race(8, 2, "page_address"), bound=1)
        ld = race(8, 2, "page_address").build(trace_events=1 << 16)
        r = ld.run(choices=ex.minimal.choices, trace=True)
    assert _steps_name_their_events_context(r.trace) >= 5


def test_timed_mode_time_slices_go_round_robin():
    """With a time slice, an expired task yields to the next task id after it on its CPU,
    wrapping around: three tasks take turns (the third used to wait for one of the first two
    to finish)."""
    sc = Scenario("rr", {"lowmem_mb": 1, "highmem_mb": 1, "last_pkmap": 8, "timeslice": 3000})
    for i in range(3):
        sc.task(f"t{i + 1}", [{"op": "write", "va": 0xC0000000 + 0x10000 * (i + 1),
                               "byte": i + 1, "n": 256}] * 60)
    r = sc.build(trace_events=1 << 16).run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done"
    switched = [line.split()[3] for line in r.trace if line.endswith("<-- switch")]
    assert switched[:5] == ["t2", "t3", "t1", "t2", "t3"], switched


SLEEPER = """
name = "sleep"
setup = [ { op = "kmap", pfn = 300, repeat = 4 } ]
[machine]
last_pkmap = 4
lowmem_mb = 1
highmem_mb = 4
timeslice = 100000
[[task]]
name = "a"
ops = [ { op = "kmap", pfn = 500 }, { op = "kunmap", pfn = 500 } ]
[[task]]
name = "b"
ops = [ { op = "kunmap", pfn = 301 } ]
"""


def test_a_context_switch_is_charged_once_per_switch():
    """a sleeps in map_new_virtual (every slot pinned), b runs and its kunmap wakes a, a
    runs again: two switches, two context_switch micro-ops, both at the scheduler (the
    sleep's schedule() was charged a second time in kmap_high). The first task a CPU runs
    was running already: no switch, so step 1 starts at cycle 0."""
    ld = Scenario.from_dict(tomllib.loads(SLEEPER)).build(trace_events=1000)
    r = ld.run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done" and ld.machine.mm_stats["sleeps"] == 1
    bd = ld.machine.breakdown()
    cost = bd["schedule"]["task"]["context_switch"][1] // 2
    assert bd["schedule"]["task"]["context_switch"] == (2, 2 * cost) and cost > 0
    assert all("context_switch" not in kinds for name, per in bd.items() if name != "schedule"
               for kinds in per.values())
    assert "[cycle 0]" in r.trace[0]


SLEEP_WAKE_SMP = """
name = "sleepwake"
[machine]
ncpus = 2
last_pkmap = 4
lowmem_mb = 1
highmem_mb = 4
[[task]]
name = "b"
cpu = 1
ops = [ {op="kmap_high", pfn=301, repeat=4},
        {op="dma_map_page", pfn=500, size=4096, direction="BIDIRECTIONAL", repeat=40},
        {op="kunmap_high", pfn=301, repeat=4} ]
[[task]]
name = "a"
cpu = 0
ops = [ {op="dma_map_page", pfn=10, size=4096, direction="BIDIRECTIONAL", repeat=5},
        {op="kmap_high", pfn=310}, {op="kunmap_high", pfn=310} ]
"""


def _cycle(line):
    return int(line.split("[cycle ")[1].split("]")[0])


def test_a_task_woken_on_another_cpu_runs_no_earlier_than_its_wake_up():
    """a sleeps in map_new_virtual on CPU0; b's kunmap_high on CPU1 wakes it thousands of
    cycles later in CPU1's time. a resumes then, not at CPU0's own earlier clock (where it
    used to "spin" on kmap_lock, IRQs masked, until b's release)."""
    ld = Scenario.from_dict(tomllib.loads(SLEEP_WAKE_SMP)).build(trace_events=1 << 16)
    r = ld.run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done"
    t = r.trace
    steps = [i for i, line in enumerate(t) if line.startswith("step")]
    woke = next(i for i, line in enumerate(t) if line.strip() == "b: wakes a")
    waker = max(i for i in steps if i < woke)
    resumed = next(i for i in steps if i > woke and t[i].split()[3] == "a")
    assert _cycle(t[resumed]) >= _cycle(t[waker]) > 5000


# ---------------------------------------------------------------------------------------------
# Timed runs: IRQs due after every task has finished
# ---------------------------------------------------------------------------------------------
LATE_COMPLETION = """
name = "late completion"
[machine]
last_pkmap = 8
lowmem_mb = 1
highmem_mb = 1
[[task]]
name = "driver"
ops = [ { op = "dma_map_page", pfn = 10, direction = "FROM_DEVICE", as = "h" },
        { op = "device_start", dma_addr = "h", byte = 0x5A, n = 64, line = 0, cycles = 500000 } ]
[[irq]]
name = "done"
line = 0
ops = [ { op = "dma_unmap_page", dma_addr = 0xA000, direction = "FROM_DEVICE" },
        { op = "read", va = 0xC000A000, n = 64 } ]
"""


def test_a_timed_completion_irq_due_after_the_tasks_still_fires():
    """The driver starts a transfer and returns long before the device completes: the CPU
    idles until the completion IRQ, the device's data lands and the handler runs (it was
    silently dropped: the run ended with the last task)."""
    ld = Scenario.from_dict(tomllib.loads(LATE_COMPLETION)).build(trace_events=1 << 12)
    r = ld.run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done" and r.pending_irqs == []
    assert "             done: returns from IRQ handler (line 0)" in r.trace
    assert any("IRQ line 0 raised (device wrote 64 bytes)" in t for t in r.trace)
    assert ld.machine.phys_read(0xA000, 64) == b"\x5a" * 64
    assert max(ld.machine.cycles) >= 500000
    assert r.lost_bytes == 0 and r.stale_reads == 0
    again = ld.run(K.SCHED_TIMED, trace=True)        # deterministic: the same run again
    assert again.trace == r.trace


def test_a_tick_left_armed_at_the_end_is_not_waited_for_nor_reported():
    """A periodic line with more firings left than a run waits for after its tasks is a
    tick (the profiler's dma-irq nic): the run ends without it, and does not list it as
    pending (a tick is armed at the end of every run); a short periodic line fires out."""
    sc = Scenario("tick", {"last_pkmap": 8})
    sc.task("t", [{"op": "kmap", "pfn": 300}, {"op": "kunmap", "pfn": 300}])
    sc.irq("tick", [{"op": "kmap_high_get", "pfn": 300}], line=2, count=10 ** 6,
           period=1000, first=1000)
    sc.irq("few", [{"op": "kmap_high_get", "pfn": 300}], line=3, count=3, period=20000,
           first=10000)
    ld = sc.build()
    r = ld.run(K.SCHED_TIMED)
    assert r.outcome == "done"
    S = ld.machine._S
    assert S[int(S[K.H_R_IRQ]) + 3 * K.IRQ_W + K.IRQ_DONE] == 3     # all of "few" fired
    assert S[int(S[K.H_R_IRQ]) + 2 * K.IRQ_W + K.IRQ_DUE] > 0       # the tick: still armed
    assert r.pending_irqs == []


def test_a_completion_still_armed_when_a_run_fails_is_reported_pending():
    """A run that ends early (here a kernel BUG after the transfer started) leaves the
    device's completion armed: the result lists it, and says why it never fired."""
    d = tomllib.loads(LATE_COMPLETION)
    d["task"][0]["ops"].append({"op": "kunmap_high", "pfn": 300})     # never mapped: BUG
    ld = Scenario.from_dict(d).build()
    r = ld.run(K.SCHED_TIMED)
    assert r.outcome == "error" and "BUG_ON(!vaddr)" in r.message
    (p,) = r.pending_irqs
    assert (p["line"], p["handler"], p["state"], p["firings_left"]) == (0, "done", "armed", 1)
    from emu.exec.report import pending_irq_text
    assert pending_irq_text(p) == (f"IRQ line 0 (done, cpu0) still armed: due at cycle "
                                   f"{p['due']:,}, 1 firing left (the run ended before it "
                                   f"was due)")
    assert p["due"] >= 500000


@pytest.mark.parametrize("count, calls", [(0, 0), (1, 1), (3, 3)])
def test_a_timed_line_fires_count_times_and_never_with_count_0(count, calls):
    """``count`` is a timed line's number of firings: 0 fired once anyway (its first)."""
    sc = Scenario("count", {"last_pkmap": 8})
    sc.task("t", [{"op": "kmap", "pfn": 300}, {"op": "kunmap", "pfn": 300}])
    sc.irq("h", [{"op": "kmap_flush_unused"}], line=1, count=count, period=5000, first=100)
    ld = sc.build()
    r = ld.run(K.SCHED_TIMED)
    assert r.outcome == "done" and r.pending_irqs == []
    S = ld.machine._S
    assert S[int(S[K.H_R_IRQ]) + 1 * K.IRQ_W + K.IRQ_DONE] == calls


@pytest.mark.parametrize("count, fired_early", [(None, False), (0, False), (1, True)])
def test_a_device_line_without_a_count_has_no_timed_first_firing(count, fired_early):
    """A device's completion line has count 0 by default, so its ``first`` does not fire:
    it fired anyway at 100, and the driver's wait_irq returned then, reading its buffer
    before the device wrote it (at the device_start's 5,000 cycles)."""
    sc = Scenario("device line first", {"last_pkmap": 8})
    sc.task("t", [{"op": "kmap", "pfn": 10, "as": "v"},
                  {"op": "fill", "va": "v+256", "byte": 7, "n": 2048},
                  {"op": "device_start", "dma_addr": 0xA000, "byte": 0xC3, "n": 64,
                   "line": 0, "cycles": 5000},
                  {"op": "wait_irq", "line": 0},
                  {"op": "read", "va": "v", "n": 64}])
    sc.irq("h", [{"op": "kmap_flush_unused"}], line=0, first=100, count=count)
    ld = sc.build(trace_events=1 << 16)
    r = ld.run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done" and r.pending_irqs == []
    text = "\n".join(r.trace)
    wrote = text.index("IRQ line 0 raised (device wrote 64 bytes)")
    assert (text.index("op 4 read") < wrote) == fired_early
    assert text.count("enters IRQ handler (line 0)") == (2 if fired_early else 1)


def device_line_with_its_own_firings(**irq):
    """A driver starting a 64-byte transfer due 5,000 cycles on, on a line that also fires
    on its own (``irq``: its count, first, period); the handler reads the buffer."""
    sc = Scenario("shared device line", {"last_pkmap": 8})
    sc.task("t", [{"op": "device_start", "dma_addr": 0xA000, "byte": 0xC3, "n": 64,
                   "line": 0, "cycles": 5000},
                  {"op": "wait_irq", "line": 0, "count": 1 + irq.get("count", 0)}])
    sc.irq("h", [{"op": "read", "va": 0xC000A000, "n": 4}], line=0, **irq)
    return sc


def _raises(trace):
    """(clock of the handler's next step, device bytes) per raise of line 0 in a trace."""
    out = []
    for i, t in enumerate(trace):
        if "IRQ line 0 raised" in t:
            m = next(re.search(r"\[cycle (\d+)\]", u) for u in trace[i:] if "[cycle" in u)
            wrote = re.search(r"device wrote (\d+) bytes", t)
            out.append((int(m.group(1)), int(wrote.group(1)) if wrote else 0))
    return out


def test_a_timed_firing_of_a_device_line_does_not_complete_the_transfer_in_flight():
    """The line's own firings (first 1,000, every 1,500, 3 of them) run the handler while
    the device's transfer is in flight; the transfer lands at its own clock (5,000) and
    raises the line then. device_start re-armed the line for its completion and dropped its
    own firings (a period of 0), and in an exploration the first raise after the
    device_start always landed the data, even one of the line's own."""
    ld = device_line_with_its_own_firings(count=3, first=1000, period=1500).build(
        trace_events=1 << 14)
    r = ld.run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done" and r.pending_irqs == [] and r.merged_irqs == 0
    raises = _raises(r.trace)
    assert [n for _, n in raises] == [0, 0, 0, 64]
    assert [c // 100 for c, _ in raises] == [10, 25, 40, 50]     # a few cycles of entry on
    assert ld.machine.phys_read(0xA000, 64) == b"\xc3" * 64


def test_a_spurious_raise_of_a_device_line_leaves_the_transfer_in_flight():
    """Exploring, a device line with a count of its own offers both raises while the
    transfer is in flight: the device's completion ('raise IRQ h', which lands the data)
    and one of the line's own ('raise spurious IRQ h', which does not); both orders run."""
    ld = device_line_with_its_own_firings(count=1).build(trace_events=1 << 14)
    ch = explicit_choices(ld, ["after step 1 of t raise spurious IRQ h"])
    assert {first_raise_bytes(ld, c) for c in ([], ch)} == {0, 64}
    r = ld.run(K.SCHED_DFS, ch, trace=True)
    assert r.outcome == "done"
    assert [n for _, n in _raises(r.trace)] == [0, 64]      # the task waits for 2 handlers
    assert describe_choices(ld, r.choices) == ["after step 1 of t raise spurious IRQ h"]
    assert ld.alternatives_at(1)[1] == [1, IRQ0, K.ACT_IRQ_OWN + 0]
    ex = explore(ld, bound=2)
    assert ex.complete and ex.outcomes == {"done": ex.schedules}
    with pytest.raises(ValueError, match=r"no device transfer is in flight on its line"):
        explicit_choices(ld, ["at start raise spurious IRQ h"])


def test_a_dict_entry_says_spurious_with_its_own_key():
    """{'spurious_irq': HANDLER} is 'raise spurious IRQ HANDLER', as {'irq': HANDLER} is
    'raise IRQ HANDLER'; one action key an entry."""
    ld = device_line_with_its_own_firings(count=1).build()
    ch = explicit_choices(ld, [{"after": "t", "step": 1, "spurious_irq": "h"}])
    assert ch == explicit_choices(ld, ["after step 1 of t raise spurious IRQ h"])
    assert ch != explicit_choices(ld, [{"after": "t", "step": 1, "irq": "h"}])
    assert ld.run(K.SCHED_DFS, ch).actions[1] == K.ACT_IRQ_OWN + 0
    with pytest.raises(ValueError, match="no device transfer is in flight on its line"):
        explicit_choices(ld, [{"at": "start", "spurious_irq": "h"}])
    with pytest.raises(ValueError, match="'spurious_irq': HANDLER"):
        explicit_choices(ld, [{"after": "t", "step": 1, "irq": "h", "spurious_irq": "h"}])


def test_a_task_named_spurious_is_a_name_in_a_schedule_entry():
    """'spurious' makes a raise spurious only right before 'IRQ': a task of that name in
    'after step 1 of spurious raise IRQ h' read as a spurious raise."""
    sc = Scenario("names", {"last_pkmap": 8})
    sc.task("spurious", [{"op": "read", "va": 0xC0001000, "n": 4}] * 2)
    sc.irq("h", [{"op": "read", "va": 0xC0002000, "n": 4}], line=0)
    ld = sc.build()
    entry = ["after step 1 of spurious raise IRQ h"]
    ch = explicit_choices(ld, entry)
    assert describe_choices(ld, ch) == entry
    assert ld.run(K.SCHED_DFS, ch).actions[1] == IRQ0


def keyword_named(**machine):
    """Tasks and handlers named with the words of a schedule entry (and "direct", context
    0's name; "at start" has a space): "run" starts a transfer on the line of handler
    "IRQ", which has a raise of its own too, so a spurious raise of it is a choice."""
    sc = Scenario("keywords", {"last_pkmap": 8, **machine})
    rd = [{"op": "read", "va": 0xC0001000, "n": 4}] * 2
    sc.task("run", [{"op": "device_start", "dma_addr": 0xA000, "byte": 0xC3, "n": 64,
                     "line": 0},
                    {"op": "wait_irq", "line": 0, "count": 2}])
    for name in ("of", "step", "at start", "direct"):
        sc.task(name, rd)
    sc.irq("IRQ", rd[:1], line=0, count=1)
    sc.irq("raise", rd[:1], line=1)
    sc.irq("spurious", rd[:1], line=2)
    return sc


@pytest.mark.parametrize("entry, actions", [
    ("after step 1 of run raise spurious IRQ IRQ", ["run", K.ACT_IRQ_OWN + 0, "IRQ"]),
    ("after step 1 of run raise IRQ spurious", ["run", IRQ0 + 2, "spurious"]),
    ("after step 1 of run run of", ["run", "of", "of", "of", "run"]),
    ("at start run direct", ["direct", "direct", "direct", "run"]),
    ("at start run at start", ["at start", "at start", "at start", "run"]),
    ("at start raise IRQ raise", [IRQ0 + 1, "raise", "raise", "run"]),
])
def test_schedule_entries_read_any_name_by_the_grammar(entry, actions):
    """An entry is read by its grammar, not by finding its keywords anywhere: a task or
    handler may be named run, of, step, IRQ, raise, spurious, "at start" or direct (which
    was read as context 0, the direct-call task)."""
    ld = keyword_named().build()
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, [entry]))
    assert r.outcome == "done", r.message
    want = [a if isinstance(a, int) else ld.names.index(a, 1) for a in actions]
    assert r.actions[:len(want)] == want
    assert describe_choices(ld, r.choices) == [entry]


def test_every_free_choice_of_keyword_named_contexts_round_trips():
    """Every schedule without preemption (who starts, who runs next, which line is raised)
    of contexts named with the grammar's words prints entries that select it again."""
    ld = keyword_named().build()
    prefixes = _prefixes(ld, 0)
    assert len(prefixes) > 100
    assert sum(1 for _ in _round_trip(ld, prefixes[::7])) > 10


def test_a_string_entry_ambiguous_with_the_names_says_so():
    """Names with spaces can make an entry read two ways; the dict form says which."""
    sc = Scenario("ambiguous", {"last_pkmap": 8})
    for name in ("a", "a run b", "b run c", "c"):
        sc.task(name, [{"op": "read", "va": 0xC0001000, "n": 4}] * 2)
    ld = sc.build()
    with pytest.raises(ValueError, match="ambiguous with these names"):
        explicit_choices(ld, ["after step 1 of a run b run c"])
    ch = explicit_choices(ld, [{"after": "a", "step": 1, "run": "b run c"}])
    assert describe_choices(ld, ch) == ["after step 1 of a run b run c"]


def first_raise_bytes(ld, choices):
    """The device bytes of the first raise of line 0 on the schedule ``choices``."""
    r = ld.run(K.SCHED_DFS, choices, trace=True)
    return _raises(r.trace)[0][1]


def test_a_periodic_line_raised_while_pending_merges_into_one_interrupt():
    """A line firing every 100 cycles whose handler runs far longer (with IRQs masked, as
    every handler does): each raise during the handler finds the line pending (raised
    again in the handler) and merges, so the 20 firings make few deliveries, each counted
    raise or merge. They were queued instead: all 20 delivered back to back, late."""
    sc = Scenario("fast tick", {"last_pkmap": 8})
    sc.task("t", [{"op": "kmap", "pfn": 300}, {"op": "kunmap", "pfn": 300}])
    sc.irq("h", [{"op": "read", "va": 0xC0010000, "n": 4096}], line=0, count=20,
           period=100, first=100)
    ld = sc.build(trace_events=1 << 16)
    r = ld.run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done" and r.pending_irqs == []
    S = ld.machine._S
    done = int(S[int(S[K.H_R_IRQ]) + K.IRQ_DONE])
    assert 2 <= done <= 5
    merges = sum("raised again while pending: merged" in t for t in r.trace)
    assert r.merged_irqs == merges and done + r.merged_irqs == 20
    assert sum("enters IRQ handler (line 0)" in t for t in r.trace) == done
    again = ld.run(K.SCHED_TIMED, trace=True)
    assert again.trace == r.trace and again.merged_irqs == r.merged_irqs


def test_dfs_runs_report_no_pending_irqs():
    """In DFS and random runs the schedule chooses the raises: nothing is 'pending'."""
    ld = Scenario.from_dict(tomllib.loads(LATE_COMPLETION)).build()
    assert ld.run(K.SCHED_DFS).pending_irqs == []


@pytest.mark.parametrize("tail", ["AAAA", "QUJD", "eHl6eHl6"])
def test_a_token_with_bytes_appended_is_refused(good_token, tail):
    """zlib stops at the end of its stream and ignores what follows: a token with bytes
    appended used to replay as if it were the token emu printed."""
    with pytest.raises(ValueError, match=r"^token: corrupted \(\d+ bytes? after the end of "
                                         r"the replay token's data"):
        read_token(good_token + tail)


@pytest.mark.parametrize("tail", ["!", "!!!!", "A=B", " "])
def test_a_token_with_characters_outside_base64_is_refused(good_token, tail):
    """base64 decoding skips characters outside its alphabet unless told to validate."""
    with pytest.raises(ValueError, match=r"^token: corrupted"):
        read_token(good_token[:12] + tail + good_token[12:])


@pytest.mark.parametrize("period, count, merged", [(0, 1, 0), (5000, 5, 4)])
def test_a_timed_line_whose_cpu_keeps_irqs_masked_ends_the_run_reported(period, count, merged):
    """A due line whose CPU never unmasks IRQs cannot be delivered: the run still ends (its
    idle CPUs would wait for nothing) and reports the line raised and never delivered, with
    one firing left: a periodic line's later firings merge into the pending one (they were
    left as 'firings left', as if a line could hold more than one pending interrupt)."""
    left = 1
    sc = Scenario("masked", {"last_pkmap": 8, "ncpus": 2})
    sc.task("t", [{"op": "kmap", "pfn": 300}, {"op": "kunmap", "pfn": 300}], cpu=1)
    sc.irq("h", [{"op": "kmap_flush_unused"}], line=0, cpu=0, count=count, period=period,
           first=1000)
    ld = sc.build()
    S0 = ld.snapshot.S
    S0[int(S0[K.H_R_CPU]) + K.CPU_IRQOFF] = 1           # CPU0: IRQs masked for good
    r = ld.run(K.SCHED_TIMED)
    assert r.outcome == "done" and r.merged_irqs == merged
    assert r.pending_irqs == [{"line": 0, "handler": "h", "cpu": 0, "state": "raised",
                               "due": None, "firings_left": left}]
    from emu.exec.report import pending_irq_text
    assert pending_irq_text(r.pending_irqs[0]) == (
        "IRQ line 0 (h, cpu0) raised and never delivered: cpu0 kept IRQs masked to the end")


def _breakdown_cycles(bd):
    return sum(c for per in bd.values() for kinds in per.values() for _, c in kinds.values())


@pytest.mark.parametrize("case", ["wait_irq", "smp_wake"])
def test_idle_time_is_a_breakdown_row_so_the_breakdown_sums_to_the_clocks(case):
    """A CPU with nothing to run advances its clock without executing anything: until a timed
    IRQ (the driver waits for its device's completion, 20,000 cycles on) or until another
    CPU's wake-up (SLEEP_WAKE_SMP's a). breakdown() had no row for those cycles; its
    ``idle`` row has them, and the breakdown adds up to the CPUs' clocks together."""
    if case == "wait_irq":
        sc = dma_driver()
        sc.tasks[0].ops[1]["cycles"] = 20_000
    else:
        sc = Scenario.from_dict(tomllib.loads(SLEEP_WAKE_SMP))
    ld = sc.build()
    assert ld.run(K.SCHED_TIMED).outcome == "done"
    m = ld.machine
    bd = m.breakdown()
    periods, idle = bd["idle"]["task"]["idle"]
    assert set(bd["idle"]) == {"task"} and set(bd["idle"]["task"]) == {"idle"}
    assert periods >= 1 and idle > (15_000 if case == "wait_irq" else 1000)
    assert _breakdown_cycles(bd) == sum(m.cycles)
    assert ld.run(K.SCHED_DFS).outcome == "done"           # counted per run
    assert "idle" not in m.breakdown() or case == "smp_wake"
    assert _breakdown_cycles(m.breakdown()) == sum(m.cycles)


def test_a_task_going_on_after_another_cpus_irq_is_raised_round_trips(tmp_path):
    """On two CPUs, a line of CPU1 raised after a step of dma (CPU0), then dma going on
    instead of the handler just entered: describe_choices prints 'after step 1 of dma run
    dma' (the raise is no step), and explicit_choices refused it ('switches dma to itself')
    although dma is no default there; emu run --schedule could not take back the schedule
    emu explore printed."""
    p = tmp_path / "smp.toml"
    p.write_text(SMP_FREE_CHOICES % 1)
    ld = Scenario.from_toml(p).build()
    words = ["after step 1 of dma raise IRQ nic", "after step 1 of dma run dma"]
    choices = explicit_choices(ld, words)
    assert describe_choices(ld, choices) == words
    r = ld.run(K.SCHED_DFS, choices, trace=True)
    assert r.preemptions == 2
    with pytest.raises(ValueError, match="switches dma to itself"):
        explicit_choices(ld, ["after step 1 of dma run dma"])


@pytest.mark.parametrize("at", [1 << 40, K.MAX_TIMED_CLOCK])
def test_a_firing_at_the_last_valid_clock_merges_into_a_raise_pending_on_a_masked_cpu(at):
    """A line raised while its CPU has IRQs masked stays pending; a firing of it before the
    CPU unmasks merges into that interrupt. ``K.NEVER`` (the end of a section still open)
    was ``K.MAX_TIMED_CLOCK``, a clock a firing can have: one due at exactly that cycle
    waited for the pending raise's delivery instead of merging, unlike at any other clock."""
    from emu.exec.sched import _fire_line
    sc = Scenario("edge", {"last_pkmap": 8})
    sc.task("t", [{"op": "read", "va": 0xC0001000, "n": 4}])
    sc.irq("h", [{"op": "read", "va": 0xC0002000, "n": 4}], line=0, count=2, period=10,
           first=10)
    ld = sc.build()
    m = ld.machine
    S, B = m._S, m._B
    ir = int(S[K.H_R_IRQ])
    cr = int(S[K.H_R_CPU])
    S[cr + K.CPU_IRQOFF] = 1                        # masked since before the pending raise
    S[cr + K.CPU_IRQOFF_AT] = at - 20
    S[ir + K.IRQ_PENDING] = 1
    S[ir + K.IRQ_RAISED_AT] = at - 10
    S[ir + K.IRQ_DUE] = at                          # its last firing, due now
    S[ir + K.IRQ_BUDGET] = 1
    S[K.H_NOW] = at
    _fire_line(S, B, 0, at)
    assert S[ir + K.IRQ_MERGED] == 1 and S[ir + K.IRQ_DUE] == -1


def test_a_transfer_due_on_the_starting_cpus_clock_fires_when_that_clock_passes_it():
    """SMP, timed: drv on CPU 0 starts a transfer due 1,000 cycles on, whose line is bound
    to CPU 1, idle since cycle 0. The due clock is CPU 0's; it was compared with CPU 1's,
    which an idle CPU does not move: the device completed only once drv had read another
    16 KiB and slept in wait_irq (~20,000 cycles late), not while it ran. Now CPU 0's clock
    passing it raises the line, and CPU 1 catches up to the raise to take it."""
    sc = Scenario("smp device", {"last_pkmap": 8, "ncpus": 2})
    sc.task("drv", [{"op": "read", "va": 0xC0010000, "n": 16384},
                    {"op": "device_start", "dma_addr": 0xA000, "byte": 0xC3, "n": 64,
                     "line": 0, "cycles": 1000},
                    {"op": "read", "va": 0xC0020000, "n": 16384},
                    {"op": "wait_irq", "line": 0}], cpu=0)
    sc.irq("h", [{"op": "read", "va": 0xC000A000, "n": 4}], line=0, cpu=1)
    ld = sc.build(trace_events=1 << 16)
    r = ld.run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done" and r.pending_irqs == []
    start = next(int(re.search(r"\[cycle (\d+)\]", t).group(1)) for t in r.trace
                 if "device_start(" in t)
    wait = next(i for i, t in enumerate(r.trace) if "wait_irq(" in t)
    raised = next(i for i, t in enumerate(r.trace) if "IRQ line 0 raised" in t)
    assert start > 20000 and raised < wait
    (clock, n), = _raises(r.trace)
    assert n == 64 and start + 1000 <= clock < start + 1500
    assert ld.machine.cycles[0] > start + 20000
    assert ld.machine.phys_read(0xA000, 64) == b"\xc3" * 64


def async_completion():
    """A driver that maps a page for the device, starts a 64-byte transfer and goes on
    without waiting; its completion handler unmaps the page."""
    sc = Scenario("async completion", {"last_pkmap": 8})
    sc.task("t", [{"op": "dma_map_page", "pfn": 10, "size": 64, "direction": "FROM_DEVICE",
                   "as": "h"},
                  {"op": "device_start", "dma_addr": "h", "byte": 0xC3, "n": 64, "line": 0,
                   "cycles": 5000},
                  {"op": "read", "va": 0xC000B000, "n": 4}])
    sc.irq("done", [{"op": "dma_unmap_page", "dma_addr": 0xA000, "size": 64,
                     "direction": "FROM_DEVICE"}], line=0)
    return sc


@pytest.mark.parametrize("how", ["dfs", "random"])
def test_a_run_goes_on_until_the_device_completes(how):
    """DFS and random runs ended once every task had finished, with the device's transfer
    still in flight: the completion handler that unmaps the buffer never ran, nor did the
    device write. The run now goes on until the device completes."""
    ld = async_completion().build(trace_events=1 << 12)
    r = ld.run(K.SCHED_DFS, [], trace=True) if how == "dfs" else \
        ld.run(K.SCHED_RANDOM, (), K.P_SWITCH_SCALE // 2, 7, trace=True)
    assert r.outcome == "done" and not r.failed
    assert ld.machine.phys_read(0xA000, 64) == b"\xc3" * 64      # the device wrote
    assert any("dma_unmap_page" in t for t in r.trace)            # the handler ran


def test_explore_covers_the_completion_after_the_last_task():
    ex = explore(async_completion(), 2)
    assert ex.failures == 0 and ex.outcomes == {"done": ex.schedules} and ex.schedules > 1


def _step_clocks(trace):
    """(context, start cycle) of each step of a readable trace, in trace order."""
    return [(m[1], int(m[2])) for m in re.finditer(
        r"^step\s+\d+\s+cpu\d\s+(\S+)\s+#\d+ .*\[cycle (\d+)\]", "\n".join(trace), re.M)]


def test_a_timed_line_on_an_idle_cpu_fires_in_clock_order():
    """SMP: a tick on CPU 1, which runs nothing else, while a task keeps CPU 0 busy for
    ~20,000 cycles. The tick's firings (3,000, 7,000, 11,000) ran only once CPU 0 was done,
    since an idle CPU's clock moved only when every CPU was idle; they now run at their
    clocks, between CPU 0's steps, and every step starts no earlier than the one before."""
    from emu.exec.scenario import Scenario
    sc = Scenario("idle cpu tick", {"last_pkmap": 8, "ncpus": 2})
    sc.task("busy", [{"op": "fill", "va": 0xC000A000, "byte": 1, "n": 4096, "repeat": 8}],
            cpu=0)
    sc.irq("tick", [{"op": "read", "va": 0xC000B000, "n": 4}], line=0, cpu=1, first=3000,
           period=4000, count=3)
    r = sc.build(trace_events=1 << 16).run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done" and r.pending_irqs == []
    steps = _step_clocks(r.trace)
    clocks = [t for _, t in steps]
    assert clocks == sorted(clocks) and clocks[-1] > 20000
    ticks = [t for who, t in steps if who == "tick"]
    assert len(ticks) == 6 and [t // 1000 for t in ticks[::2]] == [3, 7, 11]
    assert steps.index(("tick", ticks[0])) < 100            # among busy's first steps


def test_a_device_completion_on_an_idle_cpu_comes_in_clock_order():
    """SMP: the driver on CPU 0 starts a 1,000-cycle transfer and waits for it, so CPU 0 is
    idle while CPU 1 stays busy. The device completed only once CPU 1 was done (CPU 0's
    clock, which the transfer was due by, did not move), and CPU 1's read of the buffer
    long after the completion clock was a read-during-dma finding; now the completion and
    its handler come at their clock, and every step starts no earlier than the one before."""
    from emu.exec.scenario import Scenario
    sc = Scenario("idle cpu device", {"last_pkmap": 8, "ncpus": 2})
    sc.task("drv", [
        {"op": "dma_map_page", "pfn": 10, "size": 64, "direction": "FROM_DEVICE", "as": "h"},
        {"op": "device_start", "dma_addr": "h", "byte": 0x77, "n": 64, "line": 0,
         "cycles": 1000},
        {"op": "wait_irq", "line": 0},
        {"op": "dma_unmap_page", "dma_addr": "h", "size": 64, "direction": "FROM_DEVICE"}],
        cpu=0)
    sc.task("busy", [{"op": "fill", "va": 0xC000C000, "byte": 1, "n": 4096, "repeat": 2},
                     {"op": "read", "va": 0xC000A000, "n": 4}], cpu=1)
    sc.irq("done", [], line=0, cpu=0)
    r = sc.build(trace_events=1 << 16).run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done" and r.findings == [] and not r.failed
    steps = _step_clocks(r.trace)
    clocks = [t for _, t in steps]
    assert clocks == sorted(clocks) and clocks[-1] > 5000
    done = [t for who, t in steps if who == "done"]
    assert len(done) == 1 and 1000 < done[0] < 1200
    assert steps.index(("done", done[0])) < 100


def test_waiting_for_a_completion_after_the_tasks_a_tick_on_its_line_fires_in_clock_order():
    """Every task has finished and the run waits for a device's completion 5,000 cycles on;
    a tick (more firings than the run waits for) shares the line. The CPU's clock jumped
    to the completion, and the ~16 tick firings it passed ran one after another behind the
    clock, the completion queued behind them: the handler's reads of the buffer after the
    completion's clock were read-during-dma findings. Now the ticks fire at their clocks on
    the way; only the reads before the completion are findings."""
    from emu.exec.scenario import Scenario
    sc = Scenario("drain tick", {"last_pkmap": 8})
    sc.task("drv", [
        {"op": "dma_map_page", "pfn": 10, "size": 64, "direction": "FROM_DEVICE", "as": "h"},
        {"op": "device_start", "dma_addr": "h", "byte": 0x77, "n": 64, "line": 0,
         "cycles": 5000}])
    sc.irq("h", [{"op": "read", "va": 0xC000A000, "n": 4}], line=0, first=100, period=300,
           count=100000)
    r = sc.build(trace_events=1 << 16).run(K.SCHED_TIMED, trace=True)
    assert r.outcome == "done"
    steps = _step_clocks(r.trace)
    clocks = [t for _, t in steps]
    assert clocks == sorted(clocks)
    start = int(re.search(r"device_start\(.*\[cycle (\d+)\]", "\n".join(r.trace))[1])
    bad = [f.step for f in r.findings if f.kind == "read-during-dma"]
    step_clock = {int(m[1]): int(m[2]) for m in re.finditer(
        r"^step\s+(\d+)\s.*\[cycle (\d+)\]", "\n".join(r.trace), re.M)}
    assert len(bad) == 17 and all(step_clock[s] < start + 5000 for s in bad)
