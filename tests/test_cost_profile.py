"""The kmap_lock profiler (emu/cost/profile.py, chrome.py, plot.py) and ``emu profile``.

The profile runs each workload twice: ``irq`` (ARCH_NEEDS_KMAP_HIGH_GET: lock_kmap =
spin_lock_irq, lock_kmap_any = spin_lock_irqsave, DMA pins with kmap_high_get) and ``plain``.
Stable fields: API.md "Stable outputs" (``emu profile --cpu CORE --json``); report shapes:
spec arm-cycle-costs §4 (/proc/lock_stat columns, irqsoff tracer, IRQ latency).

Scales are small (fastpath 200 pairs; churn and dma-irq 1000 kmaps, enough for at least one
wrap of the 512-slot window); ``emu profile`` itself runs the full workload (well under 2 s).
"""

import functools
import io
import json
import os
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest

from emu import consts as K
from emu.cli import main
from emu.cost.profile import WORKLOADS, format_report, profile
from emu.cost.tables import CLOCKS, cost_vector

CORES = ("arm926", "feroceon", "xscale", "sa110")
SCALE = {"fastpath": 0.1, "churn": 0.5, "dma-irq": 0.5}
LOCK_STAT_COLUMNS = ("con-bounces", "contentions", "waittime-min", "waittime-max",
                     "waittime-total", "waittime-avg", "acq-bounces", "acquisitions",
                     "holdtime-min", "holdtime-max", "holdtime-total", "holdtime-avg")
ROUTINE_FIELDS = {"calls", "cycles_avg", "cycles_min", "cycles_max", "us_avg"}


def cost(cpu, overrides=None):
    v = cost_vector(cpu, overrides)
    return {n: int(v[i]) for i, n in enumerate(K.UOP_NAMES)}


def masking(cpu, overrides=None):
    c = cost(cpu, overrides)
    return c["irq_disable"] + c["irq_enable"] + c["irq_save"] + c["irq_restore"]


@functools.lru_cache(maxsize=None)
def _prof(cpu, workload, seed, scale, costs):
    doc, _ = profile(cpu, workload, seed, costs=dict(costs) if costs else None, scale=scale)
    return json.dumps(doc)                      # key order kept (histograms: bucket order)


def prof(cpu="arm926", workload="dma-irq", seed=0, scale=None, costs=None):
    """The profile document (a fresh copy: runs are cached per argument tuple)."""
    scale = SCALE.get(workload, 1.0) if scale is None else scale
    return json.loads(_prof(cpu, workload, seed, scale,
                            tuple(sorted(costs.items())) if costs else None))


def call(*argv):
    """(exit status, stdout, stderr) of ``emu ARGV``."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def close_us(us, cycles, mhz):
    """``us`` is ``cycles`` at ``mhz`` MHz, rounded to 3 decimals (cycles may itself be a
    2-decimal average)."""
    return abs(us - cycles / mhz) <= 0.0005 + 0.005 / mhz + 1e-9


def hist_total(h):
    return sum(h.values())


def check_hist(h):
    """log2 buckets: "0" or "lo-hi" with hi = 2*lo - 1, in increasing order, counts positive
    ints."""
    lows = [0 if k == "0" else int(k.split("-")[0]) for k in h]
    assert lows == sorted(lows), list(h)
    for k, n in h.items():
        assert isinstance(n, int) and n > 0, (k, n)
        if k != "0":
            lo, hi = (int(x) for x in k.split("-"))
            assert hi == 2 * lo - 1 and lo & (lo - 1) == 0, k


# ---------------------------------------------------------------------------------------------
# The document's shape (API.md)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("workload", WORKLOADS)
def test_profile_document_shape(workload):
    doc = prof("arm926", workload)
    assert json.loads(json.dumps(doc)) == doc               # plain JSON types only
    for key in ("cpu", "workload", "irq_overhead_cycles_per_pair", "irqs_off_max_cycles",
                "variants"):
        assert key in doc, key
    assert doc["cpu"] == "arm926" and doc["workload"] == workload
    assert set(doc["variants"]) == {"irq", "plain"}
    assert doc["work_differs"] == {}                # the same work, only the locks differ
    assert {v["outcome"] for v in doc["variants"].values()} == {"done"}
    assert doc["irqs_off_max_cycles"] == doc["variants"]["irq"]["irqsoff"]["max_cycles"]
    assert doc["irq_overhead_cycles_per_pair"] == pytest.approx(
        doc["variants"]["irq"]["pair_cycles"] - doc["variants"]["plain"]["pair_cycles"],
        abs=0.011)
    for key, v in doc["variants"].items():
        rout = v["routines"]
        assert {"kmap_high", "kunmap_high"} <= set(rout), key
        assert ("kmap_high_get" in rout) == (key == "irq" and workload == "dma-irq")
        assert ("dma_map_page" in rout) == (workload == "dma-irq")
        for name, r in rout.items():
            assert name in K.ROUTINE_NAMES
            assert ROUTINE_FIELDS <= set(r), name
            assert r["calls"] > 0
            assert r["cycles_min"] <= r["cycles_avg"] <= r["cycles_max"], name
        ls = v["lock_stat"]
        for col in LOCK_STAT_COLUMNS:
            assert col in ls, col
        io_ = v["irqsoff"]
        for f in ("max_cycles", "started_at", "ended_at", "histogram", "sections"):
            assert f in io_, f
        assert io_["started_at"] in K.SITE_NAMES and io_["ended_at"] in K.SITE_NAMES
        lat = v["irq_latency"]
        for f in ("count", "min_cycles", "max_cycles", "avg_cycles", "histogram"):
            assert f in lat, f


@pytest.mark.parametrize("workload", WORKLOADS)
def test_lock_stat_irqsoff_and_latency_are_self_consistent(workload):
    doc = prof("arm926", workload)
    for key, v in doc["variants"].items():
        rout = v["routines"]
        ls = v["lock_stat"]
        # every kmap_high / kunmap_high / kmap_high_get takes kmap_lock once (no sleeps here)
        takes = sum(rout[n]["calls"] for n in ("kmap_high", "kunmap_high", "kmap_high_get",
                                                "kmap_flush_unused") if n in rout)
        assert v["mm"]["sleeps"] == 0
        assert ls["acquisitions"] == takes, key
        assert ls["contentions"] == 0 and ls["waittime-total"] == 0       # UP, no spinning
        assert 0 < ls["holdtime-min"] <= ls["holdtime-avg"] <= ls["holdtime-max"]
        assert ls["holdtime-avg"] == pytest.approx(ls["holdtime-total"] / ls["acquisitions"],
                                                   abs=0.006)
        check_hist(ls["holdtime-histogram"])
        assert hist_total(ls["holdtime-histogram"]) == ls["acquisitions"]
        io_ = v["irqsoff"]
        check_hist(io_["histogram"])
        assert hist_total(io_["histogram"]) == io_["sections"] > 0
        assert sum(hist_total(h) for h in io_["by_start_site"].values()) == io_["sections"]
        assert io_["max_cycles"] <= io_["total_cycles"] <= doc["variants"][key]["cycles"]
        assert io_["worst_irq_response_cycles"] == io_["max_cycles"] + 24    # ARM9E-S worst
        lat = v["irq_latency"]
        check_hist(lat["histogram"])
        assert hist_total(lat["histogram"]) == lat["count"]
        assert lat["max_cycles"] <= io_["max_cycles"]     # latency = the rest of a section
        if lat["count"]:
            assert lat["min_cycles"] <= lat["avg_cycles"] <= lat["max_cycles"]
        # the IRQ handlers ran exactly as often as IRQs were taken
        if "dma_map_page" in rout:
            assert rout["dma_map_page"]["calls"] == lat["count"]
        if key == "irq":
            # kmap_lock is irq-safe: every hold lies inside an irqs-off section
            assert io_["max_cycles"] >= ls["holdtime-max"]


@pytest.mark.parametrize("cpu", CORES)
def test_microseconds_follow_the_core_clock(cpu):
    doc = prof(cpu, "dma-irq", scale=0.2)
    mhz = CLOCKS[cpu]["core_mhz"]
    assert doc["core_mhz"] == mhz
    assert close_us(doc["irqs_off_max_us"], doc["irqs_off_max_cycles"], mhz)
    assert close_us(doc["irq_overhead_us_per_pair"], doc["irq_overhead_cycles_per_pair"], mhz)
    for v in doc["variants"].values():
        assert close_us(v["us"], v["cycles"], mhz)
        for r in v["routines"].values():
            assert close_us(r["us_avg"], r["cycles_avg"], mhz)
        assert close_us(v["irqsoff"]["max_us"], v["irqsoff"]["max_cycles"], mhz)
        assert close_us(v["irq_latency"]["max_us"], v["irq_latency"]["max_cycles"], mhz)
        ls = v["lock_stat"]
        assert set(ls["us"]) == {c for c in LOCK_STAT_COLUMNS if c.startswith(("wait", "hold"))}
        for col, us in ls["us"].items():
            assert close_us(us, ls[col], mhz), col


# ---------------------------------------------------------------------------------------------
# What the numbers say
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cpu", CORES)
def test_fastpath_overhead_per_pair_is_exactly_the_masking(cpu):
    doc = prof(cpu, "fastpath", scale=0.05)
    m = masking(cpu)
    assert doc["irq_overhead_cycles_per_pair"] == m
    assert doc["masking_cycles_per_pair"] == m
    assert doc["variants"]["irq"]["masking_cycles_per_pair"] == m
    assert doc["variants"]["plain"]["masking_cycles_per_pair"] == 0
    if cpu == "arm926":
        assert m == 21                                  # spec §1.4
    # the fast path never maps, flushes or sleeps: every call costs the same
    for v in doc["variants"].values():
        for name in ("kmap_high", "kunmap_high"):
            r = v["routines"][name]
            assert r["cycles_min"] == r["cycles_max"] == r["cycles_avg"]
        assert v["mm"]["flush_all_zero_pkmaps"] == v["mm"]["set_pte"] == 0


@pytest.mark.parametrize("cpu", CORES)
def test_dma_irq_overhead_per_pair_counts_the_tasks_calls_only(cpu):
    """In the irq variant the NIC handler pins with kmap_high_get and unpins with
    kunmap_high; the plain variant's handler uses page_address and calls neither. The pair
    compared is the task's, so the handler's cheaper kunmap_high calls do not dilute it: the
    churn does the same work in both variants but for the masking instructions."""
    doc = prof(cpu, "dma-irq")
    assert doc["irq_overhead_cycles_per_pair"] == masking(cpu)
    irq, plain = doc["variants"]["irq"], doc["variants"]["plain"]
    taken = irq["irq_latency"]["count"]
    assert taken > 0
    ctx = irq["routines_by_context"]
    assert ctx["irq"]["kmap_high_get"]["calls"] == ctx["irq"]["kunmap_high"]["calls"] == taken
    assert "kmap_high_get" not in ctx["task"]
    plain_hand = plain["routines_by_context"]["irq"]
    assert plain_hand["dma_map_page"]["calls"] == plain["irq_latency"]["count"] > 0
    assert "kmap_high_get" not in plain_hand and "kunmap_high" not in plain_hand
    for v in doc["variants"].values():
        task, hand = v["routines_by_context"]["task"], v["routines_by_context"]["irq"]
        assert v["pair_cycles"] == pytest.approx(task["kmap_high"]["cycles_avg"]
                                                 + task["kunmap_high"]["cycles_avg"], abs=0.02)
        # "routines" is both contexts together
        assert set(v["routines"]) == set(task) | set(hand)
        for name, r in v["routines"].items():
            parts = [c[name] for c in (task, hand) if name in c]
            assert set(r) == ROUTINE_FIELDS
            assert r["calls"] == sum(q["calls"] for q in parts)
            assert r["cycles_min"] == min(q["cycles_min"] for q in parts)
            assert r["cycles_max"] == max(q["cycles_max"] for q in parts)
            total = sum(q["calls"] * q["cycles_avg"] for q in parts)
            assert r["cycles_avg"] == pytest.approx(total / r["calls"], abs=0.01)


def test_fastpath_routine_cycles_match_the_golden_sequences():
    """The same totals test_cost_cycles derives by hand for ARM926 (kmap_high of a mapped
    page 69 / 57, kunmap_high 69 / 60)."""
    v = prof("arm926", "fastpath")["variants"]
    assert v["irq"]["routines"]["kmap_high"]["cycles_avg"] == 69
    assert v["irq"]["routines"]["kunmap_high"]["cycles_avg"] == 69
    assert v["plain"]["routines"]["kmap_high"]["cycles_avg"] == 57
    assert v["plain"]["routines"]["kunmap_high"]["cycles_avg"] == 60
    assert v["irq"]["irqsoff"]["started_at"] in ("kmap_high", "kunmap_high")
    # plain kmap_lock masks nothing: only the page_address hash lock's irqsave remains
    assert set(v["plain"]["irqsoff"]["by_start_site"]) == {"page_address"}


@pytest.mark.parametrize("cpu", CORES)
@pytest.mark.parametrize("workload", ["churn", "dma-irq"])
def test_longest_irqs_off_section_is_a_pkmap_wrap(cpu, workload):
    doc = prof(cpu, workload)
    irq, plain = doc["variants"]["irq"], doc["variants"]["plain"]
    assert irq["mm"]["flush_all_zero_pkmaps"] >= 1          # the run wrapped
    io_ = irq["irqsoff"]
    assert io_["started_at"] == "kmap_high" and io_["ended_at"] == "kmap_high"
    # lower bound of a wrap from the table: the 512-slot scan and the TLB flush of 512 pages
    c = cost(cpu)
    inv = 513 if cpu == "sa110" else 1024
    floor = (512 * (c["load"] + c["alu"] + c["branch"])
             + c["drain_wb"] + inv * c["tlb_inv_page"] + 1024 * c["alu"] + 512 * c["branch"])
    assert io_["max_cycles"] >= floor
    # with plain locks the wrap runs with IRQs on: the longest section is far shorter
    assert plain["irqsoff"]["started_at"] != "kmap_high"
    assert io_["max_cycles"] > 20 * plain["irqsoff"]["max_cycles"]
    assert doc["irqs_off_max_cycles"] == io_["max_cycles"]


def test_irq_latency_shows_the_wrap_only_with_irq_safe_locks():
    doc = prof("arm926", "dma-irq")
    irq, plain = doc["variants"]["irq"], doc["variants"]["plain"]
    assert irq["irq_latency"]["count"] > 0 and plain["irq_latency"]["count"] > 0
    assert irq["irq_latency"]["max_cycles"] > 10 * max(plain["irq_latency"]["max_cycles"], 1)


def test_same_seed_same_document():
    a, _ = profile("arm926", "churn", 3, scale=0.2)
    b, _ = profile("arm926", "churn", 3, scale=0.2)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_another_seed_another_churn():
    a, b = prof("arm926", "churn", seed=0), prof("arm926", "churn", seed=1)
    assert a["seed"] == 0 and b["seed"] == 1
    assert a["variants"]["irq"]["cycles"] != b["variants"]["irq"]["cycles"]
    assert a["variants"]["irq"]["lock_stat"] != b["variants"]["irq"]["lock_stat"]


def test_mrs_override_changes_the_overhead_by_the_predicted_amount():
    over = {"mrs": 10}
    doc = prof("arm926", "fastpath", costs=over)
    m = masking("arm926", over)
    assert m == 21 + 3 * 8                      # irq_disable, irq_enable, irq_save: one mrs each
    assert doc["irq_overhead_cycles_per_pair"] == m == doc["masking_cycles_per_pair"]
    v = doc["variants"]
    # kmap_high: irq_disable + irq_enable + page_address's irq_save, each +8
    assert v["irq"]["routines"]["kmap_high"]["cycles_avg"] == 69 + 3 * 8
    assert v["plain"]["routines"]["kmap_high"]["cycles_avg"] == 57 + 8
    assert v["irq"]["routines"]["kunmap_high"]["cycles_avg"] == 69 + 2 * 8
    base = prof("arm926", "fastpath")
    assert base["irq_overhead_cycles_per_pair"] == 21


def test_clock_override_rescales_microseconds():
    doc = prof("arm926", "fastpath", costs={"core_mhz": 400})
    assert doc["core_mhz"] == 400
    r = doc["variants"]["irq"]["routines"]["kmap_high"]
    assert r["cycles_avg"] == 69                # no memory-side term in the fast path
    assert close_us(r["us_avg"], 69, 400)
    # and the default clock is back for the next profile
    assert prof("arm926", "fastpath", scale=0.05)["core_mhz"] == 200


def test_bad_core_or_override_is_rejected_before_running():
    with pytest.raises(ValueError, match="cortex"):
        profile("cortex", "fastpath", 0, scale=0.01)
    with pytest.raises(ValueError, match="frobnicate"):
        profile("arm926", "fastpath", 0, costs={"frobnicate": 1}, scale=0.01)
    with pytest.raises(ValueError, match=r"workload_name='fast' \(emu profile --workload\): "
                                         r"accepted values are fastpath"):
        profile("arm926", "fast", 0, scale=0.01)


@pytest.mark.parametrize("kw, match", [
    (dict(ncpus=0), r"^ncpus=0: must be in \[1, 8\]"),
    (dict(ncpus=9), r"^ncpus=9"),
    (dict(ncpus="2"), r"^ncpus='2': must be an int"),
    (dict(ncpus=2.0), r"^ncpus=2.0: must be an int"),
    (dict(scale="x"), r"^scale='x': must be a number in \[0.0005, 100\]"),
    (dict(scale=None), r"^scale=None"),
    (dict(scale=float("nan")), r"^scale=nan"),
    (dict(scale=-1.0), r"^scale=-1.0"),
    (dict(scale=0), r"^scale=0:"),
    (dict(scale=1000), r"^scale=1000:"),
    (dict(workload_name=5), r"^workload_name=5 "),
    (dict(trace_events=-1), r"^trace_events=-1"),
])
def test_bad_profile_arguments_name_themselves(kw, match):
    with pytest.raises(ValueError, match=match):
        profile(**kw)


# ---------------------------------------------------------------------------------------------
# A user scenario as the workload
# ---------------------------------------------------------------------------------------------
USER_TOML = """
name = "user churn"

[machine]
last_pkmap = 16
lowmem_mb = 1
highmem_mb = 2

[[setup]]
op = "kmap"
pfn = 300

[[task]]
name = "mapper"
ops = [
  { op = "kmap", pfn = 400, repeat = 12 },
  { op = "kunmap", pfn = 400, repeat = 12 },
  { op = "kmap", pfn = 412, repeat = 12 },
  { op = "kunmap", pfn = 412, repeat = 12 },
  { op = "kmap", pfn = 424, repeat = 12 },
  { op = "kunmap", pfn = 424, repeat = 12 },
]

[[irq]]
name = "nic"
line = 0
count = 4
period = 2000
first = 1000
ops = [
  { op = "dma_map_page", pfn = 300, size = 4096, direction = "FROM_DEVICE", as = "h" },
  { op = "dma_unmap_page", dma_addr = "h", size = 4096, direction = "FROM_DEVICE" },
]
"""


@pytest.fixture(scope="module")
def user_toml(tmp_path_factory):
    p = tmp_path_factory.mktemp("profile") / "user.toml"
    p.write_text(USER_TOML)
    return p


@pytest.mark.parametrize("cpu", ["arm926", "xscale"])
def test_user_scenario_workload(user_toml, cpu):
    doc, _ = profile(cpu, str(user_toml), 0)
    assert doc["cpu"] == cpu and doc["workload"] == str(user_toml)
    for key, v in doc["variants"].items():
        r = v["routines"]
        assert r["kmap"]["calls"] == 36 and r["kunmap"]["calls"] == 36
        assert r["kmap_high"]["calls"] == 36
        assert v["mm"]["flush_all_zero_pkmaps"] >= 1         # 36 new pages in 16 slots
        assert 1 <= r["dma_map_page"]["calls"] <= 4
        assert r["dma_map_page"]["calls"] == v["irq_latency"]["count"]
        assert v["kmap_high_get"] == (key == "irq")
        assert v["dma_pinning"] == ("kmap_high_get" if key == "irq" else "page_address")
    assert "kmap_high_get" in doc["variants"]["irq"]["routines"]       # the DMA pin
    assert "kmap_high_get" not in doc["variants"]["plain"]["routines"]
    assert doc["irq_overhead_cycles_per_pair"] > 0


def test_profile_cli_with_a_user_scenario(user_toml):
    rc, out, err = call("profile", "--workload", user_toml, "--json")
    assert rc == 0, err
    assert json.loads(out)["workload"] == str(user_toml)
    # --scale sizes the built-in workloads only: a file runs as written, so it is refused
    rc, out, err = call("profile", "--workload", user_toml, "--scale", "2")
    assert rc == 2 and "scale=2.0: sets a built-in workload's length" in err and out == ""


def test_profile_cli_takes_ncpus_and_scale():
    """The CLI reaches profile()'s ncpus and scale (it had only --cpu, --seed and --costs)."""
    rc, out, err = call("profile", "--workload", "fastpath", "--ncpus", "2", "--scale", "0.25",
                        "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["ncpus"] == 2
    assert doc["variants"]["irq"]["routines"]["kmap_high"]["calls"] == 2 * 500
    for argv, msg in ((["--ncpus", "0"], "ncpus=0: must be in [1, 8]"),
                      (["--scale", "0"], "scale=0.0: must be"),
                      (["--ncpus", "two"], "--ncpus: invalid int value")):
        rc, out, err = call("profile", "--workload", "fastpath", *argv)
        assert rc == 2 and msg in err and out == "", (argv, err)


GETTER_IN_TIMED_IRQ = """
name = "getter in a timed IRQ"
setup = [ { op = "kmap", pfn = 300 }, { op = "kunmap", pfn = 300 } ]
[machine]
last_pkmap = 8
highmem_mb = 4
[[task]]
name = "worker"
ops = [ { op = "kmap_high", pfn = 1200 }, { op = "kunmap_high", pfn = 1200 } ]
[[irq]]
name = "nic"
line = 0
count = 1000
period = 37
first = 3
ops = [ { op = "kmap_high_get", pfn = 300 }, { op = "kunmap_high", pfn = 300 } ]
"""


def test_a_variant_that_deadlocks_is_reported_not_an_error(tmp_path):
    """An IRQ handler pinning with kmap_high_get under a plain kmap_lock deadlocks when its
    timed IRQ lands in the worker's kmap_high (at cycle 3, inside its kmap_lock section: the
    worker is its CPU's first task, no switch charged; scenario iii's finding): the profile
    reports that variant's outcome, and makes no per-pair comparison."""
    p = tmp_path / "getter.toml"
    p.write_text(GETTER_IN_TIMED_IRQ)
    doc, _ = profile("arm926", str(p))
    irq, plain = doc["variants"]["irq"], doc["variants"]["plain"]
    assert irq["outcome"] == "done" and plain["outcome"] == "irq-deadlock"
    assert "*** DEADLOCK ***" in plain["message"] and irq["message"] == ""
    assert doc["irq_overhead_cycles_per_pair"] is None
    assert doc["irq_overhead_percent"] is None and doc["irq_overhead_us_per_pair"] is None
    assert irq["routines"]["kmap_high_get"]["calls"] > 100 and plain["lock_stat"][
        "contentions"] == 1
    rc, out, err = call("profile", "--workload", p)
    assert rc == 0, err
    assert "With the spin_lock kmap_lock the workload did not finish (irq-deadlock)" in out
    assert "lock(kmap_lock);" in out and "IRQ-disabling kmap_lock costs" not in out
    rc, out, err = call("profile", "--workload", p, "--json")
    assert rc == 0 and json.loads(out)["variants"]["plain"]["outcome"] == "irq-deadlock"


def test_runs_that_did_different_work_say_so(tmp_path):
    """Scenario (ii) with the DMA pinned: with the irq locks the writer sleeps until the DMA
    is unmapped, with plain ones (page_address, no pin) it does not; the cycle difference per
    pair is then not the masking, and the report says why."""
    import tomli_w

    from emu.exec import builtin
    p = tmp_path / "ii.toml"
    p.write_text(tomli_w.dumps(builtin.race(8, 2, "kmap_high_get").to_dict()))
    doc, _ = profile("arm926", str(p))
    wd = doc["work_differs"]
    assert wd["sleeps"] == [1, 0] and wd["wakeups"] == [1, 0]
    assert wd["kmap_high_get calls"] == [1, 0]
    assert doc["irq_overhead_cycles_per_pair"] > 10 * doc["masking_cycles_per_pair"]
    rc, out, err = call("profile", "--workload", p)
    assert rc == 0, err
    assert "But the two runs did different work (" in out and "sleeps 1 vs 0" in out
    assert "pins the page with kmap_high_get with the irq locks, uses page_address" in out


def test_profile_cli_missing_scenario_file(tmp_path):
    rc, out, err = call("profile", "--workload", tmp_path / "nope.toml", "--json")
    assert rc == 2 and out == ""
    assert "nope.toml" in err


OWN_CORE_TOML = """
name = "own core"
setup = [ { op = "kmap", pfn = 300 } ]
[machine]
cpu = "%s"
seed = 3
highmem_mb = 4
costs = { core_mhz = 1000, mrs = 7 }
[[task]]
name = "a"
ops = [ { op = "kmap_high", pfn = 300 }, { op = "kunmap_high", pfn = 300 } ]
"""


@pytest.fixture
def own_core(tmp_path):
    p = tmp_path / "own.toml"
    p.write_text(OWN_CORE_TOML % "feroceon")
    return p


def test_a_scenario_files_own_core_seed_and_costs_apply(own_core):
    """Without cpu / seed, the file's [machine] cpu, seed and costs (its clock, its mrs)
    are what runs and what the document says."""
    doc, loaded = profile(workload_name=str(own_core))
    assert (doc["cpu"], doc["seed"], doc["core_mhz"]) == ("feroceon", 3, 1000)
    assert loaded["irq"].machine.cpu == "feroceon"
    assert doc["irq_overhead_cycles_per_pair"] == masking("feroceon", {"mrs": 7})


def test_given_core_and_seed_win_and_given_costs_apply_over_the_files(own_core):
    doc, loaded = profile("arm926", str(own_core), seed=1, costs={"msr_c": 5})
    assert (doc["cpu"], doc["seed"], doc["core_mhz"]) == ("arm926", 1, 1000)
    assert loaded["plain"].machine.cpu == "arm926"
    # the file's mrs 7 and clock stay, the given msr_c is added: key by key
    assert doc["irq_overhead_cycles_per_pair"] == masking("arm926", {"mrs": 7, "msr_c": 5})
    doc, _ = profile(workload_name=str(own_core), costs={"mrs": 2})
    assert doc["irq_overhead_cycles_per_pair"] == masking("feroceon", {"mrs": 2})


def test_profile_cli_reports_the_files_core_and_takes_its_costs_section(own_core, tmp_path):
    rc, out, err = call("profile", "--workload", own_core)
    assert rc == 0, err
    assert out.startswith(f"kmap_lock profile: feroceon at 1000 MHz, workload {own_core} "
                          f"(seed 3)")
    f = tmp_path / "c.toml"
    f.write_text("[feroceon]\nmsr_c = 5\n[arm926]\nmsr_c = 9\n")
    rc, out, err = call("profile", "--workload", own_core, "--costs", f, "--json")
    assert rc == 0, err
    assert json.loads(out)["irq_overhead_cycles_per_pair"] == masking(
        "feroceon", {"mrs": 7, "msr_c": 5})
    rc, out, err = call("profile", "--workload", own_core, "--cpu", "arm926", "--costs", f)
    assert rc == 0, err
    assert out.startswith("kmap_lock profile: arm926 at 1000 MHz")
    assert f"{masking('arm926', {'mrs': 7, 'msr_c': 9})}.0 cycles per" in out


def test_a_scenario_files_bad_core_names_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(OWN_CORE_TOML % "cortex")
    with pytest.raises(ValueError, match=r"bad\.toml: \[machine\] cpu='cortex': accepted "
                                         r"values are arm926, feroceon"):
        profile(workload_name=str(p))
    assert profile("arm926", str(p))[0]["cpu"] == "arm926"     # a given core replaces it


NO_PAIR_TOML = """
name = "dma only"
setup = [ { op = "kmap", pfn = 300 } ]
[machine]
highmem_mb = 4
[[task]]
name = "a"
ops = [
  { op = "dma_map_page", pfn = 300, size = 4096, direction = "TO_DEVICE", as = "h" },
  { op = "dma_unmap_page", dma_addr = "h", size = 4096, direction = "TO_DEVICE" },%s
]
"""


def test_tasks_without_kmap_high_have_no_pair(tmp_path):
    """The task's dma_map_page pins the mapped page with kmap_high_get and unpins it with
    kunmap_high (irq variant), but no task calls kmap_high: there is no pair to price, so
    pair_cycles and the overhead are null, and the text says why instead of a percentage
    (the unpin's kunmap_high is not a pair's: dma_unpins has it)."""
    p = tmp_path / "dma.toml"
    p.write_text(NO_PAIR_TOML % "")
    doc, _ = profile(workload_name=str(p))
    irq, plain = doc["variants"]["irq"], doc["variants"]["plain"]
    assert irq["routines_by_context"]["task"]["kunmap_high"]["calls"] == 1
    assert irq["dma_unpins"]["task"]["calls"] == 1 and plain["dma_unpins"] == {}
    assert irq["pair_cycles"] is None and plain["pair_cycles"] is None
    assert doc["irq_overhead_cycles_per_pair"] is None
    assert doc["irq_overhead_percent"] is None and doc["irq_overhead_us_per_pair"] is None
    from emu.cost.plot import _overhead                     # the plot's title says why too
    assert _overhead(doc) == "no kmap_high+kunmap_high pair in the tasks"
    rc, out, err = call("profile", "--workload", p)
    assert rc == 0, err
    assert ("No per-pair comparison: the pair is the tasks' kmap_high + kunmap_high (a "
            "kunmap_high releasing a DMA pin is not one), and they made no kmap_high or "
            "kunmap_high call in either run.") in out
    assert "cycles per kmap_high+kunmap_high pair" not in out and "%" not in out


def test_a_dma_unpin_in_a_task_is_not_in_the_pair(tmp_path):
    """pair_cycles is the tasks' kmap_high average plus their kunmap_high average; a
    kunmap_high that releases the DMA layer's kmap_high_get pin is part of the DMA call (the
    plain variant's DMA makes none), so it has a record of its own (dma_unpins) and is left
    out of the pair. routines / routines_by_context still count it as the kunmap_high it
    runs, and work_differs lists the calls that differ."""
    p = tmp_path / "mix.toml"
    p.write_text(NO_PAIR_TOML % '\n  { op = "kmap_high", pfn = 300 }, '
                                '{ op = "kunmap_high", pfn = 300 },')
    doc, loaded = profile(workload_name=str(p))
    assert doc["work_differs"]["kunmap_high calls"] == [2, 1]
    irq, plain = doc["variants"]["irq"], doc["variants"]["plain"]
    assert irq["dma_unpins"]["task"]["calls"] == 1 and "irq" not in irq["dma_unpins"]
    assert plain["dma_unpins"] == {}
    for v in (irq, plain):
        task = v["routines_by_context"]["task"]
        assert task["kmap_high"]["calls"] == 1
        unpin = v["dma_unpins"].get("task", {"calls": 0, "cycles_avg": 0})
        n = task["kunmap_high"]["calls"] - unpin["calls"]
        pair_kunmap = (task["kunmap_high"]["calls"] * task["kunmap_high"]["cycles_avg"]
                       - unpin["calls"] * unpin["cycles_avg"]) / n
        assert n == 1
        assert v["pair_cycles"] == round(task["kmap_high"]["cycles_avg"] + pair_kunmap, 2)
    assert doc["irq_overhead_cycles_per_pair"] == masking("arm926")
    assert all("kunmap_high_unpin" not in r for r in irq["routines_by_context"].values())


def test_an_unpin_that_wakes_a_sleeper_does_not_raise_the_pair(tmp_path):
    """Built-in scenario (ii) as a file (``emu scenario ii --toml``): with the irq locks the
    DMA pin makes the writer sleep, and the unpin's kunmap_high wakes it (204 cycles; the
    writer's own kunmap_high 141). Counted in the pair, the unpin made the irq variant's
    kunmap_high average 172.5 and the overhead 972.5 cycles per pair; without it 941.0."""
    tomli_w = pytest.importorskip("tomli_w")
    from emu.exec.builtin import race
    p = tmp_path / "ii.toml"
    p.write_text(tomli_w.dumps(race(8, 2, "page_address").to_dict()))
    doc, _ = profile("arm926", str(p))
    irq = doc["variants"]["irq"]
    assert irq["dma_unpins"]["task"] == {"calls": 1, "cycles_avg": 204.0, "cycles_min": 204,
                                         "cycles_max": 204, "us_avg": 1.02}
    task = irq["routines_by_context"]["task"]
    assert task["kunmap_high"]["calls"] == 2 and task["kunmap_high"]["cycles_avg"] == 172.5
    assert irq["pair_cycles"] == task["kmap_high"]["cycles_avg"] + 141
    assert doc["irq_overhead_cycles_per_pair"] == 941.0

def test_no_percentage_of_a_zero_cycle_pair():
    """With every cost but irq_disable / irq_enable at 0 the plain pair costs 0 cycles: the
    overhead (12 cycles) is not 0.0 % of it; there is no percentage."""
    zero = {n: 0 for n in K.UOP_NAMES} | {"irq_disable": 6, "irq_enable": 6}
    doc = prof("arm926", "fastpath", scale=0.01, costs=zero)
    assert doc["variants"]["plain"]["pair_cycles"] == 0
    assert doc["irq_overhead_cycles_per_pair"] == 12
    assert doc["irq_overhead_percent"] is None


# ---------------------------------------------------------------------------------------------
# emu profile --json / --trace / --plot, emu presets --costs
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_trace(tmp_path_factory):
    """``emu profile --cpu arm926 --json --trace FILE.json`` (the full dma-irq workload)."""
    path = tmp_path_factory.mktemp("trace") / "profile.json"
    rc, out, err = call("profile", "--cpu", "arm926", "--json", "--trace", path)
    assert rc == 0, err
    return json.loads(out), json.loads(path.read_text())


def test_profile_cli_json_is_one_document():
    rc, out, err = call("profile", "--cpu", "feroceon", "--workload", "fastpath", "--json")
    assert rc == 0, err
    doc = json.loads(out)                           # fails on anything but one document
    assert out.strip().startswith("{") and out.strip().endswith("}")
    assert doc["cpu"] == "feroceon" and doc["workload"] == "fastpath"
    assert {"cpu", "workload", "irq_overhead_cycles_per_pair", "irqs_off_max_cycles",
            "variants"} <= set(doc)
    assert doc["irq_overhead_cycles_per_pair"] == masking("feroceon")


def test_profile_cli_costs_file(tmp_path):
    f = tmp_path / "costs.toml"
    f.write_text("[costs]\nmrs = 10\n[feroceon]\nmrs = 4\n")
    rc, out, err = call("profile", "--workload", "fastpath", "--json", "--costs", f)
    assert rc == 0, err
    assert json.loads(out)["irq_overhead_cycles_per_pair"] == masking("arm926", {"mrs": 10})
    rc, out, err = call("profile", "--cpu", "feroceon", "--workload", "fastpath", "--json",
                        "--costs", f)
    assert rc == 0, err
    assert json.loads(out)["irq_overhead_cycles_per_pair"] == masking("feroceon", {"mrs": 4})


def test_profile_cli_text_report():
    rc, out, err = call("profile", "--workload", "fastpath")
    assert rc == 0, err
    assert "kmap_lock profile: arm926 at 200 MHz" in out
    assert "21.0 cycles per kmap_high+kunmap_high pair" in out
    # every row of cycles says so (lock_stat's hold times read as bare numbers)
    for label in ("kmap_lock hold avg (cycles)", "kmap_lock hold max (cycles)",
                  "longest irqs-off (cycles)", "IRQ latency max (cycles)"):
        assert "\n  " + label in out, label


def test_profile_text_says_how_many_raises_merged():
    """dma-irq on arm926: the nic's raise at 450,000 comes while its raise at 400,000 is
    still pending (the irq run's 62,000-cycle wrap section): one interrupt, counted."""
    rc, out, err = call("profile", "--cpu", "arm926")
    assert rc == 0, err
    assert ("IRQ raises merged into one still pending (a line holds one pending interrupt): "
            "1 with the irq locks, 0 with plain locks.") in out
    rc, out, err = call("profile", "--workload", "fastpath")
    assert rc == 0 and "merged" not in out


def test_chrome_trace_shape(cli_trace):
    doc, tr = cli_trace
    assert doc["workload"] == "dma-irq"
    ev = tr["traceEvents"]
    assert isinstance(ev, list) and ev
    assert {e["ph"] for e in ev} <= {"X", "M", "i"}
    assert {"X", "M", "i"} == {e["ph"] for e in ev}
    for e in ev:
        assert isinstance(e["pid"], int)
        if e["ph"] == "X":
            assert e["ts"] >= 0 and e["dur"] >= 0, e
            assert isinstance(e["tid"], int)
        elif e["ph"] == "i":
            assert e["ts"] >= 0
    procs = {e["pid"]: e["args"]["name"] for e in ev if e["name"] == "process_name"}
    assert len(procs) == 2 and any("irq" in n for n in procs.values()) \
        and any("plain" in n for n in procs.values())
    for pid in procs:
        tracks = {e["args"]["name"] for e in ev if e["name"] == "thread_name"
                  and e["pid"] == pid}
        for t in ("cpu0 IRQ", "cpu0 irqs off", "cpu0 kmap_lock held", "cpu0 churn0"):
            assert t in tracks, (pid, t, tracks)
        assert all(re.match(r"cpu\d+ ", t) for t in tracks)       # per-CPU tracks


def _spans(ev, pid, track):
    tids = {e["tid"] for e in ev if e["name"] == "thread_name" and e["pid"] == pid
            and e["args"]["name"] == track}
    return [e for e in ev if e["ph"] == "X" and e["pid"] == pid and e["tid"] in tids]


def test_chrome_trace_longest_irqs_off_span_is_the_reported_max(cli_trace):
    doc, tr = cli_trace
    ev = tr["traceEvents"]
    pid = next(e["pid"] for e in ev if e["name"] == "process_name" and "irq" in e["args"]["name"]
               and "plain" not in e["args"]["name"])
    spans = _spans(ev, pid, "cpu0 irqs off")
    longest = max(spans, key=lambda e: e["args"]["cycles"])
    assert longest["args"]["cycles"] == doc["irqs_off_max_cycles"]
    assert "kmap_high" in longest["name"]
    assert longest["dur"] == pytest.approx(doc["irqs_off_max_cycles"] / 200, abs=1e-6)
    assert len(spans) == doc["variants"]["irq"]["irqsoff"]["sections"]
    irqs = _spans(ev, pid, "cpu0 IRQ")
    assert len(irqs) == doc["variants"]["irq"]["irq_latency"]["count"]
    holds = _spans(ev, pid, "cpu0 kmap_lock held")
    assert len(holds) == doc["variants"]["irq"]["lock_stat"]["acquisitions"]


@pytest.mark.parametrize("variant", ["irq", "plain"])
def test_chrome_trace_has_one_span_per_routine_call(cli_trace, variant):
    """Every routine call of the profile appears once, under its own name, on its context's
    track (the task ``churn0`` or the IRQ handler ``nic``)."""
    doc, tr = cli_trace
    ev = tr["traceEvents"]
    pid = next(e["pid"] for e in ev if e["name"] == "process_name"
               and e["args"]["name"].endswith(f": {variant} kmap_lock"))
    spans = _spans(ev, pid, "cpu0 churn0") + _spans(ev, pid, "cpu0 nic")
    counts = {}
    for e in spans:
        counts[e["name"]] = counts.get(e["name"], 0) + 1
    expected = {n: r["calls"] for n, r in doc["variants"][variant]["routines"].items()}
    assert counts == expected


def test_plot_without_matplotlib_fails_cleanly(tmp_path):
    try:
        import matplotlib  # noqa: F401
        pytest.skip("matplotlib is installed here")
    except ImportError:
        pass
    png = tmp_path / "p.png"
    rc, out, err = call("profile", "--workload", "fastpath", "--plot", png)
    assert rc == 2
    assert "matplotlib" in err
    assert not png.exists()


def test_plot_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "p.png"
    rc, out, err = call("profile", "--workload", "fastpath", "--plot", png)
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {png}" in out


def test_plot_files_are_the_same_from_run_to_run(tmp_path):
    """The same profile plots to the same bytes: matplotlib dated SVG, PDF and PostScript
    files (and a .svgz's gzip header) with the wall-clock time and gave SVG elements random
    ids, so --plot p.svg differed between two identical runs."""
    pytest.importorskip("matplotlib")
    import time
    from emu.cost.plot import plot_profile
    from emu.cost.profile import profile
    doc = profile("arm926", "fastpath", scale=0.01)[0]
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    files = {}
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        for ext in ("svg", "svgz", "pdf", "eps"):
            plot_profile(doc, tmp_path / run / f"p.{ext}")
            files.setdefault(ext, []).append((tmp_path / run / f"p.{ext}").read_bytes())
        time.sleep(1.1)                 # PDF and PostScript dates count seconds
    for ext, (a, b) in files.items():
        assert a == b, ext
    assert os.environ.get("SOURCE_DATE_EPOCH") == epoch          # left as it was


def _bucket_low(label):
    return 0 if label == "0" else int(label.split("-")[0])


def test_plot_histogram_axes_are_in_bucket_order(tmp_path, monkeypatch):
    """Both variants' histograms share one x axis ordered by duration (the irq and plain runs
    have different sets of non-empty log2 buckets)."""
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from emu.cost.plot import plot_profile
    figs = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig",
                        lambda self, *a, **k: (figs.append(self), real(self, *a, **k))[1])
    doc = prof("arm926", "dma-irq")
    irq_h = doc["variants"]["irq"]["irqsoff"]["histogram"]
    plain_h = doc["variants"]["plain"]["irqsoff"]["histogram"]
    assert set(plain_h) - set(irq_h)            # the case that matters: buckets differ
    plot_profile(doc, tmp_path / "p.png")
    assert len(figs) == 1
    for ax in figs[0].axes[1:]:
        ax.figure.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert labels == sorted(labels, key=_bucket_low), (ax.get_title(), labels)


def test_presets_costs_prints_the_table():
    rc, out, err = call("presets", "--costs", "--cpu", "arm926")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("arm926: ARM926EJ-S")
    assert "core 200 MHz" in out
    assert not any(line.startswith(("feroceon:", "xscale:", "sa110:")) for line in lines)
    c = cost("arm926")
    for name in K.UOP_NAMES:
        row = [ln for ln in lines if re.match(rf"{name}\s+\d+\s", ln)]
        assert len(row) == 1, name
        cyc, ns, mark = row[0].split()[1:4]
        assert int(cyc) == c[name], name
        assert float(ns) == pytest.approx(c[name] * 1000 / 200, abs=0.05), name
        assert mark in ("S", "D", "E", "R", "S-emu"), (name, mark)


def test_presets_costs_with_an_override_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[arm926]\nmrs = 10\n")
    rc, out, err = call("presets", "--costs", "--cpu", "arm926", "--costs-file", f)
    assert rc == 0, err
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines()
            if ln and ln.split()[0] in K.UOP_NAMES and len(ln.split()) > 3
            and ln.split()[1].isdigit()}
    assert rows["mrs"][1] == "10" and rows["mrs"][3] == "user"
    assert rows["irq_save"][1] == str(10 + 1 + 3)           # mrs + orr + msr_c
    assert rows["irq_restore"][1] == "3"                    # msr_c only


def test_presets_costs_marks_a_composite_of_estimates_as_one():
    """Feroceon's irq_save is mrs + orr + msr_c, all estimates (spec §1.3 Feroceon row: E):
    the JSON and the text say E, not D; ARM926's (from S-emu parts) stays D (spec §1.4)."""
    rc, out, err = call("presets", "--costs", "--json")
    assert rc == 0, err
    ops = {cpu: c["micro_ops"] for cpu, c in json.loads(out)["costs"].items()}
    assert ops["feroceon"]["irq_save"]["mark"] == "E"
    assert ops["xscale"]["irq_save"]["mark"] == "R"
    assert ops["arm926"]["irq_save"]["mark"] == "D"
    assert {c["smp_lock"]["mark"] for c in ops.values()} == {"E"}
    rc, out, err = call("presets", "--costs", "--cpu", "feroceon")
    assert rc == 0, err
    row = next(ln for ln in out.splitlines() if ln.startswith("irq_save "))
    assert row.split()[3] == "E"


# ---------------------------------------------------------------------------------------------
# SMP: two CPUs share kmap_lock
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smp_churn():
    from emu.cost.chrome import chrome_events
    doc, loaded = profile("arm926", "churn", 0, ncpus=2, scale=0.2, trace_events=1 << 20)
    ev = chrome_events(loaded["irq"], 1, "irq")
    names = {e["tid"]: e["args"]["name"] for e in ev if e["name"] == "thread_name"}
    holds = sorted((e["ts"], e["ts"] + e["dur"], names[e["tid"]])
                   for e in ev if e["ph"] == "X" and names[e["tid"]].endswith("kmap_lock held"))
    return doc, holds


def test_smp_profile_runs_both_cpus(smp_churn):
    doc, holds = smp_churn
    assert doc["ncpus"] == 2
    assert {t for _, _, t in holds} == {"cpu0 kmap_lock held", "cpu1 kmap_lock held"}
    assert doc["variants"]["irq"]["lock_stat"]["acquisitions"] == len(holds)


def test_smp_kmap_lock_hold_intervals_never_overlap(smp_churn):
    """Mutual exclusion on the timeline: while one CPU holds kmap_lock (e.g. through a
    130k-cycle wrap), the other CPU cannot hold it too; it spins, and lock_stat's wait time
    shows it."""
    doc, holds = smp_churn
    overlaps = [(a, b) for a, b in zip(holds, holds[1:]) if b[0] < a[1] - 1e-6]
    assert not overlaps, (len(overlaps), overlaps[:3])
    ls = doc["variants"]["irq"]["lock_stat"]
    # both CPUs take kmap_lock every few hundred cycles: the other CPU waits out the wrap
    assert ls["waittime-max"] >= ls["holdtime-max"] // 2, ls


def test_smp_contended_lock_is_explained_next_to_the_per_pair_figure():
    """Two CPUs hammering kmap_lock: a pair's cycles are mostly spinning for the other
    CPU's hold, which absorbs the 21 masking cycles; the report says so, UP reports don't."""
    doc, _ = profile("arm926", "fastpath", 0, ncpus=2, scale=0.1)
    assert abs(doc["irq_overhead_cycles_per_pair"]) < doc["masking_cycles_per_pair"]
    text = format_report(doc)
    assert "On 2 CPUs kmap_lock was contended (799 of 800 acquisitions with the irq locks" \
        in " ".join(text.split())
    assert "kmap_lock was contended" not in format_report(profile("arm926", "fastpath", 0,
                                                                  scale=0.1)[0])


def test_a_path_workload_gives_a_json_document(tmp_path):
    """A pathlib.Path workload is named as its string in the document, which stays JSON."""
    p = tmp_path / "getter.toml"
    p.write_text(GETTER_IN_TIMED_IRQ)
    doc, _ = profile("arm926", p)
    assert doc["workload"] == str(p) and json.loads(json.dumps(doc)) == doc


def test_feroceon_report_says_the_l2_is_not_modelled():
    doc, _ = profile("feroceon", "fastpath", 0, scale=0.01)
    assert "Not modelled: Kirkwood's L2" in format_report(doc)
    assert "Not modelled" not in format_report(profile("arm926", "fastpath", 0, scale=0.01)[0])


def test_smp_every_cycle_is_a_priced_micro_op_waiting_included():
    """A CPU that finds kmap_lock released later in the other CPU's time spins until then:
    spin_wait passes (spec §1.5: the contended loop is modelled explicitly), so breakdown()
    accounts for every cycle of the clock, and the passes and the winning smp_lock make up
    lock_stat's wait time. The wait used to be a bare clock jump (a quarter of the cycles
    missing, one spin_wait in 799 contentions)."""
    doc, loaded = profile("arm926", "fastpath", 0, ncpus=2, scale=0.1)
    for v in ("irq", "plain"):
        m = loaded[v].machine
        bd = m.breakdown()
        cycles = sum(c for per in bd.values() for kinds in per.values()
                     for _, c in kinds.values())
        assert cycles == sum(m.cycles)
        def total(uop):
            return sum(kinds.get(uop, (0, 0))[1] for per in bd.values() for kinds in per.values())

        ls = doc["variants"][v]["lock_stat"]
        win = total("smp_lock") // ls["acquisitions"]
        assert ls["waittime-total"] > 10_000 and ls["contentions"] > 100
        assert total("spin_wait") <= ls["waittime-total"] <= total("spin_wait") + \
            ls["contentions"] * win


# ---------------------------------------------------------------------------------------------
# The profiler's irqs-off tracer sees every IRQs-off window
# ---------------------------------------------------------------------------------------------
FEROCEON_RANGE_TOML = """
name = "feroceon lowmem dma"
[machine]
cpu = "feroceon"
lowmem_mb = 1
highmem_mb = 1
last_pkmap = 8

[[task]]
name = "dma"
ops = [
  { op = "dma_map_page", pfn = 10, size = 4096, direction = "TO_DEVICE", as = "h" },
  { op = "dma_unmap_page", dma_addr = "h", size = 4096, direction = "TO_DEVICE" },
]
"""


def test_feroceon_range_op_masks_irqs_and_the_tracer_sees_it(tmp_path):
    """feroceon_range_dma_*_range runs ``mrs; orr #PSR_I_BIT; msr cpsr_c`` ... ``msr cpsr_c``
    around the two range MCRs (spec §1.2): IRQs are off for the whole hardware range
    operation, so the irqsoff tracer must record that section (spec §4.6), even for a lowmem
    buffer where no kmap_lock or page_address lock is involved."""
    p = tmp_path / "fer.toml"
    p.write_text(FEROCEON_RANGE_TOML)
    doc, _ = profile("feroceon", str(p), 0)
    for key, v in doc["variants"].items():
        assert v["routines"]["dma_map_page"]["calls"] == 1
        io_ = v["irqsoff"]
        assert io_["sections"] >= 1, (key, io_)
        # the window covers the 128-line range walk: > 2 range MCRs + 128 drange_line
        c = cost("feroceon")
        assert io_["max_cycles"] >= 2 * c["drange_start"] + 128 * c["drange_line"], key


def test_a_user_scenario_that_calls_kmap_high_get_profiles_both_variants(tmp_path):
    """The plain-lock variant keeps the scenario's own kmap_high_get() calls (compiled in,
    as in built-in scenario (iii)); the DMA pinning alone follows the variant."""
    p = tmp_path / "khg.toml"
    p.write_text('name = "khg"\n[machine]\nlast_pkmap = 8\n[[task]]\nname = "t"\nops = [\n'
                 '  { op = "kmap", pfn = 300 }, { op = "kunmap", pfn = 300 },\n'
                 '  { op = "kmap_high_get", pfn = 300 }, { op = "kunmap_high", pfn = 300 },\n]\n')
    doc, _ = profile("arm926", str(p), 0)
    for key in ("plain", "irq"):
        assert doc["variants"][key]["routines"]["kmap_high_get"]["calls"] == 1
    assert doc["variants"]["plain"]["dma_pinning"] == "page_address"


def test_smp_and_a_scenarios_own_clock_are_reported_as_run(tmp_path):
    """A scenario file's own ncpus and [machine] costs (its core clock) are what the document
    reports; irqs-off time is a fraction of all CPUs' time."""
    p = tmp_path / "smp.toml"
    p.write_text('name = "smp"\n[machine]\nlast_pkmap = 8\nncpus = 2\n'
                 'costs = { core_mhz = 400, mrs = 5 }\n'
                 + "".join(f'[[task]]\nname = "t{c}"\ncpu = {c}\nops = [\n'
                           + "".join(f'  {{ op = "kmap", pfn = {300 + c * 20 + i} }},\n'
                                     f'  {{ op = "kunmap", pfn = {300 + c * 20 + i} }},\n'
                                     for i in range(12)) + ']\n' for c in range(2)))
    doc, loaded = profile("arm926", str(p), 0)
    assert doc["ncpus"] == 2 and doc["core_mhz"] == 400
    io_ = doc["variants"]["irq"]["irqsoff"]
    assert io_["max_us"] == round(io_["max_cycles"] / 400, 3)
    assert 0 < io_["fraction"] <= 1
    assert io_["fraction"] == round(io_["total_cycles"] / sum(loaded["irq"].machine.cycles), 6)


SMP_IRQ_TOML = """
name = "IRQ on the second CPU"
setup = [{ op = "kmap", pfn = 300 }, { op = "kmap", pfn = 301 }]
[machine]
ncpus = 2
lowmem_mb = 1
highmem_mb = 2
last_pkmap = 8

[[task]]
name = "t0"
cpu = 0
ops = [%s]

[[task]]
name = "t1"
cpu = 1
ops = [%s]

[[irq]]
name = "dev"
line = 0
cpu = 1
count = 20
period = 700
first = 350
ops = [
  { op = "dma_map_page", pfn = 10, size = 256, direction = "TO_DEVICE", as = "h" },
  { op = "dma_unmap_page", dma_addr = "h", size = 256, direction = "TO_DEVICE" },
]
"""


def test_chrome_trace_puts_an_irq_raise_on_its_cpus_irq_track(tmp_path):
    """An IRQ raise belongs to the line's CPU; on two CPUs the context that ran last may be
    the other CPU's task, whose track it must not land on."""
    from emu.cost.chrome import write_chrome_trace
    pairs = ['{ op = "kmap_high", pfn = %d }, { op = "kunmap_high", pfn = %d }' % (p, p)
             for p in (300, 301)]
    path = tmp_path / "smp.toml"
    path.write_text(SMP_IRQ_TOML % (", ".join([pairs[0]] * 150), ", ".join([pairs[1]] * 150)))
    doc, loaded = profile("arm926", str(path), trace_events=1 << 16)
    out = tmp_path / "trace.json"
    write_chrome_trace(out, loaded, doc)
    ev = json.loads(out.read_text())["traceEvents"]
    for pid in (1, 2):
        names = {e["tid"]: e["args"]["name"] for e in ev
                 if e["name"] == "thread_name" and e["pid"] == pid}
        raises = [e for e in ev if e["pid"] == pid and e["name"] == "irq_raise"]
        assert len(raises) == 20
        assert {names[e["tid"]] for e in raises} == {"cpu1 IRQ"}
        assert {e["args"]["line"] for e in raises} == {0}
        irq_spans = [e for e in ev if e["pid"] == pid and e["ph"] == "X"
                     and names[e["tid"]] == "cpu1 IRQ"]
        assert len(irq_spans) == 20


def test_plot_title_signs_a_negative_overhead():
    """On SMP the irq pair can cost less than the plain one (spinning differs): the plot's
    title gave "+-70.74 cycles/pair"."""
    from emu.cost.plot import _overhead
    done = {"irq": {"outcome": "done"}, "plain": {"outcome": "done"}}
    assert _overhead({"irq_overhead_cycles_per_pair": -70.74, "variants": done}) \
        == "-70.74 cycles/pair"
    assert _overhead({"irq_overhead_cycles_per_pair": 21.0, "variants": done}) \
        == "+21.0 cycles/pair"


class _FakeCanvas:
    @staticmethod
    def get_supported_filetypes():
        return {"png": "Portable Network Graphics", "pdf": "Portable Document Format"}


class _FakePlt:
    """What check_plot_path asks of pyplot (the suite may run without matplotlib)."""
    closed = 0

    def figure(self):
        return type("Fig", (), {"canvas": _FakeCanvas()})()

    def close(self, fig):
        _FakePlt.closed += 1


@pytest.mark.parametrize("name, ok", [("p.png", True), ("p.PDF", True), ("p", True),
                                      ("p.xyz", False), ("p.json", False)])
def test_plot_format_is_checked_before_any_run(tmp_path, monkeypatch, name, ok):
    """A --plot suffix matplotlib cannot write used to fail after both runs with matplotlib's
    own message ("Format 'xyz' is not supported"), not naming --plot; now it is refused
    first, naming --plot and the accepted suffixes."""
    import emu.cost.plot as plot
    import emu.cost.profile as prof_mod
    monkeypatch.setattr(plot, "pyplot", lambda: _FakePlt())
    path = tmp_path / name
    if ok:
        assert plot.check_plot_path(path) == path
        return

    def no_run(*a, **k):
        raise AssertionError("the workload ran")
    monkeypatch.setattr(prof_mod, "profile", no_run)
    rc, out, err = call("profile", "--workload", "fastpath", "--plot", path)
    assert rc == 2 and out == ""
    ext = name.rsplit(".", 1)[1]
    assert f"--plot {path}: '{ext}' is not an image format" in err
    assert "accepted suffixes are .pdf, .png" in err


def test_a_profile_longer_than_the_decision_log_finishes():
    """A timed run is never replayed, so the 65,536-decision log does not end it: fastpath at
    scale 9 (about 72,000 decisions) and 4 CPUs' dma-irq used to end as log-full in both
    variants, an EmuError, although scale goes up to 100 and ncpus to K.MAXCPUS."""
    doc, loaded = profile("arm926", "fastpath", 0, scale=9)
    for v in doc["variants"].values():
        assert v["outcome"] == "done"
        assert v["routines_by_context"]["task"]["kmap_high"]["calls"] == 18_000
    assert doc["irq_overhead_cycles_per_pair"] == masking("arm926")
    ld = loaded["irq"]
    r = ld.run(K.SCHED_TIMED, final=False)
    assert r.outcome == "done" and r.decisions > K.DECISION_LOG
    assert len(r.choices) == len(r.actions) == K.DECISION_LOG
    doc, _ = profile("arm926", "dma-irq", 0, ncpus=4, scale=1.2)
    assert [v["outcome"] for v in doc["variants"].values()] == ["done", "done"]


def test_dfs_and_random_runs_still_end_at_the_decision_log():
    """The decision log still ends a replayable run: DFS and random runs of the same long
    workload are log-full."""
    from emu.cost.profile import workload
    ld = workload("fastpath", "arm926", True, 0, 1, None, 9).build()
    assert ld.run(K.SCHED_DFS).outcome == "log-full"
    assert ld.run(K.SCHED_RANDOM, p_switch=0).outcome == "log-full"


def test_a_scenario_files_own_dma_pinning_does_not_override_the_variants(tmp_path):
    """`emu scenario i --toml` writes dma_pinning = "page_address": profiled, the irq variant
    kept that racy pinning (both variants pinned alike), though the irq variant is ARM's
    2.6.30, DMA pinning with kmap_high_get (README, module docstring)."""
    p = tmp_path / "i.toml"
    rc, out, err = call("scenario", "i", "--toml")
    assert rc == 0, err
    p.write_text(out)
    assert 'dma_pinning = "page_address"' in out
    doc, _ = profile(workload_name=str(p))
    for key, pin in (("irq", "kmap_high_get"), ("plain", "page_address")):
        v = doc["variants"][key]
        assert v["outcome"] == "done" and v["dma_pinning"] == pin
    assert "kmap_high_get" in doc["variants"]["irq"]["routines"]          # the DMA pin
    assert "kmap_high_get" not in doc["variants"]["plain"]["routines"]


def test_a_trace_that_fills_its_buffer_says_so(tmp_path, monkeypatch):
    """The trace buffer keeps the first events and counts the rest: the Chrome trace was cut
    short without a word (45 of 1,000 kmap_high spans, say); now the file's otherData and a
    warning on stderr give the events kept and recorded."""
    import emu.cost.profile as prof_mod
    from emu.cost.chrome import write_chrome_trace
    doc, loaded = profile("arm926", "fastpath", 0, scale=0.05, trace_events=1000)
    path = tmp_path / "t.json"
    cut = write_chrome_trace(path, loaded, doc)
    assert set(cut) == {"irq", "plain"}
    kept, recorded = cut["irq"]
    assert kept == 1000 < recorded
    other = json.loads(path.read_text())["otherData"]
    assert other["truncated"]["irq"] == {"kept_events": 1000, "recorded_events": recorded}
    monkeypatch.setattr(prof_mod, "TRACE_EVENTS", 1000)
    rc, out, err = call("profile", "--workload", "fastpath", "--trace", path)
    assert rc == 0, err
    assert f"warning: --trace {path}: the irq run's timeline holds its first 1,000 of " in err
    assert "timeline written to" in out


def test_a_trace_with_room_is_not_marked_truncated(cli_trace):
    assert "truncated" not in cli_trace[1]["otherData"]


def test_plot_histogram_axis_keeps_empty_buckets_in_place():
    """The plot's x axis listed only the non-empty buckets, so 512-1023 stood next to
    65536-131071 as if one bucket apart; every bucket between the lowest and the highest
    now has its place (count 0)."""
    from emu.cost.plot import bucket_axis
    assert bucket_axis({"8-15": 5, "512-1023": 1}, {"65536-131071": 3}) == \
        [f"{1 << (b - 1)}-{(1 << b) - 1}" for b in range(4, 18)]
    assert bucket_axis({"0": 2, "2-3": 1}, {}) == ["0", "1-1", "2-3"]
    assert bucket_axis({}, {}) == []
    doc = prof("arm926", "dma-irq")
    v = doc["variants"]
    keys = bucket_axis(v["irq"]["irqsoff"]["histogram"], v["plain"]["irqsoff"]["histogram"])
    assert set(v["irq"]["irqsoff"]["histogram"]) | set(v["plain"]["irqsoff"]["histogram"]) \
        <= set(keys)
    lows = [_bucket_low(k) for k in keys]
    assert all(b == 2 * a or a == 0 for a, b in zip(lows, lows[1:])), keys


def test_a_periodic_irq_left_when_the_tasks_finish_is_reported(user_toml):
    """A timed run waits for the IRQs still due after its tasks: the user scenario's nic
    fires all its 4 times (the churn used to end first and drop the rest, silently). The
    built-in dma-irq's nic, a periodic line of 10**9 firings, is a tick the run does not wait
    for, and not reported as pending (it is armed at the end of every run: noise)."""
    doc, _ = profile("arm926", str(user_toml), 0)
    for v in doc["variants"].values():
        assert v["routines"]["dma_map_page"]["calls"] == 4 == v["irq_latency"]["count"]
        assert v["pending_irqs"] == []
    doc = prof("arm926", "dma-irq")
    for v in doc["variants"].values():
        assert v["pending_irqs"] == []
    assert "IRQs pending" not in format_report(doc)


def test_a_hold_that_never_ended_is_not_in_the_hold_average(tmp_path):
    """lock_stat takes a hold time at the release: the worker's fifth kmap_lock hold (of 4
    pairs) is interrupted by the handler's kmap_high_get under the plain lock and never ends
    (irq-deadlock), so the hold average is over the 4 holds that ended: 72.5 cycles, not
    290 / 5 = 58.0 (it divided by every acquisition)."""
    pair = '{ op = "kmap_high", pfn = 1200 }, { op = "kunmap_high", pfn = 1200 }'
    p = tmp_path / "getter4.toml"
    p.write_text(GETTER_IN_TIMED_IRQ.replace(pair, ", ".join([pair] * 4))
                 .replace("first = 3", "first = 350"))
    doc, loaded = profile("arm926", str(p))
    assert doc["variants"]["plain"]["outcome"] == "irq-deadlock"
    S = loaded["plain"].machine._S
    assert S[int(S[K.H_R_LOCK]) + K.LK_OWNER] >= 0              # still held
    ls = doc["variants"]["plain"]["lock_stat"]
    assert ls["acquisitions"] == 5 and ls["contentions"] == 1
    assert hist_total(ls["holdtime-histogram"]) == 4
    assert ls["holdtime-total"] == 290 and ls["holdtime-avg"] == 72.5
    assert ls["us"]["holdtime-avg"] == round(72.5 / 200, 3)
    assert ls["holdtime-min"] <= ls["holdtime-avg"] <= ls["holdtime-max"]
    done = doc["variants"]["irq"]["lock_stat"]                  # a run that finished: all
    assert done["holdtime-avg"] == round(done["holdtime-total"] / done["acquisitions"], 2)


def test_profile_trace_builds_no_readable_trace(tmp_path, monkeypatch):
    """``emu profile --trace`` writes the Chrome timeline from the recorded events; it built
    the readable trace too (about 1.5 s on dma-irq) and never used it."""
    import emu.exec.report as report

    def refuse(ld):
        raise AssertionError("readable trace built")
    monkeypatch.setattr(report, "readable_trace", refuse)
    path = tmp_path / "t.json"
    rc, out, err = call("profile", "--workload", "fastpath", "--scale", "0.01", "--trace", path)
    assert rc == 0, err
    assert any(e.get("name") == "kmap_high" for e in json.loads(path.read_text())["traceEvents"])


def test_profile_variant_reads_its_own_clock():
    """The µs figures come from the clock the variant's own scenario runs at: a module-level
    table that profile() filled let a direct profile_variant read the last profile's clock."""
    from emu.cost.profile import profile_variant, workload
    prof("arm926", "fastpath", scale=0.01, costs={"core_mhz": 100})
    for mhz, costs in ((200, None), (400, {"core_mhz": 400})):
        v, _ = profile_variant(workload("fastpath", "arm926", scale=0.01, costs=costs))
        assert v["us"] == round(v["cycles"] / mhz, 3)
        r = v["routines"]["kmap_high"]
        assert close_us(r["us_avg"], r["cycles_avg"], mhz)


def _sections(ev, cpu=0):
    """The (start, end) clocks of CPU ``cpu``'s irqs-off sections in trace events ``ev``."""
    out, start = [], None
    for kind, clk, c, ctx, a, b in ev:
        if c == cpu and kind == K.T_IRQS_OFF:
            start = clk
        elif c == cpu and kind == K.T_IRQS_ON:
            out.append((start, clk))
    return out


def _expected_wait(sections, t):
    """The rest of the section that covers clock ``t``, else 0."""
    return next((b - t for a, b in sections if a <= t < b), 0)


@pytest.mark.parametrize("variant", ["irq", "plain"])
def test_every_irq_latency_is_the_rest_of_the_section_its_raise_fell_in(variant):
    """Each delivery of dma-irq's periodic line (due at first + k * period) waited exactly
    the rest of the irqs-off section that covered its due clock, from the traced sections.
    The latency used to be looked up in a ring of the CPU's last 32 sections, so a raise
    early in a step that closes more (the plain wrap's set_page_address irqsave sections)
    read 0; the ring now keeps the sections that cover a raise clock. In the irq run two
    firings (400,000 and 450,000) fall in one 62,000-cycle wrap section: the second is a
    raise of a line still pending, which merges into it (one interrupt, as the interrupt
    controller keeps one pending bit per line), and the delivery's latency is the first
    raise's (it was delivered twice, the second with a latency of 377 cycles)."""
    from emu.cost.profile import profile_variant, workload
    from emu.exec.trace import trace_counts, trace_events
    sc = workload("dma-irq", "arm926", variant == "irq", 0)
    nic = sc.irqs[0]
    v, ld = profile_variant(sc, trace_events=1 << 20)
    kept, recorded = trace_counts(ld.machine._S)
    assert kept == recorded
    ev = trace_events(ld.machine._S)
    sections = _sections(ev)
    lats = [b for kind, clk, c, ctx, a, b in ev if kind == K.T_IRQ_ENTER]
    assert len(lats) == v["irq_latency"]["count"] > 3
    want, merged, pending_until = [], [], -1
    for k in range(2 * len(lats)):
        t = nic.first + k * nic.period
        if t < pending_until:                   # raised again before the delivery
            merged.append(t)
            continue
        want.append(_expected_wait(sections, t))
        pending_until = t + want[-1]
    assert lats == want[:len(lats)]
    assert v["irq_latency"]["max_cycles"] == max(lats)
    assert v["irq_latency"]["merged"] == len([t for t in merged if t <= v["cycles"]])
    if variant == "irq":
        assert want[7:9] == [50377, 200] and merged[0] == 450_000


def test_an_irq_raised_early_in_a_run_of_short_sections_waits_for_its_own():
    """The plain variant's pkmap wrap (64 slots) closes a short page_address / set_page_address
    irqsave section per slot within one step. A line firing one cycle into one of the first
    of them, and again one cycle into the step's last section, waits each time for the end
    of its own section (the first read 0: the ring of the CPU's last 32 sections had lost
    it by the time the handler ran)."""
    from emu.cost.profile import _machine, profile_variant
    from emu.exec.scenario import Scenario
    from emu.exec.trace import trace_events

    def wrap(first, period=0, count=1):
        mc = _machine("arm926", False, 1, 0, {}) | {"last_pkmap": 64}
        sc = Scenario("wrap", mc, [{"op": "kmap", "pfn": 301}])
        pages = range(400, 463)
        sc.task("t", [{"op": "kmap", "pfn": p} for p in pages]
                + [{"op": "kunmap", "pfn": p} for p in pages]
                + [{"op": "kmap", "pfn": 1000}, {"op": "kunmap", "pfn": 1000}], cpu=0)
        sc.irq("nic", [{"op": "dma_map_page", "pfn": 301, "offset": 0, "size": 64,
                        "direction": "FROM_DEVICE", "as": "h"},
                       {"op": "dma_unmap_page", "dma_addr": "h", "size": 64,
                        "direction": "FROM_DEVICE"}], line=0, cpu=0, count=count,
               period=period, first=first)
        return sc

    _, ld = profile_variant(wrap(10 ** 9), trace_events=1 << 16)      # never raised
    ev = trace_events(ld.machine._S)
    steps = [clk for kind, clk, *_ in ev if kind == K.T_STEP]
    sections = _sections(ev)

    def step_end(t):
        return min([s for s in steps if s > t] or [1 << 62])

    # the first section followed by more than 32 others before the next step, and the
    # last section of that step
    k = next(k for k, (a, b) in enumerate(sections)
             if sum(a <= x and y <= step_end(a) for x, y in sections) > 33)
    (a, b), (a2, b2) = sections[k], [s for s in sections if s[1] <= step_end(sections[k][0])][-1]
    assert a2 - a > 1000
    v, _ = profile_variant(wrap(a + 1))
    assert v["irq_latency"]["count"] == 1
    assert v["irq_latency"]["max_cycles"] == b - a - 1 > 0
    v, ld = profile_variant(wrap(a + 1, a2 - a, 2), trace_events=1 << 16)
    lats = [x for kind, *_, x in trace_events(ld.machine._S) if kind == K.T_IRQ_ENTER]
    assert lats == [b - a - 1, b2 - a2 - 1] and min(lats) > 0


def test_an_irq_due_just_before_a_section_its_step_begins_reads_no_latency():
    """A line due a cycle before kmap_high masks IRQs (spin_lock_irq), in the same step: the
    handler starts only after that irqs-off section (the executor takes IRQs between
    steps), but the CPU had IRQs on at the due clock and would have taken it at once, so
    the latency, what the CPU would see, is 0. Counting to the handler's start instead
    would put the executor's step length into every latency: dma-irq's plain variant (no
    IRQ masking in kmap_lock) would read up to 35,985 cycles on arm926 instead of 46."""
    from emu.cost.profile import profile_variant
    from emu.exec.scenario import Scenario
    from emu.exec.trace import trace_events

    def scenario(first):
        sc = Scenario("due before a section", {"last_pkmap": 8, "stats": True})
        sc.task("t", [{"op": "read", "va": 0xC0001000, "n": 32},
                      {"op": "kmap_high", "pfn": 300}, {"op": "kunmap_high", "pfn": 300}])
        sc.irq("h", [{"op": "read", "va": 0xC0002000, "n": 4}], line=0, count=1,
               first=first)
        return sc

    ld = scenario(1 << 40).build(trace_events=1 << 12)
    ld.run(K.SCHED_TIMED, trace=True, readable=False)
    ev = list(trace_events(ld.machine._S))
    off = next(clk for kind, clk, *_ in ev if kind == K.T_IRQS_OFF)
    on = next(clk for kind, clk, *_ in ev if kind == K.T_IRQS_ON)
    step = max(clk for kind, clk, *_ in ev if kind == K.T_STEP and clk < off)
    due = off - 1
    assert step < due                       # due within the step that masks IRQs after it
    v, ld = profile_variant(scenario(due), trace_events=1 << 12)
    ev = list(trace_events(ld.machine._S))
    enter = next(clk for kind, clk, *_ in ev if kind == K.T_IRQ_ENTER)
    lat = v["irq_latency"]
    assert lat["count"] == 1 and enter >= on > off > due
    assert lat["max_cycles"] == 0
