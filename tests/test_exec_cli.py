"""The ``emu`` command's executor subcommands: race, replay, explore, run, scenario.

``emu.cli.main(argv)`` returns the exit status (argparse usage errors raise SystemExit(2)).
Stable JSON fields: API.md "Stable outputs".
"""

import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest
import tomli_w

from emu.cli import main
from emu.exec import builtin
from emu.exec.scenario import Scenario

RACE_FIELDS = {"scenario", "dma_pinning", "kmap_high_get", "ncpus", "data_lost", "lost_bytes",
               "deadlock", "schedules_explored", "minimal_schedule", "replay"}
IRQ_DEADLOCK_TEXT = "CPU0: lock(kmap_lock); <Interrupt> lock(kmap_lock); *** DEADLOCK ***"
DMA_SWITCH = "after step 1 of dma run writer"
IRQ_SWITCH = "after step 1 of worker raise IRQ nic"


def call(*argv):
    """(exit status, stdout, stderr) of ``emu ARGV``."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def call_json(*argv):
    rc, out, err = call(*argv)
    assert rc == 0, err
    return json.loads(out)                  # exactly one JSON document, nothing else


@pytest.fixture(scope="module")
def race():
    return call_json("race", "--json", "--sizes", "8", "--smp-sizes", "8")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenarios")
    racy = d / "racy.toml"
    racy.write_text(tomli_w.dumps(builtin.race(8, 1, "page_address").to_dict()))
    calm = d / "calm.toml"
    calm.write_text('name = "calm"\n[machine]\nlast_pkmap = 8\n'
                    '[[task]]\nname = "t1"\nops = [ { op = "kmap_high", pfn = 300 }, '
                    '{ op = "kunmap_high", pfn = 300 } ]\n'
                    '[[task]]\nname = "t2"\nops = [ { op = "kmap_high", pfn = 301 } ]\n')
    bad_op = d / "bad_op.toml"
    bad_op.write_text('[[task]]\nname = "t"\nops = [ { op = "frob", pfn = 300 } ]\n')
    bad_syntax = d / "bad_syntax.toml"
    bad_syntax.write_text("[[task]\nname = 't'\n")
    setup_bug = d / "setup_bug.toml"
    setup_bug.write_text('[[setup]]\nop = "kunmap"\npfn = 300\n'
                         '[[task]]\nname = "t"\nops = [ { op = "kmap_flush_unused" } ]\n')
    task_int = d / "task_int.toml"
    task_int.write_text("task = 5\n")
    stuck = d / "stuck.toml"
    stuck.write_text('[machine]\nlast_pkmap = 4\n[[task]]\nname = "t"\n'
                     'ops = [ { op = "kmap", pfn = 300, repeat = 5 } ]\n')
    ncpus_str = d / "ncpus_str.toml"
    ncpus_str.write_text('[machine]\nncpus = "2"\n'
                         '[[task]]\nname = "t"\nops = [ { op = "kmap_flush_unused" } ]\n')
    return {"racy": racy, "calm": calm, "bad_op": bad_op, "bad_syntax": bad_syntax,
            "missing": d / "missing.toml", "setup_bug": setup_bug, "task_int": task_int,
            "ncpus_str": ncpus_str, "stuck": stuck}


# ---------------------------------------------------------------------------------------------
# emu race --json
# ---------------------------------------------------------------------------------------------

EXPECTED = [
    # scenario, pinning, kmap_high_get, ncpus, data_lost, lost, deadlock, minimal schedule
    ("i", "page_address", False, 1, True, 128, False, [DMA_SWITCH]),
    ("i", "kmap_high_get", True, 1, False, 0, False, []),
    ("ii", "page_address", False, 2, True, 128, False, [DMA_SWITCH]),
    ("ii", "kmap_high_get", True, 2, False, 0, False, []),
    ("iii", "kmap_high_get", False, 1, False, 0, True, [IRQ_SWITCH]),
    ("iii", "kmap_high_get", True, 1, False, 0, False, []),
]


def test_race_json_has_the_stable_fields(race):
    assert isinstance(race, dict) and isinstance(race["results"], list)
    assert len(race["results"]) == len(EXPECTED)
    for row in race["results"]:
        assert RACE_FIELDS <= set(row), RACE_FIELDS - set(row)
        assert isinstance(row["scenario"], str) and isinstance(row["dma_pinning"], str)
        for k in ("kmap_high_get", "data_lost", "deadlock"):
            assert isinstance(row[k], bool), k
        for k in ("ncpus", "lost_bytes", "schedules_explored"):
            assert isinstance(row[k], int) and not isinstance(row[k], bool), k
        assert isinstance(row["minimal_schedule"], list)
        assert all(isinstance(s, str) for s in row["minimal_schedule"])
        assert isinstance(row["replay"], str)


@pytest.mark.parametrize("i", range(len(EXPECTED)), ids=[f"{e[0]}-{e[1]}-{e[2]}"
                                                         for e in EXPECTED])
def test_race_json_values(race, i):
    sid, pin, khg, ncpus, lost, nbytes, dead, sched = EXPECTED[i]
    row = race["results"][i]
    got = tuple(row[k] for k in ("scenario", "dma_pinning", "kmap_high_get", "ncpus",
                                 "data_lost", "lost_bytes", "deadlock", "minimal_schedule"))
    assert got == (sid, pin, khg, ncpus, lost, nbytes, dead, sched)
    assert row["schedules_explored"] > 1
    if lost or dead:
        assert row["replay"].startswith("emu1:")
    else:
        assert row["replay"] == ""


def test_race_text_table(capsys):
    rc, out, err = call("race", "--sizes", "8", "--smp-sizes", "8", "--only", "iii")
    assert rc == 0
    assert "iii" in out and IRQ_SWITCH in out and "(1 preemption)" in out
    assert "emu replay emu1:" in out
    assert "inconsistent lock state" in out
    # (iii) pins with kmap_high_get in both rows; what differs is how kmap_lock is taken
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("iii ")]
    assert [r[1:3] for r in rows] == [["kmap_high_get", "spin_lock"],
                                      ["kmap_high_get", "spin_lock_irq"]]
    assert "lockdep: iii with a spin_lock kmap_lock takes it in hardirq context" in out


def test_race_text_table_marks_capped_rows():
    """A row --max-schedules stopped is marked, and a line says what the cap covered; the
    schedules with the fewest preemptions come first, so (iii)'s deadlock is still found."""
    rc, out, err = call("race", "--only", "iii", "--bound", "4", "--max-schedules", "7")
    assert rc == 0
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("iii ")]
    assert [r[5] for r in rows] == ["7*", "6"]          # irq locks: 6 schedules in all
    assert rows[0][7] == "yes" and "(1 preemption)" in out
    assert "* stopped at --max-schedules 7 before covering every schedule" in out
    rc, out, err = call("race", "--only", "iii", "--bound", "1")
    assert "*" not in out and "stopped at" not in out


def test_race_says_what_each_capped_row_covered():
    """emu race, as emu explore, says up to which preemption count a capped row covered
    every schedule; with --json every row says it in covered_bound (API.md's fields stay)."""
    rc, out, err = call("race", "--only", "iii", "--bound", "4", "--max-schedules", "7")
    assert rc == 0
    foot = out[out.index("* stopped at"):].splitlines()
    assert foot[1] == ("  iii (kmap_high_get pinning, spin_lock kmap_lock, 1 cpu, L=8): every "
                       "schedule with at most 0 preemptions covered")
    assert not foot[2].startswith("  iii")                 # the complete row is not listed
    doc = call_json("race", "--only", "iii", "--bound", "4", "--max-schedules", "7", "--json")
    assert [r["covered_bound"] for r in doc["results"]] == [0, 4]
    assert all(RACE_FIELDS <= set(r) for r in doc["results"])
    doc = call_json("race", "--only", "iii", "--bound", "1", "--json")
    assert all("covered_bound" not in r for r in doc["results"])   # no cap: as before


# ---------------------------------------------------------------------------------------------
# emu replay
# ---------------------------------------------------------------------------------------------


def test_replay_text(race):
    rc, out, err = call("replay", race["results"][0]["replay"])
    assert rc == 0, err
    assert out.startswith("replaying: i: dma_map_page vs kmap_high")
    for s in ("<-- switch", "writer: pte_clear slot 1 (was page 300)",
              "writer: set_pte slot 1 -> page 1200", "!! dirty line 0xbfe01800 (page 1200",
              "lost-write: 32 bytes", "expected " + "ab" * 32,
              "outcome: done", "1 preemption", "data lost: 128 bytes"):
        assert s in out, s
    assert out.index("<-- switch") < out.index("pte_clear slot 1") \
        < out.index("set_pte slot 1 -> page 1200") < out.index("!! dirty line")


def test_replay_json(race):
    doc = call_json("replay", race["results"][2]["replay"], "--json")
    assert doc["scenario"].startswith("ii: dma_map_page vs kmap_high (2 CPUs")
    assert doc["outcome"] == "done"
    assert doc["data_lost"] is True and doc["lost_bytes"] == 128
    assert doc["deadlock"] is False and doc["preemptions"] == 1
    lost = [f for f in doc["findings"] if f["kind"] == "lost-write"]
    assert sum(f["bad_bytes"] for f in lost) == 128
    assert all(f["pfn"] == 1200 and f["expected"] == "ab" * 32 and f["found"] != f["expected"]
               for f in lost)
    assert doc["trace"] and any("<-- switch" in s for s in doc["trace"])


def test_replay_irq_deadlock(race):
    rc, out, err = call("replay", race["results"][4]["replay"])
    assert rc == 0, err
    assert "outcome: irq-deadlock" in out
    assert IRQ_DEADLOCK_TEXT in out
    assert "WARNING: inconsistent lock state" in out


def test_replay_is_deterministic(race):
    tok = race["results"][0]["replay"]
    assert call("replay", tok, "--json") == call("replay", tok, "--json")


# ---------------------------------------------------------------------------------------------
# emu explore / emu run
# ---------------------------------------------------------------------------------------------


def test_explore_json_racy_file(files):
    doc = call_json("explore", files["racy"], "--bound", "1", "--json")
    assert doc["bound"] == 1 and doc["complete"] is True and doc["covered_bound"] == 1
    assert doc["schedules_explored"] > 1
    assert doc["data_lost"] is True and doc["lost_bytes"] == 128
    assert doc["deadlock"] is False
    assert doc["minimal_schedule"] == [DMA_SWITCH] and doc["preemptions"] == 1
    assert doc["failures"] >= 1 and sum(doc["outcomes"].values()) == doc["schedules_explored"]
    assert doc["lockdep"] == ""
    # a user scenario's token carries the scenario itself, and replays the loss
    rep = call_json("replay", doc["replay"], "--json")
    assert rep["lost_bytes"] == 128 and rep["preemptions"] == 1


def test_explore_capped_says_what_it_covered(files):
    """A cap stops the search by preemption count: the text and the JSON say up to which
    count every schedule ran."""
    full = call_json("explore", files["racy"], "--bound", "1", "--json")
    doc = call_json("explore", files["racy"], "--bound", "3", "--json", "--max-schedules",
                    str(full["schedules_explored"]))
    assert doc["complete"] is False and doc["covered_bound"] == 1
    assert doc["minimal_schedule"] == [DMA_SWITCH]
    rc, out, err = call("explore", files["racy"], "--bound", "3", "--max-schedules",
                        str(full["schedules_explored"]))
    assert "stopped early; every schedule with at most 1 preemption covered" in out


def test_explore_json_calm_file(files):
    doc = call_json("explore", files["calm"], "--bound", "1", "--json")
    assert doc["scenario"] == "calm"
    assert doc["failures"] == 0 and doc["outcomes"] == {"done": doc["schedules_explored"]}
    assert doc["data_lost"] is False and doc["minimal_schedule"] == [] and doc["replay"] == ""


def test_explore_with_two_jobs_prints_the_same_document(files):
    one = call_json("explore", files["racy"], "--bound", "2", "--json")
    assert call_json("explore", files["racy"], "--bound", "2", "--json", "--jobs", "2") == one
    assert call("explore", files["racy"], "--jobs", "-1")[0] == 2


def test_python_dash_m_emu_runs_the_command_with_workers(files):
    """``python -m emu`` is the command, explore's spawned workers included (multiprocessing
    does not re-run a ``__main__`` module of a package in them)."""
    cmd = [sys.executable, "-m", "emu", "explore", str(files["racy"]), "--bound", "1",
           "--json", "--jobs", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == call_json("explore", files["racy"], "--bound", "1",
                                                "--json")
    bad = subprocess.run([sys.executable, "-m", "emu", "explore", str(files["missing"])],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "missing.toml" in bad.stderr


def test_explore_fail_flag(files):
    assert call("explore", files["racy"], "--bound", "1", "--fail")[0] == 1
    assert call("explore", files["calm"], "--bound", "1", "--fail")[0] == 0
    rc, out, err = call("explore", files["racy"], "--bound", "1")
    assert rc == 0
    assert "minimal failing schedule (1 preemption," in out and DMA_SWITCH in out


def test_explore_text_says_which_lost_bytes_are_which(files):
    rc, out, err = call("explore", files["racy"], "--bound", "2")
    assert rc == 0, err
    assert "; at most 128 bytes lost in one schedule" in out
    assert "(1 preemption, outcome done, this schedule loses 128 bytes):" in out


def test_explore_text_prints_why_the_minimal_schedule_failed(tmp_path):
    """A deadlock, BUG or error used to show only with run / replay."""
    p = tmp_path / "iii.toml"
    p.write_text(tomli_w.dumps(builtin.irq_getter(False, 8).to_dict()))
    rc, out, err = call("explore", p, "--bound", "1")
    assert rc == 0, err
    assert "outcome irq-deadlock" in out and IRQ_DEADLOCK_TEXT in out
    assert out.index(IRQ_SWITCH) < out.index(IRQ_DEADLOCK_TEXT) < out.index("replay: ")
    assert "\n  CPU0: lock(kmap_lock);" in out and not any(
        ln.isspace() for ln in out.splitlines())                # indented, no blank padding
    doc = call_json("explore", p, "--bound", "1", "--json")
    assert IRQ_DEADLOCK_TEXT in doc["minimal_message"]
    assert call_json("explore", files_racy(tmp_path), "--bound", "1",
                     "--json")["minimal_message"] == ""         # lost data: no message


def files_racy(tmp_path):
    p = tmp_path / "racy.toml"
    p.write_text(tomli_w.dumps(builtin.race(8, 1, "page_address").to_dict()))
    return p


def test_a_reader_that_stops_early_gets_no_broken_pipe_error(race):
    """``emu replay TOKEN | head``: the pipe closes under the printing; emu exits quietly."""
    tok = race["results"][0]["replay"]
    p = subprocess.Popen([sys.executable, "-m", "emu", "replay", tok], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()                            # as head does after its lines
    err = p.stderr.read().decode()
    p.wait(timeout=600)
    assert first.startswith(b"replaying: ")
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception" not in err, err


@pytest.mark.parametrize("sid, has, hasnt", [
    ("i", ["(i)   UP:"], ["(ii)", "(iii)"]),
    ("ii", ["(ii)  SMP:", "two CPUs"], ["(i)   UP", "(iii)"]),
    ("iii", ["(iii) ``kmap_high_get`` from an IRQ handler"], ["(i)   UP", "(ii)"]),
])
def test_each_builtin_scenario_has_its_own_description(sid, has, hasnt):
    d = json.loads(call("scenario", sid)[1])["description"]
    assert d.startswith("The built-in scenarios of ``emu race``")
    for x in has:
        assert x in d
    for x in hasnt:
        assert x not in d


def test_ctrl_c_during_an_exploration_exits_130_without_a_traceback(files, monkeypatch):
    """The jitted loop hands back to Python every CHUNK schedules, where Ctrl-C lands."""
    from emu.exec import explore as explore_mod
    from emu.exec.loaded import Loaded
    from emu.warmup import warmup
    warmup()            # the CLI's warm-up explores too: first, so that only emu explore counts
    calls = []
    real = Loaded.search

    def search(self, bound, max_steps, limit, ask, x):
        assert limit <= explore_mod.CHUNK
        calls.append(limit)
        if len(calls) == 3:
            raise KeyboardInterrupt                 # what Python raises at SIGINT
        return real(self, bound, max_steps, limit, ask, x)

    monkeypatch.setattr(explore_mod, "CHUNK", 2)
    monkeypatch.setattr(Loaded, "search", search)
    rc, out, err = call("explore", files["racy"], "--bound", "2", "--json")
    assert (rc, out, err) == (130, "", "emu explore: interrupted\n")
    assert calls == [2, 2, 2]


def test_run_explicit_schedule(files):
    doc = call_json("run", files["racy"], "--schedule", DMA_SWITCH, "--json")
    assert doc["outcome"] == "done" and doc["preemptions"] == 1 and doc["lost_bytes"] == 128
    rc, out, err = call("run", files["racy"], "--schedule", DMA_SWITCH)
    assert rc == 0, err
    assert "1 preemption\n" in out and "data lost: 128 bytes" in out
    assert "writer: set_pte slot 1 -> page 1200" in out


def test_run_default_schedule(files):
    doc = call_json("run", files["racy"], "--json")
    assert doc["preemptions"] == 0 and doc["lost_bytes"] == 0 and doc["outcome"] == "done"
    assert not any("<-- switch" in s for s in doc["trace"][:10])


def test_run_several_directives(files):
    doc = call_json("run", files["calm"], "--schedule", "after step 2 of t1 run t2",
                    "--schedule", "after step 2 of t2 run t1", "--json")
    assert doc["outcome"] == "done" and doc["preemptions"] == 2


def test_run_random_is_reproducible(files):
    a = call("run", files["racy"], "--random", "7", "--p-switch", "0.3", "--json")
    b = call("run", files["racy"], "--random", "7", "--p-switch", "0.3", "--json")
    assert a[0] == 0 and a == b
    assert json.loads(a[1])["trace"]


# ---------------------------------------------------------------------------------------------
# emu scenario
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, want", [
    (["i"], builtin.race(8, 1, "page_address")),
    (["ii", "--pinning", "kmap_high_get", "--last-pkmap", "16"],
     builtin.race(16, 2, "kmap_high_get")),
    (["iii"], builtin.irq_getter(False, 8)),
    (["iii", "--pinning", "kmap_high_get"], builtin.irq_getter(True, 8)),
], ids=["i", "ii-khg-16", "iii-plain", "iii-irq"])
def test_scenario_toml_loads_back(tmp_path, argv, want):
    rc, out, err = call("scenario", *argv, "--toml")
    assert rc == 0, err
    p = tmp_path / "s.toml"
    p.write_text(out)
    sc = Scenario.from_toml(p)
    assert sc.to_dict() == want.to_dict()
    # and it behaves as the built-in: same default run
    assert sc.build().run() == want.build().run()


def test_scenario_json_loads_back():
    rc, out, err = call("scenario", "i")
    assert rc == 0
    assert Scenario.from_dict(json.loads(out)).to_dict() == \
        builtin.race(8, 1, "page_address").to_dict()
    assert call("scenario", "i", "--json") == (rc, out, err)      # --json: the same document


def test_scenario_json_and_toml_exclude_each_other():
    rc, out, err = call("scenario", "i", "--json", "--toml")
    assert rc == 2 and "not allowed with" in err


def test_presets_cpu_shows_that_core_only():
    rc, out, err = call("presets", "--cpu", "xscale")
    assert rc == 0 and out.startswith("xscale ") and "arm926" not in out
    assert list(call_json("presets", "--cpu", "sa110", "--json")["presets"]) == ["sa110"]


def test_presets_json():
    from emu.cache.config import PRESETS
    doc = call_json("presets", "--json")
    assert set(doc["presets"]) == set(PRESETS)
    for name, c in PRESETS.items():
        row = doc["presets"][name]
        assert (row["size"], row["ways"], row["line"], row["write_back"]) == \
            (c.size, c.ways, c.line, c.write_back)
        assert row["assumed"] and all(isinstance(x, str) for x in row["assumed"])


def test_presets_costs_json_is_the_cycle_table(tmp_path):
    from emu import consts as K
    from emu.cost.tables import cost_vector
    doc = call_json("presets", "--costs", "--json")
    assert set(doc["costs"]) == {"arm926", "feroceon", "xscale", "sa110"}
    for cpu, t in doc["costs"].items():
        v = cost_vector(cpu)
        assert [t["micro_ops"][n]["cycles"] for n in K.UOP_NAMES] == [int(x) for x in v]
        assert t["core_mhz"] > 0 and t["micro_ops"]["alu"]["mark"]
    p = tmp_path / "c.toml"
    p.write_text("[arm926]\nmrs = 7\ncore_mhz = 400\n")
    t = call_json("presets", "--costs", "--json", "--cpu", "arm926", "--costs-file", p)["costs"]
    assert list(t) == ["arm926"]
    assert t["arm926"]["micro_ops"]["mrs"] == {"cycles": 7, "ns": 17.5, "mark": "user",
                                                "source": t["arm926"]["micro_ops"]["mrs"]["source"]}
    assert t["arm926"]["core_mhz"] == 400 and t["arm926"]["core_mark"] == "user"


# ---------------------------------------------------------------------------------------------
# Bad input: exit status 2 and a message, not a traceback
# ---------------------------------------------------------------------------------------------

BAD = [
    ("missing file", lambda f: ["explore", f["missing"]], ["emu explore: error", "missing.toml"]),
    ("unknown op", lambda f: ["explore", f["bad_op"], "--json"], ["op='frob'", "task 't' op 0"]),
    ("bad TOML", lambda f: ["run", f["bad_syntax"]], ["emu run: error", "not valid TOML"]),
    ("negative bound", lambda f: ["explore", f["calm"], "--bound", "-1"],
     ["argument --bound: -1: must be an int in [0, 65536]"]),
    ("race bound", lambda f: ["race", "--bound", "two"], ["argument --bound: two: must be"]),
    ("profile seed", lambda f: ["profile", "--seed", "x"],
     ["argument --seed: x: must be a non-negative int"]),
    ("jobs not an int", lambda f: ["explore", f["calm"], "--jobs", "x"],
     ["argument --jobs: x: must be 0 (one per CPU)"]),
    ("schedule too far", lambda f: ["run", f["racy"], "--schedule",
                                    "after step 9999 of dma run writer"],
     ["does not reach step 9999"]),
    ("schedule syntax", lambda f: ["run", f["racy"], "--schedule", "when dma feels like it"],
     ["after step N of TASK run OTHER"]),
    ("schedule unknown task", lambda f: ["run", f["racy"], "--schedule",
                                         "after step 1 of dma run nobody"],
     ["unknown task or handler 'nobody'"]),
    ("p_switch", lambda f: ["run", f["racy"], "--random", "1", "--p-switch", "2"],
     ["p_switch=2"]),
    ("random and schedule", lambda f: ["run", f["racy"], "--random", "1", "--schedule", "x"],
     ["argument --schedule: not allowed with argument --random"]),
    ("p_switch without random", lambda f: ["run", f["racy"], "--p-switch", "0.5"],
     ["emu run: error", "--p-switch: only with --random SEED"]),
    ("token prefix", lambda f: ["replay", "garbage"], ["emu replay: error", "token"]),
    ("token corrupted", lambda f: ["replay", "emu1:AAAAAAAAAA"], ["token: corrupted"]),
    ("race sizes", lambda f: ["race", "--sizes", "7"], ["LAST_PKMAP must be a power of two"]),
    ("race sizes empty", lambda f: ["race", "--sizes", ""],
     ["argument --sizes", "give at least one LAST_PKMAP"]),
    ("presets costs file without costs", lambda f: ["presets", "--costs-file", "c.toml"],
     ["emu presets: error", "--costs-file: only with --costs"]),
    ("scenario name", lambda f: ["scenario", "iv"], ["invalid choice: 'iv'"]),
    ("scenario last_pkmap", lambda f: ["scenario", "i", "--last-pkmap", "6"],
     ["emu scenario: error", "last_pkmap=6", "power of two"]),
    ("race only", lambda f: ["race", "--only", "i,iv"], ["'i,iv'", "i, ii, iii"]),
    ("profile workload", lambda f: ["profile", "--workload", "nope"],
     ["emu profile: error", "workload_name='nope' (emu profile --workload)", "fastpath, churn, dma-irq"]),
    ("max schedules", lambda f: ["explore", f["calm"], "--max-schedules", "0"],
     ["must be a positive int"]),
    ("setup op BUG", lambda f: ["explore", f["setup_bug"]],
     ["emu explore: error", "setup op 0: kunmap_high: page 300 has no virtual address"]),
    ("setup op BUG in run", lambda f: ["run", f["setup_bug"]], ["emu run: error", "setup op 0"]),
    ("task not a list", lambda f: ["explore", f["task_int"]], ["task=5", "must be a list"]),
    ("ncpus a string", lambda f: ["explore", f["ncpus_str"]], ["ncpus='2'"]),
    ("profile of a workload that cannot finish", lambda f: ["profile", "--workload", f["stuck"]],
     ["emu profile: error", "did not finish with either kmap_lock: deadlock",
      "with spin_lock_irq; deadlock"]),
]


@pytest.mark.parametrize("argv, parts", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2_with_a_message(files, argv, parts):
    rc, out, err = call(*argv(files))
    assert rc == 2
    assert "Traceback" not in err
    for p in parts:
        assert p in err, f"{p!r} not in {err!r}"
    assert out == ""


def test_a_bad_bound_is_refused_before_the_warm_up(monkeypatch):
    """The warm-up takes a minute on a first run: --bound -1 was refused after it."""
    import emu.cli
    monkeypatch.setattr(emu.cli, "_warm", lambda: pytest.fail("warmed up first"))
    assert call("race", "--bound", "-1")[0] == 2


def test_replay_of_a_token_with_a_valid_envelope_but_no_body_exits_2():
    import base64
    import zlib
    tok = "emu1:" + base64.urlsafe_b64encode(zlib.compress(b'{"n": 1}')).decode()
    rc, out, err = call("replay", tok)
    assert rc == 2 and "token" in err


def test_negative_seeds_are_rejected_by_name(files):
    rc, out, err = call("run", files["racy"], "--random", "-1")
    assert rc == 2 and "argument --random: -1: must be a non-negative int" in err
    assert out == ""
    rc, out, err = call("profile", "--workload", "fastpath", "--seed", "-3")
    assert rc == 2 and "argument --seed: -3: must be a non-negative int" in err and out == ""
    rc, out, err = call("explore", files["racy"], "--jobs", "65")
    assert rc == 2 and "65: must be 0 (one per CPU) or a positive int up to 64" in err


def test_replay_text_counts_decisions_and_says_who_found_a_loss(race):
    """IRQ raises are scheduling decisions without a step line of their own: the summary
    counts decisions. A loss the final check finds has no virtual address or culprit."""
    rc, out, err = call("replay", race["results"][4]["replay"])      # (iii), plain locks
    assert rc == 0 and "scheduling decisions" in out and " steps, " not in out
    from dataclasses import replace
    from emu.exec.explore import replay
    from emu.cli import _print_result
    from emu.machine import Finding
    ld, r = replay(race["results"][0]["replay"], trace=False)
    end = Finding("lost-at-end", 0x12c000, -1, 300, b"\xab", b"\x00", 1, 1, "program", 9, None)
    buf = io.StringIO()
    with redirect_stdout(buf):
        _print_result(replace(r, findings=[end]), ld)
    assert "(page 300, no va) found by the final check" in buf.getvalue()


SMALL_MACHINE = """
[machine]
last_pkmap = 4
lowmem_mb = 1
highmem_mb = 4
"""

STALE_READER = 'name = "stale reader"' + SMALL_MACHINE + """
[[task]]
name = "drv"
ops = [{ op = "dma_map_page", pfn = 10, size = 256, direction = "FROM_DEVICE", as = "h" },
       { op = "device_write", dma_addr = "h", byte = 0x77, n = 256 },
       { op = "dma_unmap_page", dma_addr = "h", size = 256, direction = "FROM_DEVICE" }]
[[task]]
name = "peek"
ops = [{ op = "read", va = 0xc000a000, n = 64 }, { op = "read", va = 0xc000a000, n = 64 }]
"""


def test_stale_reads_fail_a_schedule_and_are_reported(tmp_path):
    """The second read of peek hits the line its first read cached before the device wrote
    RAM (2.6.30: no invalidate on unmap): a stale read, which makes the schedule fail."""
    p = tmp_path / "stale.toml"
    p.write_text(STALE_READER)
    d = call_json("explore", p, "--bound", "2", "--json")
    assert d["failures"] == d["stale_reads"] == 23 and not d["data_lost"]
    rc, out, err = call("explore", p, "--bound", "2")
    assert rc == 0 and "23 failing (23 with stale reads)" in out
    assert "outcome done, a CPU or device read got stale data" in out
    rc, out, err = call("run", p, "--schedule", d["minimal_schedule"][0],
                        "--schedule", d["minimal_schedule"][1])
    assert rc == 0, err
    assert "stale-read: 32 bytes at pa 0xa000" in out and "read by peek in cpu_access" in out
    assert "stale reads: 32 bytes read wrong" in out


def test_a_missing_file_names_its_argument(tmp_path):
    nope = tmp_path / "nope.toml"
    rc, out, err = call("profile", "--costs", nope)
    assert rc == 2 and out == "" and err == f"emu profile: error: --costs {nope}: No such " \
        "file or directory\n"
    rc, _, err = call("explore", nope)
    assert rc == 2 and err == f"emu explore: error: FILE.toml {nope}: No such file or directory\n"


def test_profile_plot_without_matplotlib_fails_before_writing_anything(tmp_path):
    try:
        import matplotlib  # noqa: F401
        pytest.skip("matplotlib is installed")
    except ImportError:
        pass
    trace = tmp_path / "t.json"
    rc, _, err = call("profile", "--workload", "fastpath", "--plot", tmp_path / "p.png",
                      "--trace", trace)
    assert rc == 2 and "--plot needs matplotlib" in err and not trace.exists()


EARLY_READER = 'name = "early reader"' + SMALL_MACHINE + """
[[task]]
name = "drv"
ops = [{ op = "dma_map_page", pfn = 10, size = 64, direction = "FROM_DEVICE", as = "h" },
       { op = "device_start", dma_addr = "h", byte = 0x77, n = 64, line = 0 },
       { op = "read", va = 0xc000a010, n = 8 },
       { op = "wait_irq", line = 0 },
       { op = "dma_unmap_page", dma_addr = "h", size = 64, direction = "FROM_DEVICE" }]
[[irq]]
name = "done"
line = 0
ops = []
"""


def test_a_read_during_dma_is_reported_as_such(tmp_path):
    """A driver reading its buffer before the device's completion: explore says what went
    wrong, and the run names the read and the transfer's range."""
    p = tmp_path / "early.toml"
    p.write_text(EARLY_READER)
    d = call_json("explore", p, "--bound", "1", "--json")
    assert d["failures"] == d["stale_reads"] > 0 and d["minimal_schedule"] == []
    rc, out, err = call("explore", p, "--bound", "1")
    assert rc == 0, err
    assert "a CPU read bytes a device transfer in flight was still to write" in out
    rc, out, err = call("run", p)
    assert rc == 0, err
    assert ("read-during-dma: 8 bytes at pa 0xa010 (page 10, va 0xc000a010) read by drv in "
            "cpu_access while the device's transfer to [0xa000, 0xa040) was in flight") in out
    assert "expected 7777777777777777\n    found    5a5a5a5a5a5a5a5a" in out
    assert "stale reads: 8 bytes read wrong" in out


TIMED_DRIVER = 'name = "timed driver"' + SMALL_MACHINE + """
[[task]]
name = "drv"
ops = [{ op = "dma_map_page", pfn = 10, size = 64, direction = "FROM_DEVICE", as = "h" },
       { op = "device_start", dma_addr = "h", byte = 0x77, n = 64, line = 0, cycles = 5000 },
       { op = "wait_irq", line = 0 },
       { op = "dma_unmap_page", dma_addr = "h", size = 64, direction = "FROM_DEVICE" },
       { op = "read", va = 0xc000a000, n = 8 }]
[[irq]]
name = "done"
line = 0
ops = []
"""


def test_run_timed_follows_the_clocks_and_lists_lines_left_pending(tmp_path):
    """emu run --timed: the device completes 5,000 cycles after device_start, and the
    driver reads the device's bytes; a run that stops with the transfer in flight lists its
    line as armed, with when it was due (text and JSON)."""
    p = tmp_path / "timed.toml"
    p.write_text(TIMED_DRIVER)
    rc, out, err = call("run", p, "--timed")
    assert rc == 0, err
    assert "IRQ line 0 raised (device wrote 64 bytes), for cpu0" in out
    assert re.search(r"done: wakes drv\n.*\[cycle 50\d\d\]", out)
    assert "outcome: done" in out and "no data lost" in out and "left when" not in out
    p.write_text(TIMED_DRIVER.replace('{ op = "wait_irq", line = 0 }',
                                      '{ op = "kunmap_high", pfn = 1000 }'))
    rc, out, err = call("run", p, "--timed")
    assert rc == 0, err
    assert "outcome: error" in out
    line = re.search(r"IRQ line 0 \(done, cpu 0\) armed, due at cycle (\d+): 1 firing left "
                     r"when the run ended", out)
    assert line and int(line[1]) >= 5000
    d = call_json("run", p, "--timed", "--json")
    assert d["outcome"] == "error" and d["pending_irqs"] == [
        {"line": 0, "handler": "done", "cpu": 0, "state": "armed", "due": int(line[1]),
         "firings_left": 1}]
    assert call_json("run", p, "--json")["pending_irqs"] == []     # a DFS run: none
    rc, out, err = call("run", p, "--timed", "--random", "1")
    assert rc == 2 and "not allowed with argument" in err
